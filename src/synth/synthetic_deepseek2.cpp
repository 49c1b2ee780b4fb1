// Random-weight DeepSeek-V2/V3 GGUF files with the metadata keys and tensor names llama.cpp's
// converter writes, in either KV up-projection layout (split attn_k_b/attn_v_b or attn_kv_b).
#include <cmath>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/quant.h"
#include "synth/synthetic.h"

namespace hondo::synth_detail {

void write_deepseek2(const SynthSpec& s, const std::string& path) {
  auto vocab = GgufFile::open(s.vocab_path);
  const int64_t n_tokens =
      int64_t(vocab->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs.size());
  const int64_t NV = s.n_vocab > 0 ? s.n_vocab : n_tokens;
  const int64_t E = s.n_embd, H = s.n_head, L = s.kv_lora_rank, R = s.qk_rope, N = s.qk_nope;
  const int64_t V = s.v_head, QH = N + R, F = s.n_ff_exp, NE = s.n_expert;
  const int n_blocks = s.n_layer + s.n_nextn;

  GgufWriter w;
  const std::string a = "deepseek2.";
  auto u32 = [&](const std::string& k, int64_t v) {
    w.set(a + k, GgufValue::make_u32(uint32_t(v)));
  };
  w.set("general.architecture", GgufValue::make_str("deepseek2"));
  w.set("general.name", GgufValue::make_str("hondo synthetic deepseek2"));
  u32("block_count", n_blocks);
  u32("context_length", s.n_ctx);
  u32("embedding_length", E);
  u32("feed_forward_length", s.n_ff);
  u32("attention.head_count", H);
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::make_f32(s.rms_eps));
  w.set(a + "rope.freq_base", GgufValue::make_f32(s.rope_base));
  u32("rope.dimension_count", R);
  if (s.yarn_factor > 0) {
    w.set(a + "rope.scaling.type", GgufValue::make_str("yarn"));
    w.set(a + "rope.scaling.factor", GgufValue::make_f32(s.yarn_factor));
    u32("rope.scaling.original_context_length", s.yarn_original_ctx);
    w.set(a + "rope.scaling.yarn_log_multiplier", GgufValue::make_f32(0.1f * s.mscale_all_dim));
  }
  if (s.q_lora_rank > 0) u32("attention.q_lora_rank", s.q_lora_rank);
  u32("attention.kv_lora_rank", L);
  if (s.split_kv_b) {  // newer converter: MQA view of the latent plus the per-head sizes
    u32("attention.head_count_kv", 1);
    u32("attention.key_length", L + R);
    u32("attention.value_length", L);
    u32("attention.key_length_mla", QH);
    u32("attention.value_length_mla", V);
  } else {
    u32("attention.head_count_kv", H);
    u32("attention.key_length", QH);
    u32("attention.value_length", V);
  }
  u32("leading_dense_block_count", s.n_dense_lead);
  u32("expert_feed_forward_length", F);
  u32("expert_count", NE);
  u32("expert_used_count", s.n_expert_used);
  u32("expert_shared_count", s.n_expert_shared);
  if (s.n_group > 1) {
    u32("expert_group_count", s.n_group);
    u32("expert_group_used_count", s.n_group_used);
  }
  u32("expert_gating_func", s.gating);
  if (s.norm_topk) w.set(a + "expert_weights_norm", GgufValue::make_bool(true));
  w.set(a + "expert_weights_scale", GgufValue::make_f32(s.routed_scale));
  if (s.n_nextn > 0) u32("nextn_predict_layers", s.n_nextn);
  u32("vocab_size", NV);
  w.set("general.file_type", GgufValue::make_u32(file_type_of(s.type)));
  w.copy_metadata(*vocab, "tokenizer.");

  const uint64_t seed = s.seed;
  auto weight = [&](const std::string& name, DType type, std::vector<int64_t> ne, float gain) {
    add_random_weight(w, name, type, std::move(ne), gain, seed);
  };
  auto vec = [&](const std::string& name, int64_t n, float stddev, float mean) {
    add_random_vector(w, name, n, stddev, mean, seed);
  };

  weight("token_embd.weight", s.embd_type, {E, NV}, std::sqrt(float(E)));
  vec("output_norm.weight", E, 0.1f, 1.0f);
  weight("output.weight", s.output_type, {E, NV}, 4.0f);
  for (int l = 0; l < n_blocks; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", E, 0.1f, 1.0f);
    if (s.q_lora_rank > 0) {
      weight(p + "attn_q_a.weight", s.type, {E, s.q_lora_rank}, 1.0f);
      vec(p + "attn_q_a_norm.weight", s.q_lora_rank, 0.1f, 1.0f);
      weight(p + "attn_q_b.weight", s.type, {s.q_lora_rank, H * QH}, 1.0f);
    } else {
      weight(p + "attn_q.weight", s.type, {E, H * QH}, 1.0f);
    }
    weight(p + "attn_kv_a_mqa.weight", s.type, {E, L + R}, 1.0f);
    vec(p + "attn_kv_a_norm.weight", L, 0.1f, 1.0f);
    // One underlying kv_b [H * (N + V) rows, L cols], written in the layout asked for and, like
    // the converter's output, in the file's type (F32 where its rows hold no whole blocks).
    std::vector<float> kv_b(static_cast<size_t>(H * (N + V) * L));
    for (int64_t r = 0; r < H * (N + V); ++r)
      fill_random(kv_b.data() + r * L, L, seed + uint64_t(r) * 7919, p + "kv_b",
                  1.0f / std::sqrt(float(L)), 0.0f);
    if (s.split_kv_b) {
      std::vector<float> k_b(static_cast<size_t>(H * L * N)), v_b(static_cast<size_t>(H * V * L));
      for (int64_t h = 0; h < H; ++h)
        for (int64_t l2 = 0; l2 < L; ++l2) {
          for (int64_t d = 0; d < N; ++d)
            k_b[size_t((h * L + l2) * N + d)] = kv_b[size_t((h * (N + V) + d) * L + l2)];
          for (int64_t d = 0; d < V; ++d)
            v_b[size_t((h * V + d) * L + l2)] = kv_b[size_t((h * (N + V) + N + d) * L + l2)];
        }
      add_weight_values(w, p + "attn_k_b.weight", s.type, {N, L, H}, std::move(k_b));
      add_weight_values(w, p + "attn_v_b.weight", s.type, {L, V, H}, std::move(v_b));
    } else {
      add_weight_values(w, p + "attn_kv_b.weight", s.type, {L, H * (N + V)}, std::move(kv_b));
    }
    weight(p + "attn_output.weight", s.type, {H * V, E}, 1.0f);
    vec(p + "ffn_norm.weight", E, 0.1f, 1.0f);
    if (l < s.n_dense_lead) {
      weight(p + "ffn_gate.weight", s.type, {E, s.n_ff}, 1.0f);
      weight(p + "ffn_up.weight", s.type, {E, s.n_ff}, 1.0f);
      weight(p + "ffn_down.weight", s.type, {s.n_ff, E}, 1.0f);
    } else {
      weight(p + "ffn_gate_inp.weight", DType::F32, {E, NE}, 1.0f);
      if (s.expert_bias) vec(p + "exp_probs_b.bias", NE, 0.05f, 0.0f);
      weight(p + "ffn_gate_exps.weight", s.type, {E, F, NE}, 1.0f);
      weight(p + "ffn_up_exps.weight", s.type, {E, F, NE}, 1.0f);
      weight(p + "ffn_down_exps.weight", s.type, {F, E, NE}, 1.0f);
      const int64_t FS = F * s.n_expert_shared;
      weight(p + "ffn_gate_shexp.weight", s.type, {E, FS}, 1.0f);
      weight(p + "ffn_up_shexp.weight", s.type, {E, FS}, 1.0f);
      weight(p + "ffn_down_shexp.weight", s.type, {FS, E}, 1.0f);
    }
    if (l >= s.n_layer) {
      weight(p + "nextn.eh_proj.weight", s.type, {2 * E, E}, 1.0f);
      vec(p + "nextn.enorm.weight", E, 0.1f, 1.0f);
      vec(p + "nextn.hnorm.weight", E, 0.1f, 1.0f);
      vec(p + "nextn.shared_head_norm.weight", E, 0.1f, 1.0f);
    }
  }
  w.write(path);
}

}  // namespace hondo::synth_detail
