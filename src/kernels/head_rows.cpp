#include "kernels/head_rows.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/dot.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"

#if HONDO_X86
#include <immintrin.h>
#elif HONDO_ARM64
#include <arm_neon.h>
#endif

namespace hondo {

namespace {

// Portable: each row converted once by the reference (kernels/quant.h: dequantize_row),
// then one dot product (or axpy) per head. Rows of Fmt, `stride` units of Fmt::T apart.
template <class Fmt>
void plain_dots(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* q,
                int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  thread_local std::vector<float> w;  // [n] one row's values
  w.resize(size_t(n));
  for (int64_t j = 0; j < n_rows; ++j) {
    dequantize_row(Fmt::kType, rows + j * stride, w.data(), n);
    for (int i = 0; i < n_q; ++i) out[i * o_stride + j] += dot_f32(w.data(), q + i * q_stride, n);
  }
}
template <class Fmt>
void plain_sums(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* p,
                int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride) {
  thread_local std::vector<float> w;  // [n] one row's values
  w.resize(size_t(n));
  for (int64_t j = 0; j < n_rows; ++j) {
    dequantize_row(Fmt::kType, rows + j * stride, w.data(), n);
    for (int i = 0; i < n_q; ++i) axpy_f32(p[i * p_stride + j], w.data(), out + i * o_stride, n);
  }
}

// The row formats, for the kernels below: T the unit of `stride`, at(row, c) where the
// values from column c on lie (c % 32 == 0 for Q8_0), bytes(n) the size of n values.
struct F32Rows {
  using T = float;
  static constexpr DType kType = DType::F32;
  static const T* at(const T* row, int64_t c) { return row + c; }
  static int64_t bytes(int64_t n) { return 4 * n; }
  static float value(const T* row, int64_t c) { return row[c]; }
};
struct F16Rows {
  using T = uint16_t;
  static constexpr DType kType = DType::F16;
  static const T* at(const T* row, int64_t c) { return row + c; }
  static int64_t bytes(int64_t n) { return 2 * n; }
  static float value(const T* row, int64_t c) { return f16_to_f32(row[c]); }
};
struct Q8Rows {
  using T = uint8_t;
  static constexpr DType kType = DType::Q8_0;
  static constexpr int64_t kBlock = 32, kBlockBytes = 34;  // GGUF's block_q8_0
  static const T* at(const T* row, int64_t c) { return row + c / kBlock * kBlockBytes; }
  static int64_t bytes(int64_t n) { return n / kBlock * kBlockBytes; }
  static float value(const T* row, int64_t c) {
    const T* b = at(row, c);
    return f16_to_f32(uint16_t(b[0] | b[1] << 8)) * float(int8_t(b[2 + c % kBlock]));
  }
};

#if HONDO_X86
// GCC 12 warns inside its own _mm512_cvtph_ps / _mm512_reduce_add_ps (their "undefined"
// pass-through operands); the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
inline __attribute__((target("avx512f"))) __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
// Values c .. c + 15 of a row as F32 (c % 16 == 0): F32 loaded; F16 converted; Q8_0 widened from
// int8 and multiplied by the block's scale (exact: 8 by 11 significant bits).
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(const uint16_t* row,
                                                                       int64_t c) {
  return load_f16(row + c);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(const float* row,
                                                                       int64_t c) {
  return _mm512_loadu_ps(row + c);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 load16(const uint8_t* row,
                                                                       int64_t c) {
  const uint8_t* b = Q8Rows::at(row, c);
  uint16_t d;
  std::memcpy(&d, b, 2);
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + c % Q8Rows::kBlock));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)),
                       _mm512_cvtph_ps(_mm256_set1_epi16(int16_t(d))));
}

// The first n values of the `count` rows kRowsAhead after row j (head_rows.h). Not qdot.h's
// prefetch_ahead, which announces a weight stream's bytes ahead.
template <class Fmt>
__attribute__((always_inline)) inline void prefetch_rows_ahead(const typename Fmt::T* rows,
                                                               int64_t stride, int64_t j,
                                                               int64_t count, int64_t n_fetch,
                                                               int64_t n) {
  const int64_t bytes = Fmt::bytes(n);
  for (int64_t k = j + kRowsAhead; k < std::min(n_fetch, j + kRowsAhead + count); ++k)
    for (int64_t b = 0; b < bytes; b += 64)
      __builtin_prefetch(reinterpret_cast<const char*>(rows + k * stride) + b, 0, 2);
}

// For the `count` rows from j of a run of the weighted sums that starts at row j0, reading
// columns c0 .. c0 + W - 1: those columns of the rows a run later, and in the first run's
// first stripe the whole rows kRowsAhead on (head_rows.h).
template <class Fmt, int W>
__attribute__((always_inline)) inline void prefetch_next_run(const typename Fmt::T* rows,
                                                             int64_t stride, int64_t j,
                                                             int64_t count, int64_t j0,
                                                             int64_t n_fetch, int64_t n,
                                                             int64_t c0) {
  if (j0 == 0 && c0 == 0) prefetch_rows_ahead<Fmt>(rows, stride, j, count, n_fetch, n);
  for (int64_t k = j + kSumRows; k < std::min(n_fetch, j + kSumRows + count); ++k) {
    const char* first = reinterpret_cast<const char*>(Fmt::at(rows + k * stride, c0));
    for (int64_t b = 0; b < Fmt::bytes(W); b += 64) __builtin_prefetch(first + b, 0, 2);
  }
}

struct Avx512 {
  // The products of R rows (`stride` apart from r) with NQ heads over their first n values
  // (n % 16 == 0), unreduced: acc[k * NQ + i] holds row k . head i in 16 lanes. Each block of
  // 16 values of the R rows is converted once, then each head's block of q is loaded once into
  // a register for one FMA per row. Without the empty asm GCC folds the q load into every FMA
  // (R loads of the same block); for 8 heads over two rows that was 18 loads per 16 FMAs, and
  // the loads, not the FMAs, set the rate: 256 rows of a 512-value latent from cache, 8 heads,
  // 44-45 -> 74-79 GMAC/s (sums over the same rows: 84-88).
  template <class Fmt, int NQ, int R>
  __attribute__((target("avx512f"), always_inline)) static inline void row_products(
      const typename Fmt::T* r, int64_t stride, const float* q, int64_t q_stride, int64_t n,
      __m512 (&acc)[R * NQ]) {
    for (__m512& v : acc) v = _mm512_setzero_ps();
    for (int64_t c = 0; c < n; c += 16) {
      __m512 w[R];  // [R] 16 values of each row
      for (int k = 0; k < R; ++k) w[k] = load16(r + k * stride, c);
      for (int i = 0; i < NQ; ++i) {
        __m512 qv = _mm512_loadu_ps(q + i * q_stride + c);
        if constexpr (R > 1) asm("" : "+v"(qv));  // one load for all R rows (see above)
        for (int k = 0; k < R; ++k) acc[k * NQ + i] = _mm512_fmadd_ps(w[k], qv, acc[k * NQ + i]);
      }
    }
  }
  // R rows at a time, each (row, head) sum reduced on its own at the end of the rows. With few
  // heads several rows go together, so that at least 4 independent FMA chains overlap (one row
  // of one head alone would wait the FMA latency at every step).
  template <class Fmt, int NQ, int R>
  __attribute__((target("avx512f"))) static void dot_rows(const typename Fmt::T* r, int64_t stride,
                                                          const float* q, int64_t q_stride,
                                                          int64_t n, float* out, int64_t o_stride) {
    const int64_t n16 = n / 16 * 16;
    __m512 acc[R * NQ];
    row_products<Fmt, NQ, R>(r, stride, q, q_stride, n16, acc);
    float sums[R * NQ];
#pragma GCC unroll 16  // every accumulator stays in a register (a loop kept them in memory)
    for (int x = 0; x < R * NQ; ++x) sums[x] = _mm512_reduce_add_ps(acc[x]);
    for (int k = 0; k < R; ++k)
      for (int i = 0; i < NQ; ++i) {
        float s = sums[k * NQ + i];
        for (int64_t c = n16; c < n; ++c) s += Fmt::value(r + k * stride, c) * q[i * q_stride + c];
        out[i * o_stride + k] += s;
      }
  }
  // 16 / NQ rows against NQ heads (NQ = 2, 4 or 8): the 16 (row, head) sums reduced together
  // by sum16 rather than one reduction each (8 shuffles and adds: with 8 heads one for every 32
  // multiply-adds over a latent of 512, one for every 4 over a rotary key of 64); n % 16 == 0.
  // out[i * o_stride + k] += row k . head i. All R rows go through one loop, so that each
  // block of q is loaded once for all of them (row_products).
  template <class Fmt, int NQ>
  __attribute__((target("avx512f"))) static void dot_rows16(const typename Fmt::T* r,
                                                            int64_t stride, const float* q,
                                                            int64_t q_stride, int64_t n, float* out,
                                                            int64_t o_stride) {
    constexpr int R = 16 / NQ;
    __m512 acc[16];  // [R][NQ]
    // The accumulators are locals copied to acc after the loop: written in acc itself (which
    // sum16 reads through a pointer), GCC kept them in memory and zeroed them there at every
    // call (rep stos). GCC 12 keeps them in registers only in this form, a loop (of one pass)
    // around the products: as a plain block, the 8-head dots of a 64-value rotary key took 4.0
    // instead of 2.6 us over 256 rows.
#pragma GCC unroll 2
    for (int pass = 0; pass < 1; ++pass) {
      __m512 a[16];
      row_products<Fmt, NQ, R>(r, stride, q, q_stride, n, a);
      std::copy(a, a + 16, acc);
    }
    alignas(64) float s[16];
    _mm512_store_ps(s, sum16(acc));
    for (int k = 0; k < R; ++k)
      for (int i = 0; i < NQ; ++i) out[i * o_stride + k] += s[k * NQ + i];
  }
  // 16 sums of 16 lanes each -> one vector, lane r = the sum of a[r]'s lanes: a tree of
  // in-lane unpacks, then of 128-bit lane shuffles, each level halving the vectors.
  __attribute__((target("avx512f"), always_inline)) static inline __m512 sum16(const __m512* a) {
    __m512 b[8], c[4];
    for (int i = 0; i < 8; ++i)  // per 128-bit lane: rows 2i, 2i+1, 2i, 2i+1
      b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                           _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; ++i) {  // per 128-bit lane: rows 4i .. 4i+3
      const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
      c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                           _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // 128-bit lane m of the result: rows 4m .. 4m+3, c[m]'s four lanes added.
    return lane_pairs(lane_pairs(c[0], c[1]), lane_pairs(c[2], c[3]));
  }
  // [x0 + x1, x2 + x3, y0 + y1, y2 + y3] of the 128-bit lanes of x and y.
  __attribute__((target("avx512f"), always_inline)) static inline __m512 lane_pairs(__m512 x,
                                                                                    __m512 y) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x, y, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  // One head (MHA decode) against 16 rows: two short FMA chains per row, the 16 rows' sums
  // then reduced together (sum16) and added to out[0..16) as one vector; n % 32 == 0. Row by
  // row (dot_rows<1, 4>) each sum took its own reduction: 5.9 -> 4.6 ns a row of 128 values
  // from L1, and one thread's decode attention over 1024 positions from DRAM (test program,
  // 8 heads, 96 layers' worth of blocks) 18.3 -> 22.3 GB/s.
  template <class Fmt>
  __attribute__((target("avx512f"))) static void dot16(const typename Fmt::T* r, int64_t stride,
                                                       const float* q, int64_t n, float* out) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) {
      const typename Fmt::T* rk = r + k * stride;
      __m512 a0 = _mm512_mul_ps(load16(rk, 0), _mm512_loadu_ps(q));
      __m512 a1 = _mm512_mul_ps(load16(rk, 16), _mm512_loadu_ps(q + 16));
      for (int64_t c = 32; c < n; c += 32) {
        a0 = _mm512_fmadd_ps(load16(rk, c), _mm512_loadu_ps(q + c), a0);
        a1 = _mm512_fmadd_ps(load16(rk, c + 16), _mm512_loadu_ps(q + c + 16), a1);
      }
      acc[k] = _mm512_add_ps(a0, a1);
    }
    _mm512_storeu_ps(out, _mm512_add_ps(_mm512_loadu_ps(out), sum16(acc)));
  }
  // 16 rows against NQ heads for a count without a kernel of its own (3, 5, 6, 7: the query
  // heads per KV head of R1-Distill-Qwen 14B/32B, 1.5B, 7B), as the sum of those that have
  // one (4, 2, 1), each on the same 16 rows (read from L1 after the first). Row by row
  // (dot_rows<6, 1>) every (row, head) sum took a reduction of its own: R1-Distill-1.5B's
  // shape (2 KV heads of 6, 1024 positions, test program outside the tree) read 17-20 GB/s
  // from cache, a third of the rate with 4 heads of 4.
  template <class Fmt, int NQ>
  __attribute__((target("avx512f"), always_inline)) static inline void dot_parts16(
      const typename Fmt::T* r, int64_t stride, const float* q, int64_t q_stride, int64_t n,
      float* out, int64_t o_stride) {
    int h = 0;  // heads done
    if constexpr (NQ >= 4) {
      for (int k = 0; k < 16; k += 4)
        dot_rows16<Fmt, 4>(r + k * stride, stride, q, q_stride, n, out + k, o_stride);
      h = 4;
    }
    if constexpr ((NQ & 2) != 0) {
      for (int k = 0; k < 16; k += 8)
        dot_rows16<Fmt, 2>(r + k * stride, stride, q + h * q_stride, q_stride, n,
                           out + h * o_stride + k, o_stride);
      h += 2;
    }
    if constexpr ((NQ & 1) != 0) dot16<Fmt>(r, stride, q + h * q_stride, n, out + h * o_stride);
  }
  // Aligned to a cache line, as sums below: where the linker happened to place dots<1> moved the
  // one-head dots by 10 % (256 rows from cache, 1.12-1.16 against 1.26-1.30 us, identical code
  // 32 bytes apart).
  template <class Fmt, int NQ>
  __attribute__((target("avx512f"), aligned(64))) static void dots(
      const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* q, int64_t q_stride,
      int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
    constexpr int kRows = NQ >= 4 ? 1 : 4 / NQ;
    const int64_t n_fetch = std::max(n_rows, fetch_end);
    int64_t j = 0;
    if constexpr (NQ == 1)
      if (n % 32 == 0)
        for (; j + 16 <= n_rows; j += 16) {
          prefetch_rows_ahead<Fmt>(rows, stride, j, 16, n_fetch, n);
          dot16<Fmt>(rows + j * stride, stride, q, n, out + j);
        }
    if constexpr (NQ == 2 || NQ == 4 || NQ == 8)
      if (n % 16 == 0)
        for (; j + 16 / NQ <= n_rows; j += 16 / NQ) {
          prefetch_rows_ahead<Fmt>(rows, stride, j, 16 / NQ, n_fetch, n);
          dot_rows16<Fmt, NQ>(rows + j * stride, stride, q, q_stride, n, out + j, o_stride);
        }
    if constexpr (NQ == 3 || NQ == 5 || NQ == 6 || NQ == 7)
      if (n % 32 == 0)
        for (; j + 16 <= n_rows; j += 16) {
          prefetch_rows_ahead<Fmt>(rows, stride, j, 16, n_fetch, n);
          dot_parts16<Fmt, NQ>(rows + j * stride, stride, q, q_stride, n, out + j, o_stride);
        }
    for (; j + kRows <= n_rows; j += kRows) {
      prefetch_rows_ahead<Fmt>(rows, stride, j, kRows, n_fetch, n);
      dot_rows<Fmt, NQ, kRows>(rows + j * stride, stride, q, q_stride, n, out + j, o_stride);
    }
    for (; j < n_rows; ++j)
      dot_rows<Fmt, NQ, 1>(rows + j * stride, stride, q, q_stride, n, out + j, o_stride);
  }

  // Columns in stripes of 16 * kRegs (kRegs registers per head, at least 6 accumulators in
  // all so that the FMA chains overlap), every row into each stripe: one conversion of the
  // row's values serves all heads. The rows go in runs of kSumRows, every stripe of a run
  // before the next run, so that a run read from memory by the first stripe is still in cache
  // for the others; the stripes' sums are kept in out between runs. Over all rows at once, a
  // row wider than one stripe came from memory again at every stripe: 16384 rows of a
  // 512-value latent, 8 heads, one thread: 100 ns a row against 43 from cache.
  template <class Fmt, int NQ>
  __attribute__((target("avx512f"), aligned(64))) static void sums(
      const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* p, int64_t p_stride,
      int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
    constexpr int kRegs = NQ >= 4 ? 2 : 8 / NQ;
    const int64_t n_full = n / (16 * kRegs) * (16 * kRegs);  // columns of whole stripes
    const int64_t n_fetch = std::max(n_rows, fetch_end);
    for (int64_t j0 = 0; j0 < n_rows; j0 += kSumRows) {
      const int64_t j1 = std::min(n_rows, j0 + kSumRows);
      for (int64_t c0 = 0; c0 < n_full; c0 += 16 * kRegs)
        sum_stripe<Fmt, NQ, kRegs>(rows, stride, j0, j1, n_fetch, p, p_stride, n, c0, out + c0,
                                   o_stride);
    }
    if (n_full < n)
      plain_sums<Fmt>(Fmt::at(rows, n_full), stride, n_rows, p, p_stride, NQ, n - n_full,
                      out + n_full, o_stride);
  }
  // Rows j0 .. j1 - 1 into columns c0 .. c0 + 16 * kRegs - 1 of the NQ heads' sums, added to
  // what out holds. Each row asks for the same columns of the row a run later (below n_fetch),
  // so that the stripes of one run bring in the next run as they go, a run ahead; the first
  // run asks for its rows kRowsAhead ahead in its first stripe.
  template <class Fmt, int NQ, int kRegs>
  __attribute__((target("avx512f"), always_inline)) static inline void sum_stripe(
      const typename Fmt::T* rows, int64_t stride, int64_t j0, int64_t j1, int64_t n_fetch,
      const float* p, int64_t p_stride, int64_t n, int64_t c0, float* out, int64_t o_stride) {
    __m512 acc[NQ][kRegs];
    for (int i = 0; i < NQ; ++i)
      for (int c = 0; c < kRegs; ++c) acc[i][c] = _mm512_loadu_ps(out + i * o_stride + 16 * c);
    int64_t j = j0;
    // One head: two rows a step into two sets of accumulators, chains half as long.
    if constexpr (NQ == 1) {
      __m512 acc2[kRegs];
      for (int c = 0; c < kRegs; ++c) acc2[c] = _mm512_setzero_ps();
      for (; j + 2 <= j1; j += 2) {
        prefetch_next_run<Fmt, 16 * kRegs>(rows, stride, j, 2, j0, n_fetch, n, c0);
        const typename Fmt::T* r = rows + j * stride;
        const __m512 p0 = _mm512_set1_ps(p[j]), p1 = _mm512_set1_ps(p[j + 1]);
        for (int c = 0; c < kRegs; ++c) {
          acc[0][c] = _mm512_fmadd_ps(p0, load16(r, c0 + 16 * c), acc[0][c]);
          acc2[c] = _mm512_fmadd_ps(p1, load16(r + stride, c0 + 16 * c), acc2[c]);
        }
      }
      for (int c = 0; c < kRegs; ++c) acc[0][c] = _mm512_add_ps(acc[0][c], acc2[c]);
    }
    for (; j < j1; ++j) {
      prefetch_next_run<Fmt, 16 * kRegs>(rows, stride, j, 1, j0, n_fetch, n, c0);
      const typename Fmt::T* r = rows + j * stride;
      __m512 w[kRegs];
      for (int c = 0; c < kRegs; ++c) w[c] = load16(r, c0 + 16 * c);
      for (int i = 0; i < NQ; ++i) {
        const __m512 pij = _mm512_set1_ps(p[i * p_stride + j]);
        for (int c = 0; c < kRegs; ++c) acc[i][c] = _mm512_fmadd_ps(pij, w[c], acc[i][c]);
      }
    }
    for (int i = 0; i < NQ; ++i)
      for (int c = 0; c < kRegs; ++c) _mm512_storeu_ps(out + i * o_stride + 16 * c, acc[i][c]);
  }
};

// Values c .. c + 7 of a row as F32 (c % 8 == 0), as load16.
__attribute__((target("avx2,fma,f16c"), always_inline)) inline __m256 load8(const float* row,
                                                                            int64_t c) {
  return _mm256_loadu_ps(row + c);
}
__attribute__((target("avx2,fma,f16c"), always_inline)) inline __m256 load8(const uint16_t* row,
                                                                            int64_t c) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + c)));
}
__attribute__((target("avx2,fma,f16c"), always_inline)) inline __m256 load8(const uint8_t* row,
                                                                            int64_t c) {
  const uint8_t* b = Q8Rows::at(row, c);
  uint16_t d;
  std::memcpy(&d, b, 2);
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + c % Q8Rows::kBlock));
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)),
                       _mm256_cvtph_ps(_mm_set1_epi16(int16_t(d))));
}

// AVX2 (16 ymm registers): the AVX-512 scheme at 8 floats a register, with 8 accumulators
// where that one has 16.
struct Avx2 {
  // 8 sums of 8 lanes each -> one vector, lane r = the sum of a[r]'s lanes: horizontal adds
  // within 128-bit lanes, then the two halves added.
  __attribute__((target("avx2,fma,f16c"), always_inline)) static inline __m256 sum8(
      const __m256* a) {
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20),
                         _mm256_permute2f128_ps(u0, u1, 0x31));
  }
  // NQ heads as groups of at most 6 (the most the kernels below hold in registers): up to 6
  // heads as one group, 7 or 8 as 6 and the rest. group(heads, fetch, first head) per group,
  // heads and fetch as std::integral_constant; fetch (ask for the rows ahead) for the first.
  template <int NQ, class Group>
  static void in_groups(Group group) {
    using First = std::integral_constant<int, (NQ > 6 ? 6 : NQ)>;
    group(First{}, std::true_type{}, 0);
    if constexpr (NQ > 6) group(std::integral_constant<int, NQ - 6>{}, std::false_type{}, 6);
  }
  // Rows at a time for NQ heads: 8 / NQ for 1, 2 or 4 heads, 3 for 3, 2 for 5 or 6 (at most 12
  // accumulators, the rows' values and a block of q: 15 of the 16 registers at most).
  template <int NQ>
  static constexpr int kDotRows = NQ == 3   ? 3
                                  : NQ <= 4 ? 8 / NQ
                                            : 2;
  // R rows (kDotRows<NQ>, or 1 for the last rows) against NQ <= 6 heads over their first n
  // values (n % 8 == 0): up to 12 accumulators, independent FMA chains, reduced 8 at a time by
  // sum8. Per block of 8 values each row is converted once and each head's block of q loaded
  // once for all the rows. out[i * o_stride + k] += row k . head i.
  template <class Fmt, int NQ, int R = kDotRows<NQ>>
  __attribute__((target("avx2,fma,f16c"))) static void dot_rows8(const typename Fmt::T* r,
                                                                 int64_t stride, const float* q,
                                                                 int64_t q_stride, int64_t n,
                                                                 float* out, int64_t o_stride) {
    constexpr int A = R * NQ;
    __m256 acc[16];  // [R][NQ], the rest zero
    for (__m256& v : acc) v = _mm256_setzero_ps();
    for (int64_t c = 0; c < n; c += 8) {
      __m256 w[R];  // [R] 8 values of each row
      for (int k = 0; k < R; ++k) w[k] = load8(r + k * stride, c);
      for (int i = 0; i < NQ; ++i) {
        __m256 qv = _mm256_loadu_ps(q + i * q_stride + c);
        if constexpr (R > 1) asm("" : "+x"(qv));  // one load for all R rows (row_products)
        for (int k = 0; k < R; ++k) acc[k * NQ + i] = _mm256_fmadd_ps(w[k], qv, acc[k * NQ + i]);
      }
    }
    alignas(32) float s[16];
    _mm256_store_ps(s, sum8(acc));
    if constexpr (A > 8) _mm256_store_ps(s + 8, sum8(acc + 8));
    for (int k = 0; k < R; ++k)
      for (int i = 0; i < NQ; ++i) out[i * o_stride + k] += s[k * NQ + i];
  }
  // 7 or 8 heads go as 6, then the rest, over the same rows (from cache the second time): with
  // one row at a time for 8 heads each FMA took a load of q, 39 GMAC/s on one core (128 rows of
  // a 512-value F16 latent from cache), as 6 and 2 43; 6 heads 36.5 -> 43, 3 heads (3 rows at a
  // time instead of 2) 31 -> 36.5.
  template <class Fmt, int NQ>
  __attribute__((target("avx2,fma,f16c"))) static void dots(const typename Fmt::T* rows,
                                                            int64_t stride, int64_t n_rows,
                                                            const float* q, int64_t q_stride,
                                                            int64_t n, float* out, int64_t o_stride,
                                                            int64_t fetch_end) {
    in_groups<NQ>([&](auto nq, auto fetch, int h0) {
      group_dots<Fmt, nq(), fetch()>(rows, stride, n_rows, q + h0 * q_stride, q_stride, n,
                                     out + h0 * o_stride, o_stride, fetch_end);
    });
  }
  // NQ <= 6 heads; kFetch: ask for the rows ahead (the first group of heads over these rows).
  template <class Fmt, int NQ, bool kFetch>
  __attribute__((target("avx2,fma,f16c"))) static void group_dots(
      const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* q, int64_t q_stride,
      int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
    constexpr int R = kDotRows<NQ>;
    const int64_t n_fetch = std::max(n_rows, fetch_end), n8 = n / 8 * 8;
    int64_t j = 0;
    for (; j + R <= n_rows; j += R) {
      if constexpr (kFetch) prefetch_rows_ahead<Fmt>(rows, stride, j, R, n_fetch, n);
      dot_rows8<Fmt, NQ>(rows + j * stride, stride, q, q_stride, n8, out + j, o_stride);
    }
    for (; j < n_rows; ++j)
      dot_rows8<Fmt, NQ, 1>(rows + j * stride, stride, q, q_stride, n8, out + j, o_stride);
    if (n8 < n)  // the last columns of every row
      plain_dots<Fmt>(Fmt::at(rows, n8), stride, n_rows, q + n8, q_stride, NQ, n - n8, out,
                      o_stride);
  }

  // Columns in stripes of 8 * kRegs (kRegs registers per head), every row of a run of kSumRows
  // into each stripe, the sums added to out, the next run asked for as a run goes (as
  // Avx512::sums). Up to 4 heads take 8 / NQ registers each; 5 or 6 heads two each (12
  // accumulators, the 2 row values and a broadcast: 15 of the 16 registers); 7 or 8 heads go
  // as 6, then the rest, over the same rows (from cache the second time). 8 heads with one
  // register each took a broadcast of p per FMA: on one core, 128 rows of a 512-value F16
  // latent from cache, 24 GMAC/s that way, 34 as 4 and 4, 36-39 as 6 and 2.
  template <class Fmt, int NQ>
  __attribute__((target("avx2,fma,f16c"))) static void sums(const typename Fmt::T* rows,
                                                            int64_t stride, int64_t n_rows,
                                                            const float* p, int64_t p_stride,
                                                            int64_t n, float* out, int64_t o_stride,
                                                            int64_t fetch_end) {
    in_groups<NQ>([&](auto nq, auto fetch, int h0) {
      group_sums<Fmt, nq(), fetch()>(rows, stride, n_rows, p + h0 * p_stride, p_stride, n,
                                     out + h0 * o_stride, o_stride, fetch_end);
    });
  }
  // NQ <= 6 heads; kFetch: ask for the rows ahead (the first group of heads over these rows).
  template <class Fmt, int NQ, bool kFetch>
  __attribute__((target("avx2,fma,f16c"))) static void group_sums(
      const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* p, int64_t p_stride,
      int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
    constexpr int kRegs = NQ > 4 ? 2 : 8 / NQ;
    const int64_t n_full = n / (8 * kRegs) * (8 * kRegs);  // columns of whole stripes
    const int64_t n_fetch = std::max(n_rows, fetch_end);
    for (int64_t j0 = 0; j0 < n_rows; j0 += kSumRows) {
      const int64_t j1 = std::min(n_rows, j0 + kSumRows);
      for (int64_t c0 = 0; c0 < n_full; c0 += 8 * kRegs) {
        __m256 acc[NQ][kRegs];
        for (int i = 0; i < NQ; ++i)
          for (int c = 0; c < kRegs; ++c)
            acc[i][c] = _mm256_loadu_ps(out + i * o_stride + c0 + 8 * c);
        for (int64_t j = j0; j < j1; ++j) {
          if constexpr (kFetch)
            prefetch_next_run<Fmt, 8 * kRegs>(rows, stride, j, 1, j0, n_fetch, n, c0);
          const typename Fmt::T* r = rows + j * stride;
          __m256 w[kRegs];
          for (int c = 0; c < kRegs; ++c) w[c] = load8(r, c0 + 8 * c);
          for (int i = 0; i < NQ; ++i) {
            const __m256 pij = _mm256_set1_ps(p[i * p_stride + j]);
            for (int c = 0; c < kRegs; ++c) acc[i][c] = _mm256_fmadd_ps(pij, w[c], acc[i][c]);
          }
        }
        for (int i = 0; i < NQ; ++i)
          for (int c = 0; c < kRegs; ++c)
            _mm256_storeu_ps(out + i * o_stride + c0 + 8 * c, acc[i][c]);
      }
    }
    if (n_full < n)
      plain_sums<Fmt>(Fmt::at(rows, n_full), stride, n_rows, p, p_stride, NQ, n - n_full,
                      out + n_full, o_stride);
  }
};
#pragma GCC diagnostic pop

#endif

#if HONDO_ARM64
// NEON (every ARMv8 CPU): the AVX-512 scheme on 4-float registers.
struct Neon {
  // Values c .. c + 7 of a row as F32 in two registers (c % 8 == 0): F32 loaded; F16 converted;
  // Q8_0 widened from int8 and multiplied by the block's scale (exact, as on x86).
  static void load8(const float* row, int64_t c, float32x4_t& w0, float32x4_t& w1) {
    w0 = vld1q_f32(row + c);
    w1 = vld1q_f32(row + c + 4);
  }
  static void load8(const uint16_t* row, int64_t c, float32x4_t& w0, float32x4_t& w1) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(row + c));
    w0 = vcvt_f32_f16(vget_low_f16(h));
    w1 = vcvt_high_f32_f16(h);
  }
  static void load8(const uint8_t* row, int64_t c, float32x4_t& w0, float32x4_t& w1) {
    const uint8_t* b = Q8Rows::at(row, c);
    const float d = f16_to_f32(uint16_t(b[0] | b[1] << 8));
    const int16x8_t v = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(b + 2 + c % 32)));
    w0 = vmulq_n_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(v))), d);
    w1 = vmulq_n_f32(vcvtq_f32_s32(vmovl_high_s16(v)), d);
  }

  // Per row: 8 values converted at a time, two accumulators per head.
  template <class Fmt, int NQ>
  static void dots(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* q,
                   int64_t q_stride, int64_t n, float* out, int64_t o_stride, int64_t) {
    const int64_t n8 = n / 8 * 8;
    for (int64_t j = 0; j < n_rows; ++j) {
      const typename Fmt::T* r = rows + j * stride;
      float32x4_t acc[NQ][2];
      for (int i = 0; i < NQ; ++i) acc[i][0] = acc[i][1] = vdupq_n_f32(0);
      for (int64_t c = 0; c < n8; c += 8) {
        float32x4_t w0, w1;
        load8(r, c, w0, w1);
        for (int i = 0; i < NQ; ++i) {
          acc[i][0] = vfmaq_f32(acc[i][0], w0, vld1q_f32(q + i * q_stride + c));
          acc[i][1] = vfmaq_f32(acc[i][1], w1, vld1q_f32(q + i * q_stride + c + 4));
        }
      }
      for (int i = 0; i < NQ; ++i) {
        float s = vaddvq_f32(vaddq_f32(acc[i][0], acc[i][1]));
        for (int64_t c = n8; c < n; ++c) s += Fmt::value(r, c) * q[i * q_stride + c];
        out[i * o_stride + j] += s;
      }
    }
  }

  // Columns in stripes of 8 * kPairs (kPairs pairs of registers per head), every row of a
  // run of kSumRows into each stripe, the sums added to out (as Avx512::sums; no prefetches).
  template <class Fmt, int NQ>
  static void sums(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* p,
                   int64_t p_stride, int64_t n, float* out, int64_t o_stride, int64_t) {
    constexpr int kPairs = NQ >= 4 ? 1 : 4 / NQ;
    const int64_t n_full = n / (8 * kPairs) * (8 * kPairs);  // columns of whole stripes
    for (int64_t j0 = 0; j0 < n_rows; j0 += kSumRows) {
      const int64_t j1 = std::min(n_rows, j0 + kSumRows);
      for (int64_t c0 = 0; c0 < n_full; c0 += 8 * kPairs) {
        float32x4_t acc[NQ][2 * kPairs];
        for (int i = 0; i < NQ; ++i)
          for (int c = 0; c < 2 * kPairs; ++c)
            acc[i][c] = vld1q_f32(out + i * o_stride + c0 + 4 * c);
        for (int64_t j = j0; j < j1; ++j) {
          const typename Fmt::T* r = rows + j * stride;
          float32x4_t w[2 * kPairs];
          for (int c = 0; c < kPairs; ++c) load8(r, c0 + 8 * c, w[2 * c], w[2 * c + 1]);
          for (int i = 0; i < NQ; ++i)
            for (int c = 0; c < 2 * kPairs; ++c)
              acc[i][c] = vfmaq_n_f32(acc[i][c], w[c], p[i * p_stride + j]);
        }
        for (int i = 0; i < NQ; ++i)
          for (int c = 0; c < 2 * kPairs; ++c)
            vst1q_f32(out + i * o_stride + c0 + 4 * c, acc[i][c]);
      }
    }
    if (n_full < n)
      plain_sums<Fmt>(Fmt::at(rows, n_full), stride, n_rows, p, p_stride, NQ, n - n_full,
                      out + n_full, o_stride);
  }
};
#endif

// The head count as a template argument (1..kMaxHeadRows; best() has checked it), so that
// the accumulators stay in registers: run(integral_constant<n_q>).
template <class Run, int... I>
void by_heads(int n_q, Run run, std::integer_sequence<int, I...>) {
  ((n_q == I + 1 ? (run(std::integral_constant<int, I + 1>{}), true) : false) || ...);
}
template <class Run>
void by_heads(int n_q, Run run) {
  by_heads(n_q, run, std::make_integer_sequence<int, kMaxHeadRows>{});
}
// Rows as Fmt's units (the API's strides are bytes), by head count.
template <class Fmt, class Isa>
void dots_of(const void* rows, int64_t stride, int64_t n_rows, const float* q, int64_t q_stride,
             int n_q, int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
  const auto* r = static_cast<const typename Fmt::T*>(rows);
  const int64_t s = stride / int64_t(sizeof(typename Fmt::T));
  by_heads(n_q, [&](auto nq) {
    Isa::template dots<Fmt, decltype(nq)::value>(r, s, n_rows, q, q_stride, n, out, o_stride,
                                                 fetch_end);
  });
}
template <class Fmt, class Isa>
void sums_of(const void* rows, int64_t stride, int64_t n_rows, const float* p, int64_t p_stride,
             int n_q, int64_t n, float* out, int64_t o_stride, int64_t fetch_end) {
  const auto* r = static_cast<const typename Fmt::T*>(rows);
  const int64_t s = stride / int64_t(sizeof(typename Fmt::T));
  by_heads(n_q, [&](auto nq) {
    Isa::template sums<Fmt, decltype(nq)::value>(r, s, n_rows, p, p_stride, n, out, o_stride,
                                                 fetch_end);
  });
}
// The portable loops behind the same signature.
struct Plain {
  template <class Fmt, int NQ>
  static void dots(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* q,
                   int64_t q_stride, int64_t n, float* out, int64_t o_stride, int64_t) {
    plain_dots<Fmt>(rows, stride, n_rows, q, q_stride, NQ, n, out, o_stride);
  }
  template <class Fmt, int NQ>
  static void sums(const typename Fmt::T* rows, int64_t stride, int64_t n_rows, const float* p,
                   int64_t p_stride, int64_t n, float* out, int64_t o_stride, int64_t) {
    plain_sums<Fmt>(rows, stride, n_rows, p, p_stride, NQ, n, out, o_stride);
  }
};

template <class Fmt>
HeadRowKernels kernels_of(const char* name, auto isa) {
  using Isa = decltype(isa);
  return {name, dots_of<Fmt, Isa>, sums_of<Fmt, Isa>};
}

// Every variant this CPU can run over rows of Fmt, the portable loops first.
template <class Fmt>
std::vector<HeadRowKernels> variants_of() {
  std::vector<HeadRowKernels> v{kernels_of<Fmt>("portable", Plain{})};
#if HONDO_X86
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    v.push_back(kernels_of<Fmt>("avx2", Avx2{}));
  if (__builtin_cpu_supports("avx512f")) v.push_back(kernels_of<Fmt>("avx512", Avx512{}));
#elif HONDO_ARM64
  v.push_back(kernels_of<Fmt>("neon", Neon{}));
#endif
  return v;
}

void check_type(DType type) {
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    fail("head rows of ", dtype_name(type), ": only f32, f16 and q8_0");
}

// The kernels head_dots and head_sums use for rows of `type`, after checking the call.
const HeadRowKernels& best(DType type, int n_q, int64_t n) {
  static const HeadRowKernels f32 = variants_of<F32Rows>().back(),
                              f16 = variants_of<F16Rows>().back(),
                              q8 = variants_of<Q8Rows>().back();
  check_type(type);
  if (n_q < 1 || n_q > kMaxHeadRows) fail("head rows: ", n_q, " heads, 1 to 8 allowed");
  if (type == DType::Q8_0 && n % Q8Rows::kBlock != 0)
    fail("head rows: ", n, " q8_0 values, a multiple of 32 expected");
  return type == DType::Q8_0 ? q8 : type == DType::F16 ? f16 : f32;
}

}  // namespace

std::vector<HeadRowKernels> head_rows_variants(DType type) {
  check_type(type);
  return type == DType::Q8_0  ? variants_of<Q8Rows>()
         : type == DType::F16 ? variants_of<F16Rows>()
                              : variants_of<F32Rows>();
}

void head_dots(DType type, const void* rows, int64_t stride, int64_t n_rows, const float* q,
               int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride,
               int64_t fetch_end) {
  best(type, n_q, n).dots(rows, stride, n_rows, q, q_stride, n_q, n, out, o_stride, fetch_end);
}

void head_sums(DType type, const void* rows, int64_t stride, int64_t n_rows, const float* p,
               int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride,
               int64_t fetch_end) {
  best(type, n_q, n).sums(rows, stride, n_rows, p, p_stride, n_q, n, out, o_stride, fetch_end);
}

}  // namespace hondo
