#include "model/deepseek2_config.h"

#include <cmath>

#include "core/error.h"
#include "io/gguf.h"

namespace hondo {

float DeepSeek2Config::softmax_scale() const {
  float s = 1.0f / std::sqrt(float(qk_head()));
  if (yarn && yarn_factor > 1.0f && mscale_all_dim > 0.0f) {
    const float m = 0.1f * mscale_all_dim * std::log(yarn_factor) + 1.0f;
    s *= m * m;
  }
  return s;
}

DeepSeek2Config DeepSeek2Config::from_gguf(const GgufFile& f) {
  DeepSeek2Config c;
  const std::string a = "deepseek2.";
  const std::string& p = f.path();
  const int n_blocks = int(f.get_int(a + "block_count"));
  c.n_nextn = int(f.get_int(a + "nextn_predict_layers", 0));
  c.n_layer = n_blocks - c.n_nextn;
  c.n_embd = int(f.get_int(a + "embedding_length"));
  c.n_head = int(f.get_int(a + "attention.head_count"));
  c.n_ctx_train = int(f.get_int(a + "context_length", 4096));
  c.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-6));
  c.q_lora_rank = int(f.get_int(a + "attention.q_lora_rank", 0));
  c.kv_lora_rank = int(f.get_int(a + "attention.kv_lora_rank"));
  c.qk_rope = int(f.get_int(a + "rope.dimension_count"));
  // Newer files describe the MLA cache in key_length/value_length and the per-head sizes in
  // the *_mla keys; older ones have the per-head sizes in key_length/value_length.
  const bool mla_keys = f.has(a + "attention.key_length_mla");
  const int qk_head =
      int(f.get_int(a + (mla_keys ? "attention.key_length_mla" : "attention.key_length")));
  c.v_head =
      int(f.get_int(a + (mla_keys ? "attention.value_length_mla" : "attention.value_length")));
  c.qk_nope = qk_head - c.qk_rope;
  c.split_kv_b = f.find_tensor("blk.0.attn_k_b.weight") != nullptr;

  c.rope_base = float(f.get_float(a + "rope.freq_base", 10000.0));
  const std::string scaling = f.get_str(a + "rope.scaling.type", "none");
  if (scaling == "yarn") {
    c.yarn = true;
    c.yarn_factor = float(f.get_float(a + "rope.scaling.factor"));
    c.yarn_original_ctx = int(f.get_int(a + "rope.scaling.original_context_length", 4096));
    c.yarn_beta_fast = float(f.get_float(a + "rope.scaling.yarn_beta_fast", 32.0));
    c.yarn_beta_slow = float(f.get_float(a + "rope.scaling.yarn_beta_slow", 1.0));
    // GGUF stores 0.1 * mscale_all_dim here (the converter's convention).
    c.mscale_all_dim = float(f.get_float(a + "rope.scaling.yarn_log_multiplier", 0.0) / 0.1);
  } else if (scaling != "none") {
    fail(p, ": RoPE scaling '", scaling, "' is not supported for deepseek2");
  }

  c.n_dense_lead = int(f.get_int(a + "leading_dense_block_count", 0));
  c.n_ff = int(f.get_int(a + "feed_forward_length", 0));
  c.n_ff_exp = int(f.get_int(a + "expert_feed_forward_length", 0));
  c.n_expert = int(f.get_int(a + "expert_count", 0));
  c.n_expert_used = int(f.get_int(a + "expert_used_count", 0));
  c.n_expert_shared = int(f.get_int(a + "expert_shared_count", 0));
  c.n_group = int(f.get_int(a + "expert_group_count", 1));
  c.n_group_used = int(f.get_int(a + "expert_group_used_count", c.n_group));
  const int64_t gating = f.get_int(a + "expert_gating_func", int64_t(Gating::Softmax));
  if (gating != int64_t(Gating::Softmax) && gating != int64_t(Gating::Sigmoid))
    fail(p, ": expert_gating_func ", gating, " is not supported (1 softmax, 2 sigmoid)");
  c.gating = Gating(gating);
  c.norm_topk = f.get_bool(a + "expert_weights_norm", false);
  c.routed_scale = float(f.get_float(a + "expert_weights_scale", 1.0));
  c.expert_bias =
      f.find_tensor("blk." + std::to_string(c.n_dense_lead) + ".exp_probs_b.bias") != nullptr;

  const Tensor* embd = f.find_tensor("token_embd.weight");
  if (!embd) fail(p, ": missing tensor 'token_embd.weight'");
  c.n_vocab = int(f.get_int(a + "vocab_size", embd->ne[1]));

  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.kv_lora_rank <= 0 || c.qk_nope <= 0 ||
      c.qk_rope <= 0 || c.qk_rope % 2 || c.v_head <= 0)
    fail(p, ": invalid MLA hyper-parameters (embedding ", c.n_embd, ", blocks ", c.n_layer,
         ", heads ", c.n_head, ", kv_lora_rank ", c.kv_lora_rank, ", qk ", c.qk_nope, "+",
         c.qk_rope, ", v ", c.v_head, ")");
  if (c.n_dense_lead < c.n_layer) {
    if (c.n_expert <= 0 || c.n_expert_used <= 0 || c.n_expert_used > c.n_expert || c.n_ff_exp <= 0)
      fail(p, ": invalid MoE hyper-parameters (", c.n_expert, " experts, ", c.n_expert_used,
           " used, expert width ", c.n_ff_exp, ")");
    if (c.n_group < 1 || c.n_expert % c.n_group || c.n_group_used < 1 || c.n_group_used > c.n_group)
      fail(p, ": invalid expert groups (", c.n_group, " groups, ", c.n_group_used, " used, ",
           c.n_expert, " experts)");
    if (c.n_group_used * (c.n_expert / c.n_group) < c.n_expert_used)
      fail(p, ": ", c.n_group_used, " groups of ", c.n_expert / c.n_group,
           " experts cannot supply ", c.n_expert_used, " experts per token");
  }
  if (c.n_dense_lead > 0 && c.n_ff <= 0) fail(p, ": dense lead blocks need feed_forward_length");
  return c;
}

}  // namespace hondo
