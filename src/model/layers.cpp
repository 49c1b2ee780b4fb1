#include "model/layers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/quant.h"
#include "kernels/vec_math.h"

namespace hondo {

void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  // The sum of squares in double, in 8 independent chains: one chain waits the add's latency
  // at every element (~3 us for 2048 values, serial work between decoding's parallel loops).
  double part[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) part[k] += double(x[i + k]) * double(x[i + k]);
  double ss = 0;
  for (; i < n; ++i) ss += double(x[i]) * double(x[i]);
  for (double p : part) ss += p;
  const float scale = float(1.0 / std::sqrt(ss / n + double(eps)));
  for (i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

Rope Rope::linear(int rope_dim, float base, float freq_scale, RopeStyle style) {
  Rope r;
  r.rope_dim = rope_dim;
  r.style = style;
  for (int i = 0; i < rope_dim / 2; ++i)
    r.inv_freq.push_back(float(double(freq_scale) * std::pow(double(base), -2.0 * i / rope_dim)));
  return r;
}

Rope Rope::yarn(int rope_dim, float base, float factor, int original_ctx, float beta_fast,
                float beta_slow, float cos_sin_scale, RopeStyle style) {
  Rope r = linear(rope_dim, base, 1.0f, style);
  r.cos_sin_scale = cos_sin_scale;
  // The pair index at which a frequency completes `rotations` turns over the original context.
  auto correction_dim = [&](double rotations) {
    return rope_dim * std::log(original_ctx / (rotations * 2 * M_PI)) /
           (2 * std::log(double(base)));
  };
  const double low = std::max(0.0, std::floor(correction_dim(beta_fast)));
  double high = std::min(double(rope_dim - 1), std::ceil(correction_dim(beta_slow)));
  if (high == low) high += 0.001;
  for (int i = 0; i < rope_dim / 2; ++i) {
    // ramp: 0 for fast-rotating pairs (kept), 1 for slow ones (interpolated by 1/factor)
    const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    const double f = r.inv_freq[size_t(i)];
    r.inv_freq[size_t(i)] = float(f / factor * ramp + f * (1.0 - ramp));
  }
  return r;
}

void Rope::angles(int pos, float* cs, float* sn) const {
  for (int i = 0; i < rope_dim / 2; ++i) {
    const double a = double(pos) * double(inv_freq[size_t(i)]);
    cs[i] = float(std::cos(a)) * cos_sin_scale;
    sn[i] = float(std::sin(a)) * cos_sin_scale;
  }
}

void Rope::apply(float* x, int n_head, int stride, const float* cs, const float* sn) const {
  const int half = rope_dim / 2;
  for (int h = 0; h < n_head; ++h) {
    float* v = x + h * stride;
    for (int i = 0; i < half; ++i) {
      const int a = style == RopeStyle::NeoX ? i : 2 * i;
      const int b = style == RopeStyle::NeoX ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

double softmax_unnormalized(float* x, int n, float scale, float* scaled_max) {
  // The maximum and the sum over kLanes independent lanes, which the compiler turns into
  // vector operations; the sum's lanes in double, as the single running sum was. One running
  // maximum and sum waited an add's latency at every element: R1-Distill-1.5B's decode
  // attention at 1024 positions spent 12 % of its time here (6 heads of 1024 scores per KV
  // head; test program outside the tree).
  constexpr int kLanes = 16;
  const int n_lanes = n / kLanes * kLanes;
  float lane_max[kLanes];
  std::fill(lane_max, lane_max + kLanes, -std::numeric_limits<float>::infinity());
  for (int i = 0; i < n_lanes; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane_max[k] = std::max(lane_max[k], x[i + k]);
  float mx = *std::max_element(lane_max, lane_max + kLanes);
  for (int i = n_lanes; i < n; ++i) mx = std::max(mx, x[i]);
  for (int i = 0; i < n; ++i) x[i] = (x[i] - mx) * scale;
  exp_f32(x, x, n);
  double lane_sum[kLanes] = {};
  for (int i = 0; i < n_lanes; i += kLanes)
    for (int k = 0; k < kLanes; ++k) lane_sum[k] += double(x[i + k]);
  double sum = 0;
  for (int k = 0; k < kLanes; ++k) sum += lane_sum[k];
  for (int i = n_lanes; i < n; ++i) sum += x[i];
  *scaled_max = mx * scale;
  return sum;
}

void softmax(float* x, int n, float scale) {
  float scaled_max;
  const float inv = float(1.0 / softmax_unnormalized(x, n, scale, &scaled_max));
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* g, const float* u, float* h, int64_t n, ThreadPool& pool) {
  if (n < kSwigluSplit || pool.size() == 1) {
    silu_mul_f32(g, u, h, n);
    return;
  }
  constexpr int64_t kStep = 16;  // whole vectors to each thread
  pool.parallel_for((n + kStep - 1) / kStep, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * kStep, i1 = std::min(n, b1 * kStep);
    silu_mul_f32(g + i0, u + i0, h + i0, i1 - i0);
  });
}

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> out(size_t(t.elements()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.type, t.row(r), out.data() + r * t.cols(), t.cols());
  return out;
}

}  // namespace hondo
