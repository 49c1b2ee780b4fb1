// Several query heads against the same F16 rows. In MLA every head attends over the one
// cached latent of each position (c_t, [kv_lora_rank]), so decoding converts each cached row
// from F16 once for all the heads of a pass instead of once per head: the conversions, not
// the multiply-adds, bounded the per-head loops.
#pragma once
#include <cstdint>
#include <vector>

namespace hondo {

// Up to this many heads per call (each holds accumulators in registers).
constexpr int kMaxHeadRows = 8;

// The SIMD kernels below ask for the rows this far ahead of the one they read (the rows of a
// cache laid out by position lie a whole position apart, out of the hardware prefetchers'
// reach), so a steady number of rows is in flight; a caller that knows its next call can ask
// for that call's first kRowsAhead rows (prefetch_rows) before it.
constexpr int64_t kRowsAhead = 16;

// Scores of n_q heads against n_rows F16 rows, added to what out holds:
//   out[i * o_stride + j] += sum_c rows[j * stride + c] * q[i * q_stride + c]
// for i < n_q <= kMaxHeadRows, j < n_rows, c < n.
void f16_head_dots(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* q,
                   int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride);

// Attention outputs of n_q heads over the same F16 rows:
//   out[i * o_stride + c] = sum_j p[i * p_stride + j] * rows[j * stride + c]
// for i < n_q <= kMaxHeadRows, j < n_rows, c < n.
void f16_head_sums(const uint16_t* rows, int64_t stride, int64_t n_rows, const float* p,
                   int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride);

// Asks for the first n bytes of n_rows rows `stride` bytes apart to be brought into cache.
// Rows one head wide of a cache laid out by position are each on their own page (a 4 KiB
// stride for 16 heads of 128 F16 values): the hardware prefetchers follow no such pattern
// and each row would wait a full memory latency in turn when it is read.
__attribute__((always_inline)) inline void prefetch_rows(const void* rows, int64_t stride,
                                                         int64_t n_rows, int64_t n) {
  const auto* p = static_cast<const char*>(rows);
  for (int64_t j = 0; j < n_rows; ++j, p += stride)
    for (int64_t c = 0; c < n; c += 64) __builtin_prefetch(p + c);
}

// Every variant this CPU can run, the portable loops first; the functions above use the
// last. The tests compare each with a double-precision reference.
struct F16HeadRows {
  const char* name;
  void (*dots)(const uint16_t*, int64_t, int64_t, const float*, int64_t, int, int64_t, float*,
               int64_t);
  void (*sums)(const uint16_t*, int64_t, int64_t, const float*, int64_t, int, int64_t, float*,
               int64_t);
};
std::vector<F16HeadRows> f16_head_rows_variants();

}  // namespace hondo
