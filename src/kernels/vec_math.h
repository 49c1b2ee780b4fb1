// Elementwise functions of float vectors for the model's activations: exp for softmax, SiLU
// gating for SwiGLU. exp_ref / silu_mul_ref are the plain references on std::exp; the fast
// versions evaluate exp as 2^n * p(r) with branch-free float arithmetic written on vectors of
// each instruction set's width (4, 8, 16 floats), once per set (the variants; exp_f32 and
// silu_mul_f32 run the best this CPU has). Within 2 ulp of std::exp on [-87.3, 88.7]; inputs
// outside are clamped to it (tests/test_quant.cpp, every variant; test_kernel_build checks
// that the AVX2 and AVX-512 loops are vector code).
#pragma once
#include <cstdint>
#include <vector>

namespace hondo {

void exp_ref(const float* x, float* y, int64_t n);                       // y = e^x
void silu_mul_ref(const float* g, const float* u, float* h, int64_t n);  // h = g sigmoid(g) u
void exp_f32(const float* x, float* y, int64_t n);
void silu_mul_f32(const float* g, const float* u, float* h, int64_t n);

struct VecMath {
  const char* name;
  void (*exp)(const float* x, float* y, int64_t n);
  void (*silu_mul)(const float* g, const float* u, float* h, int64_t n);
};
std::vector<VecMath> vec_math_variants();  // those this CPU runs, the best last

}  // namespace hondo
