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
  const int64_t E = c.n_embd, K = c.n_expert_used, F = w.routed.width;
  std::vector<float> logits(static_cast<size_t>(n_tok * c.n_expert));  // [n_tok, n_expert]
  matmul(*w.router, x, n_tok, logits.data(), pool);
  std::vector<int> chosen(static_cast<size_t>(n_tok * K));  // [n_tok, K]
  std::vector<float> gate(chosen.size());                   // [n_tok, K]
  for (int64_t t = 0; t < n_tok; ++t)
    route_token(c, logits.data() + t * c.n_expert, w.bias.empty() ? nullptr : w.bias.data(),
                chosen.data() + t * K, gate.data() + t * K);

  // Group (token, gate) pairs by expert: each chosen expert runs once over its tokens.
  std::vector<std::vector<std::pair<int64_t, float>>> by_expert(static_cast<size_t>(c.n_expert));
  for (int64_t t = 0; t < n_tok; ++t)
    for (int64_t k = 0; k < K; ++k)
      by_expert[size_t(chosen[size_t(t * K + k)])].push_back({t, gate[size_t(t * K + k)]});

  // Every part (the shared experts over all tokens, then each chosen expert over its tokens)
  // has its rows in xe/ye and its inner activations in g/u.
  struct Part {
    const FfnWeights* ffn;
    int e;               // routed expert, or -1 for the shared experts
    int64_t row, n;      // first row in xe/ye, tokens
    int64_t width, off;  // inner width, offset in g/u
  };
  std::vector<Part> parts;
  int64_t n_rows = 0, n_inner = 0;
  auto add = [&](const FfnWeights* f, int e, int64_t n, int64_t width) {
    parts.push_back({f, e, n_rows, n, width, n_inner});
    n_rows += n, n_inner += n * width;
  };
  if (w.shared.gate) add(&w.shared, -1, n_tok, w.shared.width);
  for (int e = 0; e < c.n_expert; ++e)
    if (!by_expert[size_t(e)].empty()) add(&w.routed, e, int64_t(by_expert[size_t(e)].size()), F);
  thread_local std::vector<float> xe_buf, g_buf, u_buf;
  float* xe = scratch(xe_buf, size_t(n_rows * E));  // [n_rows, E] inputs of the parts
  // [n_rows, E] their outputs, in the inputs' buffer: the gate and up products have read xe
  // before the down products write ye (a prompt batch's largest buffer: 28 MiB for V2-Lite's
  // 512 tokens of 6 + 1 parts each).
  float* ye = xe;
  float* g = scratch(g_buf, size_t(n_inner));  // [sum n * width]
  float* u = scratch(u_buf, size_t(n_inner));  // [sum n * width]
  // A part that takes all tokens (the shared experts) or one token reads its rows of x in
  // place; the others gather theirs into xe. In decode every part reads x itself, so the
  // batch below quantizes it once, not once per part.
  auto in_place = [](const Part& p) { return p.e < 0 || p.n == 1; };
  auto input_of = [&](const Part& p) -> const float* {
    if (p.e < 0) return x;
    if (p.n == 1) return x + by_expert[size_t(p.e)][0].first * E;
    return xe + p.row * E;
  };
  for (const Part& p : parts)
    if (!in_place(p))
      for (int64_t i = 0; i < p.n; ++i) {
        const int64_t t = by_expert[size_t(p.e)][size_t(i)].first;
        std::copy(x + t * E, x + (t + 1) * E, xe + (p.row + i) * E);
      }

  // SwiGLU of every part (ffn.h): gate and up projections of all parts in one batch, then all
  // down projections in another, so a decode step pays two fork/joins, not three per expert.
  std::vector<MatmulJob> gate_up, down;
  for (const Part& p : parts) {
    const int64_t row0 = p.e < 0 ? p.ffn->gate_row0 : int64_t(p.e) * F;
    const int64_t down0 = p.e < 0 ? p.ffn->down_row0 : int64_t(p.e) * E;
    const float* xp = input_of(p);
    gate_up.push_back({p.ffn->gate, row0, p.width, xp, p.n, g + p.off});
    gate_up.push_back({p.ffn->up, row0, p.width, xp, p.n, u + p.off});
    down.push_back({p.ffn->down, down0, E, g + p.off, p.n, ye + p.row * E});
  }
  matmul_batch(gate_up, pool);
  swiglu(g, u, g, n_inner, pool);
  matmul_batch(down, pool);

  std::fill(y, y + n_tok * E, 0.0f);
  for (const Part& p : parts)
    for (int64_t i = 0; i < p.n; ++i) {
      const auto [t, gt] =
          p.e < 0 ? std::pair<int64_t, float>{i, 1.0f} : by_expert[size_t(p.e)][size_t(i)];
      const float* ys = ye + (p.row + i) * E;
      for (int64_t d = 0; d < E; ++d) y[t * E + d] += gt * ys[d];
    }
}

}  // namespace hondo
