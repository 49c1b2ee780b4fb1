// The dense decoder-only transformer of LLaMA (DeepSeek-Coder, DeepSeek-LLM) and Qwen2
// (DeepSeek-R1-Distill-Qwen). Per block, with pre-normalisation:
//   h = x + W_o · Attention(RoPE(W_q·n), RoPE(W_k·n), W_v·n),   n = RMSNorm(x)
//   y = h + W_down · (silu(W_gate·m) ⊙ W_up·m),                m = RMSNorm(h)
// Qwen2 differs only by biases on q/k/v and NeoX-style RoPE pairs.
#pragma once
#include <vector>

#include "model/config.h"
#include "model/layers.h"
#include "model/model.h"

namespace hondo {

class DenseModel : public Model {
 public:
  DenseModel(std::unique_ptr<GgufFile> file);

  const DenseConfig& config() const { return cfg_; }
  std::string arch() const override { return cfg_.arch; }
  int n_vocab() const override { return cfg_.n_vocab; }
  int n_ctx_train() const override { return cfg_.n_ctx_train; }
  size_t kv_bytes_per_token(DType kv_type) const override;
  std::unique_ptr<KvCache> new_cache(int n_ctx, DType kv_type) const override;
  void forward(std::vector<SeqBatch>& batch, ThreadPool& pool, std::vector<float>& logits) override;
  std::vector<float> reference_logits(const std::vector<TokenId>& tokens,
                                      bool last_only) const override;

 private:
  struct Block {
    const Tensor *wq, *wk, *wv, *wo;         // [n_embd, n_head*hd] ... [n_head*hd, n_embd]
    const Tensor *w_gate, *w_up, *w_down;    // [n_embd, n_ff], [n_embd, n_ff], [n_ff, n_embd]
    std::vector<float> attn_norm, ffn_norm;  // [n_embd]
    std::vector<float> bq, bk, bv;           // [n_head*hd], [n_kv*hd], [n_kv*hd] (Qwen2)
  };

  void attention(int layer, std::vector<SeqBatch>& batch, const std::vector<int>& tok_pos,
                 const float* q, float* out, ThreadPool& pool) const;

  DenseConfig cfg_;
  Rope rope_;
  const Tensor* tok_embd_;  // [n_embd, n_vocab]
  const Tensor* output_;    // [n_embd, n_vocab] (tok_embd_ when tied)
  std::vector<float> output_norm_;
  std::vector<Block> blocks_;
};

}  // namespace hondo
