#include "model/mla.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/dot.h"
#include "kernels/head_rows.h"
#include "kernels/matmul.h"
#include "kernels/packed.h"
#include "kernels/qdot.h"
#include "kernels/quant.h"
#include "kernels/vec_dot.h"
#include "model/attention.h"
#include "model/latent_attention.h"

namespace hondo {

DType kv_b_copy_type(const DeepSeek2Config& c, DType source) {
  if (source == DType::F32 || source == DType::F16 || source == DType::BF16) return source;
  return c.qk_nope % 32 == 0 && c.kv_lora_rank % 32 == 0 ? DType::Q8_0 : DType::F32;
}

void split_kv_b(const DeepSeek2Config& c, const Tensor& kv_b, MlaWeights& w) {
  const int64_t L = c.kv_lora_rank, H = c.n_head, nope = c.qk_nope, v = c.v_head;
  std::vector<float> k_b(static_cast<size_t>(H * L * nope));  // [H][L][nope]
  std::vector<float> v_b(static_cast<size_t>(H * v * L));     // [H][v][L]
  std::vector<float> row(static_cast<size_t>(L));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t d = 0; d < nope + v; ++d) {
      dequantize_row(kv_b.type, kv_b.row(h * (nope + v) + d), row.data(), L);  // kv_b[h, d, :]
      for (int64_t l = 0; l < L; ++l) {
        if (d < nope)
          k_b[size_t((h * L + l) * nope + d)] = row[size_t(l)];
        else
          v_b[size_t((h * v + (d - nope)) * L + l)] = row[size_t(l)];
      }
    }
  const DType type = kv_b_copy_type(c, kv_b.type);
  const size_t k_bytes = row_bytes(type, H * L * nope), v_bytes = row_bytes(type, H * v * L);
  w.owned.assign(k_bytes + v_bytes, 0);
  uint8_t* k_data = w.owned.data();
  uint8_t* v_data = w.owned.data() + k_bytes;
  for (int64_t r = 0; r < H * L; ++r)  // rows of W_UK^T: nope values each
    quantize_row(type, k_b.data() + r * nope, k_data + size_t(r) * row_bytes(type, nope), nope);
  for (int64_t r = 0; r < H * v; ++r)  // rows of W_UV: L values each
    quantize_row(type, v_b.data() + r * L, v_data + size_t(r) * row_bytes(type, L), L);
  w.wk_b = Tensor{kv_b.name + "[k_b]", type, 3, {nope, L, H, 1}, k_data};
  w.wv_b = Tensor{kv_b.name + "[v_b]", type, 3, {L, v, H, 1}, v_data};
  // Repacked as the file's matrices are (io/gguf.h, pack_for_matmul), for the tile kernels.
  Tensor* copies[] = {&w.wk_b, &w.wv_b};
  const QDotKernels& kernels = qdot_best();
  size_t packed = 0;
  for (const Tensor* t : copies)
    if (can_pack(t->type, t->cols()) && kernels.tile_for(t->type))
      packed += packed_bytes(t->type, t->rows(), t->cols());
  if (packed == 0) return;
  w.owned_tiles = alloc_huge(packed, "the repacked attn_kv_b");
  uint8_t* dst = w.owned_tiles.get();
  for (Tensor* t : copies) {
    if (!can_pack(t->type, t->cols()) || !kernels.tile_for(t->type)) continue;
    pack_tiles(t->type, t->data, t->rows(), t->cols(), dst);
    t->packed = dst;
    dst += packed_bytes(t->type, t->rows(), t->cols());
  }
}

void build_uk(const DeepSeek2Config& c, MlaWeights& w) {
  const int64_t L = c.kv_lora_rank, H = c.n_head, nope = c.qk_nope;
  w.owned_uk.assign(size_t(H * nope * L), 0.0f);  // [H][nope][L]
  std::vector<float> row(static_cast<size_t>(nope));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t l = 0; l < L; ++l) {
      dequantize_row(w.wk_b.type, w.wk_b.row(h * L + l), row.data(), nope);  // W_UK,h[:, l]
      for (int64_t d = 0; d < nope; ++d)
        w.owned_uk[size_t((h * nope + d) * L + l)] = row[size_t(d)];
    }
  w.wk_full = Tensor{w.wk_b.name + "[uk]", DType::F32, 3, {L, nope, H, 1}, w.owned_uk.data()};
}

double mla_cost(const DeepSeek2Config& c, const std::vector<SeqBatch>& batch, MlaMode mode) {
  const double H = c.n_head, L = c.kv_lora_rank, R = c.qk_rope, nope = c.qk_nope, V = c.v_head;
  double tokens = 0, positions = 0, pairs = 0;
  for (const SeqBatch& s : batch) {
    const double past = s.cache->n_past(), n = double(s.tokens.size());
    tokens += n;
    positions += past + n;
    pairs += n * past + n * (n + 1) / 2;
  }
  if (mode == MlaMode::Absorbed)  // absorb + attend over latents + up-project
    return tokens * H * L * (nope + V) + pairs * H * (2 * L + R);
  return positions * H * L * (nope + V) + pairs * H * (nope + R + V);  // decompress + attend
}

namespace {

// Naive attention: K^C and V decompressed from every cached latent of each sequence, then
// ordinary attention over [k^C ; k^R] (paper, eq. 1-8), blocks of up to 32 of a sequence's
// tokens for one head at a time as two matrix products (model/attention.h). Writes
// o: [T, H * V].
void attend_naive(const DeepSeek2Config& c, const MlaWeights& w, int layer,
                  std::vector<SeqBatch>& batch, const std::vector<int>& tok_pos, const float* q,
                  float* o, ThreadPool& pool) {
  const int64_t H = c.n_head, L = c.kv_lora_rank, nope = c.qk_nope, R = c.qk_rope;
  const int64_t QH = c.qk_head(), V = c.v_head;
  const float scale = c.softmax_scale();
  // Working buffers reused from call to call (a prompt's every layer would otherwise fault in
  // fresh zeroed pages for them); the loops see them through the pointers.
  thread_local std::vector<float> lat_buf, kr_buf, kc_buf, vv_buf, vt_buf;
  int64_t row0 = 0;
  for (SeqBatch& s : batch) {
    const int64_t n_new = int64_t(s.tokens.size());
    const int64_t n = tok_pos[size_t(row0 + n_new - 1)] + 1;  // positions 0..n-1 are cached
    float* lat = scratch(lat_buf, size_t(n * L));             // [n, L]  c_j
    float* kr = scratch(kr_buf, size_t(n * R));               // [n, R]  k^R_j
    for (int64_t j = 0; j < n; ++j) {
      s.cache->load_k(layer, int(j), 0, int(L), lat + j * L);
      s.cache->load_v(layer, int(j), 0, int(R), kr + j * R);
    }
    float* kc = scratch(kc_buf, size_t(n * H * nope));  // [n, H * nope]
    float* vv = scratch(vv_buf, size_t(n * H * V));     // [n, H * V]
    matmul_batch(
        {{&w.wk_full, 0, w.wk_full.rows(), lat, n, kc}, {&w.wv_b, 0, w.wv_b.rows(), lat, n, vv}},
        pool);
    // Values by head, transposed: [H * V, n], kTransposeRows positions at a time.
    float* vt = scratch(vt_buf, size_t(n * H * V));
    pool.parallel_for((n + kTransposeRows - 1) / kTransposeRows, [&](int64_t b0, int64_t b1) {
      for (int64_t j0 = b0 * kTransposeRows; j0 < std::min(n, b1 * kTransposeRows);
           j0 += kTransposeRows)
        transpose_rows(vv + j0 * H * V, std::min(kTransposeRows, n - j0), H * V, vt + j0, n);
    });
    // Tasks (block of tokens, head), the last blocks (most positions) first.
    const int64_t n_blocks = (n_new + kPanelTokens - 1) / kPanelTokens;
    pool.parallel_tasks(n_blocks * H, [&](int64_t task) {
      const int64_t b = n_blocks - 1 - task / H, h = task % H;
      const int64_t t0 = row0 + b * kPanelTokens;
      const int n_q = int(std::min<int64_t>(kPanelTokens, row0 + n_new - t0));
      const float* qh = q + (t0 * H + h) * QH;  // [n_q, nope + R] rows H * QH apart
      const KeySlice keys[2] = {{kc + h * nope, H * nope, qh, H * QH, nope},
                                {kr, R, qh + nope, H * QH, R}};
      attend_query_block(keys, 2, vt + h * V * n, n, V, &tok_pos[size_t(t0)], n_q, scale,
                         o + (t0 * H + h) * V, H * V);
    });
    row0 += n_new;
  }
}

// Per-head slices between token-major [T, H, stride] (the first n values of each) and
// head-major [H, T, n] buffers, for the per-head products that run as one batch.
void heads_of(const float* tok_major, int64_t T, int64_t H, int64_t stride, int64_t n,
              float* head_major) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(head_major + (h * T + t) * n, tok_major + (t * H + h) * stride,
                  sizeof(float) * size_t(n));
}
void tokens_of(const float* head_major, int64_t T, int64_t H, int64_t n, float* tok_major) {
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(tok_major + (t * H + h) * n, head_major + (h * T + t) * n,
                  sizeof(float) * size_t(n));
}

}  // namespace

void mla_forward(const DeepSeek2Config& c, const MlaWeights& w, const Rope& rope, int layer,
                 std::vector<SeqBatch>& batch, const std::vector<int>& tok_pos,
                 const float* rope_cos, const float* rope_sin, const float* xn, float* out,
                 ThreadPool& pool, MlaMode mode, int64_t split_min_positions) {
  if (mode == MlaMode::Auto) {
    // Naive is chosen when it costs fewer multiply-adds and its decompressed keys and values
    // (every cached position of the batch; the values twice, as computed and transposed) stay
    // under kMlaNaiveScratchBytes.
    double positions = 0;
    for (const SeqBatch& s : batch)
      positions = std::max(positions, double(s.cache->n_past() + s.tokens.size()));
    const double scratch = positions * c.n_head * (c.qk_nope + 2 * c.v_head) * sizeof(float);
    const bool naive = scratch <= kMlaNaiveScratchBytes &&
                       mla_cost(c, batch, MlaMode::Naive) < mla_cost(c, batch, MlaMode::Absorbed);
    mode = naive ? MlaMode::Naive : MlaMode::Absorbed;
  }
  const int64_t T = int64_t(tok_pos.size()), H = c.n_head, L = c.kv_lora_rank;
  const int64_t nope = c.qk_nope, R = c.qk_rope, QH = c.qk_head(), V = c.v_head;
  const int half = int(R / 2);

  // Queries [T, H, nope + R] (through the low-rank q_a [T, q_lora_rank] where the model has
  // one), and the latent and rotary key [T, L + R] -> c_t = RMSNorm(first L), k^R_t = RoPE(last
  // R). The products that read xn run as one batch: one activation quantization, one loop.
  // Working buffers are reused from call to call (layers.h scratch); the lambdas below see
  // them through these pointers, never through the thread_local names.
  thread_local std::vector<float> q_buf, qa_buf, kv_buf, q_nope_buf, q_lat_buf, o_lat_buf, o_h_buf,
      o_buf;
  float* q = scratch(q_buf, size_t(T * H * QH));                              // [T, H, nope + R]
  float* qa = w.wq_a ? scratch(qa_buf, size_t(T * c.q_lora_rank)) : nullptr;  // [T, q_lora]
  float* kv = scratch(kv_buf, size_t(T * (L + R)));                           // [T, L + R]
  const Tensor* wq_in = w.wq_a ? w.wq_a : w.wq;
  matmul_batch(
      {{wq_in, 0, wq_in->rows(), xn, T, w.wq_a ? qa : q}, {w.wkv_a, 0, w.wkv_a->rows(), xn, T, kv}},
      pool);
  if (w.wq_a) {
    for (int64_t t = 0; t < T; ++t) {
      float* r = qa + t * c.q_lora_rank;
      rms_norm(r, w.q_a_norm.data(), r, c.q_lora_rank, c.rms_eps);
    }
    matmul(*w.wq_b, qa, T, q, pool);
  }
  int64_t row = 0;
  for (SeqBatch& s : batch)
    for (size_t i = 0; i < s.tokens.size(); ++i, ++row) {
      float* lat = kv + row * (L + R);
      rms_norm(lat, w.kv_a_norm.data(), lat, int(L), c.rms_eps);
      const float* cs = rope_cos + row * half;  // [R / 2]
      const float* sn = rope_sin + row * half;
      rope.apply(lat + L, 1, int(R), cs, sn);
      rope.apply(q + row * H * QH + nope, int(H), int(QH), cs, sn);
      s.cache->store(layer, tok_pos[size_t(row)], lat, lat + L);
    }

  if (mode == MlaMode::Naive) {
    float* o = scratch(o_buf, size_t(T * H * V));  // [T, H * V]
    attend_naive(c, w, layer, batch, tok_pos, q, o, pool);
    matmul(*w.wo, o, T, out, pool);
    return;
  }

  // Absorbed attention. For head h and token t (paper, eq. 10 and after):
  //   q_lat[h, t] = W_UK,h^T q^C[t, h]                                  [L]
  //   o_lat[h, t] = sum_j softmax_j((q_lat . c_j + q^R . k^R_j) scale) c_j   [L]
  //   o[t, h]     = W_UV,h o_lat[h, t]                                  [V]
  // The per-head products take head-major [H, T, n] rows; with one token (decode) that is the
  // token-major layout itself, read and written in place.
  const bool one = T == 1;
  float* o = scratch(o_buf, size_t(T * H * V));                               // [T, H * V]
  float* q_nope = one ? nullptr : scratch(q_nope_buf, size_t(H * T * nope));  // [H, T, nope]
  float* q_lat = scratch(q_lat_buf, size_t(H * T * L));                       // [H, T, L]
  float* o_lat = scratch(o_lat_buf, size_t(H * T * L));                       // [H, T, L]
  float* o_h = one ? o : scratch(o_h_buf, size_t(H * T * V));                 // [H, T, V]
  if (!one) heads_of(q, T, H, QH, nope, q_nope);
  // Each token's cache and the threads' ranges of positions, in buffers reused from call to
  // call; the loops below see the caller's through these references.
  thread_local std::vector<const KvCache*> tok_cache_buf;
  thread_local std::vector<PositionRange> range_buf;
  tok_cache_buf.clear();
  for (const SeqBatch& s : batch)
    for (size_t i = 0; i < s.tokens.size(); ++i) tok_cache_buf.push_back(s.cache);
  const std::vector<const KvCache*>& tok_cache = tok_cache_buf;
  const float scale = c.softmax_scale();
  auto queries = [&](int64_t t, int64_t h0, int n_q) {  // heads h0 .. h0 + n_q - 1 of token t
    return LatentQueries{q_lat + (h0 * T + t) * L, T * L, q + (t * H + h0) * QH + nope, QH, n_q};
  };
  auto absorb = [&](int64_t h, ThreadPool& alone) {
    matmul_rows(w.wk_b, h * L, L, one ? q + h * QH : q_nope + h * T * nope, T, q_lat + h * T * L,
                alone);
  };
  auto project = [&](int64_t h, ThreadPool& alone) {
    matmul_rows(w.wv_b, h * V, V, o_lat + h * T * L, T, o_h + h * T * V, alone);
  };
  split_positions(tok_pos, pool.size(), split_min_positions, range_buf);
  const std::vector<PositionRange>& ranges = range_buf;
  if (ranges.empty()) {
    // Each thread takes whole heads and does all three steps for them: one parallel loop a
    // layer, and every cached latent read once per token by each thread.
    pool.parallel_for(H, [&](int64_t h_begin, int64_t h_end) {
      ThreadPool& alone = ThreadPool::this_thread();
      thread_local std::vector<float> m_buf, l_buf;
      float* m = scratch(m_buf, size_t(h_end - h_begin));  // [heads]
      float* l = scratch(l_buf, size_t(h_end - h_begin));  // [heads]
      for (int64_t h = h_begin; h < h_end; ++h) absorb(h, alone);
      for (int64_t t = 0; t < T; ++t) {
        const LatentPartial part{m, l, o_lat + (h_begin * T + t) * L, T * L};
        attend_latent_range(*tok_cache[size_t(t)], layer, 0, tok_pos[size_t(t)] + 1, L, R,
                            queries(t, h_begin, int(h_end - h_begin)), scale, part);
        for (int i = 0; i < h_end - h_begin; ++i)  // normalized in place
          merge_latent_partials(&part, 1, i, L, o_lat + ((h_begin + i) * T + t) * L);
      }
      for (int64_t h = h_begin; h < h_end; ++h) project(h, alone);
    });
  } else {
    // Long contexts: the threads split each token's positions (flash-decoding), so that each
    // cached latent is read by one thread only, all heads taking their scores from it while it
    // is in cache; the partial results are merged per head before W_UV.
    pool.parallel_for(H, [&](int64_t h_begin, int64_t h_end) {
      for (int64_t h = h_begin; h < h_end; ++h) absorb(h, ThreadPool::this_thread());
    });
    const int64_t n_parts = int64_t(ranges.size());
    thread_local std::vector<float> stat_buf, part_buf;
    thread_local std::vector<LatentPartial> part_list;
    float* stats = scratch(stat_buf, size_t(n_parts * 2 * H));  // [n_parts, 2, H]: m, l
    float* accs = scratch(part_buf, size_t(n_parts * H * L));   // [n_parts, H, L]
    part_list.clear();
    for (int64_t k = 0; k < n_parts; ++k)
      part_list.push_back({stats + k * 2 * H, stats + k * 2 * H + H, accs + k * H * L, L});
    const LatentPartial* parts = part_list.data();  // the tasks see the list through this
    pool.parallel_tasks(n_parts, [&](int64_t k) {
      const PositionRange& r = ranges[size_t(k)];
      attend_latent_range(*tok_cache[size_t(r.token)], layer, r.begin, r.end, L, R,
                          queries(r.token, 0, int(H)), scale, parts[size_t(k)]);
    });
    pool.parallel_for(H, [&](int64_t h_begin, int64_t h_end) {
      for (int64_t h = h_begin; h < h_end; ++h) {
        for (int64_t k = 0; k < n_parts;) {  // each token's parts follow one another
          const int64_t t = ranges[size_t(k)].token, k0 = k;
          while (k < n_parts && ranges[size_t(k)].token == t) ++k;
          merge_latent_partials(&parts[size_t(k0)], int(k - k0), int(h), L,
                                o_lat + (h * T + t) * L);
        }
        project(h, ThreadPool::this_thread());
      }
    });
  }

  // The output projection over all heads: [T, H * V] -> [T, E].
  if (!one) tokens_of(o_h, T, H, V, o);
  matmul(*w.wo, o, T, out, pool);
}

}  // namespace hondo
