#include "kernels/vec_dot.h"

#include <vector>

#include "core/fp16.h"
#include "kernels/cpu.h"

#if HONDO_X86
#include <immintrin.h>
#elif HONDO_ARM64
#include <arm_neon.h>
#endif

namespace hondo {

namespace {

// 16 lanes with a fixed trip count, so that the compiler turns the loop into vector
// instructions for the ISA of the clone (AVX-512: one register, AVX2: two).
HONDO_FLOAT_CLONES float dot_bf16(const uint16_t* w, const float* x, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += bits_to_f32(uint32_t(w[i + j]) << 16) * x[i + j];
  float s = 0;
  for (; i < n; ++i) s += bf16_to_f32(w[i]) * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

float dot_f16_plain(const uint16_t* w, const float* x, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

void axpy_f16_plain(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}

void weighted_sum_plain(const uint16_t* rows, int64_t stride, const float* p, int64_t n_rows,
                        int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = 0;
  for (int64_t j = 0; j < n_rows; ++j) axpy_f16_plain(p[j], rows + j * stride, out, n);
}

// ---- F16: the CPU's half-precision conversion with FMA, chosen at run time ------------------

#if HONDO_X86
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

__attribute__((target("avx2,fma,f16c"))) void axpy_f16_avx2(float a, const uint16_t* x, float* y,
                                                            int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}

// GCC 12 warns inside its own _mm512_cvtph_ps / _mm512_reduce_add_ps (their "undefined"
// pass-through operands); the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// 64 values per step in four independent accumulators: a row of 2048 is 32 steps, and one
// chain of dependent FMAs would bound the loop, not the memory.
__attribute__((target("avx512f"))) float dot_f16_avx512(const uint16_t* w, const float* x,
                                                        int64_t n) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 wj =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16 * j)));
      acc[j] = _mm512_fmadd_ps(wj, _mm512_loadu_ps(x + i + 16 * j), acc[j]);
    }
  float s = _mm512_reduce_add_ps(
      _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
  for (; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}

__attribute__((target("avx512f"))) void axpy_f16_avx512(float a, const uint16_t* x, float* y,
                                                        int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xv = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, xv, _mm512_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}
// Columns in blocks of 128 (8 registers of accumulators), every row into each block.
__attribute__((target("avx512f"))) void weighted_sum_avx512(const uint16_t* rows, int64_t stride,
                                                            const float* p, int64_t n_rows,
                                                            int64_t n, float* out) {
  int64_t c0 = 0;
  for (; c0 + 128 <= n; c0 += 128) {
    __m512 acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n_rows; ++j) {
      const __m512 pj = _mm512_set1_ps(p[j]);
      const uint16_t* r = rows + j * stride + c0;
      for (int c = 0; c < 8; ++c)
        acc[c] = _mm512_fmadd_ps(
            pj, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 16 * c))),
            acc[c]);
    }
    for (int c = 0; c < 8; ++c) _mm512_storeu_ps(out + c0 + 16 * c, acc[c]);
  }
  if (c0 < n) weighted_sum_plain(rows + c0, stride, p, n_rows, n - c0, out + c0);
}
#pragma GCC diagnostic pop

std::vector<F16Dot> variants() {
  std::vector<F16Dot> v{{"portable", dot_f16_plain}};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    v.push_back({"avx2", dot_f16_avx2});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", dot_f16_avx512});
  return v;
}
std::vector<F16WeightedSum> weighted_sum_variants() {
  std::vector<F16WeightedSum> v{{"portable", weighted_sum_plain}};
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", weighted_sum_avx512});
  return v;
}
std::vector<F16Axpy> axpy_variants() {
  std::vector<F16Axpy> v{{"portable", axpy_f16_plain}};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    v.push_back({"avx2", axpy_f16_avx2});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", axpy_f16_avx512});
  return v;
}
#elif HONDO_ARM64
float dot_f16_neon(const uint16_t* w, const float* x, int64_t n) {
  float32x4_t acc[4] = {vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0), vdupq_n_f32(0)};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 4; ++j) {
      const float32x4_t wj = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w + i + 4 * j)));
      acc[j] = vfmaq_f32(acc[j], wj, vld1q_f32(x + i + 4 * j));
    }
  float s = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
  for (; i < n; ++i) s += f16_to_f32(w[i]) * x[i];
  return s;
}
void axpy_f16_neon(float a, const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t xv = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), xv, a));
  }
  for (; i < n; ++i) y[i] += a * f16_to_f32(x[i]);
}
std::vector<F16Dot> variants() {
  return {{"portable", dot_f16_plain}, {"neon", dot_f16_neon}};
}
std::vector<F16Axpy> axpy_variants() {
  return {{"portable", axpy_f16_plain}, {"neon", axpy_f16_neon}};
}
std::vector<F16WeightedSum> weighted_sum_variants() {
  return {{"portable", weighted_sum_plain}};
}
#else
std::vector<F16Dot> variants() {
  return {{"portable", dot_f16_plain}};
}
std::vector<F16Axpy> axpy_variants() {
  return {{"portable", axpy_f16_plain}};
}
std::vector<F16WeightedSum> weighted_sum_variants() {
  return {{"portable", weighted_sum_plain}};
}
#endif

}  // namespace

std::vector<F16Dot> f16_dot_variants() {
  return variants();
}
std::vector<F16Axpy> f16_axpy_variants() {
  return axpy_variants();
}

float dot_f16(const uint16_t* w, const float* x, int64_t n) {
  static const auto fn = variants().back().fn;
  return fn(w, x, n);
}

std::vector<F16WeightedSum> f16_weighted_sum_variants() {
  return weighted_sum_variants();
}

void f16_weighted_sum(const uint16_t* rows, int64_t stride, const float* p, int64_t n_rows,
                      int64_t n, float* out) {
  static const auto fn = weighted_sum_variants().back().fn;
  fn(rows, stride, p, n_rows, n, out);
}

void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  static const auto fn = axpy_variants().back().fn;
  fn(a, x, y, n);
}

bool has_vec_dot(DType t) {
  return t == DType::F16 || t == DType::BF16;
}

bool vec_dot_row(DType t, const void* row, const float* x, int64_t n, float* out) {
  const auto* h = static_cast<const uint16_t*>(row);
  switch (t) {
    case DType::F16:
      *out = dot_f16(h, x, n);
      return true;
    case DType::BF16:
      *out = dot_bf16(h, x, n);
      return true;
    default:
      return false;
  }
}

}  // namespace hondo
