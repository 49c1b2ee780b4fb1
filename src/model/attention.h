// Causal attention of a block of queries as two matrix products, for prefill over long
// prompts. A query at a time would take a dot product per cached key and an axpy per value
// (a horizontal sum and a dependency chain for every key): at a few thousand positions that
// was most of a prompt's time. Here up to 32 queries of one head are the lanes of the float
// GEMM micro-kernel (kernels/gemm_f32.h), so
//   S^T = K Q^T            [n_keys, 32]  (each key row broadcast onto 32 queries' values)
//   O^T = V^T softmax(S)   [dv, 32]
// run at the FMA rate, and the working memory is the [n_keys, 32] scores: linear in the
// context length.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"
#include "kernels/gemm_f32.h"
#include "model/kv_cache.h"

namespace hondo {

// One slice of the key dimension (MLA's keys are [k^C ; k^R] from two buffers):
// keys [n_keys, dim] rows `ld` apart, queries [n_q, dim] rows `q_ld` apart.
struct KeySlice {
  const float* keys;
  int64_t ld;
  const float* q;
  int64_t q_ld;
  int64_t dim;
};

// For each query i < n_q <= kPanelTokens, at position pos[i] (it sees keys 0..pos[i]):
//   s_ij = scale * sum over the slices of q_i . k_j        j <= pos[i]
//   out[i * out_ld + c] = sum_j softmax(s_i)_j vt[c * vt_ld + j]     c < dv
// vt holds the values transposed: [dv, n_keys] rows vt_ld apart, n_keys = max(pos) + 1.
// micro: a kernel of gemm_micro_variants() (null: the one gemm_f32 uses).
void attend_query_block(const KeySlice* slices, int n_slices, const float* vt, int64_t vt_ld,
                        int64_t dv, const int* pos, int n_q, float scale, float* out,
                        int64_t out_ld, const GemmMicro* micro = nullptr);

// out[c * out_ld + i] = rows[i * width + c] for i < n_rows <= kTransposeRows, c < width: a block
// of consecutive positions' rows written as columns. kTransposeRows floats are one cache line,
// so each write fills a line of the transposed rows, which lie far apart.
constexpr int64_t kTransposeRows = 16;
void transpose_rows(const float* rows, int64_t n_rows, int64_t width, float* out, int64_t out_ld);

// A dense model's sequence with fewer new tokens than this attends query by query: that costs
// less than 32 lanes of which most are empty. (MLA's naive path, which Auto chooses for
// prompts, always attends in blocks.)
constexpr int kMinBlockQueries = 4;

// Causal attention (multi-head or grouped-query) of n_new tokens of one sequence, at
// positions pos[0..n_new), over a layer of its cache (keys and values [n_kv * hd] a
// position): the KV heads in passes, each pass converting every cached key and value its
// heads' tokens see once (values transposed), then blocks of up to 32 tokens attending head
// by head as above, the costliest blocks (most positions) handed out first. q, out:
// [n_new, n_head * hd], rows q_ld / out_ld apart.
//
// A pass holds as many KV heads as fit in pass_bytes of converted keys and values (at
// least one): 2 MiB is four of DeepSeek-Coder-1.3B's 16 heads at 512 positions, where all 16
// took 8 MiB. Short contexts take every head in one pass.
constexpr int64_t kPrefillPassBytes = int64_t(2) << 20;
void attend_prefill(const KvCache& cache, int layer, int n_head, int n_kv, int hd, const int* pos,
                    int64_t n_new, const float* q, int64_t q_ld, float scale, float* out,
                    int64_t out_ld, ThreadPool& pool, int64_t pass_bytes = kPrefillPassBytes);

}  // namespace hondo
