#include "model/layers.h"

#include <algorithm>
#include <cmath>

#include "kernels/quant.h"

namespace hondo {

void rms_norm(const float* x, const float* w, float* y, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const float scale = float(1.0 / std::sqrt(ss / n + double(eps)));
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void Rope::angles(int pos, float* cs, float* sn) const {
  for (int i = 0; i < rope_dim / 2; ++i) {
    const double inv_freq = std::pow(double(base), -2.0 * i / rope_dim);
    const double a = double(pos) * double(freq_scale) * inv_freq;
    cs[i] = float(std::cos(a));
    sn[i] = float(std::sin(a));
  }
}

void Rope::apply(float* x, int n_head, int head_dim, const float* cs, const float* sn) const {
  const int half = rope_dim / 2;
  for (int h = 0; h < n_head; ++h) {
    float* v = x + h * head_dim;
    for (int i = 0; i < half; ++i) {
      const int a = style == RopeStyle::NeoX ? i : 2 * i;
      const int b = style == RopeStyle::NeoX ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * cs[i] - x1 * sn[i];
      v[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

void softmax(float* x, int n) {
  const float mx = *std::max_element(x, x + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = float(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(const float* g, const float* u, float* h, int n) {
  for (int i = 0; i < n; ++i) h[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> out(size_t(t.elements()));
  for (int64_t r = 0; r < t.rows(); ++r)
    dequantize_row(t.type, t.row(r), out.data() + r * t.cols(), t.cols());
  return out;
}

}  // namespace hondo
