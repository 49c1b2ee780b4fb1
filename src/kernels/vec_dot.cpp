#include "kernels/vec_dot.h"

#include <immintrin.h>

#include "core/fp16.h"

namespace hondo {

namespace {

// 16 lanes with a fixed trip count, so that the compiler turns the loop into vector
// instructions for the ISA of the clone (AVX-512: one register, AVX2: two).
__attribute__((target_clones("avx512f", "avx2", "default"))) float dot_bf16(const uint16_t* w,
                                                                            const float* x,
                                                                            int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += bits_to_f32(uint32_t(w[i + j]) << 16) * x[i + j];
  float s = 0;
  for (; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

// ---- F16: F16C conversion with AVX2 + FMA, chosen at run time ------------------------------

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

__attribute__((target("avx2,fma,f16c"))) float dot_f16_avx2(const uint16_t* w, const float* x,
                                                            int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i + 8)));
    acc0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), acc0);
    acc1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), acc1);
  }
  float s = hsum256(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

float dot_f16_plain(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return yes;
}

}  // namespace

bool has_vec_dot(DType t) {
  return t == DType::F16 || t == DType::BF16;
}

bool vec_dot_row(DType t, const void* row, const float* x, int64_t n, float* out) {
  const auto* h = static_cast<const uint16_t*>(row);
  switch (t) {
    case DType::F16:
      *out = has_avx2() ? dot_f16_avx2(h, x, n) : dot_f16_plain(h, x, n);
      return true;
    case DType::BF16:
      *out = dot_bf16(h, x, n);
      return true;
    default:
      return false;
  }
}

}  // namespace hondo
