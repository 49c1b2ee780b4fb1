// Bulk conversions between half precision (F16) and F32: the F16 KV cache, F16 weights
// dequantized for prefill. f16_to_f32_row_ref / f32_to_f16_row_ref are the plain scalar
// references (core/fp16.h, round to nearest even); the fast versions use the CPU's
// conversion instructions (x86 F16C, ARMv8 FCVT) when it has them and give bit-identical
// results.
#pragma once
#include <cstdint>

namespace hondo {

void f16_to_f32_row_ref(const uint16_t* x, float* y, int64_t n);
void f32_to_f16_row_ref(const float* x, uint16_t* y, int64_t n);
void f16_to_f32_row(const uint16_t* x, float* y, int64_t n);
void f32_to_f16_row(const float* x, uint16_t* y, int64_t n);
bool half_rows_use_simd();  // true when the fast versions run conversion instructions here

}  // namespace hondo
