// hondo convert: a Hugging Face checkpoint folder (config.json, safetensors shards,
// tokenizer.json, tokenizer_config.json) -> one GGUF file with llama.cpp's metadata keys and
// tensor names, so the result also runs in llama.cpp and Ollama.
//
//   LlamaForCausalLM       -> llama     (DeepSeek-Coder, DeepSeek-LLM; q/k rows permuted from
//                                        HF's rotate-half order to GGUF's interleaved pairs)
//   Qwen2ForCausalLM       -> qwen2     (R1-Distill-Qwen; q/k/v biases)
//   DeepseekV2ForCausalLM  -> deepseek2 (V2, V2-Lite, V2.5, Coder-V2)
//   DeepseekV3ForCausalLM  -> deepseek2 (V3, R1; FP8 e4m3 weights dequantized with their
//                                        128x128 weight_scale_inv blocks; MTP block kept)
// For MLA the KV up-projection kv_b_proj is split per head into attn_k_b (transposed) and
// attn_v_b, the layout current llama.cpp writes; routed experts are stacked into 3-D tensors.
// Tensors are produced one at a time from the memory-mapped shards and written through a
// mapping of the output, so models larger than RAM convert.
#pragma once
#include <functional>
#include <string>

#include "core/thread_pool.h"

namespace hondo {

struct ConvertOptions {
  // F32, F16, BF16, or a quantization mix (Q8_0, Q4_K_M, ...: see quant_mix). "auto": the
  // checkpoint's own float type (BF16 for FP8 checkpoints).
  std::string type = "auto";
  ThreadPool* pool = nullptr;
  std::function<void(const std::string&)> on_note;
};

struct ConvertReport {
  std::string hf_arch, gguf_arch, type;
  int tensors = 0;
  size_t bytes = 0;
};

ConvertReport convert_hf(const std::string& hf_dir, const std::string& out_path,
                         const ConvertOptions& opt = {});

}  // namespace hondo
