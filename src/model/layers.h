// The building blocks shared by every architecture: RMSNorm, rotary position embedding,
// causal attention over a KV cache, and the SwiGLU feed-forward nonlinearity.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"

namespace hondo {

// y = x / sqrt(mean(x^2) + eps) * w          x, y, w: [n]
void rms_norm(const float* x, const float* w, float* y, int n, float eps);

// Rotates `n_head` heads of `head_dim` values in place, on their first rope_dim dims, for
// absolute position pos (RoFormer eq. 34): angle_i = pos * freq_scale * base^(-2i / rope_dim).
struct Rope {
  int rope_dim;
  float base;
  float freq_scale;
  RopeStyle style;
  // cos/sin of every rotated pair for one position: [rope_dim / 2] each.
  void angles(int pos, float* cos_out, float* sin_out) const;
  void apply(float* x, int n_head, int head_dim, const float* cs, const float* sn) const;
};

void softmax(float* x, int n);

// h = silu(g) * u, silu(g) = g / (1 + e^-g)            g, u, h: [n]
void swiglu(const float* g, const float* u, float* h, int n);

// Small weights (norms, biases) are kept as F32 vectors whatever their file type.
std::vector<float> to_f32(const Tensor& t);

}  // namespace hondo
