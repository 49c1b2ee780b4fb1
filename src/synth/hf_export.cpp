#include "synth/hf_export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "io/gguf.h"
#include "io/hf_tokenizer.h"
#include "io/safetensors.h"
#include "model/layers.h"

namespace hondo {

namespace {

using json = nlohmann::json;

// Checkpoints keep F16/BF16 tensors as they are; anything else is written as F32.
DType store_type(const Tensor& t) {
  return t.type == DType::F16 || t.type == DType::BF16 ? t.type : DType::F32;
}

struct Out {
  std::vector<StWriteTensor> tensors;
  bool fp8 = false;

  // Stores [rows, cols] floats in `type` (F32/F16/BF16), or FP8 with block scales.
  void put(const std::string& name, const std::vector<float>& x, int64_t rows, int64_t cols,
           DType type, bool fp8_ok, bool vector = false) {
    StWriteTensor t;
    t.name = name;
    t.shape = vector ? std::vector<int64_t>{cols} : std::vector<int64_t>{rows, cols};
    if (fp8 && fp8_ok) {
      const int64_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
      std::vector<float> scale(size_t(br * bc));
      for (int64_t i = 0; i < br; ++i)
        for (int64_t j = 0; j < bc; ++j) {
          float amax = 0;
          for (int64_t r = i * 128; r < std::min(rows, i * 128 + 128); ++r)
            for (int64_t c = j * 128; c < std::min(cols, j * 128 + 128); ++c)
              amax = std::max(amax, std::fabs(x[size_t(r * cols + c)]));
          scale[size_t(i * bc + j)] = amax > 0 ? amax / 448.0f : 1.0f;
        }
      t.dtype = StDType::F8_E4M3;
      t.bytes.resize(size_t(rows * cols));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          t.bytes[size_t(r * cols + c)] =
              f32_to_fp8_e4m3(x[size_t(r * cols + c)] / scale[size_t((r / 128) * bc + c / 128)]);
      StWriteTensor s{name.substr(0, name.size() - 6) + "weight_scale_inv",
                      StDType::F32,
                      {br, bc},
                      std::vector<uint8_t>(scale.size() * 4)};
      std::memcpy(s.bytes.data(), scale.data(), s.bytes.size());
      tensors.push_back(std::move(t));
      tensors.push_back(std::move(s));
      return;
    }
    if (type == DType::F32) {
      t.dtype = StDType::F32;
      t.bytes.resize(x.size() * 4);
      std::memcpy(t.bytes.data(), x.data(), t.bytes.size());
    } else {
      t.dtype = type == DType::F16 ? StDType::F16 : StDType::BF16;
      t.bytes.resize(x.size() * 2);
      auto* d = reinterpret_cast<uint16_t*>(t.bytes.data());
      for (size_t i = 0; i < x.size(); ++i)
        d[i] = type == DType::F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
    }
    tensors.push_back(std::move(t));
  }
  // A GGUF tensor as it is (quantized ones as F32), shape [rows, cols].
  void copy(const std::string& name, const Tensor& t, bool fp8_ok = true) {
    put(name, to_f32(t), t.rows(), t.cols(), store_type(t), fp8_ok && t.n_dims >= 2, t.n_dims == 1);
  }
};

}  // namespace

void export_hf_checkpoint(const std::string& gguf_path, const std::string& dir,
                          const HfExportOptions& opt) {
  const auto f = GgufFile::open(gguf_path);
  const std::string a = f->get_str("general.architecture");
  auto gi = [&](const std::string& k, int64_t def = -1) {
    return def < 0 ? f->get_int(a + "." + k) : f->get_int(a + "." + k, def);
  };
  std::filesystem::create_directories(dir);
  Out out;
  out.fp8 = opt.fp8;
  const Tensor& embd = *f->find_tensor("token_embd.weight");
  const int64_t E = gi("embedding_length"), H = gi("attention.head_count");
  const int64_t NV = embd.rows(), nb = gi("block_count"), nextn = gi("nextn_predict_layers", 0);
  json c;
  c["max_position_embeddings"] = gi("context_length");
  c["hidden_size"] = E;
  c["intermediate_size"] = gi("feed_forward_length");
  c["num_attention_heads"] = H;
  c["num_hidden_layers"] = nb - nextn;
  c["rms_norm_eps"] = f->get_float(a + ".attention.layer_norm_rms_epsilon");
  c["rope_theta"] = f->get_float(a + ".rope.freq_base", 10000.0);
  c["vocab_size"] = NV;
  c["torch_dtype"] = "bfloat16";
  out.copy("model.embed_tokens.weight", embd, false);
  out.copy("model.norm.weight", *f->find_tensor("output_norm.weight"));
  if (const Tensor* o = f->find_tensor("output.weight")) out.copy("lm_head.weight", *o, false);
  c["tie_word_embeddings"] = f->find_tensor("output.weight") == nullptr;
  auto T = [&](const std::string& n) -> const Tensor& {
    const Tensor* t = f->find_tensor(n);
    if (!t) fail(gguf_path, ": no tensor ", n);
    return *t;
  };
  if (a == "llama" || a == "qwen2") {
    const int64_t HKV = gi("attention.head_count_kv", H), HD = E / H;
    c["architectures"] = {a == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM"};
    c["num_key_value_heads"] = HKV;
    if (f->get_str(a + ".rope.scaling.type", "") == "linear")
      c["rope_scaling"] = {{"type", "linear"},
                           {"factor", f->get_float(a + ".rope.scaling.factor")}};
    for (int64_t l = 0; l < nb; ++l) {
      const std::string g = "blk." + std::to_string(l) + ".",
                        hf = "model.layers." + std::to_string(l) + ".";
      out.copy(hf + "input_layernorm.weight", T(g + "attn_norm.weight"));
      for (const char* qk : {"q", "k"}) {
        const Tensor& t = T(g + "attn_" + qk + ".weight");
        std::vector<float> x = to_f32(t), y(x.size());
        // GGUF interleaved pairs -> HF halves (llama only; qwen2 is already in halves).
        for (int64_t r = 0; r < t.rows(); ++r) {
          const int64_t h = r / HD, k = r % HD, j = k / 2, i = k % 2;
          const int64_t hf_row = a == "llama" ? h * HD + i * (HD / 2) + j : r;
          std::memcpy(&y[size_t(hf_row * t.cols())], &x[size_t(r * t.cols())],
                      size_t(t.cols()) * 4);
        }
        out.put(hf + "self_attn." + qk + "_proj.weight", y, t.rows(), t.cols(), store_type(t),
                true);
      }
      out.copy(hf + "self_attn.v_proj.weight", T(g + "attn_v.weight"));
      if (a == "qwen2")
        for (const char* b : {"q", "k", "v"})
          out.copy(hf + "self_attn." + b + "_proj.bias", T(g + "attn_" + b + ".bias"));
      out.copy(hf + "self_attn.o_proj.weight", T(g + "attn_output.weight"));
      out.copy(hf + "post_attention_layernorm.weight", T(g + "ffn_norm.weight"));
      out.copy(hf + "mlp.gate_proj.weight", T(g + "ffn_gate.weight"));
      out.copy(hf + "mlp.up_proj.weight", T(g + "ffn_up.weight"));
      out.copy(hf + "mlp.down_proj.weight", T(g + "ffn_down.weight"));
    }
  } else if (a == "deepseek2") {
    // V3 features (sigmoid routing, MTP block) only exist under the V3 architecture name.
    const bool v3 = opt.v3 || opt.fp8 || nextn > 0 || gi("expert_gating_func", 1) == 2;
    const int64_t KL = gi("attention.kv_lora_rank"), R = gi("rope.dimension_count");
    const int64_t QL = gi("attention.q_lora_rank", 0), NE = gi("expert_count");
    const bool split = f->has(a + ".attention.key_length_mla");
    const int64_t N = (split ? gi("attention.key_length_mla") : gi("attention.key_length")) - R;
    const int64_t V = split ? gi("attention.value_length_mla") : gi("attention.value_length");
    c["architectures"] = {v3 ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"};
    c["kv_lora_rank"] = KL;
    c["q_lora_rank"] = QL > 0 ? json(QL) : json(nullptr);
    c["qk_rope_head_dim"] = R;
    c["qk_nope_head_dim"] = N;
    c["v_head_dim"] = V;
    c["moe_intermediate_size"] = gi("expert_feed_forward_length");
    c["n_routed_experts"] = NE;
    c["n_shared_experts"] = gi("expert_shared_count", 0);
    c["num_experts_per_tok"] = gi("expert_used_count");
    c["first_k_dense_replace"] = gi("leading_dense_block_count", 0);
    c["moe_layer_freq"] = 1;
    c["n_group"] = gi("expert_group_count", 1);
    c["topk_group"] = gi("expert_group_used_count", 1);
    c["scoring_func"] = gi("expert_gating_func", 1) == 2 ? "sigmoid" : "softmax";
    c["norm_topk_prob"] = f->get_bool(a + ".expert_weights_norm", false);
    c["routed_scaling_factor"] = f->get_float(a + ".expert_weights_scale", 1.0);
    if (nextn) c["num_nextn_predict_layers"] = nextn;
    if (f->get_str(a + ".rope.scaling.type", "") == "yarn")
      c["rope_scaling"] = {
          {"type", "yarn"},
          {"factor", f->get_float(a + ".rope.scaling.factor")},
          {"original_max_position_embeddings", gi("rope.scaling.original_context_length")},
          {"mscale", f->get_float(a + ".rope.scaling.yarn_log_multiplier") / 0.1},
          {"mscale_all_dim", f->get_float(a + ".rope.scaling.yarn_log_multiplier") / 0.1},
          {"beta_fast", f->get_float(a + ".rope.scaling.yarn_beta_fast", 32.0)},
          {"beta_slow", f->get_float(a + ".rope.scaling.yarn_beta_slow", 1.0)}};
    for (int64_t l = 0; l < nb; ++l) {
      const std::string g = "blk." + std::to_string(l) + ".",
                        hf = "model.layers." + std::to_string(l) + ".";
      out.copy(hf + "input_layernorm.weight", T(g + "attn_norm.weight"));
      if (QL > 0) {
        out.copy(hf + "self_attn.q_a_proj.weight", T(g + "attn_q_a.weight"));
        out.copy(hf + "self_attn.q_a_layernorm.weight", T(g + "attn_q_a_norm.weight"));
        out.copy(hf + "self_attn.q_b_proj.weight", T(g + "attn_q_b.weight"));
      } else {
        out.copy(hf + "self_attn.q_proj.weight", T(g + "attn_q.weight"));
      }
      out.copy(hf + "self_attn.kv_a_proj_with_mqa.weight", T(g + "attn_kv_a_mqa.weight"));
      out.copy(hf + "self_attn.kv_a_layernorm.weight", T(g + "attn_kv_a_norm.weight"));
      if (const Tensor* kvb = f->find_tensor(g + "attn_kv_b.weight")) {
        out.copy(hf + "self_attn.kv_b_proj.weight", *kvb);
      } else {  // rebuild [H*(N+V), KL] from the per-head halves
        const Tensor& kb = T(g + "attn_k_b.weight");
        const Tensor& vb = T(g + "attn_v_b.weight");
        const std::vector<float> k = to_f32(kb), v = to_f32(vb);
        std::vector<float> kv(size_t(H * (N + V) * KL));
        for (int64_t h = 0; h < H; ++h)
          for (int64_t l2 = 0; l2 < KL; ++l2) {
            for (int64_t d = 0; d < N; ++d)
              kv[size_t((h * (N + V) + d) * KL + l2)] = k[size_t((h * KL + l2) * N + d)];
            for (int64_t d = 0; d < V; ++d)
              kv[size_t((h * (N + V) + N + d) * KL + l2)] = v[size_t((h * V + d) * KL + l2)];
          }
        out.put(hf + "self_attn.kv_b_proj.weight", kv, H * (N + V), KL, store_type(kb), true);
      }
      out.copy(hf + "self_attn.o_proj.weight", T(g + "attn_output.weight"));
      out.copy(hf + "post_attention_layernorm.weight", T(g + "ffn_norm.weight"));
      if (const Tensor* gate = f->find_tensor(g + "ffn_gate.weight")) {
        out.copy(hf + "mlp.gate_proj.weight", *gate);
        out.copy(hf + "mlp.up_proj.weight", T(g + "ffn_up.weight"));
        out.copy(hf + "mlp.down_proj.weight", T(g + "ffn_down.weight"));
      } else {
        out.copy(hf + "mlp.gate.weight", T(g + "ffn_gate_inp.weight"), false);
        if (const Tensor* b = f->find_tensor(g + "exp_probs_b.bias"))
          out.copy(hf + "mlp.gate.e_score_correction_bias", *b, false);
        for (const char* proj : {"gate", "up", "down"}) {
          const Tensor& t = T(g + "ffn_" + proj + "_exps.weight");
          const std::vector<float> x = to_f32(t);
          const int64_t rows = t.ne[1];
          for (int64_t e = 0; e < NE; ++e)
            out.put(hf + "mlp.experts." + std::to_string(e) + "." + proj + "_proj.weight",
                    std::vector<float>(x.begin() + e * rows * t.cols(),
                                       x.begin() + (e + 1) * rows * t.cols()),
                    rows, t.cols(), store_type(t), true);
          if (const Tensor* s = f->find_tensor(g + "ffn_" + proj + "_shexp.weight"))
            out.copy(hf + "mlp.shared_experts." + proj + "_proj.weight", *s);
        }
      }
      if (l >= nb - nextn) {
        out.copy(hf + "eh_proj.weight", T(g + "nextn.eh_proj.weight"));
        out.copy(hf + "enorm.weight", T(g + "nextn.enorm.weight"));
        out.copy(hf + "hnorm.weight", T(g + "nextn.hnorm.weight"));
        out.copy(hf + "shared_head.norm.weight", T(g + "nextn.shared_head_norm.weight"));
      }
    }
  } else {
    fail(gguf_path, ": cannot export architecture ", a);
  }
  // Two shards with an index, as large checkpoints come.
  const size_t half = out.tensors.size() / 2;
  json index = {{"metadata", json::object()}, {"weight_map", json::object()}};
  std::vector<StWriteTensor> shard1(std::make_move_iterator(out.tensors.begin()),
                                    std::make_move_iterator(out.tensors.begin() + long(half)));
  std::vector<StWriteTensor> shard2(std::make_move_iterator(out.tensors.begin() + long(half)),
                                    std::make_move_iterator(out.tensors.end()));
  for (const auto& t : shard1) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : shard2) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
  write_safetensors(dir + "/model-00001-of-00002.safetensors", shard1);
  write_safetensors(dir + "/model-00002-of-00002.safetensors", shard2);
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump(2);
  std::ofstream(dir + "/config.json") << c.dump(2);
  gguf_tokenizer_to_hf(*f, dir);
}

}  // namespace hondo
