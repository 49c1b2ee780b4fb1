// Plain loops used only by the reference implementations (dense_reference.cpp,
// deepseek2_reference.cpp): F32 in, double accumulation, no threads, no SIMD.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace hondo::ref {

using Mat = std::vector<float>;

// y[r] = sum_c W[r0 + r, c] x[c] (+ bias[r]) for r < rows; W has `cols` columns.
inline Mat linear(const Mat& W, const Mat& x, int64_t rows, int64_t cols, const Mat* bias = nullptr,
                  int64_t r0 = 0) {
  Mat y(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = bias ? (*bias)[size_t(r)] : 0.0;
    for (int64_t c = 0; c < cols; ++c) s += double(W[size_t((r0 + r) * cols + c)]) * x[size_t(c)];
    y[size_t(r)] = float(s);
  }
  return y;
}

inline Mat rms_norm(const Mat& x, const Mat& w, float eps) {
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double inv = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  Mat y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = float(x[i] * inv * w[i]);
  return y;
}

inline double silu(double g) {
  return g / (1.0 + std::exp(-g));
}

// SwiGLU FFN with weights given as F32 matrices and row offsets (for experts).
inline Mat swiglu_ffn(const Mat& Wg, const Mat& Wu, const Mat& Wd, const Mat& x, int64_t width,
                      int64_t n_embd, int64_t gate_row0 = 0, int64_t down_row0 = 0) {
  const Mat g = linear(Wg, x, width, n_embd, nullptr, gate_row0);
  const Mat u = linear(Wu, x, width, n_embd, nullptr, gate_row0);
  Mat act(static_cast<size_t>(width));
  for (int64_t f = 0; f < width; ++f) act[size_t(f)] = float(silu(g[size_t(f)]) * u[size_t(f)]);
  return linear(Wd, act, n_embd, width, nullptr, down_row0);
}

}  // namespace hondo::ref
