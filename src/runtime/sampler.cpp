#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace hondo {

Sampler::Sampler(const SamplerParams& p) : p_(p), state_(p.seed ^ 0x9E3779B97F4A7C15ull) {}

// splitmix64: small, fast, and fully specified, so seeds reproduce everywhere.
double Sampler::uniform() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return double(z >> 11) * (1.0 / 9007199254740992.0);
}

TokenId Sampler::sample(const float* logits, int n_vocab, const std::vector<TokenId>& history) {
  // The candidates [n_vocab]; after the top-k cut only the first `keep` count.
  std::vector<Candidate>& c = cand_;
  c.resize(static_cast<size_t>(n_vocab));
  for (int i = 0; i < n_vocab; ++i) c[size_t(i)] = {i, logits[i]};

  // Penalties over the recent window.
  if (p_.repeat_penalty != 1.0f || p_.frequency_penalty != 0.0f || p_.presence_penalty != 0.0f) {
    std::unordered_map<TokenId, int> count;
    const size_t n =
        p_.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p_.repeat_last_n));
    for (size_t i = history.size() - n; i < history.size(); ++i) ++count[history[i]];
    for (const auto& [id, k] : count) {
      if (id < 0 || id >= n_vocab) continue;
      float& l = c[size_t(id)].logit;
      if (p_.repeat_penalty != 1.0f) l = l > 0 ? l / p_.repeat_penalty : l * p_.repeat_penalty;
      l -= float(k) * p_.frequency_penalty + p_.presence_penalty;
    }
  }

  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  };
  if (p_.temperature <= 0.0f)
    return std::min_element(c.begin(), c.end(), by_logit)->id;  // greedy, lowest id on ties

  size_t keep = c.size();
  if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
    keep = size_t(p_.top_k);
    std::partial_sort(c.begin(), c.begin() + long(keep), c.end(), by_logit);
  } else {
    std::sort(c.begin(), c.end(), by_logit);
  }
  // Probabilities at temperature 1 for the top-p / min-p cut.
  std::vector<double>& prob = prob_;
  prob.resize(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += prob[i] = std::exp(double(c[i].logit - c[0].logit));
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += prob[i] / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p_.min_p > 0.0f) {
    size_t k = 1;
    while (k < keep && prob[k] >= double(p_.min_p) * prob[0]) ++k;  // prob[0] is the max
    keep = k;
  }
  // Temperature, then draw.
  sum = 0;
  for (size_t i = 0; i < keep; ++i)
    sum += prob[i] = std::exp(double(c[i].logit - c[0].logit) / double(p_.temperature));
  double r = uniform() * sum;
  for (size_t i = 0; i < keep; ++i) {
    r -= prob[i];
    if (r < 0) return c[i].id;
  }
  return c[keep - 1].id;
}

}  // namespace hondo
