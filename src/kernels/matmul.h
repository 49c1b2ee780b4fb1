// Matrix products of a weight tensor (any computable dtype) with F32 activations.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"

namespace hondo {

// y[t, r] = sum_k w[r, k] * x[t, k]   for t < n_tok, r < w.rows()
// x: [n_tok, w.cols()]   y: [n_tok, w.rows()]
// Each weight row is read (and dequantized) once per call, whatever n_tok is.
void matmul(const Tensor& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool);

// Rows [row0, row0 + n_rows) of w only; y: [n_tok, n_rows]. Used for one expert / head slice.
void matmul_rows(const Tensor& w, int64_t row0, int64_t n_rows, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool);

// One product of a batch: y[t, r] = sum_k w[row0 + r, k] * x[t, k].
struct MatmulJob {
  const Tensor* w = nullptr;
  int64_t row0 = 0, n_rows = 0;
  const float* x = nullptr;  // [n_tok, w->cols()]
  int64_t n_tok = 0;
  float* y = nullptr;  // [n_tok, n_rows]
};

// Runs every job, the ones on repacked weights in one parallel loop over all their tiles, so
// that many small products (the experts of an MoE layer) share one fork/join and keep both
// cores busy. Jobs with the same x share one activation quantization. Results are those of
// matmul_rows on each job.
void matmul_batch(const std::vector<MatmulJob>& jobs, ThreadPool& pool);

}  // namespace hondo
