// Hyper-parameters of the DeepSeek-V2 / V2.5 / Coder-V2 / V3 / R1 architecture ("deepseek2" in
// GGUF), read with explicit defaults. Variants are detected from the keys and tensors present:
//   q_lora_rank key      -> queries through a low-rank bottleneck (V2, V3; not V2-Lite)
//   attn_k_b / attn_v_b  -> the KV up-projection stored split per head (newer files), else
//   attn_kv_b exp_probs_b tensor   -> V3's expert-score correction bias ("noaux_tc" routing)
//   nextn_predict_layers -> V3's multi-token-prediction block after the trunk
#pragma once
#include <string>

namespace hondo {

class GgufFile;

enum class Gating { Softmax = 1, Sigmoid = 2 };  // values as in GGUF expert_gating_func

struct DeepSeek2Config {
  int n_vocab = 0;
  int n_embd = 0;
  int n_layer = 0;  // trunk blocks (excludes the MTP block)
  int n_nextn = 0;  // MTP blocks stored after the trunk
  int n_head = 0;
  int n_ctx_train = 0;
  float rms_eps = 1e-6f;

  // Multi-head latent attention (DeepSeek-V2 paper, section 2.1.2)
  int q_lora_rank = 0;   // 0: queries projected directly (V2-Lite)
  int kv_lora_rank = 0;  // d_c: width of the cached latent
  int qk_nope = 0;       // d_h: per-head query/key width without position
  int qk_rope = 0;       // d_h^R: decoupled rotary width, one key shared by all heads
  int v_head = 0;        // per-head value width
  bool split_kv_b = false;

  // RoPE / YaRN
  float rope_base = 10000.0f;
  bool yarn = false;
  float yarn_factor = 1.0f;
  int yarn_original_ctx = 4096;
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;
  float mscale_all_dim = 0.0f;  // scales the softmax by (0.1 * mscale_all_dim * ln(factor) + 1)^2

  // DeepSeekMoE
  int n_dense_lead = 0;   // leading blocks with a dense FFN
  int n_ff = 0;           // dense FFN width
  int n_ff_exp = 0;       // width of one expert
  int n_expert = 0;       // routed experts
  int n_expert_used = 0;  // experts chosen per token (top-k)
  int n_expert_shared = 0;
  int n_group = 1;  // expert groups; routing first keeps the best n_group_used groups
  int n_group_used = 1;
  Gating gating = Gating::Softmax;
  bool expert_bias = false;   // exp_probs_b present
  bool norm_topk = false;     // renormalise the chosen weights to sum 1
  float routed_scale = 1.0f;  // routed_scaling_factor

  int qk_head() const { return qk_nope + qk_rope; }
  float softmax_scale() const;  // 1/sqrt(qk_head), times the YaRN mscale^2

  static DeepSeek2Config from_gguf(const GgufFile& f);
};

}  // namespace hondo
