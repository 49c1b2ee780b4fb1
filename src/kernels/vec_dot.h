// Dot products of one half-precision weight row (F16, BF16) with F32 activations, without
// materialising the converted row. Used for decode (few tokens), where each weight is read
// exactly once and the speed limit is memory bandwidth. Quantized formats use the integer
// kernels of qdot.h instead. The reference is dequantize_row + dot_f32_ref (in the tests).
#pragma once
#include <cstdint>
#include <vector>

#include "core/dtype.h"

namespace hondo {

bool has_vec_dot(DType t);

// sum_k w[k] * x[k] for a row of n values of type t. Returns false (and does nothing) for
// types without a fused kernel (has_vec_dot false); callers then dequantize.
bool vec_dot_row(DType t, const void* row, const float* x, int64_t n, float* out);

// sum_i w[i] * x[i] and y[i] += a * x[i] with w, x in F16 (converted in registers): attention
// over an F16 KV cache without converting it into a buffer first.
float dot_f16(const uint16_t* w, const float* x, int64_t n);
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n);

// out[i] = sum_j p[j] * rows[j * stride + i] for i < n, j < n_rows, rows in F16: the
// attention output over an F16 value cache, with the output held in registers across rows.
void f16_weighted_sum(const uint16_t* rows, int64_t stride, const float* p, int64_t n_rows,
                      int64_t n, float* out);

// y[t * y_stride + r] = sum_i w[r * k + i] * x[t * k + i] for r < n_rows, t < n_tok: a run of
// consecutive half-precision weight rows [n_rows, k] (type F16 or BF16) times a few tokens'
// activations [n_tok, k] (decode's matrix-vector products on an F16/BF16 file). Each row is
// read once for all the tokens, and the run is prefetched ahead as the tile kernels prefetch
// theirs (kPrefetchAhead, kPageAhead of kernels/qdot.h): a row of 2048 values is one 4 KiB
// page, where the hardware prefetchers stop.
void half_rows_dot(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
                   int64_t n_tok, float* y, int64_t y_stride);

// Every F16 row-dot variant this CPU can run, the portable loop first; vec_dot_row uses the
// last. The tests compare each with the reference.
struct F16Dot {
  const char* name;
  float (*fn)(const uint16_t* w, const float* x, int64_t n);
};
std::vector<F16Dot> f16_dot_variants();
struct F16Axpy {
  const char* name;
  void (*fn)(float a, const uint16_t* x, float* y, int64_t n);
};
std::vector<F16Axpy> f16_axpy_variants();  // likewise for axpy_f16
struct F16WeightedSum {
  const char* name;
  void (*fn)(const uint16_t* rows, int64_t stride, const float* p, int64_t n_rows, int64_t n,
             float* out);
};
std::vector<F16WeightedSum> f16_weighted_sum_variants();  // and for f16_weighted_sum
struct HalfRowsDot {
  const char* name;
  void (*fn)(DType type, const uint16_t* w, int64_t k, int64_t n_rows, const float* x,
             int64_t n_tok, float* y, int64_t y_stride);
};
std::vector<HalfRowsDot> half_rows_dot_variants();  // and for half_rows_dot

}  // namespace hondo
