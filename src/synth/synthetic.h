// Random-weight GGUF models of any supported architecture and shape, with a real tokenizer
// copied from a vocab GGUF. Tests and benchmarks run on these: they exercise every code path
// at real sizes, and their logits are checked against the reference implementation (their
// perplexity means nothing).
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"

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

  // Named real shapes: "deepseek-coder-1.3b", "r1-distill-qwen-1.5b", "tiny-llama", "tiny-qwen2".
  static SynthSpec preset(const std::string& name);
};

void write_synthetic_model(const SynthSpec& spec, const std::string& path);

}  // namespace hondo
