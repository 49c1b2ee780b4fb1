// MLA's absorbed attention of one token over its cached latents (model/mla.h): for head i,
//   s_ij = (q_lat,i . c_j + q^R_i . k^R_j) * scale,   o_lat,i = sum_j softmax_j(s_i) c_j.
// Every head reads the same cached rows, so the rows are read in chunks that stay in cache
// while all the heads of a call take their scores and weighted sums from them, with the
// softmax kept online (running maximum and sum, as in FlashAttention): each cached row comes
// from memory once per call, not once for the scores and again for the sums.
//
// A range of positions gives a partial result; partial results over disjoint ranges merge
// into the attention over their union (flash-decoding), so that the threads of a decode step
// can split one token's positions between them and each row is read by one thread only.
#pragma once
#include <cstdint>
#include <vector>

#include "model/kv_cache.h"

namespace hondo {

// The unnormalized attention of n_q heads over a range of positions:
//   m[i] = max_j s_ij,  l[i] = sum_j e^(s_ij - m[i]),  acc[i] = sum_j e^(s_ij - m[i]) c_j
// (m = -inf, l = 0 and acc = 0 over an empty range). acc: [n_q, L] rows acc_stride apart.
struct LatentPartial {
  float* m;
  float* l;
  float* acc;
  int64_t acc_stride;
};

// Queries of n_q heads: ql [n_q, L] rows ql_stride apart (W_UK^T q^C, in latent space), qr
// [n_q, R] rows qr_stride apart (the rotary part).
struct LatentQueries {
  const float* ql;
  int64_t ql_stride;
  const float* qr;
  int64_t qr_stride;
  int n_q;
};

// The partial attention over positions j0 .. j1 - 1 of layer `layer` of a cache of latents
// [L] (the K stream) and rotary keys [R] (the V stream), any number of heads. The cache is
// read in place by the head-row kernels (kernels/head_rows.h: F32, F16 or Q8_0 rows).
void attend_latent_range(const KvCache& cache, int layer, int64_t j0, int64_t j1, int64_t L,
                         int64_t R, const LatentQueries& q, float scale, const LatentPartial& out);

// Head i's attention output o [L] from the partial results of n_parts disjoint ranges:
//   o = sum_k e^(m_k - M) acc_k / sum_k e^(m_k - M) l_k,  M = max_k m_k.
void merge_latent_partials(const LatentPartial* parts, int n_parts, int i, int64_t L, float* o);

// How the threads of one step share the attention of a batch's tokens (token t attends over
// positions 0 .. tok_pos[t]): ranges of positions, each token's in order and one after another
// (up to n_threads per token, none shorter than kMinRangePositions), when some token attends
// over at least min_positions and the batch is a decode step (up to kSplitTokens tokens); each
// range is then read by one thread. Empty otherwise: the threads take whole heads (fewer
// passes and merges, each thread reading every row; at short contexts the rows come from
// cache for the second thread). Written into `ranges` (its storage reused from call to call).
struct PositionRange {
  int64_t token, begin, end;
};
constexpr int64_t kSplitTokens = 16, kMinRangePositions = 256;
void split_positions(const std::vector<int>& tok_pos, int n_threads, int64_t min_positions,
                     std::vector<PositionRange>& ranges);

}  // namespace hondo
