#include "kernels/gemm_f32.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/cpu.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"

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

// The vector helpers below are always inlined into the ISA-specific kernels; GCC's note that
// a 64-byte vector return "changes the ABI" without AVX-512 does not apply to them.
#pragma GCC diagnostic ignored "-Wpsabi"

// GCC vectors of the register width of each instruction set: 16 floats (zmm), 8 (ymm), 4
// (xmm, NEON q). A panel row of 32 tokens is 32 / lanes of them.
typedef float f32x16 __attribute__((vector_size(64)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
template <typename V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
__attribute__((always_inline)) inline void store(float* p, V v) {
  __builtin_memcpy(p, &v, sizeof v);
}

// R rows x 32 tokens: R * 32 / lanes vector sums. Per column i the panel's 32 activations
// are loaded once and every row's weight w[r, i] is broadcast onto them.
template <int R, typename V>
__attribute__((always_inline)) inline void micro_rows(const float* w, int64_t ldw,
                                                      const float* panel, int64_t kc, float* acc,
                                                      bool add) {
  constexpr int L = int(sizeof(V) / sizeof(float)), N = kPanelTokens / L;
  V s[R][N];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) s[r][n] = add ? load<V>(acc + r * kPanelTokens + n * L) : V{};
  for (int64_t i = 0; i < kc; ++i) {
    V x[N];  // [32] the panel's column i
#pragma GCC unroll 8
    for (int n = 0; n < N; ++n) x[n] = load<V>(panel + i * kPanelTokens + n * L);
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
template <int R, int MaxR, typename V>
__attribute__((always_inline)) inline void micro_pick(int n_rows, const float* w, int64_t ldw,
                                                      const float* panel, int64_t kc, float* acc,
                                                      bool add) {
  if constexpr (R <= MaxR) {
    if (n_rows == R) return micro_rows<R, V>(w, ldw, panel, kc, acc, add);
    micro_pick<R + 1, MaxR, V>(n_rows, w, ldw, panel, kc, acc, add);
  }
}

// Row counts per ISA: the R * 32 / lanes sums, the 32 / lanes panel vectors and a broadcast
// must fit the register file: 32 zmm (12 rows: 24 + 2 + 1), 16 ymm (3 rows: 12 + 4; the
// broadcast folds into the FMA's load), 16 xmm (1 row: 8 + 8), 32 NEON q (3 rows: 24 + 8).
void micro_portable(const float* w, int64_t ldw, int n_rows, const float* panel, int64_t kc,
                    float* acc, bool add) {
  micro_pick<1, 1, f32x4>(n_rows, w, ldw, panel, kc, acc, add);
}

#if HONDO_X86
__attribute__((target("avx2,fma"))) void micro_avx2(const float* w, int64_t ldw, int n_rows,
                                                    const float* panel, int64_t kc, float* acc,
                                                    bool add) {
  micro_pick<1, 3, f32x8>(n_rows, w, ldw, panel, kc, acc, add);
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

}  // namespace

std::vector<GemmMicro> gemm_micro_variants() {
  std::vector<GemmMicro> v{{"reference", 12, micro_reference}, {"portable", 1, micro_portable}};
#if HONDO_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    v.push_back({"avx2", 3, micro_avx2});
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

void gemm_f32(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
              float* y, ThreadPool& pool, const GemmMicro* micro) {
  const GemmMicro& m = micro ? *micro : gemm_micro_best();
  const int64_t k = w.cols();
  const int64_t n_panels = (n_tok + kPanelTokens - 1) / kPanelTokens;
  thread_local std::vector<float> panel_buf;  // the caller's; workers get the pointer
  panel_buf.resize(size_t(n_panels * k * kPanelTokens));
  const float* panels = panel_buf.data();  // [n_panels][k][32]
  pack_panels(x, n_tok, k, panel_buf.data(), pool);

  // Rows per task: up to 48, fewer for long rows so that the block's converted weights
  // (rb * k floats) stay within half of a 1 MB L2.
  const int64_t fit = (int64_t(1) << 17) / k / m.max_rows * m.max_rows;
  const int64_t rb =
      std::max<int64_t>(m.max_rows, std::min(kRowBlock / m.max_rows * m.max_rows, fit));
  const int64_t n_blocks = (n_rows + rb - 1) / rb;
  const size_t rs = w.row_size();
  const uint8_t* end = w.row(w.rows());  // prefetches stay inside the tensor
  pool.parallel_for_balanced(n_blocks, 1, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> wbuf, accbuf;
    wbuf.resize(size_t(rb * k));                          // [k / kChunk][rb][kChunk] as F32
    accbuf.resize(size_t(n_panels * rb * kPanelTokens));  // [n_panels][rb][32] sums
    float* acc = accbuf.data();
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = b * rb, nr = std::min(rb, n_rows - r0);
      // The block's rows are one contiguous run of the file, converted front to back into
      // chunk-major order (each chunk's rows adjacent for the micro-kernels). The hardware
      // prefetcher stops at every 4 KiB page, so the run is also prefetched 8 KiB ahead.
      if (w.type != DType::F32)
        for (int64_t r = 0; r < nr; ++r) {
          const uint8_t* ahead = w.row(row0 + r0 + r) + kConvertAhead;
          for (size_t i = 0; i < rs && ahead + i < end; i += 64)
            __builtin_prefetch(ahead + i, 0, 2);
          for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
            const int64_t kc = std::min(kChunk, k - k0);
            dequantize_row(w.type, w.row(row0 + r0 + r) + row_bytes(w.type, k0),
                           wbuf.data() + k0 * rb + r * kc, kc);
          }
        }
      for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
        const int64_t kc = std::min(kChunk, k - k0);
        const float* rows;  // [nr, kc] with row stride ldw
        int64_t ldw;
        if (w.type == DType::F32)
          rows = reinterpret_cast<const float*>(w.row(row0 + r0)) + k0, ldw = k;
        else
          rows = wbuf.data() + k0 * rb, ldw = kc;
        for (int64_t g = 0; g < nr; g += m.max_rows)
          for (int64_t p = 0; p < n_panels; ++p) {
            const float* panel = panels + (p * k + k0) * kPanelTokens;  // [kc][32]
            m.fn(rows + g * ldw, ldw, int(std::min<int64_t>(m.max_rows, nr - g)), panel, kc,
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

}  // namespace hondo
