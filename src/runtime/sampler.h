// Chooses the next token from logits: penalties, then top-k, top-p, min-p, temperature,
// then a draw from the remaining distribution (or argmax when temperature <= 0).
// The random generator and the draw are hondo's own, so a seed gives bit-identical output
// on every platform and compiler.
#pragma once
#include <cstdint>
#include <vector>

#include "tokenizer/vocab.h"

namespace hondo {

struct SamplerParams {
  float temperature = 0.8f;
  int top_k = 40;                  // <= 0: off
  float top_p = 0.95f;             // >= 1: off
  float min_p = 0.05f;             // <= 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;     // 1: off; divides positive logits, multiplies negative
  int repeat_last_n = 64;          // window of recent tokens the penalties look at
  float frequency_penalty = 0.0f;  // subtracted once per occurrence
  float presence_penalty = 0.0f;   // subtracted once if present
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& p);
  // logits: [n_vocab]; history: tokens seen so far (prompt and generated).
  TokenId sample(const float* logits, int n_vocab, const std::vector<TokenId>& history);
  const SamplerParams& params() const { return p_; }

 private:
  struct Candidate {
    TokenId id;
    float logit;
  };
  double uniform();  // [0, 1)
  SamplerParams p_;
  uint64_t state_;
  // Kept from token to token: [n_vocab] candidates (151936 for a Qwen2 vocabulary, 1.2 MB)
  // and their probabilities, so that sampling a token allocates nothing.
  std::vector<Candidate> cand_;
  std::vector<double> prob_;
};

}  // namespace hondo
