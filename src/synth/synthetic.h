// Random-weight GGUF models of any supported architecture and shape, with a real tokenizer
// copied from a vocab GGUF. Tests and benchmarks run on these: they exercise every code path
// at real sizes, and their logits are checked against the reference implementation (their
// perplexity means nothing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "io/gguf.h"

namespace hondo {

struct SynthSpec {
  std::string arch = "llama";  // llama | qwen2
  int n_embd = 64;
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int head_dim = 0;  // 0: n_embd / n_head
  int n_ff = 128;
  int n_ctx = 2048;
  int n_vocab = 0;  // 0: the vocab file's size (more rows than tokens is allowed)
  float rope_base = 10000.0f;
  float rope_linear_factor = 0.0f;  // > 0: write linear RoPE scaling
  float rms_eps = 1e-6f;
  bool tied_output = false;
  DType type = DType::F32;       // matrices; norms and biases stay F32
  DType embd_type = DType::F32;  // token embedding
  DType output_type = DType::F32;
  std::string vocab_path;  // GGUF with tokenizer.* metadata (required)
  uint64_t seed = 1;

  // deepseek2 only (MLA + DeepSeekMoE); n_ff is the dense lead blocks' FFN width.
  int q_lora_rank = 0;  // 0: direct query projection (V2-Lite)
  int kv_lora_rank = 32;
  int qk_nope = 16, qk_rope = 8, v_head = 16;
  int n_ff_exp = 32;
  int n_expert = 8, n_expert_used = 2, n_expert_shared = 1;
  int n_dense_lead = 1;
  int n_group = 1, n_group_used = 1;
  int gating = 1;            // 1 softmax (V2), 2 sigmoid (V3)
  bool expert_bias = false;  // V3 exp_probs_b
  bool norm_topk = false;
  float routed_scale = 1.0f;
  int n_nextn = 0;           // V3 multi-token-prediction blocks
  bool split_kv_b = true;    // attn_k_b/attn_v_b (newer files) or attn_kv_b (older)
  float yarn_factor = 0.0f;  // > 0: YaRN with original context yarn_original_ctx
  int yarn_original_ctx = 4096;
  float mscale_all_dim = 0.707f;

  // Named shapes: "deepseek-coder-1.3b", "r1-distill-qwen-1.5b", "deepseek-v2-lite" (real
  // sizes); "tiny-llama", "tiny-qwen2", "tiny-v2-lite", "tiny-v2", "tiny-v3" (for tests).
  static SynthSpec preset(const std::string& name);
};

void write_synthetic_model(const SynthSpec& spec, const std::string& path);

namespace synth_detail {
void write_deepseek2(const SynthSpec& spec, const std::string& path);
void fill_random(float* x, int64_t n, uint64_t seed, const std::string& name, float stddev,
                 float mean);
// Adds a weight of ne (GGML order) with values of std gain/sqrt(ne[0]), stored as `type` (F32
// when its rows hold no whole blocks of it); vectors get F32 values of std `stddev` around mean.
void add_random_weight(GgufWriter& w, const std::string& name, DType type, std::vector<int64_t> ne,
                       float gain, uint64_t seed);
void add_random_vector(GgufWriter& w, const std::string& name, int64_t n, float stddev, float mean,
                       uint64_t seed);
// Adds a weight of ne whose values (ne[0] per row) are given, stored as `type` (F32 when its
// rows hold no whole blocks of it).
void add_weight_values(GgufWriter& w, const std::string& name, DType type, std::vector<int64_t> ne,
                       std::vector<float> values);
}  // namespace synth_detail

}  // namespace hondo
