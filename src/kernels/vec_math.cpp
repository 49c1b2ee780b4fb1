#include "kernels/vec_math.h"

#include <cmath>

#include "kernels/cpu.h"
#include "kernels/gcc_vectors.h"

namespace hondo {

namespace {

using namespace vec;

// e^x = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2]; ln 2 is
// split into a short high part (n * hi exact in float) and a correction. e^r is
// 1 + r + r^2 P(r) with the degree-5 minimax P of Cephes' expf (relative error < 2^-23);
// 2^n is built in the exponent field. V is a float or a GCC vector of floats (VI: its int32
// lanes), evaluated step for step alike. The loops below take whole vectors because GCC left
// the scalar loop scalar for AVX2 (the clamp became branches): the AVX2 build ran exp and SiLU
// a value at a time, ~13 cycles each (V2-Lite's SwiGLU: 25 us a layer per decoded token, now
// 5). The ternaries keep a NaN as it is, as std::min/std::max would.
template <typename V, typename VI>
__attribute__((always_inline)) inline V exp_approx(V x) {
  const V lo = V{} - 87.33654f, hi = V{} + 88.72283f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const V round = V{} + 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const V n = (x * 1.44269504f + round) - round;
  const V r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const V er = (p * r * r + r) + 1.0f;
  // n in [-126, 128]: 2^n as (n + 127) << 23, split into two factors so n = 128 fits.
  VI ni;
  if constexpr (sizeof(V) == sizeof(float))
    ni = n == n ? VI(n) : 0;  // a NaN (er is NaN too) converted to int would be undefined
  else
    ni = __builtin_convertvector(n, VI);
  const VI half = ni >> 1;
  const VI b1 = (half + 127) << 23, b2 = (ni - half + 127) << 23;
  return er * __builtin_bit_cast(V, b1) * __builtin_bit_cast(V, b2);
}

// Whole vectors of the inputs at a time, the rest value by value.
template <typename V, typename VI>
__attribute__((always_inline)) inline void exp_loop(const float* x, float* y, int64_t n) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  int64_t i = 0;
  for (; i + L <= n; i += L) store(y + i, exp_approx<V, VI>(load<V>(x + i)));
  for (; i < n; ++i) y[i] = exp_approx<float, int32_t>(x[i]);
}
template <typename V, typename VI>
__attribute__((always_inline)) inline void silu_mul_loop(const float* g, const float* u, float* h,
                                                         int64_t n) {
  constexpr int64_t L = sizeof(V) / sizeof(float);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const V gv = load<V>(g + i);
    store(h + i, gv / (1.0f + exp_approx<V, VI>(-gv)) * load<V>(u + i));
  }
  for (; i < n; ++i) h[i] = g[i] / (1.0f + exp_approx<float, int32_t>(-g[i])) * u[i];
}

}  // namespace

void exp_ref(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void silu_mul_ref(const float* g, const float* u, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// The loops, compiled once per instruction set below.
#define HONDO_VEC_MATH_LOOPS(attr, suffix, V, VI)                                    \
  attr void exp_##suffix(const float* x, float* y, int64_t n) {                      \
    exp_loop<V, VI>(x, y, n);                                                        \
  }                                                                                  \
  attr void silu_mul_##suffix(const float* g, const float* u, float* h, int64_t n) { \
    silu_mul_loop<V, VI>(g, u, h, n);                                                \
  }

namespace {
HONDO_VEC_MATH_LOOPS(, portable, f32x4, i32x4)
#if HONDO_X86
HONDO_VEC_MATH_LOOPS(__attribute__((target("avx2,fma"))), avx2, f32x8, i32x8)
HONDO_VEC_MATH_LOOPS(__attribute__((target("avx512f"))), avx512, f32x16, i32x16)
#endif

const VecMath& best() {
  static const VecMath b = vec_math_variants().back();
  return b;
}
}  // namespace

std::vector<VecMath> vec_math_variants() {
  std::vector<VecMath> v{{"portable", exp_portable, silu_mul_portable}};
#if HONDO_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    v.push_back({"avx2", exp_avx2, silu_mul_avx2});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", exp_avx512, silu_mul_avx512});
#endif
  return v;
}

void exp_f32(const float* x, float* y, int64_t n) {
  best().exp(x, y, n);
}

void silu_mul_f32(const float* g, const float* u, float* h, int64_t n) {
  best().silu_mul(g, u, h, n);
}

}  // namespace hondo
