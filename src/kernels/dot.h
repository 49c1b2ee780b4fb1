// F32 dot product. dot_f32_ref is the plain scalar reference; dot_f32 is compiled for several
// instruction sets and the best one for this CPU is chosen at load time (GCC target_clones).
#pragma once
#include <cstdint>

namespace hondo {

float dot_f32_ref(const float* a, const float* b, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);

// All dot products of a block of rows with a block of activation rows (prefill on float
// weights): y[t * ldy + r] = dot_f32(w + r * k, x + t * k, k) for r < n_rows, t < n_tok.
// Computed 4 rows x 4 tokens at a time, so every loaded vector feeds 4 FMAs and 16
// independent accumulators keep the FMA units busy (one dot product at a time is bound by
// the latency of its single chain of FMAs).
void dot_f32_block(const float* w, int64_t n_rows, const float* x, int64_t n_tok, int64_t k,
                   float* y, int64_t ldy);

// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);

}  // namespace hondo
