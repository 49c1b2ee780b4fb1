#include "kernels/dot.h"

#include <algorithm>

#include "kernels/cpu.h"

namespace hondo {

float dot_f32_ref(const float* a, const float* b, int64_t n) {
  double s = 0;  // double accumulator: the reference is the accurate one
  for (int64_t i = 0; i < n; ++i) s += double(a[i]) * double(b[i]);
  return float(s);
}

// 16 independent accumulators let the compiler keep one vector register of partial sums
// (two on AVX2) without reassociating the float additions itself.
HONDO_FLOAT_CLONES float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

// The vector helpers below are always inlined into the clones; GCC's note that a 64-byte
// vector return "changes the ABI" without AVX-512 does not apply to them.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace {
// 16 floats as one GCC vector: one zmm in the AVX-512 clone, two ymm in the AVX2 one.
typedef float v16 __attribute__((vector_size(64)));
__attribute__((always_inline)) inline v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// R rows x T tokens with R * T vector accumulators held in registers (loops fully unrolled).
// w, x: rows of stride ld, of which the k values from the pointers on are used; the result
// is stored (add = false) or added to y.
template <int R, int T>
HONDO_FLOAT_CLONES void dot_micro(const float* w, const float* x, int64_t k, int64_t ld, float* y,
                                  int64_t ldy, bool add) {
  v16 acc[R][T];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) acc[r][t] = v16{};
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    v16 xv[T];
#pragma GCC unroll 4
    for (int t = 0; t < T; ++t) xv[t] = load16(x + t * ld + i);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const v16 wv = load16(w + r * ld + i);
#pragma GCC unroll 4
      for (int t = 0; t < T; ++t) acc[r][t] += wv * xv[t];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t) {
      float s = 0;
      for (int64_t j = i; j < k; ++j) s += w[r * ld + j] * x[t * ld + j];
      for (int l = 0; l < 16; ++l) s += acc[r][t][l];
      y[t * ldy + r] = add ? y[t * ldy + r] + s : s;
    }
}
}  // namespace

void dot_f32_block(const float* w, int64_t n_rows, const float* x, int64_t n_tok, int64_t k,
                   float* y, int64_t ldy) {
  // k in chunks of 1024 (4 rows + 4 tokens = 32 KB: L1), tokens outside, rows inside: a group
  // of 4 tokens stays in L1 while it meets every row of the block (which stays in L2).
  constexpr int64_t kChunk = 1024;
  const int64_t r4 = n_rows / 4 * 4;
  for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
    const int64_t kc = std::min(kChunk, k - k0);
    const bool add = k0 > 0;
    int64_t t = 0;
    for (; t + 4 <= n_tok; t += 4)
      for (int64_t r = 0; r < r4; r += 4)
        dot_micro<4, 4>(w + r * k + k0, x + t * k + k0, kc, k, y + t * ldy + r, ldy, add);
    for (; t < n_tok; ++t)
      for (int64_t r = 0; r < r4; r += 4)
        dot_micro<4, 1>(w + r * k + k0, x + t * k + k0, kc, k, y + t * ldy + r, ldy, add);
  }
  for (int64_t r = r4; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t) y[t * ldy + r] = dot_f32(w + r * k, x + t * k, k);
}

HONDO_FLOAT_CLONES void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace hondo
