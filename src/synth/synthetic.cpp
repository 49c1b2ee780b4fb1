#include "synth/synthetic.h"

#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"
#include "kernels/quant.h"

namespace hondo {

SynthSpec SynthSpec::preset(const std::string& name) {
  SynthSpec s;
  if (name == "deepseek-coder-1.3b") {  // DeepSeek-Coder-1.3B: LLaMA, 32256 vocab
    s.arch = "llama";
    s.n_embd = 2048, s.n_layer = 24, s.n_head = 16, s.n_head_kv = 16, s.n_ff = 5504;
    s.n_ctx = 16384, s.rope_base = 100000.0f, s.rope_linear_factor = 4.0f;
  } else if (name == "r1-distill-qwen-1.5b") {  // DeepSeek-R1-Distill-Qwen-1.5B: Qwen2
    s.arch = "qwen2";
    s.n_embd = 1536, s.n_layer = 28, s.n_head = 12, s.n_head_kv = 2, s.n_ff = 8960;
    s.n_ctx = 131072, s.n_vocab = 151936;
  } else if (name == "tiny-llama") {
    s.arch = "llama";
    s.n_embd = 64, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.n_ff = 160;
    s.rope_linear_factor = 4.0f;
  } else if (name == "tiny-qwen2") {
    s.arch = "qwen2";
    s.n_embd = 96, s.n_layer = 2, s.n_head = 6, s.n_head_kv = 2, s.n_ff = 192;
  } else if (name == "deepseek-v2-lite") {  // DeepSeek-V2-Lite (16B): real shape
    s.arch = "deepseek2";
    s.n_embd = 2048, s.n_layer = 27, s.n_head = 16, s.n_head_kv = 16, s.n_ff = 10944;
    s.n_ctx = 163840, s.q_lora_rank = 0, s.kv_lora_rank = 512, s.qk_nope = 128, s.qk_rope = 64;
    s.v_head = 128, s.n_ff_exp = 1408, s.n_expert = 64, s.n_expert_used = 6, s.n_expert_shared = 2;
    s.n_dense_lead = 1, s.yarn_factor = 40.0f, s.rms_eps = 1e-6f;
  } else if (name == "tiny-v2-lite") {  // V2-Lite structure: no q bottleneck, softmax, 1 dense lead
    s.arch = "deepseek2";
    s.n_embd = 64, s.n_layer = 3, s.n_head = 4, s.n_head_kv = 4, s.n_ff = 96, s.n_ctx = 163840;
    s.kv_lora_rank = 32, s.qk_nope = 16, s.qk_rope = 8, s.v_head = 16, s.n_ff_exp = 32;
    s.n_expert = 16, s.n_expert_used = 6, s.n_expert_shared = 2, s.n_dense_lead = 1;
    s.yarn_factor = 40.0f;
  } else if (name == "tiny-v2") {  // V2 structure: q bottleneck, group-limited greedy routing
    s = preset("tiny-v2-lite");
    s.q_lora_rank = 48, s.n_expert = 16, s.n_expert_used = 4, s.n_group = 4, s.n_group_used = 2;
    s.routed_scale = 16.0f;
  } else if (name == "tiny-v3") {  // V3 structure: sigmoid + bias, 8 groups / 4, scale 2.5, MTP
    s = preset("tiny-v2-lite");
    s.q_lora_rank = 48, s.n_expert = 16, s.n_expert_used = 4, s.n_group = 8, s.n_group_used = 4;
    s.gating = 2, s.expert_bias = true, s.norm_topk = true, s.routed_scale = 2.5f;
    s.n_expert_shared = 1, s.n_nextn = 1, s.mscale_all_dim = 1.0f;
  } else {
    fail("unknown preset '", name,
         "' (deepseek-coder-1.3b, r1-distill-qwen-1.5b, deepseek-v2-lite, ",
         "tiny-llama, tiny-qwen2, tiny-v2-lite, tiny-v2, tiny-v3)");
  }
  return s;
}

namespace synth_detail {

// Deterministic uniform values with standard deviation `stddev`, seeded per tensor name, so
// a tensor holds the same underlying numbers whatever its storage type.
void fill_random(float* x, int64_t n, uint64_t seed, const std::string& name, float stddev,
                 float mean) {
  uint64_t s = seed * 0x9E3779B97F4A7C15ull ^ std::hash<std::string>{}(name);
  const float a = stddev * std::sqrt(3.0f);
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float u = float(double(z >> 11) * (1.0 / 9007199254740992.0));  // [0, 1)
    x[i] = mean + a * (2.0f * u - 1.0f);
  }
}

namespace {
// `type`, or F32 when rows of `cols` values hold no whole blocks of it.
DType storable(DType type, int64_t cols) {
  return cols % dtype_info(type).block_elems ? DType::F32 : type;
}
}  // namespace

void add_weight_values(GgufWriter& w, const std::string& name, DType type, std::vector<int64_t> ne,
                       std::vector<float> values) {
  const int64_t cols = ne[0];
  type = storable(type, cols);
  if (type == DType::F32) return w.add_tensor_f32(name, std::move(ne), std::move(values));
  auto data = std::make_shared<const std::vector<float>>(std::move(values));
  w.add_tensor(name, type, ne, [=](uint8_t* dst, size_t) {
    const size_t rb = row_bytes(type, cols);
    const int64_t rows = int64_t(data->size()) / cols;
    for (int64_t r = 0; r < rows; ++r)
      quantize_row(type, data->data() + r * cols, dst + size_t(r) * rb, cols);
  });
}

void add_random_weight(GgufWriter& w, const std::string& name, DType type, std::vector<int64_t> ne,
                       float gain, uint64_t seed) {
  const int64_t cols = ne[0];
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  type = storable(type, cols);
  w.add_tensor(name, type, ne, [=](uint8_t* dst, size_t) {
    std::vector<float> row(static_cast<size_t>(cols));
    const size_t rb = row_bytes(type, cols);
    for (int64_t r = 0; r < rows; ++r) {
      fill_random(row.data(), cols, seed + uint64_t(r) * 7919, name, gain / std::sqrt(float(cols)),
                  0.0f);
      quantize_row(type, row.data(), dst + size_t(r) * rb, cols);
    }
  });
}

void add_random_vector(GgufWriter& w, const std::string& name, int64_t n, float stddev, float mean,
                       uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  fill_random(v.data(), n, seed, name, stddev, mean);
  w.add_tensor_f32(name, {n}, std::move(v));
}

}  // namespace synth_detail

void write_synthetic_model(const SynthSpec& s, const std::string& path) {
  if (s.vocab_path.empty()) fail("synthetic model: a vocab GGUF is required (--vocab)");
  if (s.arch == "deepseek2") return synth_detail::write_deepseek2(s, path);
  auto vocab = GgufFile::open(s.vocab_path);
  const int64_t n_tokens =
      int64_t(vocab->get_array("tokenizer.ggml.tokens", GgufType::STRING).strs.size());
  const int64_t V = s.n_vocab > 0 ? s.n_vocab : n_tokens;
  if (V < n_tokens)
    fail("synthetic model: n_vocab ", V, " is smaller than the vocab's ", n_tokens, " tokens");
  const int hd = s.head_dim > 0 ? s.head_dim : s.n_embd / s.n_head;
  const int64_t E = s.n_embd, Q = int64_t(s.n_head) * hd, KV = int64_t(s.n_head_kv) * hd,
                F = s.n_ff;

  GgufWriter w;
  const std::string a = s.arch + ".";
  w.set("general.architecture", GgufValue::make_str(s.arch));
  w.set("general.name", GgufValue::make_str("hondo synthetic " + s.arch));
  w.set(a + "context_length", GgufValue::make_u32(uint32_t(s.n_ctx)));
  w.set(a + "embedding_length", GgufValue::make_u32(uint32_t(E)));
  w.set(a + "block_count", GgufValue::make_u32(uint32_t(s.n_layer)));
  w.set(a + "feed_forward_length", GgufValue::make_u32(uint32_t(F)));
  w.set(a + "attention.head_count", GgufValue::make_u32(uint32_t(s.n_head)));
  w.set(a + "attention.head_count_kv", GgufValue::make_u32(uint32_t(s.n_head_kv)));
  if (s.head_dim > 0) {
    w.set(a + "attention.key_length", GgufValue::make_u32(uint32_t(hd)));
    w.set(a + "attention.value_length", GgufValue::make_u32(uint32_t(hd)));
  }
  w.set(a + "rope.dimension_count", GgufValue::make_u32(uint32_t(hd)));
  w.set(a + "rope.freq_base", GgufValue::make_f32(s.rope_base));
  if (s.rope_linear_factor > 0) {
    w.set(a + "rope.scaling.type", GgufValue::make_str("linear"));
    w.set(a + "rope.scaling.factor", GgufValue::make_f32(s.rope_linear_factor));
  }
  w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::make_f32(s.rms_eps));
  w.set(a + "vocab_size", GgufValue::make_u32(uint32_t(V)));
  w.set("general.file_type", GgufValue::make_u32(file_type_of(s.type)));
  w.copy_metadata(*vocab, "tokenizer.");

  const uint64_t seed = s.seed;
  auto matrix = [&](const std::string& name, DType type, int64_t cols, int64_t rows, float gain) {
    synth_detail::add_random_weight(w, name, type, {cols, rows}, gain, seed);
  };
  auto vec = [&](const std::string& name, int64_t n, float stddev, float mean) {
    synth_detail::add_random_vector(w, name, n, stddev, mean, seed);
  };
  matrix("token_embd.weight", s.embd_type, E, V, std::sqrt(float(E)));  // embeddings ~ U(std 1)
  vec("output_norm.weight", E, 0.1f, 1.0f);
  if (!s.tied_output) matrix("output.weight", s.output_type, E, V, 4.0f);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", E, 0.1f, 1.0f);
    matrix(p + "attn_q.weight", s.type, E, Q, 1.0f);
    matrix(p + "attn_k.weight", s.type, E, KV, 1.0f);
    matrix(p + "attn_v.weight", s.type, E, KV, 1.0f);
    if (s.arch == "qwen2") {
      vec(p + "attn_q.bias", Q, 0.1f, 0.0f);
      vec(p + "attn_k.bias", KV, 0.1f, 0.0f);
      vec(p + "attn_v.bias", KV, 0.1f, 0.0f);
    }
    matrix(p + "attn_output.weight", s.type, Q, E, 1.0f);
    vec(p + "ffn_norm.weight", E, 0.1f, 1.0f);
    matrix(p + "ffn_gate.weight", s.type, E, F, 1.0f);
    matrix(p + "ffn_up.weight", s.type, E, F, 1.0f);
    matrix(p + "ffn_down.weight", s.type, F, E, 1.0f);
  }
  w.write(path);
}

}  // namespace hondo
