#include "kernels/head_rows.h"

#include <type_traits>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/vec_dot.h"

#if HONDO_X86
#include <immintrin.h>
#endif

namespace hondo {

namespace {

// Portable: head by head with the single-head kernels (F16 converted per head).
void dots_plain(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* q,
                int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  for (int i = 0; i < n_q; ++i)
    for (int64_t j = 0; j < n_rows; ++j)
      out[i * o_stride + j] += dot_f16(rows + j * stride, q + i * q_stride, n);
}
void sums_plain(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* p,
                int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  for (int i = 0; i < n_q; ++i)
    f16_weighted_sum(rows, stride, p + i * p_stride, n_rows, n, out + i * o_stride);
}

#if HONDO_X86
// GCC 12 warns inside its own _mm512_cvtph_ps / _mm512_reduce_add_ps (their "undefined"
// pass-through operands); the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
inline __attribute__((target("avx512f"))) __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Per row: each block of 16 values converted once, then one FMA per head into that head's
// accumulator; the heads' sums are reduced at the end of the row.
template <int NQ>
__attribute__((target("avx512f"))) void dots_rows(const uint16_t* rows, int64_t stride,
                                                  int64_t n_rows, const float* q, int64_t q_stride,
                                                  int64_t n, float* out, int64_t o_stride) {
  const int64_t n16 = n / 16 * 16;
  for (int64_t j = 0; j < n_rows; ++j) {
    const uint16_t* r = rows + j * stride;
    __m512 acc[NQ];
    for (int i = 0; i < NQ; ++i) acc[i] = _mm512_setzero_ps();
    for (int64_t c = 0; c < n16; c += 16) {
      const __m512 w = load_f16(r + c);
      for (int i = 0; i < NQ; ++i)
        acc[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(q + i * q_stride + c), acc[i]);
    }
    for (int i = 0; i < NQ; ++i) {
      float s = _mm512_reduce_add_ps(acc[i]);
      for (int64_t c = n16; c < n; ++c) s += f16_to_f32(r[c]) * q[i * q_stride + c];
      out[i * o_stride + j] += s;
    }
  }
}

// Columns in stripes of 16 * kRegs (kRegs registers per head, at least 6 accumulators in
// all so that the FMA chains overlap), every row into each stripe: one conversion of the
// row's values serves all heads.
template <int NQ>
__attribute__((target("avx512f"))) void sums_rows(const uint16_t* rows, int64_t stride,
                                                  int64_t n_rows, const float* p, int64_t p_stride,
                                                  int64_t n, float* out, int64_t o_stride) {
  constexpr int kRegs = NQ >= 4 ? 2 : 8 / NQ;
  int64_t c0 = 0;
  for (; c0 + 16 * kRegs <= n; c0 += 16 * kRegs) {
    __m512 acc[NQ][kRegs];
    for (int i = 0; i < NQ; ++i)
      for (int c = 0; c < kRegs; ++c) acc[i][c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n_rows; ++j) {
      const uint16_t* r = rows + j * stride + c0;
      __m512 w[kRegs];
      for (int c = 0; c < kRegs; ++c) w[c] = load_f16(r + 16 * c);
      for (int i = 0; i < NQ; ++i) {
        const __m512 pij = _mm512_set1_ps(p[i * p_stride + j]);
        for (int c = 0; c < kRegs; ++c) acc[i][c] = _mm512_fmadd_ps(pij, w[c], acc[i][c]);
      }
    }
    for (int i = 0; i < NQ; ++i)
      for (int c = 0; c < kRegs; ++c) _mm512_storeu_ps(out + i * o_stride + c0 + 16 * c, acc[i][c]);
  }
  if (c0 < n) sums_plain(rows + c0, stride, n_rows, p, p_stride, NQ, n - c0, out + c0, o_stride);
}
#pragma GCC diagnostic pop

// The head count as a template argument, so that the accumulators stay in registers.
template <class Run>
void by_heads(int n_q, Run run) {
  switch (n_q) {
    case 1:
      return run(std::integral_constant<int, 1>{});
    case 2:
      return run(std::integral_constant<int, 2>{});
    case 3:
      return run(std::integral_constant<int, 3>{});
    case 4:
      return run(std::integral_constant<int, 4>{});
    case 5:
      return run(std::integral_constant<int, 5>{});
    case 6:
      return run(std::integral_constant<int, 6>{});
    case 7:
      return run(std::integral_constant<int, 7>{});
    default:
      return run(std::integral_constant<int, 8>{});
  }
}
void dots_avx512(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* q,
                 int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  by_heads(n_q, [&](auto nq) {
    dots_rows<decltype(nq)::value>(rows, stride, n_rows, q, q_stride, n, out, o_stride);
  });
}
void sums_avx512(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* p,
                 int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  by_heads(n_q, [&](auto nq) {
    sums_rows<decltype(nq)::value>(rows, stride, n_rows, p, p_stride, n, out, o_stride);
  });
}
#endif

std::vector<F16HeadRows> variants() {
  std::vector<F16HeadRows> v{{"portable", dots_plain, sums_plain}};
#if HONDO_X86
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", dots_avx512, sums_avx512});
#endif
  return v;
}

void check_heads(int n_q) {
  if (n_q < 1 || n_q > kMaxHeadRows) fail("f16 head rows: ", n_q, " heads, 1 to 8 allowed");
}

}  // namespace

std::vector<F16HeadRows> f16_head_rows_variants() {
  return variants();
}

void f16_head_dots(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* q,
                   int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  static const auto fn = variants().back().dots;
  check_heads(n_q);
  fn(rows, stride, n_rows, q, q_stride, n_q, n, out, o_stride);
}

void f16_head_sums(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* p,
                   int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  static const auto fn = variants().back().sums;
  check_heads(n_q);
  fn(rows, stride, n_rows, p, p_stride, n_q, n, out, o_stride);
}

}  // namespace hondo
