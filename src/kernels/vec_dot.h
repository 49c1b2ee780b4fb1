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

// Every F16 row-dot variant this CPU can run, the portable loop first; vec_dot_row uses the
// last. The tests compare each with the reference.
struct F16Dot {
  const char* name;
  float (*fn)(const uint16_t* w, const float* x, int64_t n);
};
std::vector<F16Dot> f16_dot_variants();

}  // namespace hondo
