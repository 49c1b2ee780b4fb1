// Hyper-parameters of the dense decoder architectures (LLaMA, Qwen2), read from GGUF metadata
// with explicit defaults. Variants are told apart by the keys and tensors present.
#pragma once
#include <string>

namespace hondo {

class GgufFile;

enum class RopeStyle {
  Interleaved,  // pairs (x[2i], x[2i+1]): LLaMA as converted to GGUF (Q/K rows permuted)
  NeoX,         // pairs (x[i], x[i + d/2]): Qwen2, DeepSeek-V2
};

struct DenseConfig {
  std::string arch;  // "llama" | "qwen2"
  int n_vocab = 0;
  int n_embd = 0;  // hidden size
  int n_layer = 0;
  int n_head = 0;
  int n_head_kv = 0;  // < n_head: grouped-query attention
  int head_dim = 0;   // key/value length per head (default n_embd / n_head)
  int n_ff = 0;       // SwiGLU inner size
  int n_ctx_train = 0;
  int rope_dim = 0;  // rotated dimensions per head (default head_dim)
  float rms_eps = 1e-5f;
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear RoPE scaling: positions are multiplied by this
  RopeStyle rope_style = RopeStyle::Interleaved;
  bool qkv_bias = false;     // Qwen2
  bool tied_output = false;  // no output.weight: the embedding matrix is reused

  static DenseConfig from_gguf(const GgufFile& f);
};

}  // namespace hondo
