#include "model/deepseek2.h"

#include "core/error.h"
#include "core/phase_clock.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "model/batch.h"
#include "model/weights.h"

namespace hondo {

DeepSeek2Model::DeepSeek2Model(std::unique_ptr<GgufFile> file) {
  file_ = std::move(file);
  cfg_ = DeepSeek2Config::from_gguf(*file_);
  const DeepSeek2Config& c = cfg_;
  const WeightBinder w(*file_);
  const int64_t E = c.n_embd, H = c.n_head, L = c.kv_lora_rank, R = c.qk_rope, V = c.v_head;
  const int64_t QH = c.qk_head(), NE = c.n_expert, F = c.n_ff_exp;
  tok_embd_ = &w.get("token_embd.weight", {E, c.n_vocab});
  output_ = w.optional("output.weight", {E, c.n_vocab});
  if (!output_) output_ = tok_embd_;
  output_norm_ = to_f32(w.get("output_norm.weight", {E}));

  for (int l = 0; l < c.n_layer + c.n_nextn; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Block b;
    b.attn_norm = to_f32(w.get(p + "attn_norm.weight", {E}));
    MlaWeights& m = b.mla;
    if (c.q_lora_rank > 0) {
      m.wq_a = &w.get(p + "attn_q_a.weight", {E, c.q_lora_rank});
      m.q_a_norm = to_f32(w.get(p + "attn_q_a_norm.weight", {c.q_lora_rank}));
      m.wq_b = &w.get(p + "attn_q_b.weight", {c.q_lora_rank, H * QH});
    } else {
      m.wq = &w.get(p + "attn_q.weight", {E, H * QH});
    }
    m.wkv_a = &w.get(p + "attn_kv_a_mqa.weight", {E, L + R});
    m.kv_a_norm = to_f32(w.get(p + "attn_kv_a_norm.weight", {L}));
    if (c.split_kv_b) {
      m.wk_b = w.get(p + "attn_k_b.weight", {c.qk_nope, L, H});
      m.wv_b = w.get(p + "attn_v_b.weight", {L, V, H});
    } else {
      split_kv_b(c, w.get(p + "attn_kv_b.weight", {L, H * (c.qk_nope + V)}), m);
    }
    build_uk(c, m);
    m.wo = &w.get(p + "attn_output.weight", {H * V, E});
    b.ffn_norm = to_f32(w.get(p + "ffn_norm.weight", {E}));
    if (l < c.n_dense_lead) {
      b.dense = {&w.get(p + "ffn_gate.weight", {E, c.n_ff}),
                 &w.get(p + "ffn_up.weight", {E, c.n_ff}),
                 &w.get(p + "ffn_down.weight", {c.n_ff, E}),
                 c.n_ff,
                 0,
                 0};
    } else {
      b.moe = true;
      MoeWeights& x = b.experts;
      x.router = &w.get(p + "ffn_gate_inp.weight", {E, NE});
      if (c.expert_bias) x.bias = to_f32(w.get(p + "exp_probs_b.bias", {NE}));
      x.routed = {&w.get(p + "ffn_gate_exps.weight", {E, F, NE}),
                  &w.get(p + "ffn_up_exps.weight", {E, F, NE}),
                  &w.get(p + "ffn_down_exps.weight", {F, E, NE}),
                  F,
                  0,
                  0};
      const int64_t FS = F * c.n_expert_shared;
      if (FS <= 0) fail(file_->path(), ": MoE blocks need shared experts (expert_shared_count)");
      x.shared = {&w.get(p + "ffn_gate_shexp.weight", {E, FS}),
                  &w.get(p + "ffn_up_shexp.weight", {E, FS}),
                  &w.get(p + "ffn_down_shexp.weight", {FS, E}),
                  FS,
                  0,
                  0};
    }
    if (l >= c.n_layer) {
      NextN n;
      n.eh_proj = &w.get(p + "nextn.eh_proj.weight", {2 * E, E});
      n.enorm = &w.get(p + "nextn.enorm.weight", {E});
      n.hnorm = &w.get(p + "nextn.hnorm.weight", {E});
      w.optional(p + "nextn.shared_head_norm.weight", {E});
      w.optional(p + "nextn.shared_head_head.weight", {E, c.n_vocab});
      w.optional(p + "nextn.embed_tokens.weight", {E, c.n_vocab});
      nextn_.push_back(n);
    }
    blocks_.push_back(std::move(b));
  }
  rope_ = c.yarn ? Rope::yarn(R, c.rope_base, c.yarn_factor, c.yarn_original_ctx, c.yarn_beta_fast,
                              c.yarn_beta_slow, 1.0f, RopeStyle::Interleaved)
                 : Rope::linear(int(R), c.rope_base, 1.0f, RopeStyle::Interleaved);
  repack_weights(*file_, output_);
  // W_UK and W_UV are held by value (views into 3-D tensors): give them the repacked tiles,
  // or the moved rows.
  for (Block& b : blocks_)
    for (Tensor* t : {&b.mla.wk_b, &b.mla.wv_b})
      if (const Tensor* f = file_->find_tensor(t->name)) t->packed = f->packed, t->data = f->data;
}

namespace {
// The cache's second stream, MLA's shared rotary key k^R (64 values a position in V2 and V3),
// stays F16 in a Q8_0 cache: in Q8_0 it would save 60 of the 672 bytes a position and layer
// then holds (the latent's 512 values in 544), for rounding in the one part of the key that
// carries the position. The tiny test models' rotary keys (8 or 16 values) are shorter than
// one Q8_0 block, too.
DType rope_key_type(DType kv_type) {
  return kv_type == DType::Q8_0 ? DType::F16 : kv_type;
}
}  // namespace

size_t DeepSeek2Model::kv_bytes_per_token(DType kv_type) const {
  return KvCache::bytes_per_token(cfg_.n_layer, cfg_.kv_lora_rank, cfg_.qk_rope, kv_type,
                                  rope_key_type(kv_type));
}

size_t DeepSeek2Model::kv_bytes_per_token_mha(DType kv_type) const {
  // What ordinary multi-head attention would cache: full K and V for every head.
  return KvCache::bytes_per_token(cfg_.n_layer, cfg_.n_head * cfg_.qk_head(),
                                  cfg_.n_head * cfg_.v_head, kv_type, kv_type);
}

std::unique_ptr<KvCache> DeepSeek2Model::new_cache(int n_ctx, DType kv_type) const {
  return std::make_unique<KvCache>(cfg_.n_layer, n_ctx, cfg_.kv_lora_rank, cfg_.qk_rope, kv_type,
                                   rope_key_type(kv_type));
}

void DeepSeek2Model::forward(std::vector<SeqBatch>& batch, ThreadPool& pool,
                             std::vector<float>& logits) {
  const int64_t E = cfg_.n_embd;
  std::vector<int> tok_pos;
  std::vector<TokenId> ids;
  gather_batch(batch, cfg_.n_vocab, ids, tok_pos);
  const int64_t T = int64_t(ids.size());
  const int64_t half = cfg_.qk_rope / 2;
  // Working buffers kept from call to call (layers.h, scratch): a decode step allocates nothing.
  thread_local std::vector<float> x_buf, xn_buf, tmp_buf, cs_buf, sn_buf;
  const size_t n_x = size_t(T * E);
  float* x = scratch(x_buf, n_x);                 // [T, E] the residual stream
  float* xn = scratch(xn_buf, n_x);               // [T, E] normed
  float* tmp = scratch(tmp_buf, n_x);             // [T, E] a sublayer's output
  float* cs = scratch(cs_buf, size_t(T * half));  // [T, qk_rope / 2]
  float* sn = scratch(sn_buf, size_t(T * half));  // [T, qk_rope / 2]
  PhaseMarks marks;                               // bench --phases (core/phase_clock.h)
  for (int64_t t = 0; t < T; ++t) {
    dequantize_row(tok_embd_->type, tok_embd_->row(ids[size_t(t)]), x + t * E, E);
    rope_.angles(tok_pos[size_t(t)], cs + t * half, sn + t * half);
  }
  marks.end(Phase::kEmbed);

  for (int l = 0; l < cfg_.n_layer; ++l) {
    const Block& b = blocks_[size_t(l)];
    prefetch_decode_stores(batch, tok_pos, l);
    for (int64_t t = 0; t < T; ++t)
      rms_norm(x + t * E, b.attn_norm.data(), xn + t * E, int(E), cfg_.rms_eps);
    mla_forward(cfg_, b.mla, rope_, l, batch, tok_pos, cs, sn, xn, tmp, pool, mla_mode_,
                mla_split_positions_);
    for (size_t i = 0; i < n_x; ++i) x[i] += tmp[i];
    marks.end(Phase::kAttention);
    for (int64_t t = 0; t < T; ++t)
      rms_norm(x + t * E, b.ffn_norm.data(), xn + t * E, int(E), cfg_.rms_eps);
    if (b.moe)
      moe_forward(cfg_, b.experts, xn, T, tmp, pool);
    else
      swiglu_ffn(b.dense, xn, T, E, tmp, pool);
    for (size_t i = 0; i < n_x; ++i) x[i] += tmp[i];
    marks.end(Phase::kFfn);
  }

  finish_batch(batch, x, E, output_norm_, cfg_.rms_eps, *output_, cfg_.n_vocab, pool, logits);
  marks.end(Phase::kOutput);
}

}  // namespace hondo
