// DeepSeekMoE (DeepSeek-V2 paper, section 2.1.3; V3 paper, section 2.1.2): every token goes
// through the shared experts and through the top-k of many small routed experts.
//
//   s_e   = softmax(u·e_e) (V2)  or  sigmoid(u·e_e) (V3)          router scores
//   pick  = top-k of s_e (+ b_e, V3's bias, used for choosing only), restricted to the best
//           n_group_used groups: group score = max s_e (V2) or sum of top-2 (s_e + b_e) (V3)
//   g_e   = s_e for picked experts [/ sum, if normalised] * routed_scaling_factor
//   y     = sum_shared FFN_i(u) + sum_picked g_e FFN_e(u)
#pragma once
#include <vector>

#include "core/thread_pool.h"
#include "model/deepseek2_config.h"
#include "model/ffn.h"

namespace hondo {

// The chosen experts of one token, best first, and their gate values. logits: [n_expert];
// bias: [n_expert] or nullptr. experts, weights: [n_expert_used].
void route_token(const DeepSeek2Config& c, const float* logits, const float* bias, int* experts,
                 float* weights);

struct MoeWeights {
  const Tensor* router = nullptr;  // [n_embd, n_expert]
  std::vector<float> bias;         // [n_expert] (V3) or empty
  FfnWeights routed;               // 3-D expert tensors; gate_row0/down_row0 set per expert
  FfnWeights shared;               // [n_embd, n_ff_exp * n_shared] ...
};

// x: [n_tok, n_embd] (normalised input) -> y: [n_tok, n_embd]. Tokens are grouped by expert,
// so each expert's weights are read once per call however many tokens chose it.
void moe_forward(const DeepSeek2Config& c, const MoeWeights& w, const float* x, int64_t n_tok,
                 float* y, ThreadPool& pool);

}  // namespace hondo
