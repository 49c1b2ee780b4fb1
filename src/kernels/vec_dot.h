// Dot products of one quantized weight row with F32 activations, without materialising the
// dequantized row. Used for decode (few tokens), where each weight is read exactly once and
// the speed limit is memory bandwidth. Each format has its scalar reference
// (dequantize_row + dot_f32_ref) in the tests.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace hondo {

// sum_k w[k] * x[k] for a row of n values of type t. Returns false (and does nothing) for
// types without a fused kernel; callers then dequantize.
bool vec_dot_row(DType t, const void* row, const float* x, int64_t n, float* out);

}  // namespace hondo
