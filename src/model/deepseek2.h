// DeepSeek-V2 / V2-Lite / V2.5 / Coder-V2 / V3 / R1 ("deepseek2" in GGUF). Per block:
//   h = x + MLA(RMSNorm(x))                                   (mla.h)
//   y = h + FFN(RMSNorm(h))   dense for the first blocks, DeepSeekMoE after (moe.h)
// V3's multi-token-prediction block is loaded and checked; generation uses the trunk.
#pragma once
#include <vector>

#include "model/deepseek2_config.h"
#include "model/mla.h"
#include "model/model.h"
#include "model/moe.h"

namespace hondo {

class DeepSeek2Model : public Model {
 public:
  explicit DeepSeek2Model(std::unique_ptr<GgufFile> file);

  const DeepSeek2Config& config() const { return cfg_; }
  // Tests force one attention method; Auto (the default) picks the cheaper per batch.
  void set_mla_mode(MlaMode m) { mla_mode_ = m; }
  // Decode steps over at least n positions split them between the threads (mla.h).
  void set_mla_split_positions(int64_t n) { mla_split_positions_ = n; }
  std::string arch() const override { return "deepseek2"; }
  int n_vocab() const override { return cfg_.n_vocab; }
  int n_ctx_train() const override { return cfg_.n_ctx_train; }
  size_t kv_bytes_per_token(DType kv_type) const override;
  size_t kv_bytes_per_token_mha(DType kv_type) const override;
  std::unique_ptr<KvCache> new_cache(int n_ctx, DType kv_type) const override;
  void forward(std::vector<SeqBatch>& batch, ThreadPool& pool, std::vector<float>& logits) override;
  std::vector<float> reference_logits(const std::vector<TokenId>& tokens,
                                      bool last_only) const override;

 private:
  struct Block {
    std::vector<float> attn_norm, ffn_norm;  // [n_embd]
    MlaWeights mla;
    bool moe = false;
    FfnWeights dense;  // leading blocks
    MoeWeights experts;
  };
  struct NextN {  // V3 multi-token prediction head (validated, not yet used for drafting)
    const Tensor *eh_proj = nullptr, *enorm = nullptr, *hnorm = nullptr;
  };

  DeepSeek2Config cfg_;
  MlaMode mla_mode_ = MlaMode::Auto;
  int64_t mla_split_positions_ = kMlaSplitPositions;
  Rope rope_;
  const Tensor* tok_embd_;  // [n_embd, n_vocab]
  const Tensor* output_;    // [n_embd, n_vocab]
  std::vector<float> output_norm_;
  std::vector<Block> blocks_;  // trunk + MTP blocks
  std::vector<NextN> nextn_;
};

}  // namespace hondo
