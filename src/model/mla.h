// Multi-head Latent Attention (DeepSeek-V2 paper, section 2.1). Per token t and head i:
//
//   c_t   = RMSNorm(W_DKV h_t)                 the latent, d_c values: the only thing cached
//   k^R_t = RoPE(W_KR h_t)                     one rotary key shared by all heads (cached)
//   q_t,i = [q^C_t,i ; RoPE(q^R_t,i)]          from h_t, or through a low-rank q bottleneck
//   k_t,i = [W_UK,i c_t ; k^R_t]               never materialised here
//   v_t,i = W_UV,i c_t                         never materialised here
//
// Absorption (paper, eq. 10 and the text after it): q^C·(W_UK c) = (W_UK^T q^C)·c, so each
// query is projected once into latent space and attends directly over the cached c; the
// output is projected once through W_UV. The cache per token and layer is d_c + d_h^R values
// (512 + 64 for V2/V3) instead of 2 · n_head · d_h for ordinary multi-head attention.
#pragma once
#include <vector>

#include "core/huge_pages.h"
#include "core/thread_pool.h"
#include "model/deepseek2_config.h"
#include "model/layers.h"
#include "model/model.h"

namespace hondo {

struct MlaWeights {
  const Tensor* wq = nullptr;     // [n_embd, n_head * qk_head]       (no q bottleneck)
  const Tensor* wq_a = nullptr;   // [n_embd, q_lora_rank]            (q bottleneck)
  const Tensor* wq_b = nullptr;   // [q_lora_rank, n_head * qk_head]
  std::vector<float> q_a_norm;    // [q_lora_rank]
  const Tensor* wkv_a = nullptr;  // [n_embd, kv_lora_rank + qk_rope]: W_DKV and W_KR together
  std::vector<float> kv_a_norm;   // [kv_lora_rank]
  Tensor wk_b;                    // [qk_nope, kv_lora_rank, n_head]: W_UK^T per head
  Tensor wv_b;                    // [kv_lora_rank, v_head, n_head]:  W_UV per head
  Tensor wk_full;                 // [kv_lora_rank, qk_nope, n_head]: W_UK per head (F32), for
                                  // decompressing keys in the naive path
  const Tensor* wo = nullptr;     // [n_head * v_head, n_embd]
  std::vector<uint8_t> owned;     // W_UK / W_UV split out of an older file's attn_kv_b
  HugeBuffer owned_tiles;         // the same repacked for matmul (kernels/packed.h), if it can be
  std::vector<float> owned_uk;    // wk_full's data
};

// How attention is computed. Absorbed: queries move into latent space (cheapest per cached
// position: decode). Naive: keys and values are decompressed from the cached latents, then
// ordinary attention (cheapest per query-key pair: long prefill). Auto picks by cost.
enum class MlaMode { Auto, Absorbed, Naive };

// Auto takes the naive path only while its decompressed keys and values (every cached
// position of the batch; the values twice, as computed and transposed) fit in this much.
constexpr double kMlaNaiveScratchBytes = 512.0 * 1024 * 1024;

// Decode steps whose tokens attend over at least this many positions split them between the
// threads (model/latent_attention.h). V2-Lite's shape with 4 layers, 2 threads, two rounds:
// at 16384 positions 62.5 and 49.7 t/s against 56.0 and 44.2 with the heads split; at 4096
// 115.6 and 79.7 against 113.8 and 83.6, the same within noise.
constexpr int64_t kMlaSplitPositions = 4096;

// Attention of a batch of sequences' new tokens. xn: [n_tok, n_embd] (normalised input),
// out: [n_tok, n_embd]. Stores each token's latent and rotary key in its sequence's cache.
// rope_cos, rope_sin: [n_tok, qk_rope / 2], Rope::angles of each token's position (the same
// for every layer, so the caller computes them once per batch).
void mla_forward(const DeepSeek2Config& c, const MlaWeights& w, const Rope& rope, int layer,
                 std::vector<SeqBatch>& batch, const std::vector<int>& tok_pos,
                 const float* rope_cos, const float* rope_sin, const float* xn, float* out,
                 ThreadPool& pool, MlaMode mode = MlaMode::Auto,
                 int64_t split_min_positions = kMlaSplitPositions);

// The multiply-adds of each method for a batch, as Auto compares them.
double mla_cost(const DeepSeek2Config& c, const std::vector<SeqBatch>& batch, MlaMode mode);

// Builds w.wk_full (W_UK with rows per (head, nope dim)) from w.wk_b.
void build_uk(const DeepSeek2Config& c, MlaWeights& w);

// Splits an older file's attn_kv_b [kv_lora_rank, n_head * (qk_nope + v_head)] into W_UK^T and
// W_UV (kept in w.owned, repacked into w.owned_tiles), the layout of newer files' attn_k_b /
// attn_v_b, in kv_b_copy_type.
void split_kv_b(const DeepSeek2Config& c, const Tensor& kv_b, MlaWeights& w);

// The type of split_kv_b's copies of an attn_kv_b of type `source`: a float type as it is (the
// values move unchanged), a quantized one as Q8_0 (within 1/254 of each block's largest value
// of what the file holds) where the copies' rows hold whole blocks, else F32. Every decode step
// reads them: V2-Lite Q4_0 with the copies in F32 read 8.4 MB of them a layer instead of 1.2
// and decoded 37.9 against 47.2 t/s for the same weights split in the file.
DType kv_b_copy_type(const DeepSeek2Config& c, DType source);

}  // namespace hondo
