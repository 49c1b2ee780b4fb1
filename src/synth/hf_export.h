// The project's test tool for `hondo convert`: writes a GGUF model (llama, qwen2 or
// deepseek2) back out as a Hugging Face checkpoint folder — config.json, model.safetensors,
// tokenizer.json, tokenizer_config.json — with HF's names and layouts (rotate-half q/k rows
// for llama, one kv_b_proj per layer and one tensor per expert for DeepSeek).
#pragma once
#include <string>

namespace hondo {

struct HfExportOptions {
  // DeepSeek-V3 style: every linear weight except embeddings, output head and router as FP8
  // e4m3 with a weight_scale_inv per 128x128 block; architectures DeepseekV3ForCausalLM.
  bool fp8 = false;
  bool v3 = false;  // name the architecture DeepseekV3ForCausalLM (implied by fp8)
};

void export_hf_checkpoint(const std::string& gguf_path, const std::string& dir,
                          const HfExportOptions& opt = {});

}  // namespace hondo
