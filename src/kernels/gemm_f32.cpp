#include "kernels/gemm_f32.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/fp16.h"
#include "kernels/cpu.h"
#include "kernels/gcc_vectors.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"

#if HONDO_X86
#include <immintrin.h>
#endif

namespace hondo {

namespace {

constexpr int64_t kChunk = 512;         // columns converted at a time (a multiple of every block)
constexpr int64_t kRowBlock = 48;       // rows per task: 4 micro-kernel calls of 12 rows
constexpr size_t kConvertAhead = 8192;  // bytes prefetched ahead of the weight conversion

void micro_reference(const float* w, int64_t ldw, int n_rows, const float* panel, int64_t kc,
                     float* acc, bool add) {
  for (int r = 0; r < n_rows; ++r)
    for (int j = 0; j < kPanelTokens; ++j) {
      float s = add ? acc[r * kPanelTokens + j] : 0.0f;
      for (int64_t i = 0; i < kc; ++i) s += w[r * ldw + i] * panel[i * kPanelTokens + j];
      acc[r * kPanelTokens + j] = s;
    }
}

// GCC vectors of the register width of each instruction set (kernels/gcc_vectors.h): a panel
// row of 32 tokens is 32 / lanes of them.
using vec::f32x16;
using vec::f32x4;
using vec::f32x8;
using vec::load;
using vec::store;

// R rows x kTokens tokens (tokens first .. first + kTokens - 1 of the 32 of the panel):
// R * kTokens / lanes vector sums. Per column i the panel's activations are loaded once and
// every row's weight w[r, i] is broadcast onto them. kPin holds those panel vectors in
// registers: GCC otherwise takes them as memory operands of every FMA, which on AVX2 costs a
// load per FMA (micro_avx2).
template <int R, typename V, int kTokens = kPanelTokens, bool kPin = false>
__attribute__((always_inline)) inline void micro_rows(const float* w, int64_t ldw,
                                                      const float* panel, int64_t kc, float* acc,
                                                      bool add, int first) {
  constexpr int L = int(sizeof(V) / sizeof(float)), N = kTokens / L;
  acc += first, panel += first;
  V s[R][N];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) s[r][n] = add ? load<V>(acc + r * kPanelTokens + n * L) : V{};
  for (int64_t i = 0; i < kc; ++i) {
    V x[N];  // [kTokens] the panel's column i
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) {
      x[n] = load<V>(panel + i * kPanelTokens + n * L);
      if constexpr (kPin) asm("" : "+x"(x[n]));
    }
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const float wr = w[r * ldw + i];  // broadcast onto the panel vectors
#pragma GCC unroll 8
      for (int n = 0; n < N; ++n) s[r][n] += x[n] * wr;
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) store<V>(acc + r * kPanelTokens + n * L, s[r][n]);
}

// n_rows (1..MaxR) -> micro_rows<n_rows>.
template <int R, int MaxR, typename V, int kTokens = kPanelTokens, bool kPin = false>
__attribute__((always_inline)) inline void micro_pick(int n_rows, const float* w, int64_t ldw,
                                                      const float* panel, int64_t kc, float* acc,
                                                      bool add, int first = 0) {
  if constexpr (R <= MaxR) {
    if (n_rows == R) return micro_rows<R, V, kTokens, kPin>(w, ldw, panel, kc, acc, add, first);
    micro_pick<R + 1, MaxR, V, kTokens, kPin>(n_rows, w, ldw, panel, kc, acc, add, first);
  }
}

// Row counts per ISA: the R * 32 / lanes sums, the 32 / lanes panel vectors and a broadcast
// must fit the register file: 32 zmm (12 rows: 24 + 2 + 1), 16 xmm (1 row: 8 + 8), 32 NEON q
// (3 rows: 24 + 8). AVX2's 16 ymm take 6 rows of half a panel at a time (micro_avx2).
void micro_portable(const float* w, int64_t ldw, int n_rows, const float* panel, int64_t kc,
                    float* acc, bool add) {
  micro_pick<1, 1, f32x4>(n_rows, w, ldw, panel, kc, acc, add);
}

#if HONDO_X86
__attribute__((target("avx2,fma"))) void micro_avx2(const float* w, int64_t ldw, int n_rows,
                                                    const float* panel, int64_t kc, float* acc,
                                                    bool add) {
  // 6 rows x 16 tokens, each half of the panel in turn, its 2 vectors pinned: 12 sums + 2 + 1
  // of the 16 ymm, and per column 2 panel loads and 6 broadcasts feed 12 FMAs. 3 rows x 32
  // tokens in one pass needed 17 registers and GCC fed every FMA from memory, 15 loads per 12
  // FMAs, which bound it on Zen 3 (two 256-bit loads a cycle): F16 prefill 56.8 -> 63.8 t/s.
  for (int h = 0; h < 2; ++h)
    micro_pick<1, 6, f32x8, 16, true>(n_rows, w, ldw, panel, kc, acc, add, 16 * h);
}
__attribute__((target("avx512f"))) void micro_avx512(const float* w, int64_t ldw, int n_rows,
                                                     const float* panel, int64_t kc, float* acc,
                                                     bool add) {
  micro_pick<1, 12, f32x16>(n_rows, w, ldw, panel, kc, acc, add);
}
#elif HONDO_ARM64
void micro_neon(const float* w, int64_t ldw, int n_rows, const float* panel, int64_t kc, float* acc,
                bool add) {
  micro_pick<1, 3, f32x4>(n_rows, w, ldw, panel, kc, acc, add);
}
#endif

// BF16: acc[r * 32 + j] (+)= sum over pairs (i, i + 1) of w[r, i] x[j, i] + w[r, i + 1] x[j, i +
// 1], with panel[(i / 2) * 64 + 2 * j + (0, 1)] = x[j, (i, i + 1)]. Products of two BF16 values are
// exact in F32; only the sums round (`vdpbf16ps` adds the odd product first, then the even).
// Token sums innermost, as the SIMD kernel keeps them: GCC 12 at -O3 vectorized the other
// order (a token's whole dot, then the next token) into wrong sums, which the tests caught.
void bf16_micro_reference(const uint16_t* w, int64_t ldw, int n_rows, const uint16_t* panel,
                          int64_t kc, float* acc, bool add) {
  for (int r = 0; r < n_rows; ++r) {
    float* s = acc + r * kPanelTokens;  // [32] row r's sums
    if (!add) std::fill(s, s + kPanelTokens, 0.0f);
    for (int64_t q = 0; q < kc / 2; ++q) {  // columns 2q, 2q + 1
      const float w0 = bf16_to_f32(w[r * ldw + 2 * q]), w1 = bf16_to_f32(w[r * ldw + 2 * q + 1]);
      for (int j = 0; j < kPanelTokens; ++j) {
        const uint16_t* xq = panel + (q * kPanelTokens + j) * 2;  // x[j, 2q], x[j, 2q + 1]
        s[j] += w1 * bf16_to_f32(xq[1]);
        s[j] += w0 * bf16_to_f32(xq[0]);
      }
    }
  }
}

#if HONDO_X86
// R rows x 32 tokens in 2R zmm sums. Per pair of columns the panel's two vectors (16 tokens x
// 2 values each) are loaded once; each row's pair w[r, i..i+1] is one 32-bit broadcast, straight
// from the file's row (no conversion of the weights at all), and `vdpbf16ps` adds both
// products to every token's sum.
template <int R>
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void bf16_rows(
    const uint16_t* w, int64_t ldw, const uint16_t* panel, int64_t kc, float* acc, bool add) {
  __m512 s[R][2];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n)
      s[r][n] = add ? _mm512_loadu_ps(acc + r * kPanelTokens + n * 16) : _mm512_setzero_ps();
  for (int64_t i = 0; i < kc; i += 2) {
    const __m512bh x0 = __m512bh(_mm512_loadu_si512(panel + i * kPanelTokens));       // tokens 0-15
    const __m512bh x1 = __m512bh(_mm512_loadu_si512(panel + i * kPanelTokens + 32));  // 16-31
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      int32_t pair;  // w[r, i], w[r, i + 1]
      std::memcpy(&pair, w + r * ldw + i, sizeof pair);
      const __m512bh b = __m512bh(_mm512_set1_epi32(pair));
      s[r][0] = _mm512_dpbf16_ps(s[r][0], x0, b);
      s[r][1] = _mm512_dpbf16_ps(s[r][1], x1, b);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int n = 0; n < 2; ++n) _mm512_storeu_ps(acc + r * kPanelTokens + n * 16, s[r][n]);
}

template <int R>
__attribute__((target("avx512f,avx512bf16"), always_inline)) inline void bf16_pick(
    int n_rows, const uint16_t* w, int64_t ldw, const uint16_t* panel, int64_t kc, float* acc,
    bool add) {
  if constexpr (R <= 12) {
    if (n_rows == R) return bf16_rows<R>(w, ldw, panel, kc, acc, add);
    bf16_pick<R + 1>(n_rows, w, ldw, panel, kc, acc, add);
  }
}

__attribute__((target("avx512f,avx512bf16"))) void bf16_micro_avx512(const uint16_t* w, int64_t ldw,
                                                                     int n_rows,
                                                                     const uint16_t* panel,
                                                                     int64_t kc, float* acc,
                                                                     bool add) {
  bf16_pick<1>(n_rows, w, ldw, panel, kc, acc, add);
}
#endif

// x: [n_tok, k] -> panels [n_panels][k][32], tokens past n_tok zero.
void pack_panels(const float* x, int64_t n_tok, int64_t k, float* panels, ThreadPool& pool) {
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  auto pack = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* out = panels + p * k * kPanelTokens;  // [k][32]
      const int64_t nt = std::min<int64_t>(kPanelTokens, n_tok - p * kPanelTokens);
      for (int64_t j = 0; j < kPanelTokens; ++j) {
        const float* src = x + (p * kPanelTokens + j) * k;  // token p * 32 + j: [k]
        for (int64_t i = 0; i < k; ++i) out[i * kPanelTokens + j] = j < nt ? src[i] : 0.0f;
      }
    }
  };
  if (n_panels > 1)
    pool.parallel_for(n_panels, pack);
  else
    pack(0, n_panels);
}

// x: [n_tok, k] -> BF16 panels [n_panels][k / 2][32][2] (k even), rounded to nearest even.
void pack_panels_bf16(const float* x, int64_t n_tok, int64_t k, uint16_t* panels,
                      ThreadPool& pool) {
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  auto pack = [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      uint16_t* out = panels + p * k * kPanelTokens;  // [k / 2][32][2]
      const int64_t nt = std::min<int64_t>(kPanelTokens, n_tok - p * kPanelTokens);
      for (int64_t j = 0; j < kPanelTokens; ++j) {
        const float* src = x + (p * kPanelTokens + j) * k;  // token p * 32 + j: [k]
        for (int64_t i = 0; i < k; ++i)
          out[(i / 2) * 2 * kPanelTokens + 2 * j + i % 2] = j < nt ? f32_to_bf16(src[i]) : 0;
      }
    }
  };
  if (n_panels > 1)
    pool.parallel_for(n_panels, pack);
  else
    pack(0, n_panels);
}

// The fastest micro-kernel, unless HONDO_ISA lowers matmul's instruction set: then the one
// of that set ("avx2"; "avx512" for "avx512vnni"; the portable loop for "scalar").
GemmMicro choose_micro() {
  const auto v = gemm_micro_variants();
  if (!std::getenv("HONDO_ISA")) return v.back();
  const std::string isa = qdot_best().isa;
  GemmMicro best = v[1];
  for (const GemmMicro& m : v)
    if (isa.rfind(m.name, 0) == 0) best = m;
  return best;
}

// Rows per task for a kernel of max_rows rows: up to 48, fewer for long rows so that the
// block's weights (rb * k values) stay within half of a 1 MB L2.
int64_t rows_per_block(int64_t k, int max_rows) {
  const int64_t fit = (int64_t(1) << 17) / k / max_rows * max_rows;
  return std::max<int64_t>(max_rows, std::min(kRowBlock / max_rows * max_rows, fit));
}

// The blocked loop both GEMMs share. panels: [n_panels][k * 32] values of type E (tokens in
// lanes); blocks of rb rows are handed out to the pool, and within a block, chunk by chunk of
// kChunk columns, each group of max_rows rows meets every token panel while it is in cache.
// rows_of(r0, nr, k0) -> {the block's rows at column k0, their stride}; micro(rows, ldw,
// n_rows, panel, kc, acc, add) is the micro-kernel.
template <typename E, typename RowsOf, typename Micro>
void gemm_blocks(int64_t k, int64_t n_rows, const E* panels, int64_t n_tok, float* y,
                 ThreadPool& pool, int max_rows, int64_t rb, RowsOf rows_of, Micro micro) {
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  const int64_t n_blocks = (n_rows + rb - 1) / rb;
  pool.parallel_for_balanced(n_blocks, 1, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> accbuf;
    accbuf.resize(size_t(n_panels * rb * kPanelTokens));  // [n_panels][rb][32] sums
    float* acc = accbuf.data();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rb, nr = std::min(rb, n_rows - r0);
      for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, k - k0);
        const auto [rows, ldw] = rows_of(r0, nr, k0);  // [nr, kc] with row stride ldw
        for (int64_t g = 0; g < nr; g += max_rows)
          for (int64_t p = 0; p < n_panels; ++p) {
            const E* panel = panels + (p * k + k0) * kPanelTokens;  // kc columns of 32 tokens
            micro(rows + g * ldw, ldw, int(std::min<int64_t>(max_rows, nr - g)), panel, kc,
                  acc + (p * rb + g) * kPanelTokens, k0 > 0);
          }
      }
      for (int64_t t = 0; t < n_tok; ++t) {
        const float* a = acc + ((t / kPanelTokens) * rb) * kPanelTokens + t % kPanelTokens;
        for (int64_t r = 0; r < nr; ++r) y[t * n_rows + r0 + r] = a[r * kPanelTokens];
      }
    }
  });
}

// The BF16 kernel gemm_f32 uses for BF16 weights: the last variant, unless there is none
// beyond the reference or HONDO_ISA lowers the instruction set (then null: the F32 path).
const GemmBf16Micro* choose_bf16_micro() {
  static const std::vector<GemmBf16Micro> v = gemm_bf16_micro_variants();
  return v.size() > 1 && !std::getenv("HONDO_ISA") ? &v.back() : nullptr;
}

}  // namespace

std::vector<GemmMicro> gemm_micro_variants() {
  std::vector<GemmMicro> v{{"reference", 12, micro_reference}, {"portable", 1, micro_portable}};
#if HONDO_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    v.push_back({"avx2", 6, micro_avx2});  // 6 rows x 16 tokens, twice
  if (__builtin_cpu_supports("avx512f")) v.push_back({"avx512", 12, micro_avx512});
#elif HONDO_ARM64
  v.push_back({"neon", 3, micro_neon});
#endif
  return v;
}

const GemmMicro& gemm_micro_best() {
  static const GemmMicro best = choose_micro();
  return best;
}

std::vector<GemmBf16Micro> gemm_bf16_micro_variants() {
  std::vector<GemmBf16Micro> v{{"reference", 12, bf16_micro_reference}};
#if HONDO_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16"))
    v.push_back({"avx512bf16", 12, bf16_micro_avx512});
#endif
  return v;
}

void gemm_f32(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
              float* y, ThreadPool& pool, const GemmMicro* micro) {
  if (!micro && w.type == DType::BF16 && w.cols() % 2 == 0)
    if (const GemmBf16Micro* bf = choose_bf16_micro())
      return gemm_bf16(w, row0, n_rows, x, n_tok, y, pool, *bf);
  const GemmMicro& m = micro ? *micro : gemm_micro_best();
  const int64_t k = w.cols();
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  thread_local std::vector<float> panel_buf;  // the caller's; workers get the pointer
  panel_buf.resize(size_t(n_panels * k * kPanelTokens));
  pack_panels(x, n_tok, k, panel_buf.data(), pool);  // [n_panels][k][32]

  const int64_t rb = rows_per_block(k, m.max_rows);
  const size_t rs = w.row_size();
  const uint8_t* end = w.row(w.rows());  // prefetches stay inside the tensor
  auto rows_of = [&](int64_t r0, int64_t nr, int64_t k0) -> std::pair<const float*, int64_t> {
    if (w.type == DType::F32) return {reinterpret_cast<const float*>(w.row(row0 + r0)) + k0, k};
    thread_local std::vector<float> wbuf;  // [k / kChunk][rb][kChunk] the block as F32
    wbuf.resize(size_t(rb * k));
    // At the first chunk the block's rows, one contiguous run of the file, are converted front
    // to back into chunk-major order (each chunk's rows adjacent for the micro-kernels). The
    // hardware prefetcher stops at every 4 KiB page, so the run is also prefetched 8 KiB ahead.
    if (k0 == 0)
      for (int64_t r = 0; r < nr; ++r) {
        const uint8_t* ahead = w.row(row0 + r0 + r) + kConvertAhead;
        for (size_t i = 0; i < rs && ahead + i < end; i += 64) __builtin_prefetch(ahead + i, 0, 2);
        for (int64_t c0 = 0; c0 < k; c0 += kChunk) {
          const int64_t kc = std::min(kChunk, k - c0);
          dequantize_row(w.type, w.row(row0 + r0 + r) + row_bytes(w.type, c0),
                         wbuf.data() + c0 * rb + r * kc, kc);
        }
      }
    return {wbuf.data() + k0 * rb, std::min(kChunk, k - k0)};
  };
  gemm_blocks(k, n_rows, panel_buf.data(), n_tok, y, pool, m.max_rows, rb, rows_of, m.fn);
}

void gemm_bf16(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
               float* y, ThreadPool& pool, const GemmBf16Micro& micro) {
  const int64_t k = w.cols();
  if (w.type != DType::BF16 || k % 2 != 0)
    fail("gemm_bf16: expected BF16 weights with an even row length, got ", dtype_name(w.type),
         " rows of ", k);
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  thread_local std::vector<uint16_t> panel_buf;  // the caller's; workers get the pointer
  panel_buf.resize(size_t(n_panels * k * kPanelTokens));
  pack_panels_bf16(x, n_tok, k, panel_buf.data(), pool);              // [n_panels][k / 2][32][2]
  const auto* rows = reinterpret_cast<const uint16_t*>(w.row(row0));  // [n_rows, k] as stored
  auto rows_of = [&](int64_t r0, int64_t, int64_t k0) -> std::pair<const uint16_t*, int64_t> {
    return {rows + r0 * k + k0, k};
  };
  gemm_blocks(k, n_rows, panel_buf.data(), n_tok, y, pool, micro.max_rows,
              rows_per_block(k, micro.max_rows), rows_of, micro.fn);
}

}  // namespace hondo
