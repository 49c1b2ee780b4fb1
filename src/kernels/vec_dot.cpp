#include "kernels/vec_dot.h"

#include <immintrin.h>

#include <cstring>

#include "core/fp16.h"

namespace hondo {

namespace {

// The loops below work on 16 lanes with fixed trip counts so that the compiler turns each
// into vector instructions for the ISA of the clone (AVX-512: one register, AVX2: two).

__attribute__((target_clones("avx512f", "avx2", "default"))) float dot_q8_0(const uint8_t* w,
                                                                            const float* x,
                                                                            int64_t nb) {
  float total[16] = {};
  for (int64_t i = 0; i < nb; ++i, w += 34, x += 32) {
    const float d = f16_at(w);
    const int8_t* q = reinterpret_cast<const int8_t*>(w + 2);
    float acc[16];
    for (int j = 0; j < 16; ++j) acc[j] = float(q[j]) * x[j] + float(q[j + 16]) * x[j + 16];
    for (int j = 0; j < 16; ++j) total[j] += d * acc[j];
  }
  float s = 0;
  for (int j = 0; j < 16; ++j) s += total[j];
  return s;
}

__attribute__((target_clones("avx512f", "avx2", "default"))) float dot_q4_0(const uint8_t* w,
                                                                            const float* x,
                                                                            int64_t nb) {
  float total[16] = {};
  for (int64_t i = 0; i < nb; ++i, w += 18, x += 32) {
    const float d = f16_at(w);
    const uint8_t* q = w + 2;
    float acc[16];
    for (int j = 0; j < 16; ++j)
      acc[j] = float(int(q[j] & 0xF) - 8) * x[j] + float(int(q[j] >> 4) - 8) * x[j + 16];
    for (int j = 0; j < 16; ++j) total[j] += d * acc[j];
  }
  float s = 0;
  for (int j = 0; j < 16; ++j) s += total[j];
  return s;
}

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

// ---- AVX2 + FMA + F16C versions, chosen at run time ------------------------------------------

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 signed bytes -> 8 floats, times 8 activations, accumulated.
__attribute__((target("avx2,fma"))) inline __m256 fma_i8x8(__m128i q, const float* x, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(x), acc);
}

__attribute__((target("avx2,fma,f16c"))) float dot_q8_0_avx2(const uint8_t* w, const float* x,
                                                             int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i, w += 34, x += 32) {
    const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 18));
    __m256 blk = fma_i8x8(q0, x, _mm256_setzero_ps());
    blk = fma_i8x8(_mm_srli_si128(q0, 8), x + 8, blk);
    blk = fma_i8x8(q1, x + 16, blk);
    blk = fma_i8x8(_mm_srli_si128(q1, 8), x + 24, blk);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w)), blk, acc);
  }
  return hsum256(acc);
}

__attribute__((target("avx2,fma,f16c"))) float dot_q4_0_avx2(const uint8_t* w, const float* x,
                                                             int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  const __m128i low4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < nb; ++i, w += 18, x += 32) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2));
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, low4), eight);  // elements 0..15
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), eight);  // 16..31
    __m256 blk = fma_i8x8(lo, x, _mm256_setzero_ps());
    blk = fma_i8x8(_mm_srli_si128(lo, 8), x + 8, blk);
    blk = fma_i8x8(hi, x + 16, blk);
    blk = fma_i8x8(_mm_srli_si128(hi, 8), x + 24, blk);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_at(w)), blk, acc);
  }
  return hsum256(acc);
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

bool vec_dot_row(DType t, const void* row, const float* x, int64_t n, float* out) {
  const auto* b = static_cast<const uint8_t*>(row);
  switch (t) {
    case DType::Q8_0:
      *out = has_avx2() ? dot_q8_0_avx2(b, x, n / 32) : dot_q8_0(b, x, n / 32);
      return true;
    case DType::Q4_0:
      *out = has_avx2() ? dot_q4_0_avx2(b, x, n / 32) : dot_q4_0(b, x, n / 32);
      return true;
    case DType::F16: {
      const auto* h = static_cast<const uint16_t*>(row);
      *out = has_avx2() ? dot_f16_avx2(h, x, n) : dot_f16_plain(h, x, n);
      return true;
    }
    case DType::BF16:
      *out = dot_bf16(static_cast<const uint16_t*>(row), x, n);
      return true;
    default:
      return false;
  }
}

}  // namespace hondo
