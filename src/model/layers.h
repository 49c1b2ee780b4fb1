// The building blocks shared by every architecture: RMSNorm, rotary position embedding,
// causal attention over a KV cache, and the SwiGLU feed-forward nonlinearity.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
#include "model/config.h"

namespace hondo {

// y = x / sqrt(mean(x^2) + eps) * w          x, y, w: [n]
void rms_norm(const float* x, const float* w, float* y, int n, float eps);

// Rotary position embedding (RoFormer eq. 34): pair i of a head is rotated by the angle
// pos * inv_freq[i]. Plain RoPE has inv_freq[i] = base^(-2i / rope_dim); linear scaling divides
// every frequency by the factor; YaRN (Peng et al. 2023, as DeepSeek-V2/V3 use it) divides
// only the low frequencies, blending over a ramp between the beta_fast and beta_slow
// rotation counts of the original context.
struct Rope {
  int rope_dim = 0;
  RopeStyle style = RopeStyle::Interleaved;
  std::vector<float> inv_freq;  // [rope_dim / 2]
  float cos_sin_scale = 1.0f;   // YaRN's cos/sin magnitude (mscale / mscale_all_dim)

  static Rope linear(int rope_dim, float base, float freq_scale, RopeStyle style);
  static Rope yarn(int rope_dim, float base, float factor, int original_ctx, float beta_fast,
                   float beta_slow, float cos_sin_scale, RopeStyle style);

  // cos/sin of every rotated pair for one position: [rope_dim / 2] each.
  void angles(int pos, float* cos_out, float* sin_out) const;
  // Rotates the first rope_dim values of each of n_head heads spaced `stride` apart.
  void apply(float* x, int n_head, int stride, const float* cs, const float* sn) const;
};

// x = softmax(scale * x) (scale > 0: attention passes its 1/sqrt(d) here, not in a pass of
// its own).
void softmax(float* x, int n, float scale = 1.0f);
// The same unnormalized: x = e^(scale * (x - max x)); returns their sum and sets *scaled_max
// to scale * max x (n >= 1).
double softmax_unnormalized(float* x, int n, float scale, float* scaled_max);

// h = silu(g) * u, silu(g) = g / (1 + e^-g)            g, u, h: [n] (h may be g)
// Split over the pool's threads from kSwigluSplit values on. The exponentials cost ~0.4 ns a value
// on one core: 11264 values (a V2-Lite MoE layer's inner activations in decode) took ~4.5 us while
// the other core and the memory bus sat idle.
constexpr int64_t kSwigluSplit = 4096;
void swiglu(const float* g, const float* u, float* h, int64_t n, ThreadPool& pool);

// A working buffer of at least n floats kept by its caller from call to call (declare it
// thread_local): it grows, never shrinks, and is not cleared, so a decode step neither
// allocates nor zeroes the scratch its products overwrite anyway.
inline float* scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Small weights (norms, biases) are kept as F32 vectors whatever their file type.
std::vector<float> to_f32(const Tensor& t);

}  // namespace hondo
