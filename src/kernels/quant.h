// Block quantization formats, bit-compatible with GGML. These are the scalar reference
// implementations; every faster kernel is tested against them.
#pragma once
#include <cstdint>

#include "core/dtype.h"

namespace hondo {

// y[0..n) = dequantized values of the n elements stored at `src` in format t.
// Supported for every type whose DTypeInfo::can_compute is true.
void dequantize_row(DType t, const void* src, float* y, int64_t n);

// Writes n values of x in format t at dst (row_bytes(t, n) bytes), rounding to nearest.
// Supported for F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q2_K .. Q8_K
// (which search their scales for the least squared error, see quantize_k.cpp).
void quantize_row(DType t, const float* x, void* dst, int64_t n);
bool can_quantize(DType t);

// The K-quant part of quantize_row; false for other types.
bool quantize_row_k(DType t, const float* x, void* dst, int64_t n);

}  // namespace hondo
