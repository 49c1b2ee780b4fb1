// Integer dot products of quantized weight rows with dynamically quantized activations.
//
// Activations are quantized on the fly ("dynamic int8"): every run of 32 values
// x[32b .. 32b+32) becomes q = round(x / d[b]) in int8 with d[b] = max|x| / 127, and the
// sum of q over every 16 values is kept, for formats whose weights carry a minimum/offset.
// A weight block times an activation block is then a sum of int8 x int8 products (exact in
// int32) scaled once by the two float scales, which is what the CPU's integer dot-product
// instructions (AVX2 maddubs, AVX-512 VNNI dpbusd, NEON sdot) compute fastest.
//
// Every format has a scalar reference kernel (qdot_reference.cpp) with the same signature;
// the SIMD kernel sets are tested against it on every instruction set the CPU has.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace hondo {

constexpr int kQActBlock = 32;  // activation values per scale

// One quantized activation row of k values (k a multiple of 32).
struct QActRow {
  const int8_t* q;   // [k]
  const float* d;    // [k / 32]   scale of each block of 32
  const int16_t* s;  // [k / 16]   sum of q over each 16
  const float* ds;   // [k / 32]   d * sum of q over each block of 32: the block's sum as float
};

// out[j] = sum_i w[i] * a_j[i] for j < n, 1 <= n <= kQDotMaxRows; w is one row of k values
// in the kernel's format. Several activation rows share one pass over the weight row.
constexpr int kQDotMaxRows = 4;
using QDotFn = void (*)(const void* w, const QActRow* a, int n, int64_t k, float* out);

// Quantizes one row of k floats (k a multiple of 32) into q[k], d[k/32], s[k/16].
using QuantizeActFn = void (*)(const float* x, int64_t k, int8_t* q, float* d, int16_t* s);

// Tile kernels work on weights repacked 16 rows at a time (kernels/packed.h):
// out[j * 16 + r] = row r of the tile times a[j], for j < n <= kQDotMaxRows. One pass over
// the tile serves every activation row, and each SIMD lane holds a different row.
using QTileFn = void (*)(const void* tile, const QActRow* a, int n, int64_t k, float* out);
// How the x86 tile kernels read their weights ahead (kernels/qdot_x86.inc), and with them the
// bandwidth probe of `hondo bench`: every line kPrefetchAhead bytes ahead, and each 4 KiB page
// once more kPageAhead bytes ahead.
constexpr int kPrefetchAhead = 4096, kPageAhead = 12288;
// Which cache those per-line prefetches fill: L2 alone (prefetcht1) when true, L1 and L2
// (prefetcht0) when false. Intel CPUs read faster with L2 (measured on Emerald Rapids; likely
// because a line asked into L1 holds one of the core's few L1 fill buffers until it arrives),
// others keep L1, as tuned on AMD Zen 5; HONDO_PREFETCH=l1 or l2 overrides. Fixed before main
// runs (qdot_dispatch.cpp).
extern const bool line_prefetch_to_l2;
// The same choice as a template argument of the kernels that issue line prefetches: they are
// instantiated for both and one of the two is picked once per call (tile_any in qdot_x86.inc,
// the row kernels' tables in vec_dot.cpp). A test of line_prefetch_to_l2 at every step made
// GCC compute each prefetch address into a register ahead of the two branches (9 lea, and
// spills to vector registers, for the 9 lines of a Q4_0 tile group) instead of folding it into
// the prefetch: 1 GiB of V2-Lite-shaped Q4_0 expert products (14 jobs of 1408 x 2048, two
// threads) read at 82-90 % of the probe that way and at 96-107 % with the hint fixed (the two
// builds in turn, 3 rounds each, three times); one thread from L2 67.0-67.4 -> 68.8-71.7 GB/s.
// kNone: no line prefetches at all, the page hint alone (see page_hint_alone).
enum class LineHint { kL1, kL2, kNone };
// Asks for the lines of [p, p + n) into the cache kHint names. Always inlined: GCC treats a
// prefetch as free of side effects and would delete a call of a function that only
// prefetches; and no out-of-line copy of it exists for the SIMD files (qdot_x86.inc) to share.
template <LineHint kHint>
__attribute__((always_inline)) inline void prefetch_lines(const void* p, int64_t n) {
  if constexpr (kHint == LineHint::kNone) return;
  const auto* b = static_cast<const char*>(p);
  for (int64_t i = 0; i < n; i += 64)
    __builtin_prefetch(b + i, 0, kHint == LineHint::kL2 ? 2 : 3);  // prefetcht1 : prefetcht0
}
// Whether the AVX-512 Q4_0/Q4_1/Q4_K tiles and the F16/BF16 rows take the page hint alone
// (LineHint::kNone) instead of the CPU's line prefetches, as the Q8_0 tiles do on every CPU:
// true on AMD Zen 4 (family 19h with AVX-512), where their line prefetches cost decode 4-9
// points (Q4_0), 3-10 (Q4_K) and 2-8 (F16) of the roofline in the machine's fast state
// (qdot_avx512.cpp, Q4Values and TileK; vec_dot.cpp). Fixed before main runs
// (qdot_dispatch.cpp); HONDO_PAGE_HINT=1 or 0 overrides.
extern const bool page_hint_alone;
// The CPU's line hint (line_prefetch_to_l2), and the hint of the streams page_hint_alone names.
inline LineHint line_hint() {
  return line_prefetch_to_l2 ? LineHint::kL2 : LineHint::kL1;
}
inline LineHint plain_stream_hint() {
  return page_hint_alone ? LineHint::kNone : line_hint();
}
// Whether the tile kernels announce pages ahead at all (prefetch_page): false on AMD Zen 3
// (family 19h without AVX-512), where the page hint costs the AVX2 tiles a fifth of their
// decode rate and their line prefetches alone read at the probe's rate (qdot_x86.inc); true
// elsewhere, where it was measured to help (Zen 4 and Zen 5 guests). The F16/BF16 rows keep it
// everywhere (prefetch_row_ahead). Fixed before main runs (qdot_dispatch.cpp);
// HONDO_PAGE_AHEAD=on or off overrides.
extern const bool page_ahead;
// When the window [p, p + n) being read now starts a new 4 KiB page, that page once more,
// kPageAhead bytes ahead (hint T2): each page is announced once, before the line prefetches
// reach it. announce_page always; prefetch_page where page_ahead says so.
__attribute__((always_inline)) inline void announce_page(const void* p, int64_t n) {
  const char* q = static_cast<const char*>(p) + kPageAhead;
  if ((reinterpret_cast<uintptr_t>(q) & 4095) < uintptr_t(n)) __builtin_prefetch(q, 0, 1);
}
__attribute__((always_inline)) inline void prefetch_page(const void* p, int64_t n) {
  if (page_ahead) announce_page(p, n);
}
// The window [p, p + n) of a weight stream being read now, announced ahead: its lines kAhead
// bytes ahead and the page hint. The tile kernels (qdot_x86.inc) call it, and the F16/BF16 row
// kernels (vec_dot.cpp) prefetch_row_ahead, at every step; test_kernel_build checks that their
// prefetches survive.
template <LineHint kHint, int kAhead = kPrefetchAhead>
__attribute__((always_inline)) inline void prefetch_ahead(const void* p, int64_t n) {
  prefetch_lines<kHint>(static_cast<const char*>(p) + kAhead, n);
  prefetch_page(p, n);
}
// The same with the page hint on every CPU, for the F16/BF16 row kernels (vec_dot.cpp): on
// Zen 3, where the tiles read faster without it, Coder-1.3B F16 decoded at 79.3-84.9 % of the
// roofline with it against 75.6-76.9 % without (docs/PERFORMANCE.md, 2026-12-08).
template <LineHint kHint>
__attribute__((always_inline)) inline void prefetch_row_ahead(const void* p, int64_t n) {
  prefetch_lines<kHint>(static_cast<const char*>(p) + kPrefetchAhead, n);
  announce_page(p, n);
}

// The kernels of one instruction-set level. dot[id] is null for types without an integer
// kernel (F32, F16, BF16, and types hondo cannot compute); tile[id] is null for types
// without a tile kernel in this set (matmul then uses the row kernels).
struct QDotKernels {
  const char* isa;  // "scalar", "avx2", "avx512vnni", ...
  QuantizeActFn quantize;
  QDotFn dot[64];
  QTileFn tile[64];
  QDotFn for_type(DType t) const { return uint32_t(t) < 64 ? dot[uint32_t(t)] : nullptr; }
  QTileFn tile_for(DType t) const { return uint32_t(t) < 64 ? tile[uint32_t(t)] : nullptr; }
};

// The scalar reference set (always available, also the fallback on CPUs without SIMD).
const QDotKernels& qdot_reference();
// Every set this CPU can run, the reference first and the fastest last.
std::vector<const QDotKernels*> qdot_available();
// The set used by matmul: the fastest, unless HONDO_ISA names another available one.
const QDotKernels& qdot_best();

// A buffer of n quantized activation rows.
class QActs {
 public:
  // x: [n, k]. k must be a multiple of 32. Rows are split over the pool when there are many.
  void quantize(const QDotKernels& ks, const float* x, int64_t n, int64_t k,
                ThreadPool* pool = nullptr);
  QActRow row(int64_t t) const {
    return {q_.data() + t * k_, d_.data() + t * (k_ / 32), s_.data() + t * (k_ / 16),
            ds_.data() + t * (k_ / 32)};
  }
  int64_t rows() const { return n_; }
  int64_t cols() const { return k_; }

 private:
  int64_t n_ = 0, k_ = 0;
  std::vector<int8_t> q_;   // [n, k]
  std::vector<float> d_;    // [n, k / 32]
  std::vector<int16_t> s_;  // [n, k / 16]
  std::vector<float> ds_;   // [n, k / 32]
};

}  // namespace hondo
