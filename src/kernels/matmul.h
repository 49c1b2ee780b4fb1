// Matrix products of a weight tensor (any computable dtype) with F32 activations.
#pragma once
#include <cstdint>

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

}  // namespace hondo
