#include "model/latent_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/head_rows.h"
#include "kernels/vec_math.h"
#include "model/layers.h"

namespace hondo {

namespace {

// Positions per chunk: the weighted sums' run (kernels/head_rows.h), so that the sums over one
// chunk fetch all of the next as they go and the next chunk's scores read it from cache. 128
// cached rows of V2's latent and rotary key (512 + 64 values) are 144 KiB in F16.
constexpr int64_t kLatentChunk = kSumRows;

}  // namespace

void attend_latent_range(const KvCache& cache, int layer, int64_t j0, int64_t j1, int64_t L,
                         int64_t R, const LatentQueries& q, float scale, const LatentPartial& out) {
  const int n_q = q.n_q;
  for (int i = 0; i < n_q; ++i) {
    out.m[i] = -std::numeric_limits<float>::infinity();
    out.l[i] = 0.0f;
    std::memset(out.acc + i * out.acc_stride, 0, sizeof(float) * size_t(L));
  }
  const uint8_t* latents = cache.k_block(layer, 0, 0);    // [n_pos, L] as stored
  const uint8_t* rope_keys = cache.v_block(layer, 0, 0);  // [n_pos, R] as stored
  const int64_t lat_bytes = int64_t(cache.k_head_bytes()), kr_bytes = int64_t(cache.v_head_bytes());
  thread_local std::vector<float> score_buf;                  // the calling thread's own
  float* s = scratch(score_buf, size_t(n_q * kLatentChunk));  // [n_q, nc]
  for (int64_t c0 = j0; c0 < j1; c0 += kLatentChunk) {
    const int64_t nc = std::min(kLatentChunk, j1 - c0);
    const int64_t fetch = std::min(kLatentChunk, j1 - c0 - nc) + nc;  // this chunk and the next
    const uint8_t* lat = latents + c0 * lat_bytes;  // [nc, L] rows lat_bytes apart
    const uint8_t* kr = rope_keys + c0 * kr_bytes;  // [nc, R] rows kr_bytes apart
    std::memset(s, 0, sizeof(float) * size_t(n_q * nc));
    for (int h0 = 0; h0 < n_q; h0 += kMaxHeadRows) {  // the kernels take up to 8 heads a call
      const int nq = std::min(kMaxHeadRows, n_q - h0);
      head_dots(cache.k_type(), lat, lat_bytes, nc, q.ql + h0 * q.ql_stride, q.ql_stride, nq, L,
                s + h0 * nc, nc);
      head_dots(cache.v_type(), kr, kr_bytes, nc, q.qr + h0 * q.qr_stride, q.qr_stride, nq, R,
                s + h0 * nc, nc, fetch);
    }
    // Online softmax: the new maximum m', the sums so far rescaled by e^(m - m') (0 for the
    // first chunk, whose m is -inf; skipped where the maximum stays), the chunk's weights
    // e^(s - m').
    for (int i = 0; i < n_q; ++i) {
      float* si = s + i * nc;
      float mx = si[0];
      for (int64_t j = 1; j < nc; ++j) mx = si[j] > mx ? si[j] : mx;
      const float m_new = std::max(out.m[i], mx * scale);
      if (m_new > out.m[i] && out.l[i] > 0) {
        const float alpha = std::exp(out.m[i] - m_new);
        out.l[i] *= alpha;
        float* acc = out.acc + i * out.acc_stride;
        for (int64_t c = 0; c < L; ++c) acc[c] *= alpha;
      }
      out.m[i] = m_new;
      for (int64_t j = 0; j < nc; ++j) si[j] = si[j] * scale - m_new;
    }
    exp_f32(s, s, n_q * nc);
    for (int i = 0; i < n_q; ++i) {
      float sum = 0;
      for (int64_t j = 0; j < nc; ++j) sum += s[i * nc + j];
      out.l[i] += sum;
    }
    for (int h0 = 0; h0 < n_q; h0 += kMaxHeadRows)
      head_sums(cache.k_type(), lat, lat_bytes, nc, s + h0 * nc, nc,
                std::min(kMaxHeadRows, n_q - h0), L, out.acc + h0 * out.acc_stride, out.acc_stride,
                fetch);
  }
}

void merge_latent_partials(const LatentPartial* parts, int n_parts, int i, int64_t L, float* o) {
  float M = -std::numeric_limits<float>::infinity();
  for (int k = 0; k < n_parts; ++k) M = std::max(M, parts[k].m[i]);
  thread_local std::vector<float> w;  // [n_parts] e^(m_k - M), the parts' weights
  w.resize(size_t(n_parts));
  double den = 0;
  for (int k = 0; k < n_parts; ++k) {
    w[size_t(k)] = parts[k].l[i] > 0 ? std::exp(parts[k].m[i] - M) : 0.0f;
    den += double(w[size_t(k)]) * parts[k].l[i];
  }
  const float inv = float(1.0 / den);
  for (int64_t c = 0; c < L; ++c) {  // o may be one of the parts' own rows: c by c
    float x = 0;
    for (int k = 0; k < n_parts; ++k) x += w[size_t(k)] * parts[k].acc[i * parts[k].acc_stride + c];
    o[c] = x * inv;
  }
}

void split_positions(const std::vector<int>& tok_pos, int n_threads, int64_t min_positions,
                     std::vector<PositionRange>& ranges) {
  ranges.clear();
  const int64_t T = int64_t(tok_pos.size());
  if (T == 0 || T > kSplitTokens || n_threads < 2) return;
  if (*std::max_element(tok_pos.begin(), tok_pos.end()) + 1 < min_positions) return;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = tok_pos[size_t(t)] + 1;
    const int64_t parts = std::clamp<int64_t>(n / kMinRangePositions, 1, n_threads);
    for (int64_t k = 0; k < parts; ++k) ranges.push_back({t, n * k / parts, n * (k + 1) / parts});
  }
}

}  // namespace hondo
