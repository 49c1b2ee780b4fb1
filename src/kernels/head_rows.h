// Several query heads against the same cached rows. In MLA every head attends over the one
// cached latent of each position (c_t, [kv_lora_rank]), so decoding converts each cached row
// (F16 or Q8_0) once for all the heads of a pass instead of once per head: the conversions,
// not the multiply-adds, bounded the per-head loops.
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace hondo {

// Up to this many heads per call (each holds accumulators in registers).
constexpr int kMaxHeadRows = 8;

// The SIMD kernels below ask for the rows this far ahead of the one they read (the rows of a
// cache laid out by position lie a whole position apart, out of the hardware prefetchers'
// reach), so a steady number of rows is in flight; a caller that knows its next call can ask
// for that call's first kRowsAhead rows (prefetch_rows) before it.
constexpr int64_t kRowsAhead = 16;

// The weighted sums go through the rows in runs of this many, every stripe of accumulators
// over a run before the next run (a run read from memory once, then from cache), each run
// fetching the next as it goes. 128 rows of a 512-value F16 latent are 128 KiB. One thread,
// 65536 such rows, 8 heads: runs of 32, 64, 128 and 256 rows read 59, 64, 71 and 63 ns a row
// (the dots over the same rows 60-70); all rows as one run, 208. As MLA's decode chunks
// (model/latent_attention.cpp), V2-Lite's shape with 4 layers at 16384 positions, against
// runs of 64 in the same rounds: 128 rows +3 % and +9 %, 256 rows -4 % and +7 %.
constexpr int64_t kSumRows = 128;

// The rows below are F32 or F16 values or Q8_0 blocks (kernels/quant.h: per 32 values an F16 scale
// and 32 int8, 34 bytes; n % 32 == 0), `stride` bytes apart. A Q8_0 row is converted in
// registers like an F16 one (widened and scaled per block; every value int8 * scale is exact
// in F32): the results differ from an F16 cache's only by the values' rounding, and a Q8_0 row
// is about half as many bytes to read.

// Both add to what out holds. Rows from n_rows up to fetch_end (when it is larger) are not
// read but asked for as the kernels go, so that a caller's next call over them finds them in
// cache: the rows a kernel reads from cache leave the memory idle unless the next ones are
// fetched meanwhile.

// Scores of n_q heads against n_rows rows:
//   out[i * o_stride + j] += sum_c row_j[c] * q[i * q_stride + c]
// for i < n_q <= kMaxHeadRows, j < n_rows, c < n.
void head_dots(DType type, const void* rows, int64_t stride, int64_t n_rows, const float* q,
               int64_t q_stride, int n_q, int64_t n, float* out, int64_t o_stride,
               int64_t fetch_end = 0);

// Attention outputs of n_q heads over the same rows:
//   out[i * o_stride + c] += sum_j p[i * p_stride + j] * row_j[c]
// for i < n_q <= kMaxHeadRows, j < n_rows, c < n.
void head_sums(DType type, const void* rows, int64_t stride, int64_t n_rows, const float* p,
               int64_t p_stride, int n_q, int64_t n, float* out, int64_t o_stride,
               int64_t fetch_end = 0);

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

// Every variant this CPU can run for rows of `type` (F32, F16 or Q8_0), the portable loops first;
// the functions above use the last. The tests compare each with a double-precision reference.
struct HeadRowKernels {
  const char* name;
  void (*dots)(const void*, int64_t, int64_t, const float*, int64_t, int, int64_t, float*, int64_t,
               int64_t);
  void (*sums)(const void*, int64_t, int64_t, const float*, int64_t, int, int64_t, float*, int64_t,
               int64_t);
};
std::vector<HeadRowKernels> head_rows_variants(DType type);

}  // namespace hondo
