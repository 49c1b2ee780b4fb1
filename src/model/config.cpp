#include "model/config.h"

#include "core/error.h"
#include "io/gguf.h"

namespace hondo {

DenseConfig DenseConfig::from_gguf(const GgufFile& f) {
  DenseConfig c;
  c.arch = f.get_str("general.architecture");
  if (c.arch != "llama" && c.arch != "qwen2")
    fail(f.path(), ": architecture '", c.arch, "' is not a dense LLaMA/Qwen2 model");
  const std::string a = c.arch + ".";
  c.n_embd = int(f.get_int(a + "embedding_length"));
  c.n_layer = int(f.get_int(a + "block_count"));
  c.n_ff = int(f.get_int(a + "feed_forward_length"));
  c.n_head = int(f.get_int(a + "attention.head_count"));
  c.n_head_kv = int(f.get_int(a + "attention.head_count_kv", c.n_head));
  c.n_ctx_train = int(f.get_int(a + "context_length", 4096));
  c.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_base = float(f.get_float(a + "rope.freq_base", 10000.0));
  if (c.n_embd <= 0 || c.n_layer <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.n_ff <= 0)
    fail(f.path(), ": invalid hyper-parameters (embedding ", c.n_embd, ", blocks ", c.n_layer,
         ", heads ", c.n_head, "/", c.n_head_kv, ", ffn ", c.n_ff, ")");
  if (c.n_head % c.n_head_kv != 0)
    fail(f.path(), ": head_count ", c.n_head, " is not a multiple of head_count_kv ", c.n_head_kv);
  c.head_dim = int(f.get_int(a + "attention.key_length", c.n_embd / c.n_head));
  if (f.get_int(a + "attention.value_length", c.head_dim) != c.head_dim)
    fail(f.path(), ": key_length and value_length differ, which dense models do not use");
  c.rope_dim = int(f.get_int(a + "rope.dimension_count", c.head_dim));
  if (c.rope_dim > c.head_dim || c.rope_dim % 2)
    fail(f.path(), ": rope.dimension_count ", c.rope_dim, " must be even and <= head size ",
         c.head_dim);

  // Linear RoPE scaling (DeepSeek-Coder: factor 4 over a 4K base context).
  const std::string scaling = f.get_str(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    const double factor = f.get_float(a + "rope.scaling.factor", 1.0);
    if (factor <= 0) fail(f.path(), ": rope.scaling.factor must be positive, found ", factor);
    c.rope_freq_scale = float(1.0 / factor);
  } else if (scaling != "none") {
    fail(f.path(), ": RoPE scaling '", scaling, "' is not supported for ", c.arch, " yet");
  } else if (f.has(a + "rope.scale_linear")) {  // older files
    c.rope_freq_scale = float(1.0 / f.get_float(a + "rope.scale_linear"));
  }
  c.rope_style = c.arch == "qwen2" ? RopeStyle::NeoX : RopeStyle::Interleaved;

  const Tensor* embd = f.find_tensor("token_embd.weight");
  if (!embd) fail(f.path(), ": missing tensor 'token_embd.weight'");
  c.n_vocab = int(f.get_int(a + "vocab_size", embd->ne[1]));
  c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.tied_output = f.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace hondo
