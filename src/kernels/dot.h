// F32 dot product. dot_f32_ref is the plain scalar reference; dot_f32 is compiled for several
// instruction sets and the best one for this CPU is chosen at load time (GCC target_clones).
#pragma once
#include <cstdint>

namespace hondo {

float dot_f32_ref(const float* a, const float* b, int64_t n);
float dot_f32(const float* a, const float* b, int64_t n);

// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, int64_t n);

}  // namespace hondo
