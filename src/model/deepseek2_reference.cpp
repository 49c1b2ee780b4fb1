// The reference forward pass of DeepSeek-V2/V3: MLA computed the naive way (keys and values
// decompressed for every head from the latent, ordinary attention), routing and experts
// computed per token with plain loops, everything from F32 copies of the weights read straight
// from the file. It shares no code with the fast path beyond dequantization.
#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "kernels/quant.h"
#include "model/deepseek2.h"
#include "model/layers.h"
#include "model/reference_ops.h"

namespace hondo {

namespace {

using ref::Mat;

Mat f32(const GgufFile& f, const std::string& name) {
  const Tensor* t = f.find_tensor(name);
  if (!t) fail("reference: missing tensor ", name);
  return to_f32(*t);
}

// kv_b as [n_head * (nope + v), L] whichever way the file stores it.
Mat kv_b_matrix(const GgufFile& f, const DeepSeek2Config& c, const std::string& p) {
  const int64_t L = c.kv_lora_rank, H = c.n_head, nope = c.qk_nope, v = c.v_head;
  if (!c.split_kv_b) return f32(f, p + "attn_kv_b.weight");
  const Mat kb = f32(f, p + "attn_k_b.weight");  // [H][L][nope]
  const Mat vb = f32(f, p + "attn_v_b.weight");  // [H][v][L]
  Mat m(static_cast<size_t>(H * (nope + v) * L));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t l = 0; l < L; ++l) {
      for (int64_t d = 0; d < nope; ++d)
        m[size_t((h * (nope + v) + d) * L + l)] = kb[size_t((h * L + l) * nope + d)];
      for (int64_t d = 0; d < v; ++d)
        m[size_t((h * (nope + v) + nope + d) * L + l)] = vb[size_t((h * v + d) * L + l)];
    }
  return m;
}

// Rotary angle of pair i at position pos, with DeepSeek's YaRN when configured.
double angle(const DeepSeek2Config& c, int pos, int i) {
  const int d = c.qk_rope;
  double f = std::pow(double(c.rope_base), -2.0 * i / d);
  if (c.yarn) {
    auto corr = [&](double rot) {
      return d * std::log(c.yarn_original_ctx / (rot * 2 * M_PI)) /
             (2 * std::log(double(c.rope_base)));
    };
    const double lo = std::max(0.0, std::floor(corr(c.yarn_beta_fast)));
    double hi = std::min(double(d - 1), std::ceil(corr(c.yarn_beta_slow)));
    if (hi == lo) hi += 0.001;
    const double smooth = 1.0 - std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
    f = f / c.yarn_factor * (1.0 - smooth) + f * smooth;
  }
  return pos * f;
}

// Interleaved pairs (x[2i], x[2i+1]) rotated as complex numbers.
void rotate(float* x, const DeepSeek2Config& c, int pos) {
  for (int i = 0; i < c.qk_rope / 2; ++i) {
    const double a = angle(c, pos, i), x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = float(x0 * std::cos(a) - x1 * std::sin(a));
    x[2 * i + 1] = float(x0 * std::sin(a) + x1 * std::cos(a));
  }
}

// Routing written out directly from the published gate: full sorts, no partial selection.
void route(const DeepSeek2Config& c, const Mat& logits, const Mat& bias, std::vector<int>& ids,
           std::vector<double>& w) {
  const int n = c.n_expert;
  std::vector<double> s(static_cast<size_t>(n)), choice(s.size());
  if (c.gating == Gating::Softmax) {
    double mx = *std::max_element(logits.begin(), logits.end()), sum = 0;
    for (int e = 0; e < n; ++e) sum += s[size_t(e)] = std::exp(double(logits[size_t(e)]) - mx);
    for (double& v : s) v /= sum;
  } else {
    for (int e = 0; e < n; ++e) s[size_t(e)] = 1.0 / (1.0 + std::exp(-double(logits[size_t(e)])));
  }
  for (int e = 0; e < n; ++e)
    choice[size_t(e)] = s[size_t(e)] + (bias.empty() ? 0.0 : bias[size_t(e)]);
  if (c.n_group > 1) {
    const int per = n / c.n_group;
    std::vector<std::pair<double, int>> groups;
    for (int g = 0; g < c.n_group; ++g) {
      std::vector<double> in(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(in.rbegin(), in.rend());
      groups.push_back({bias.empty() ? in[0] : in[0] + (per > 1 ? in[1] : 0.0), -g});
    }
    std::sort(groups.rbegin(), groups.rend());  // best score first, lower group on ties
    for (size_t k = size_t(c.n_group_used); k < groups.size(); ++k)
      for (int e = -groups[k].second * per; e < (-groups[k].second + 1) * per; ++e)
        choice[size_t(e)] = -1e300;
  }
  std::vector<std::pair<double, int>> order;
  for (int e = 0; e < n; ++e) order.push_back({choice[size_t(e)], -e});
  std::sort(order.rbegin(), order.rend());
  ids.clear();
  w.clear();
  double sum = 0;
  for (int k = 0; k < c.n_expert_used; ++k) {
    ids.push_back(-order[size_t(k)].second);
    w.push_back(s[size_t(ids.back())]);
    sum += w.back();
  }
  for (double& v : w) v = (c.norm_topk ? v / (sum + 1e-20) : v) * c.routed_scale;
}

}  // namespace

std::vector<float> DeepSeek2Model::reference_logits(const std::vector<TokenId>& tokens,
                                                    bool last_only) const {
  const DeepSeek2Config& c = cfg_;
  const GgufFile& f = *file_;
  const int n = int(tokens.size());
  const int64_t E = c.n_embd, H = c.n_head, L = c.kv_lora_rank, R = c.qk_rope, nope = c.qk_nope;
  const int64_t QH = nope + R, V = c.v_head, F = c.n_ff_exp;
  double scale = 1.0 / std::sqrt(double(QH));
  if (c.yarn && c.yarn_factor > 1 && c.mscale_all_dim > 0) {
    const double m = 0.1 * c.mscale_all_dim * std::log(double(c.yarn_factor)) + 1.0;
    scale *= m * m;
  }
  std::vector<Mat> x(static_cast<size_t>(n), Mat(static_cast<size_t>(E)));
  const Tensor* embd = f.find_tensor("token_embd.weight");
  for (int i = 0; i < n; ++i)
    dequantize_row(embd->type, embd->row(tokens[size_t(i)]), x[size_t(i)].data(), E);

  for (int l = 0; l < c.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const Mat attn_norm = f32(f, p + "attn_norm.weight"),
              kv_norm = f32(f, p + "attn_kv_a_norm.weight");
    const Mat Wkv_a = f32(f, p + "attn_kv_a_mqa.weight"), Wkv_b = kv_b_matrix(f, c, p);
    const Mat Wo = f32(f, p + "attn_output.weight");
    // Per position: full per-head queries, keys and values.
    std::vector<Mat> q(static_cast<size_t>(n)), k(static_cast<size_t>(n)),
        v(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const Mat h = ref::rms_norm(x[size_t(i)], attn_norm, c.rms_eps);
      if (c.q_lora_rank > 0) {
        const Mat qa =
            ref::rms_norm(ref::linear(f32(f, p + "attn_q_a.weight"), h, c.q_lora_rank, E),
                          f32(f, p + "attn_q_a_norm.weight"), c.rms_eps);
        q[size_t(i)] = ref::linear(f32(f, p + "attn_q_b.weight"), qa, H * QH, c.q_lora_rank);
      } else {
        q[size_t(i)] = ref::linear(f32(f, p + "attn_q.weight"), h, H * QH, E);
      }
      const Mat kva = ref::linear(Wkv_a, h, L + R, E);
      const Mat latent = ref::rms_norm(Mat(kva.begin(), kva.begin() + L), kv_norm, c.rms_eps);
      Mat k_rope(kva.begin() + L, kva.end());
      rotate(k_rope.data(), c, i);
      const Mat kvd = ref::linear(Wkv_b, latent, H * (nope + V), L);  // decompressed [H, nope + V]
      k[size_t(i)].assign(static_cast<size_t>(H * QH), 0.0f);
      v[size_t(i)].assign(static_cast<size_t>(H * V), 0.0f);
      for (int64_t hh = 0; hh < H; ++hh) {
        rotate(q[size_t(i)].data() + hh * QH + nope, c, i);
        for (int64_t d = 0; d < nope; ++d)
          k[size_t(i)][size_t(hh * QH + d)] = kvd[size_t(hh * (nope + V) + d)];
        for (int64_t d = 0; d < R; ++d)
          k[size_t(i)][size_t(hh * QH + nope + d)] = k_rope[size_t(d)];
        for (int64_t d = 0; d < V; ++d)
          v[size_t(i)][size_t(hh * V + d)] = kvd[size_t(hh * (nope + V) + nope + d)];
      }
    }
    for (int i = 0; i < n; ++i) {
      Mat att(static_cast<size_t>(H * V), 0.0f);
      for (int64_t hh = 0; hh < H; ++hh) {
        std::vector<double> s(static_cast<size_t>(i + 1));
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= i; ++j) {
          double d = 0;
          for (int64_t e = 0; e < QH; ++e)
            d += double(q[size_t(i)][size_t(hh * QH + e)]) * k[size_t(j)][size_t(hh * QH + e)];
          mx = std::max(mx, s[size_t(j)] = d * scale);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t d = 0; d < V; ++d) {
          double o = 0;
          for (int j = 0; j <= i; ++j) o += s[size_t(j)] / sum * v[size_t(j)][size_t(hh * V + d)];
          att[size_t(hh * V + d)] = float(o);
        }
      }
      const Mat o = ref::linear(Wo, att, E, H * V);
      for (int64_t e = 0; e < E; ++e) x[size_t(i)][size_t(e)] += o[size_t(e)];
    }
    // Feed-forward: dense, or shared experts plus the routed ones.
    const Mat ffn_norm = f32(f, p + "ffn_norm.weight");
    if (l < c.n_dense_lead) {
      const Mat Wg = f32(f, p + "ffn_gate.weight"), Wu = f32(f, p + "ffn_up.weight"),
                Wd = f32(f, p + "ffn_down.weight");
      for (int i = 0; i < n; ++i) {
        const Mat y = ref::swiglu_ffn(Wg, Wu, Wd, ref::rms_norm(x[size_t(i)], ffn_norm, c.rms_eps),
                                      c.n_ff, E);
        for (int64_t e = 0; e < E; ++e) x[size_t(i)][size_t(e)] += y[size_t(e)];
      }
      continue;
    }
    const Mat router = f32(f, p + "ffn_gate_inp.weight");
    const Mat bias = c.expert_bias ? f32(f, p + "exp_probs_b.bias") : Mat();
    const Mat Gx = f32(f, p + "ffn_gate_exps.weight"), Ux = f32(f, p + "ffn_up_exps.weight"),
              Dx = f32(f, p + "ffn_down_exps.weight");
    const Mat Gs = f32(f, p + "ffn_gate_shexp.weight"), Us = f32(f, p + "ffn_up_shexp.weight"),
              Ds = f32(f, p + "ffn_down_shexp.weight");
    for (int i = 0; i < n; ++i) {
      const Mat h = ref::rms_norm(x[size_t(i)], ffn_norm, c.rms_eps);
      Mat y = ref::swiglu_ffn(Gs, Us, Ds, h, F * c.n_expert_shared, E);
      std::vector<int> ids;
      std::vector<double> w;
      route(c, ref::linear(router, h, c.n_expert, E), bias, ids, w);
      for (size_t k2 = 0; k2 < ids.size(); ++k2) {
        const Mat ye =
            ref::swiglu_ffn(Gx, Ux, Dx, h, F, E, int64_t(ids[k2]) * F, int64_t(ids[k2]) * E);
        for (int64_t e = 0; e < E; ++e) y[size_t(e)] += float(w[k2] * ye[size_t(e)]);
      }
      for (int64_t e = 0; e < E; ++e) x[size_t(i)][size_t(e)] += y[size_t(e)];
    }
  }
  const Mat Wout = to_f32(*output_), out_norm = f32(f, "output_norm.weight");
  std::vector<float> logits;
  for (int i = last_only ? n - 1 : 0; i < n; ++i) {
    const Mat lg =
        ref::linear(Wout, ref::rms_norm(x[size_t(i)], out_norm, c.rms_eps), c.n_vocab, E);
    logits.insert(logits.end(), lg.begin(), lg.end());
  }
  return logits;
}

}  // namespace hondo
