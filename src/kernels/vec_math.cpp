#include "kernels/vec_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu.h"

namespace hondo {

namespace {

// e^x = 2^n e^r with n = round(x / ln 2) and r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2]; ln 2 is
// split into a short high part (n * hi exact in float) and a correction. e^r is
// 1 + r + r^2 P(r) with the degree-5 minimax P of Cephes' expf (relative error < 2^-23);
// 2^n is built in the exponent field.
__attribute__((always_inline)) inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.33654f), 88.72283f);
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504f + kRound) - kRound;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = (p * r * r + r) + 1.0f;
  // n in [-126, 128]: 2^n as (n + 127) << 23, split into two factors so n = 128 fits.
  const int32_t half = int32_t(n) >> 1;
  const int32_t b1 = (half + 127) << 23, b2 = (int32_t(n) - half + 127) << 23;
  float s1, s2;
  std::memcpy(&s1, &b1, 4);
  std::memcpy(&s2, &b2, 4);
  return er * s1 * s2;
}

}  // namespace

void exp_ref(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
}

void silu_mul_ref(const float* g, const float* u, float* h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// The loops, compiled once per instruction set below (the compiler vectorizes exp_approx).
#define HONDO_VEC_MATH_LOOPS(attr, suffix)                                           \
  attr void exp_##suffix(const float* x, float* y, int64_t n) {                      \
    for (int64_t i = 0; i < n; ++i) y[i] = exp_approx(x[i]);                         \
  }                                                                                  \
  attr void silu_mul_##suffix(const float* g, const float* u, float* h, int64_t n) { \
    for (int64_t i = 0; i < n; ++i) h[i] = g[i] / (1.0f + exp_approx(-g[i])) * u[i]; \
  }

namespace {
HONDO_VEC_MATH_LOOPS(, portable)
#if HONDO_X86
HONDO_VEC_MATH_LOOPS(__attribute__((target("avx2,fma"))), avx2)
HONDO_VEC_MATH_LOOPS(__attribute__((target("avx512f"))), avx512)
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
