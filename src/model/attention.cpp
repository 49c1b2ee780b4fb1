#include "model/attention.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/vec_math.h"
#include "model/layers.h"

namespace hondo {

namespace {
// Keys per pass of the output product: [256, 32] probabilities (32 KiB) stay in cache while
// every 12 value rows of the pass are broadcast onto them.
constexpr int64_t kKeyBlock = 256;
}  // namespace

void attend_query_block(const KeySlice* slices, int n_slices, const float* vt, int64_t vt_ld,
                        int64_t dv, const int* pos, int n_q, float scale, float* out,
                        int64_t out_ld, const GemmMicro* micro) {
  constexpr int64_t P = kPanelTokens;
  const GemmMicro& m = micro ? *micro : gemm_micro_best();
  int lane_pos[P];  // the position of each lane's query; empty lanes see what the last one does
  for (int i = 0; i < P; ++i) lane_pos[i] = pos[std::min(i, n_q - 1)];
  const int lo = *std::min_element(lane_pos, lane_pos + P);
  const int64_t n_keys = *std::max_element(lane_pos, lane_pos + P) + 1;

  // The queries as panels [dim][32] per slice, empty lanes zero.
  int64_t dims = 0;
  for (int s = 0; s < n_slices; ++s) dims += slices[s].dim;
  thread_local std::vector<float> panel_buf, score_buf, acc_buf;  // the calling thread's own
  float* panels = scratch(panel_buf, size_t(dims * P));           // [dims][32]
  std::memset(panels, 0, sizeof(float) * size_t(dims * P));
  for (int s = 0, d0 = 0; s < n_slices; d0 += int(slices[s].dim), ++s)
    for (int i = 0; i < n_q; ++i)
      for (int64_t c = 0; c < slices[s].dim; ++c)
        panels[(d0 + c) * P + i] = slices[s].q[i * slices[s].q_ld + c];

  // Scores S^T = K Q^T: [n_keys, 32], each slice's product added to the one before.
  float* S = scratch(score_buf, size_t(n_keys * P));
  for (int64_t j0 = 0; j0 < n_keys; j0 += m.max_rows) {
    const int nr = int(std::min<int64_t>(m.max_rows, n_keys - j0));
    for (int s = 0, d0 = 0; s < n_slices; d0 += int(slices[s].dim), ++s)
      m.fn(slices[s].keys + j0 * slices[s].ld, slices[s].ld, nr, panels + d0 * P, slices[s].dim,
           S + j0 * P, s > 0);
  }

  // Softmax down each lane's column over the keys its query sees. Keys past a query's
  // position (only those after the block's first) are -inf before the maximum and exactly 0
  // after the exponential (which clamps its input).
  auto hidden = [&](auto&& set) {
    for (int64_t j = lo + 1; j < n_keys; ++j)
      for (int i = 0; i < P; ++i)
        if (j > lane_pos[i]) set(S[j * P + i]);
  };
  hidden([](float& x) { x = -std::numeric_limits<float>::infinity(); });
  float mx[P];
  std::fill(mx, mx + P, -std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < n_keys; ++j)
    for (int i = 0; i < P; ++i) mx[i] = std::max(mx[i], S[j * P + i]);
  for (int64_t j = 0; j < n_keys; ++j)
    for (int i = 0; i < P; ++i) S[j * P + i] = (S[j * P + i] - mx[i]) * scale;
  exp_f32(S, S, n_keys * P);
  hidden([](float& x) { x = 0.0f; });
  double sum[P] = {};
  for (int64_t j = 0; j < n_keys; ++j)
    for (int i = 0; i < P; ++i) sum[i] += S[j * P + i];

  // Outputs O^T = V^T P: [dv, 32], keys in blocks (the probabilities of a block reused by
  // every value row), then each query's row scaled by its 1 / sum.
  float* acc = scratch(acc_buf, size_t(dv * P));
  for (int64_t k0 = 0; k0 < n_keys; k0 += kKeyBlock) {
    const int64_t kc = std::min(kKeyBlock, n_keys - k0);
    for (int64_t c0 = 0; c0 < dv; c0 += m.max_rows)
      m.fn(vt + c0 * vt_ld + k0, vt_ld, int(std::min<int64_t>(m.max_rows, dv - c0)), S + k0 * P, kc,
           acc + c0 * P, k0 > 0);
  }
  for (int i = 0; i < n_q; ++i) {
    const float inv = float(1.0 / sum[i]);
    for (int64_t c = 0; c < dv; ++c) out[i * out_ld + c] = acc[c * P + i] * inv;
  }
}

void transpose_rows(const float* rows, int64_t n_rows, int64_t width, float* out, int64_t out_ld) {
  for (int64_t c = 0; c < width; ++c)
    for (int64_t i = 0; i < n_rows; ++i) out[c * out_ld + i] = rows[i * width + c];
}

void attend_prefill(const KvCache& cache, int layer, int n_head, int n_kv, int hd, const int* pos,
                    int64_t n_new, const float* q, int64_t q_ld, float scale, float* out,
                    int64_t out_ld, ThreadPool& pool, int64_t pass_bytes) {
  const int64_t n = *std::max_element(pos, pos + n_new) + 1, KV = int64_t(n_kv) * hd;
  const int group = n_head / n_kv;
  if (cache.n_heads() != n_kv || cache.k_width() != KV || cache.v_width() != KV)
    fail("attention over a KV cache of ", cache.n_heads(), " heads and rows of ", cache.k_width(),
         " keys and ", cache.v_width(), " values; expected ", n_kv, " heads and rows of ", KV,
         " each");
  // The KV heads go in passes of as many as pass_bytes of converted keys and values hold (at
  // least one): the working memory stays bounded, and a pass's keys stay in cache for its
  // queries.
  const int64_t head_bytes = 2 * n * hd * int64_t(sizeof(float));
  const int per_pass = int(std::clamp<int64_t>(pass_bytes / head_bytes, 1, n_kv));
  // The caller's buffers; the tasks see them through these pointers.
  thread_local std::vector<float> keys_buf, vt_buf;
  float* keys = scratch(keys_buf, size_t(per_pass * n * hd));  // [per_pass, n, hd]: in order
  float* vt = scratch(vt_buf, size_t(per_pass * hd * n));      // [per_pass * hd, n]: transposed
  constexpr int64_t B = KvCache::kBlock, kConvertRows = 64;
  static_assert(B % kConvertRows == 0);
  const int64_t n_pieces = (n + kConvertRows - 1) / kConvertRows;
  const int64_t n_blocks = (n_new + kPanelTokens - 1) / kPanelTokens;
  for (int h0 = 0; h0 < n_kv; h0 += per_pass) {
    const int nh = std::min(per_pass, n_kv - h0);
    // One task per (kConvertRows positions, KV head): the head's rows of a cache block are one
    // run (kv_cache.h), converted a piece at a time; the values then written as columns
    // kTransposeRows positions at a time. Pieces shorter than a cache block keep every thread
    // busy with few KV heads (R1-Distill-Qwen-1.5B: 2) and the converted rows in L1.
    pool.parallel_for(n_pieces * nh, [&](int64_t t0, int64_t t1) {
      thread_local std::vector<float> rows;  // [kConvertRows, hd] values of one piece of a head
      rows.resize(size_t(kConvertRows * hd));
      for (int64_t task = t0; task < t1; ++task) {
        const int64_t j0 = task / nh * kConvertRows, nj = std::min(kConvertRows, n - j0);
        const int i = int(task % nh), b = int(j0 / B), first = int(j0 % B);
        cache.load_k_block(layer, h0 + i, b, first, int(nj), keys + (i * n + j0) * hd);
        cache.load_v_block(layer, h0 + i, b, first, int(nj), rows.data());
        for (int64_t r = 0; r < nj; r += kTransposeRows)
          transpose_rows(rows.data() + r * hd, std::min(kTransposeRows, nj - r), hd,
                         vt + i * hd * n + j0 + r, n);
      }
    });
    // Tasks (block of tokens, query head of the pass), the last blocks (most positions) first.
    const int64_t heads = int64_t(nh) * group;
    pool.parallel_tasks(n_blocks * heads, [&](int64_t task) {
      const int64_t i0 = (n_blocks - 1 - task / heads) * kPanelTokens;
      const int h = h0 * group + int(task % heads), i = h / group - h0;
      const KeySlice k{keys + i * n * hd, hd, q + i0 * q_ld + h * hd, q_ld, hd};
      attend_query_block(&k, 1, vt + i * hd * n, n, hd, pos + i0,
                         int(std::min<int64_t>(kPanelTokens, n_new - i0)), scale,
                         out + i0 * out_ld + h * hd, out_ld);
    });
  }
}

}  // namespace hondo
