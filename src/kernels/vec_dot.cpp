#include "kernels/vec_dot.h"

#include <algorithm>
#include <vector>

#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/qdot.h"

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

inline float half_to_f32(bool bf16, uint16_t h) {
  return bf16 ? bf16_to_f32(h) : f16_to_f32(h);
}

void rows_dot_plain(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                    int64_t n_tok, float* y, int64_t y_stride) {
  const bool bf16 = type == DType::BF16;
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t) {
      float s = 0;
      for (int64_t i = 0; i < k; ++i) s += half_to_f32(bf16, w[r * k + i]) * x[t * k + i];
      y[t * y_stride + r] = s;
    }
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

// A kernel for a fixed number of tokens (1 to 4), kernels[n - 1] for n: the run of rows times
// that many tokens' activations. A row kernel has one such table for each weight type (F16,
// BF16) and line prefetch hint (LineHint, qdot.h): HintedKernels[bf16][hint]. rows_by_tokens
// takes the one of `type` and this machine's hint, and goes through any count of tokens 4 at a
// time. The hint is kNone where page_hint_alone says so (AMD Zen 4): Coder-1.3B F16 decode on
// a Zen 4 guest, the two builds in turn (14 pairs of processes, `run_bench` -p 0 -n 32), read
// 2-8 points of the roofline higher without the line prefetches in every pair that ran in one
// state of the machine (e.g. 63.8 -> 66.1, 84.8 -> 90.2, 71.2 -> 76.8 %). BF16 rows, read by the
// same loops, follow without a measurement of their own (no BF16 file was at hand).
using RowsTimesTokens = void (*)(const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                                 float* y, int64_t y_stride);
using TokenKernels = RowsTimesTokens[4];
using HintedKernels = const TokenKernels* const[2][3];  // [bf16][int(LineHint)]
static_assert(int(LineHint::kL1) == 0 && int(LineHint::kL2) == 1 && int(LineHint::kNone) == 2,
              "the tables below list the hints in this order");
void rows_by_tokens(const HintedKernels& tables, DType type, const uint16_t* w, int64_t k,
                    int64_t n_rows, const float* x, int64_t n_tok, float* y, int64_t y_stride) {
  const TokenKernels& kernels = *tables[type == DType::BF16][int(plain_stream_hint())];
  for (int64_t t = 0; t < n_tok; t += 4)
    kernels[std::min<int64_t>(4, n_tok - t) - 1](w, k, n_rows, x + t * k, y + t * y_stride,
                                                 y_stride);
}

// 8 half-precision values (F16, or BF16 whose bits are a float's upper half) as floats.
template <bool BF16>
__attribute__((target("avx2,fma,f16c"))) inline __m256 half8_to_ps(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  return _mm256_cvtph_ps(h);
}

// T tokens at a time: 32 values (one line) of the row converted per step into four registers,
// each token's products in two accumulators.
template <bool BF16, int T, LineHint kHint>
__attribute__((target("avx2,fma,f16c"))) void rows_dot_avx2_t(const uint16_t* w, int64_t k,
                                                              int64_t n_rows, const float* x,
                                                              float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint16_t* row = w + r * k;
    __m256 acc[T][2];
    for (int t = 0; t < T; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= k; i += 32) {
      prefetch_row_ahead<kHint>(row + i, 64);
      __m256 wv[4];
      for (int j = 0; j < 4; ++j) wv[j] = half8_to_ps<BF16>(row + i + 8 * j);
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < 4; ++j)
          acc[t][j & 1] =
              _mm256_fmadd_ps(wv[j], _mm256_loadu_ps(x + t * k + i + 8 * j), acc[t][j & 1]);
    }
    for (int t = 0; t < T; ++t) {
      float s = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
      for (int64_t c = i; c < k; ++c) s += half_to_f32(BF16, row[c]) * x[t * k + c];
      y[t * y_stride + r] = s;
    }
  }
}

template <bool BF16, LineHint kHint>
constexpr TokenKernels avx2_rows = {
    rows_dot_avx2_t<BF16, 1, kHint>, rows_dot_avx2_t<BF16, 2, kHint>,
    rows_dot_avx2_t<BF16, 3, kHint>, rows_dot_avx2_t<BF16, 4, kHint>};

void rows_dot_avx2(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                   int64_t n_tok, float* y, int64_t y_stride) {
  static constexpr HintedKernels tables = {
      {&avx2_rows<false, LineHint::kL1>, &avx2_rows<false, LineHint::kL2>,
       &avx2_rows<false, LineHint::kNone>},
      {&avx2_rows<true, LineHint::kL1>, &avx2_rows<true, LineHint::kL2>,
       &avx2_rows<true, LineHint::kNone>}};
  rows_by_tokens(tables, type, w, k, n_rows, x, n_tok, y, y_stride);
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

template <bool BF16>
__attribute__((target("avx512f"))) inline __m512 half16_to_ps(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  return _mm512_cvtph_ps(h);
}

// T tokens at a time: 64 values (two lines) of the row converted per step into four
// registers, each token's products in four accumulators (independent FMA chains).
template <bool BF16, int T, LineHint kHint>
__attribute__((target("avx512f"))) void rows_dot_avx512_t(const uint16_t* w, int64_t k,
                                                          int64_t n_rows, const float* x, float* y,
                                                          int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint16_t* row = w + r * k;
    __m512 acc[T][4];
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < 4; ++j) acc[t][j] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
      prefetch_row_ahead<kHint>(row + i, 128);
      __m512 wv[4];
      for (int j = 0; j < 4; ++j) wv[j] = half16_to_ps<BF16>(row + i + 16 * j);
      for (int t = 0; t < T; ++t)
        for (int j = 0; j < 4; ++j)
          acc[t][j] = _mm512_fmadd_ps(wv[j], _mm512_loadu_ps(x + t * k + i + 16 * j), acc[t][j]);
    }
    for (int t = 0; t < T; ++t) {
      float s = _mm512_reduce_add_ps(
          _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3])));
      for (int64_t c = i; c < k; ++c) s += half_to_f32(BF16, row[c]) * x[t * k + c];
      y[t * y_stride + r] = s;
    }
  }
}

template <bool BF16, LineHint kHint>
constexpr TokenKernels avx512_rows = {
    rows_dot_avx512_t<BF16, 1, kHint>, rows_dot_avx512_t<BF16, 2, kHint>,
    rows_dot_avx512_t<BF16, 3, kHint>, rows_dot_avx512_t<BF16, 4, kHint>};

void rows_dot_avx512(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                     int64_t n_tok, float* y, int64_t y_stride) {
  static constexpr HintedKernels tables = {
      {&avx512_rows<false, LineHint::kL1>, &avx512_rows<false, LineHint::kL2>,
       &avx512_rows<false, LineHint::kNone>},
      {&avx512_rows<true, LineHint::kL1>, &avx512_rows<true, LineHint::kL2>,
       &avx512_rows<true, LineHint::kNone>}};
  rows_by_tokens(tables, type, w, k, n_rows, x, n_tok, y, y_stride);
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
std::vector<HalfRowsDot> rows_dot_variants() {
  std::vector<HalfRowsDot> v{{"portable", rows_dot_plain}};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    v.push_back({"avx2", rows_dot_avx2});
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", rows_dot_avx512});
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
void rows_dot_neon(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                   int64_t n_tok, float* y, int64_t y_stride) {
  for (int64_t r = 0; r < n_rows; ++r)
    for (int64_t t = 0; t < n_tok; ++t)
      y[t * y_stride + r] = type == DType::BF16 ? dot_bf16(w + r * k, x + t * k, k)
                                                : dot_f16_neon(w + r * k, x + t * k, k);
}
std::vector<HalfRowsDot> rows_dot_variants() {
  return {{"portable", rows_dot_plain}, {"neon", rows_dot_neon}};
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
std::vector<HalfRowsDot> rows_dot_variants() {
  return {{"portable", rows_dot_plain}};
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

std::vector<HalfRowsDot> half_rows_dot_variants() {
  return rows_dot_variants();
}

void half_rows_dot(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                   int64_t n_tok, float* y, int64_t y_stride) {
  static const auto fn = rows_dot_variants().back().fn;
  fn(type, w, k, n_rows, x, n_tok, y, y_stride);
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
