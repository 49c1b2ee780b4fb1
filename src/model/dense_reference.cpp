// The reference forward pass of the dense decoder: plain loops over F32 copies of every
// weight, the whole sequence recomputed from scratch, no cache, no threads, no batching,
// double-precision accumulation. Slow by design; it is what the fast path is tested against.
#include <cmath>

#include "kernels/quant.h"
#include "model/dense.h"
#include "model/layers.h"
#include "model/reference_ops.h"

namespace hondo {

namespace {

using ref::linear;
using ref::Mat;
const auto& norm = ref::rms_norm;

// Rotate each head's pairs by pos * freq_scale * base^(-2i/rope_dim).
void rotate(Mat& x, int n_head, const DenseConfig& c, int pos) {
  const int half = c.rope_dim / 2;
  for (int h = 0; h < n_head; ++h)
    for (int i = 0; i < half; ++i) {
      const double theta =
          pos * double(c.rope_freq_scale) * std::pow(double(c.rope_base), -2.0 * i / c.rope_dim);
      const int a = h * c.head_dim + (c.rope_style == RopeStyle::NeoX ? i : 2 * i);
      const int b = h * c.head_dim + (c.rope_style == RopeStyle::NeoX ? i + half : 2 * i + 1);
      const double x0 = x[size_t(a)], x1 = x[size_t(b)];
      x[size_t(a)] = float(x0 * std::cos(theta) - x1 * std::sin(theta));
      x[size_t(b)] = float(x0 * std::sin(theta) + x1 * std::cos(theta));
    }
}

}  // namespace

std::vector<float> DenseModel::reference_logits(const std::vector<TokenId>& tokens,
                                                bool last_only) const {
  const DenseConfig& c = cfg_;
  const int n = int(tokens.size());
  const int64_t E = c.n_embd, hd = c.head_dim, Q = c.n_head * hd, KV = c.n_head_kv * hd;
  std::vector<Mat> x(static_cast<size_t>(n), Mat(size_t(E)));  // [n][E]
  for (int i = 0; i < n; ++i)
    dequantize_row(tok_embd_->type, tok_embd_->row(tokens[size_t(i)]), x[size_t(i)].data(), E);

  for (const Block& b : blocks_) {
    const Mat Wq = to_f32(*b.wq), Wk = to_f32(*b.wk), Wv = to_f32(*b.wv), Wo = to_f32(*b.wo);
    const Mat Wg = to_f32(*b.w_gate), Wu = to_f32(*b.w_up), Wd = to_f32(*b.w_down);
    std::vector<Mat> q(static_cast<size_t>(n)), k(static_cast<size_t>(n)),
        v(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const Mat h = norm(x[size_t(i)], b.attn_norm, c.rms_eps);
      q[size_t(i)] = linear(Wq, h, Q, E, c.qkv_bias ? &b.bq : nullptr);
      k[size_t(i)] = linear(Wk, h, KV, E, c.qkv_bias ? &b.bk : nullptr);
      v[size_t(i)] = linear(Wv, h, KV, E, c.qkv_bias ? &b.bv : nullptr);
      rotate(q[size_t(i)], c.n_head, c, i);
      rotate(k[size_t(i)], c.n_head_kv, c, i);
    }
    for (int i = 0; i < n; ++i) {
      Mat att(static_cast<size_t>(Q), 0.0f);
      for (int h = 0; h < c.n_head; ++h) {
        const int kvh = h / (c.n_head / c.n_head_kv);
        std::vector<double> s(static_cast<size_t>(i + 1));
        double mx = -1e300;
        for (int j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t e = 0; e < hd; ++e)
            d += double(q[size_t(i)][size_t(h * hd + e)]) * k[size_t(j)][size_t(kvh * hd + e)];
          s[size_t(j)] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[size_t(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t e = 0; e < hd; ++e) {
          double o = 0;
          for (int j = 0; j <= i; ++j) o += s[size_t(j)] / sum * v[size_t(j)][size_t(kvh * hd + e)];
          att[size_t(h * hd + e)] = float(o);
        }
      }
      const Mat o = linear(Wo, att, E, Q);
      for (int64_t e = 0; e < E; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
      const Mat m = norm(x[size_t(i)], b.ffn_norm, c.rms_eps);
      const Mat g = linear(Wg, m, c.n_ff, E), u = linear(Wu, m, c.n_ff, E);
      Mat act(static_cast<size_t>(c.n_ff));
      for (int f = 0; f < c.n_ff; ++f)
        act[size_t(f)] =
            float(g[size_t(f)] / (1.0 + std::exp(-double(g[size_t(f)]))) * u[size_t(f)]);
      const Mat d = linear(Wd, act, E, c.n_ff);
      for (int64_t e = 0; e < E; ++e) x[size_t(i)][size_t(e)] += d[size_t(e)];
    }
  }
  const Mat Wout = to_f32(*output_);
  std::vector<float> logits;
  logits.reserve(size_t(n) * size_t(c.n_vocab));
  for (int i = last_only ? n - 1 : 0; i < n; ++i) {
    const Mat l = linear(Wout, norm(x[size_t(i)], output_norm_, c.rms_eps), c.n_vocab, E);
    logits.insert(logits.end(), l.begin(), l.end());
  }
  return logits;
}

}  // namespace hondo
