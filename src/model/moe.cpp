#include "model/moe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels/matmul.h"
#include "model/layers.h"

namespace hondo {

void route_token(const DeepSeek2Config& c, const float* logits, const float* bias, int* experts,
                 float* weights) {
  const int n = c.n_expert;
  std::vector<float> score(static_cast<size_t>(n)), choice(score.size());  // [n_expert]
  if (c.gating == Gating::Softmax) {
    std::copy(logits, logits + n, score.begin());
    softmax(score.data(), n);
  } else {
    for (int e = 0; e < n; ++e) score[size_t(e)] = 1.0f / (1.0f + std::exp(-logits[e]));
  }
  for (int e = 0; e < n; ++e) choice[size_t(e)] = score[size_t(e)] + (bias ? bias[e] : 0.0f);

  // Higher value first, lower index on ties: a total order, so routing is deterministic.
  auto better = [](const std::vector<float>& v) {
    return [&v](int a, int b) {
      return v[size_t(a)] != v[size_t(b)] ? v[size_t(a)] > v[size_t(b)] : a < b;
    };
  };

  if (c.n_group > 1) {
    const int per = n / c.n_group;
    std::vector<float> group_score(static_cast<size_t>(c.n_group));
    for (int g = 0; g < c.n_group; ++g) {
      std::vector<float> in(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(in.begin(), in.end(), std::greater<float>());
      group_score[size_t(g)] = bias ? in[0] + (per > 1 ? in[1] : 0.0f) : in[0];
    }
    std::vector<int> groups(static_cast<size_t>(c.n_group));
    std::iota(groups.begin(), groups.end(), 0);
    std::sort(groups.begin(), groups.end(), better(group_score));
    for (size_t k = size_t(c.n_group_used); k < groups.size(); ++k)
      for (int e = groups[k] * per; e < (groups[k] + 1) * per; ++e)
        choice[size_t(e)] = -std::numeric_limits<float>::infinity();
  }

  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + c.n_expert_used, order.end(), better(choice));
  float sum = 0;
  for (int k = 0; k < c.n_expert_used; ++k) {
    experts[k] = order[size_t(k)];
    weights[k] = score[size_t(experts[k])];  // the unbiased score
    sum += weights[k];
  }
  for (int k = 0; k < c.n_expert_used; ++k) {
    if (c.norm_topk) weights[k] /= sum + 1e-20f;
    weights[k] *= c.routed_scale;
  }
}

void moe_forward(const DeepSeek2Config& c, const MoeWeights& w, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool) {
  const int64_t E = c.n_embd, K = c.n_expert_used;
  // Shared experts see every token.
  swiglu_ffn(w.shared, x, n_tok, E, y, pool);

  std::vector<float> logits(static_cast<size_t>(n_tok * c.n_expert));  // [n_tok, n_expert]
  matmul(*w.router, x, n_tok, logits.data(), pool);
  std::vector<int> chosen(static_cast<size_t>(n_tok * K));  // [n_tok, K]
  std::vector<float> gate(chosen.size());                   // [n_tok, K]
  for (int64_t t = 0; t < n_tok; ++t)
    route_token(c, logits.data() + t * c.n_expert, w.bias.empty() ? nullptr : w.bias.data(),
                chosen.data() + t * K, gate.data() + t * K);

  // Group (token, gate) pairs by expert, then run each chosen expert once over its tokens.
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(static_cast<size_t>(c.n_expert));
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t k = 0; k < K; ++k)
      by_expert[size_t(chosen[size_t(t * K + k)])].push_back({t, gate[size_t(t * K + k)]});
  std::vector<float> xe, ye;
  for (int e = 0; e < c.n_expert; ++e) {
    const auto& toks = by_expert[size_t(e)];
    if (toks.empty()) continue;
    const int64_t n = int64_t(toks.size());
    xe.resize(size_t(n * E));  // [n, E]
    ye.resize(size_t(n * E));  // [n, E]
    for (int64_t i = 0; i < n; ++i)
      std::copy(x + toks[size_t(i)].first * E, x + (toks[size_t(i)].first + 1) * E,
                xe.begin() + i * E);
    FfnWeights fw = w.routed;
    fw.gate_row0 = int64_t(e) * c.n_ff_exp;
    fw.down_row0 = int64_t(e) * E;
    swiglu_ffn(fw, xe.data(), n, E, ye.data(), pool);
    for (int64_t i = 0; i < n; ++i) {
      float* yt = y + toks[size_t(i)].first * E;
      const float g = toks[size_t(i)].second;
      for (int64_t d = 0; d < E; ++d) yt[d] += g * ye[size_t(i * E + d)];
    }
  }
}

}  // namespace hondo
