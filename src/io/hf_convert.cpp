#include "io/hf_convert.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fp16.h"
#include "core/fp8.h"
#include "io/gguf.h"
#include "io/hf_tokenizer.h"
#include "io/requantize.h"
#include "io/safetensors.h"

namespace hondo {

namespace {

using json = nlohmann::json;

// A checkpoint matrix (or vector: one row) read row by row as floats.
struct Source {
  const StTensor* t = nullptr;
  const StTensor* scale = nullptr;  // FP8: [ceil(rows/128), ceil(cols/128)] inverse scales
  int64_t rows = 1, cols = 1;
};

Source source(const SafetensorsSet& st, const std::string& name) {
  Source s;
  s.t = &st.get(name);
  if (s.t->shape.size() > 2 || s.t->shape.empty())
    fail("tensor ", name, ": expected 1 or 2 dimensions, found ", s.t->shape.size());
  s.cols = s.t->shape.back();
  s.rows = s.t->shape.size() == 2 ? s.t->shape[0] : 1;
  if (s.t->dtype == StDType::F8_E4M3) {
    const std::string sn = name.substr(0, name.size() - 6) + "weight_scale_inv";  // "weight"
    s.scale = st.find(sn);
    if (!s.scale) fail("tensor ", name, " is FP8 but its scale ", sn, " is missing");
    const int64_t br = (s.rows + 127) / 128, bc = (s.cols + 127) / 128;
    if (s.scale->shape != std::vector<int64_t>{br, bc})
      fail("tensor ", sn, ": expected shape [", br, ", ", bc, "] (128x128 blocks of ", name,
           "), found ", s.scale->shape.size(), " dims");
    if (s.scale->dtype != StDType::F32 && s.scale->dtype != StDType::BF16)
      fail("tensor ", sn, ": expected F32 or BF16 scales, found ", st_dtype_name(s.scale->dtype));
  } else if (s.t->dtype != StDType::F32 && s.t->dtype != StDType::F16 &&
             s.t->dtype != StDType::BF16) {
    fail("tensor ", name, ": dtype ", st_dtype_name(s.t->dtype), " cannot be converted");
  }
  return s;
}

float scalar_at(const StTensor& t, int64_t i) {
  if (t.dtype == StDType::F32) {
    float f;
    std::memcpy(&f, t.data + 4 * i, 4);
    return f;
  }
  uint16_t b;
  std::memcpy(&b, t.data + 2 * i, 2);
  return t.dtype == StDType::BF16 ? bf16_to_f32(b) : f16_to_f32(b);
}

void read_row(const Source& s, int64_t r, float* out) {
  const int64_t n = s.cols;
  const uint8_t* p = s.t->data + size_t(r * n) * st_dtype_size(s.t->dtype);
  switch (s.t->dtype) {
    case StDType::F32:
      std::memcpy(out, p, size_t(n) * 4);
      break;
    case StDType::F8_E4M3: {
      // Weight = fp8 value x the inverse scale of its 128x128 block (DeepSeek-V3's
      // weight_dequant).
      const int64_t bc = (n + 127) / 128;
      for (int64_t c = 0; c < n; ++c)
        out[c] = fp8_e4m3_to_f32(p[c]) * scalar_at(*s.scale, (r / 128) * bc + c / 128);
      break;
    }
    default:
      for (int64_t c = 0; c < n; ++c) out[c] = scalar_at(*s.t, r * n + c);
  }
}

void put_row(DType type, const float* x, int64_t n, uint8_t* dst) {
  if (type == DType::F32) {
    std::memcpy(dst, x, size_t(n) * 4);
    return;
  }
  auto* d = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = type == DType::BF16 ? f32_to_bf16(x[i]) : f32_to_f16(x[i]);
}

struct Plan {
  GgufWriter w;
  const SafetensorsSet* st;
  DType type;  // matrices
  int tensors = 0;
  std::set<std::string> used;  // checkpoint tensors consumed

  // rows of `srcs` in order (each row optionally remapped), into one tensor.
  void add(const std::string& name, std::vector<std::string> src_names, std::vector<int64_t> ne,
           bool keep_f32 = false, std::function<int64_t(int64_t)> row_map = {}) {
    std::vector<Source> srcs;
    int64_t rows = 0;
    for (const auto& s : src_names) {
      srcs.push_back(source(*st, s));
      used.insert(s);
      if (srcs.back().scale) used.insert(srcs.back().scale->name);
      rows += srcs.back().rows;
    }
    int64_t want = 1;
    for (size_t d = 1; d < ne.size(); ++d) want *= ne[d];
    if (rows != want || srcs[0].cols != ne[0])
      fail("tensor ", src_names[0], ": shape [", srcs[0].rows, ", ", srcs[0].cols,
           "] does not fit ", name, " (expected ", want, " rows of ", ne[0], ")");
    const DType t = keep_f32 || ne.size() == 1 ? DType::F32 : type;
    w.add_tensor(name, t, ne, [srcs, t, row_map](uint8_t* dst, size_t) {
      const int64_t cols = srcs[0].cols;
      const size_t rb = row_bytes(t, cols);
      std::vector<float> row(size_t(cols), 0.0f);
      int64_t out_row = 0;
      for (const Source& s : srcs)
        for (int64_t r = 0; r < s.rows; ++r, ++out_row) {
          read_row(s, r, row.data());
          put_row(t, row.data(), cols, dst + size_t(row_map ? row_map(out_row) : out_row) * rb);
        }
    });
    ++tensors;
  }
  bool has(const std::string& n) const { return st->find(n) != nullptr; }
};

int64_t geti(const json& c, const char* k) {
  if (!c.contains(k) || !c[k].is_number_integer()) fail("config.json: missing integer \"", k, "\"");
  return c[k].get<int64_t>();
}

void common_metadata(Plan& p, const json& c, const std::string& a, const std::string& name) {
  auto u32 = [&](const std::string& k, int64_t v) {
    p.w.set(a + "." + k, GgufValue::make_u32(uint32_t(v)));
  };
  p.w.set("general.architecture", GgufValue::make_str(a));
  p.w.set("general.name", GgufValue::make_str(name));
  u32("context_length", geti(c, "max_position_embeddings"));
  u32("embedding_length", geti(c, "hidden_size"));
  u32("feed_forward_length", geti(c, "intermediate_size"));
  u32("attention.head_count", geti(c, "num_attention_heads"));
  p.w.set(a + ".attention.layer_norm_rms_epsilon",
          GgufValue::make_f32(float(c.value("rms_norm_eps", 1e-6))));
  p.w.set(a + ".rope.freq_base", GgufValue::make_f32(float(c.value("rope_theta", 10000.0))));
  u32("vocab_size", geti(c, "vocab_size"));
}

// Linear RoPE scaling (DeepSeek-Coder: factor 4) as llama.cpp writes it.
void linear_rope(Plan& p, const json& c, const std::string& a) {
  if (!c.contains("rope_scaling") || !c["rope_scaling"].is_object()) return;
  const json& rs = c["rope_scaling"];
  const std::string type = rs.value("type", rs.value("rope_type", ""));
  if (type == "linear") {
    p.w.set(a + ".rope.scaling.type", GgufValue::make_str("linear"));
    p.w.set(a + ".rope.scaling.factor", GgufValue::make_f32(float(rs.value("factor", 1.0))));
  } else if (!type.empty() && type != "default") {
    fail("config.json: rope_scaling type '", type, "' is not supported for this architecture");
  }
}

void dense_model(Plan& p, const json& c, const std::string& a, bool permute_qk, bool biases) {
  const int64_t E = geti(c, "hidden_size"), H = geti(c, "num_attention_heads");
  const int64_t HKV = c.value("num_key_value_heads", H), L = geti(c, "num_hidden_layers");
  const int64_t F = geti(c, "intermediate_size"), NV = geti(c, "vocab_size");
  const int64_t HD = c.value("head_dim", E / H);
  p.w.set(a + ".block_count", GgufValue::make_u32(uint32_t(L)));
  p.w.set(a + ".attention.head_count_kv", GgufValue::make_u32(uint32_t(HKV)));
  p.w.set(a + ".rope.dimension_count", GgufValue::make_u32(uint32_t(HD)));
  linear_rope(p, c, a);
  p.add("token_embd.weight", {"model.embed_tokens.weight"}, {E, NV});
  p.add("output_norm.weight", {"model.norm.weight"}, {E});
  if (p.has("lm_head.weight")) p.add("output.weight", {"lm_head.weight"}, {E, NV});
  // HF keeps each head's rotary pairs as two halves (rotate_half); GGUF llama interleaves
  // them: GGUF row h*HD + 2j + i  <-  HF row h*HD + i*HD/2 + j.
  auto interleave = [HD](int64_t r) {
    const int64_t h = r / HD, k = r % HD, i = k / (HD / 2), j = k % (HD / 2);
    return h * HD + 2 * j + i;
  };
  for (int64_t l = 0; l < L; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string g = "blk." + std::to_string(l) + ".";
    p.add(g + "attn_norm.weight", {hf + "input_layernorm.weight"}, {E});
    p.add(g + "attn_q.weight", {hf + "self_attn.q_proj.weight"}, {E, H * HD}, false,
          permute_qk ? std::function<int64_t(int64_t)>(interleave) : nullptr);
    p.add(g + "attn_k.weight", {hf + "self_attn.k_proj.weight"}, {E, HKV * HD}, false,
          permute_qk ? std::function<int64_t(int64_t)>(interleave) : nullptr);
    p.add(g + "attn_v.weight", {hf + "self_attn.v_proj.weight"}, {E, HKV * HD});
    if (biases) {
      p.add(g + "attn_q.bias", {hf + "self_attn.q_proj.bias"}, {H * HD});
      p.add(g + "attn_k.bias", {hf + "self_attn.k_proj.bias"}, {HKV * HD});
      p.add(g + "attn_v.bias", {hf + "self_attn.v_proj.bias"}, {HKV * HD});
    }
    p.add(g + "attn_output.weight", {hf + "self_attn.o_proj.weight"}, {H * HD, E});
    p.add(g + "ffn_norm.weight", {hf + "post_attention_layernorm.weight"}, {E});
    p.add(g + "ffn_gate.weight", {hf + "mlp.gate_proj.weight"}, {E, F});
    p.add(g + "ffn_up.weight", {hf + "mlp.up_proj.weight"}, {E, F});
    p.add(g + "ffn_down.weight", {hf + "mlp.down_proj.weight"}, {F, E});
  }
}

void deepseek_model(Plan& p, const json& c, bool v3) {
  const std::string a = "deepseek2";
  auto u32 = [&](const std::string& k, int64_t v) {
    p.w.set(a + "." + k, GgufValue::make_u32(uint32_t(v)));
  };
  const int64_t E = geti(c, "hidden_size"), H = geti(c, "num_attention_heads");
  const int64_t L = geti(c, "num_hidden_layers"), NV = geti(c, "vocab_size");
  const int64_t KL = geti(c, "kv_lora_rank"), R = geti(c, "qk_rope_head_dim");
  const int64_t N = geti(c, "qk_nope_head_dim"), V = geti(c, "v_head_dim");
  const int64_t QL = c.contains("q_lora_rank") && c["q_lora_rank"].is_number()
                         ? c["q_lora_rank"].get<int64_t>()
                         : 0;
  const int64_t F = geti(c, "intermediate_size"), FE = geti(c, "moe_intermediate_size");
  const int64_t NE = geti(c, "n_routed_experts"), NS = c.value("n_shared_experts", 0);
  const int64_t dense = c.value("first_k_dense_replace", 0);
  const int64_t freq = c.value("moe_layer_freq", 1);
  if (freq != 1) fail("config.json: moe_layer_freq ", freq, " is not supported (expected 1)");
  // V3's multi-token-prediction block sits after the trunk, as llama.cpp stores it.
  int64_t nextn = v3 ? c.value("num_nextn_predict_layers", 0) : 0;
  if (nextn > 0 && !p.has("model.layers." + std::to_string(L) + ".eh_proj.weight")) nextn = 0;
  u32("block_count", L + nextn);
  if (nextn > 0) u32("nextn_predict_layers", nextn);
  if (QL > 0) u32("attention.q_lora_rank", QL);
  u32("attention.kv_lora_rank", KL);
  u32("attention.head_count_kv", 1);  // the latent is one shared KV "head" (MQA view)
  u32("attention.key_length", KL + R);
  u32("attention.value_length", KL);
  u32("attention.key_length_mla", N + R);
  u32("attention.value_length_mla", V);
  u32("rope.dimension_count", R);
  u32("leading_dense_block_count", dense);
  u32("expert_feed_forward_length", FE);
  u32("expert_count", NE);
  u32("expert_used_count", geti(c, "num_experts_per_tok"));
  u32("expert_shared_count", NS);
  if (c.value("n_group", 1) > 1) {
    u32("expert_group_count", c.value("n_group", 1));
    u32("expert_group_used_count", c.value("topk_group", 1));
  }
  const std::string scoring = c.value("scoring_func", "softmax");
  if (scoring != "softmax" && scoring != "sigmoid")
    fail("config.json: scoring_func '", scoring, "' (expected softmax or sigmoid)");
  u32("expert_gating_func", scoring == "sigmoid" ? 2 : 1);
  p.w.set(a + ".expert_weights_norm", GgufValue::make_bool(c.value("norm_topk_prob", false)));
  p.w.set(a + ".expert_weights_scale",
          GgufValue::make_f32(float(c.value("routed_scaling_factor", 1.0))));
  if (c.contains("rope_scaling") && c["rope_scaling"].is_object()) {
    const json& rs = c["rope_scaling"];
    const std::string type = rs.value("type", rs.value("rope_type", ""));
    if (type == "yarn") {
      p.w.set(a + ".rope.scaling.type", GgufValue::make_str("yarn"));
      p.w.set(a + ".rope.scaling.factor", GgufValue::make_f32(float(rs.value("factor", 1.0))));
      u32("rope.scaling.original_context_length",
          rs.value("original_max_position_embeddings", int64_t(4096)));
      p.w.set(a + ".rope.scaling.yarn_log_multiplier",
              GgufValue::make_f32(0.1f * float(rs.value("mscale_all_dim", 0.0))));
      p.w.set(a + ".rope.scaling.yarn_beta_fast",
              GgufValue::make_f32(float(rs.value("beta_fast", 32.0))));
      p.w.set(a + ".rope.scaling.yarn_beta_slow",
              GgufValue::make_f32(float(rs.value("beta_slow", 1.0))));
    } else if (!type.empty() && type != "default") {
      fail("config.json: rope_scaling type '", type, "' (DeepSeek models use yarn)");
    }
  }
  p.add("token_embd.weight", {"model.embed_tokens.weight"}, {E, NV});
  p.add("output_norm.weight", {"model.norm.weight"}, {E});
  p.add("output.weight", {"lm_head.weight"}, {E, NV});
  for (int64_t l = 0; l < L + nextn; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string g = "blk." + std::to_string(l) + ".";
    p.add(g + "attn_norm.weight", {hf + "input_layernorm.weight"}, {E});
    if (QL > 0) {
      p.add(g + "attn_q_a.weight", {hf + "self_attn.q_a_proj.weight"}, {E, QL});
      p.add(g + "attn_q_a_norm.weight", {hf + "self_attn.q_a_layernorm.weight"}, {QL});
      p.add(g + "attn_q_b.weight", {hf + "self_attn.q_b_proj.weight"}, {QL, H * (N + R)});
    } else {
      p.add(g + "attn_q.weight", {hf + "self_attn.q_proj.weight"}, {E, H * (N + R)});
    }
    p.add(g + "attn_kv_a_mqa.weight", {hf + "self_attn.kv_a_proj_with_mqa.weight"}, {E, KL + R});
    p.add(g + "attn_kv_a_norm.weight", {hf + "self_attn.kv_a_layernorm.weight"}, {KL});
    // kv_b_proj [H*(N+V), KL] split per head: k_b[h] = (its N key rows)^T  [KL rows, N cols],
    // v_b[h] = its V value rows [V rows, KL cols] (MLA absorption multiplies by these).
    const std::string kvb = hf + "self_attn.kv_b_proj.weight";
    const Source kv = source(*p.st, kvb);
    if (kv.rows != H * (N + V) || kv.cols != KL)
      fail("tensor ", kvb, ": expected [", H * (N + V), ", ", KL, "], found [", kv.rows, ", ",
           kv.cols, "]");
    p.used.insert(kvb);
    if (kv.scale) p.used.insert(kv.scale->name);
    const DType t = p.type;
    p.w.add_tensor(
        g + "attn_k_b.weight", t, {N, KL, H}, [kv, t, H, N, V, KL](uint8_t* dst, size_t) {
          std::vector<float> rows(static_cast<size_t>(N * KL)), out(static_cast<size_t>(N));
          for (int64_t h = 0; h < H; ++h) {
            for (int64_t d = 0; d < N; ++d) read_row(kv, h * (N + V) + d, rows.data() + d * KL);
            for (int64_t l2 = 0; l2 < KL; ++l2) {
              for (int64_t d = 0; d < N; ++d) out[size_t(d)] = rows[size_t(d * KL + l2)];
              put_row(t, out.data(), N, dst + size_t(h * KL + l2) * row_bytes(t, N));
            }
          }
        });
    p.w.add_tensor(g + "attn_v_b.weight", t, {KL, V, H},
                   [kv, t, H, N, V, KL](uint8_t* dst, size_t) {
                     std::vector<float> row(static_cast<size_t>(KL));
                     for (int64_t h = 0; h < H; ++h)
                       for (int64_t d = 0; d < V; ++d) {
                         read_row(kv, h * (N + V) + N + d, row.data());
                         put_row(t, row.data(), KL, dst + size_t(h * V + d) * row_bytes(t, KL));
                       }
                   });
    p.tensors += 2;
    p.add(g + "attn_output.weight", {hf + "self_attn.o_proj.weight"}, {H * V, E});
    p.add(g + "ffn_norm.weight", {hf + "post_attention_layernorm.weight"}, {E});
    if (l < dense) {
      p.add(g + "ffn_gate.weight", {hf + "mlp.gate_proj.weight"}, {E, F});
      p.add(g + "ffn_up.weight", {hf + "mlp.up_proj.weight"}, {E, F});
      p.add(g + "ffn_down.weight", {hf + "mlp.down_proj.weight"}, {F, E});
    } else {
      p.add(g + "ffn_gate_inp.weight", {hf + "mlp.gate.weight"}, {E, NE}, /*keep_f32=*/true);
      if (p.has(hf + "mlp.gate.e_score_correction_bias"))
        p.add(g + "exp_probs_b.bias", {hf + "mlp.gate.e_score_correction_bias"}, {NE});
      for (const char* proj : {"gate", "up", "down"}) {
        std::vector<std::string> ex;
        for (int64_t e = 0; e < NE; ++e)
          ex.push_back(hf + "mlp.experts." + std::to_string(e) + "." + proj + "_proj.weight");
        const bool down = std::string(proj) == "down";
        p.add(g + "ffn_" + proj + "_exps.weight", ex,
              down ? std::vector<int64_t>{FE, E, NE} : std::vector<int64_t>{E, FE, NE});
        if (NS > 0)
          p.add(g + "ffn_" + proj + "_shexp.weight",
                {hf + "mlp.shared_experts." + proj + "_proj.weight"},
                down ? std::vector<int64_t>{FE * NS, E} : std::vector<int64_t>{E, FE * NS});
      }
    }
    if (l >= L) {  // the MTP block's own parts
      p.add(g + "nextn.eh_proj.weight", {hf + "eh_proj.weight"}, {2 * E, E});
      p.add(g + "nextn.enorm.weight", {hf + "enorm.weight"}, {E});
      p.add(g + "nextn.hnorm.weight", {hf + "hnorm.weight"}, {E});
      p.add(g + "nextn.shared_head_norm.weight", {hf + "shared_head.norm.weight"}, {E});
      if (p.has(hf + "shared_head.head.weight"))
        p.add(g + "nextn.shared_head_head.weight", {hf + "shared_head.head.weight"}, {E, NV});
      if (p.has(hf + "embed_tokens.weight"))
        p.add(g + "nextn.embed_tokens.weight", {hf + "embed_tokens.weight"}, {E, NV});
    }
  }
}

DType float_type_of(const SafetensorsSet& st) {
  bool fp8 = false;
  for (const auto& [n, t] : st.tensors()) fp8 = fp8 || t.dtype == StDType::F8_E4M3;
  if (fp8) return DType::BF16;
  const StTensor* e = st.find("model.embed_tokens.weight");
  if (!e || e->dtype == StDType::BF16) return DType::BF16;
  return e->dtype == StDType::F16 ? DType::F16 : DType::F32;
}

}  // namespace

ConvertReport convert_hf(const std::string& dir, const std::string& out,
                         const ConvertOptions& opt) {
  json c;
  {
    std::ifstream in(dir + "/config.json");
    if (!in) fail(dir, "/config.json: cannot open (is this a Hugging Face model folder?)");
    try {
      c = json::parse(in);
    } catch (const json::parse_error& e) {
      fail(dir, "/config.json: not valid JSON: ", e.what());
    }
  }
  std::string arch;
  if (c.contains("architectures") && c["architectures"].is_array() && !c["architectures"].empty())
    arch = c["architectures"][0].get<std::string>();
  const SafetensorsSet st = SafetensorsSet::open_dir(dir);
  ConvertReport rep;
  rep.hf_arch = arch;
  std::string type = opt.type;
  std::transform(type.begin(), type.end(), type.begin(), ::toupper);
  const DType natural = float_type_of(st);
  DType float_type = natural;
  bool quantize = false;
  if (type == "AUTO") {
  } else if (type == "F32" || type == "F16" || type == "BF16") {
    float_type = type == "F32" ? DType::F32 : type == "F16" ? DType::F16 : DType::BF16;
  } else {
    quant_mix(type);  // validates the name before any work
    quantize = true;
  }
  rep.type = quantize ? type : dtype_name(float_type);
  Plan p;
  p.st = &st;
  p.type = float_type;
  const std::string name = std::filesystem::path(dir).filename().string();
  if (arch == "LlamaForCausalLM") {
    common_metadata(p, c, "llama", name);
    dense_model(p, c, "llama", /*permute_qk=*/true, /*biases=*/false);
    rep.gguf_arch = "llama";
  } else if (arch == "Qwen2ForCausalLM") {
    common_metadata(p, c, "qwen2", name);
    dense_model(p, c, "qwen2", false, true);
    rep.gguf_arch = "qwen2";
  } else if (arch == "DeepseekV2ForCausalLM" || arch == "DeepseekV3ForCausalLM") {
    common_metadata(p, c, "deepseek2", name);
    deepseek_model(p, c, arch == "DeepseekV3ForCausalLM");
    rep.gguf_arch = "deepseek2";
  } else {
    fail(dir, "/config.json: architecture '", arch.empty() ? "(none)" : arch,
         "' is not supported (LlamaForCausalLM, Qwen2ForCausalLM, DeepseekV2ForCausalLM, "
         "DeepseekV3ForCausalLM)");
  }
  // Everything in the checkpoint must have found a place (rotary caches aside).
  for (const auto& [n, t] : st.tensors())
    if (!p.used.count(n) && n.find("rotary_emb.inv_freq") == std::string::npos)
      fail(dir, ": checkpoint tensor ", n, " has no place in a ", rep.gguf_arch,
           " model (unexpected for ", arch, ")");
  p.w.set("general.file_type", GgufValue::make_u32(quant_mix(dtype_name(float_type)).file_type));
  hf_tokenizer_to_gguf(dir, geti(c, "vocab_size"), p.w);
  rep.tensors = p.tensors;
  if (!quantize) {
    p.w.write(out);
  } else {
    const std::string tmp = out + ".convert-tmp.gguf";
    p.w.write(tmp);
    try {
      if (opt.on_note) opt.on_note("quantizing to " + type);
      requantize_model(tmp, out, quant_mix(type), opt.pool);
    } catch (...) {
      std::remove(tmp.c_str());
      throw;
    }
    std::remove(tmp.c_str());
  }
  rep.bytes = std::filesystem::file_size(out);
  return rep;
}

}  // namespace hondo
