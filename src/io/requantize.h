// Rewrites a GGUF model with its weight matrices in another type or quantization mix.
//
// A mix names a base type and the tensors that get more bits because the output is most
// sensitive to them (the same roles llama.cpp's mixes raise, so files compare like for like):
//   output projection (or the tied embedding)  -> Q6_K for every quantized mix (Q8_0 when its
//                                                  rows hold no whole 256-blocks)
//   attention values (attn_v, MLA's attn_v_b / attn_kv_b) and ffn_down (dense, shared and
//   routed experts) in the first and last eighth of the layers and every third between
//                                               -> Q6_K in Q4_K_M / Q5_K_M, Q4_K in Q3_K_M,
//                                                  Q3_K in Q2_K
// 1-D tensors (norms, biases), the MoE router (ffn_gate_inp) and expert bias (exp_probs_b)
// are never quantized. A matrix whose rows hold no whole blocks of its type falls back as
// llama.cpp does (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0, then F16).
#pragma once
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace hondo {

struct QuantMix {
  std::string name;    // "Q4_K_M"
  DType base;          // type of most matrices
  DType sensitive;     // attention values and ffn_down in the layers that get more bits
  DType output;        // output projection
  uint32_t file_type;  // general.file_type (llama.cpp's enum)
};

// Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q3_K_M, Q2_K, Q6_K, Q8_0, Q5_1, Q5_0, Q4_1, Q4_0, BF16,
// F16, F32 (case-insensitive). Throws listing the known names.
QuantMix quant_mix(const std::string& name);
std::vector<std::string> quant_mix_names();

// The type a tensor gets under the mix (its current type for tensors that stay as they are).
// n_layer: the model's transformer blocks (without multi-token-prediction blocks).
DType mix_tensor_type(const QuantMix& mix, const std::string& name, int n_dims, int64_t cols,
                      DType current, int n_layer, bool output_tied);

struct RequantizeReport {
  int converted = 0, fallback = 0, kept = 0;
  size_t bytes_in = 0, bytes_out = 0;
  std::vector<std::pair<DType, int>> type_counts;  // tensors written per type
};

// Rows of each tensor are quantized in parallel on `pool` (one thread when null).
RequantizeReport requantize_model(const std::string& in, const std::string& out,
                                  const QuantMix& mix, ThreadPool* pool = nullptr);
inline RequantizeReport requantize_model(const std::string& in, const std::string& out,
                                         DType type) {
  return requantize_model(in, out, quant_mix(dtype_name(type)));
}

}  // namespace hondo
