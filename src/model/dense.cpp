#include "model/dense.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/error.h"
#include "core/fp16.h"
#include "core/phase_clock.h"
#include "kernels/dot.h"
#include "kernels/head_rows.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"
#include "model/attention.h"
#include "model/batch.h"
#include "model/ffn.h"
#include "model/latent_attention.h"
#include "model/layers.h"
#include "model/weights.h"

namespace hondo {

DenseModel::DenseModel(std::unique_ptr<GgufFile> file) {
  file_ = std::move(file);
  cfg_ = DenseConfig::from_gguf(*file_);
  const WeightBinder w(*file_);
  const int64_t E = cfg_.n_embd, Q = int64_t(cfg_.n_head) * cfg_.head_dim,
                KV = int64_t(cfg_.n_head_kv) * cfg_.head_dim, F = cfg_.n_ff, V = cfg_.n_vocab;
  tok_embd_ = &w.get("token_embd.weight", {E, V});
  output_ = w.optional("output.weight", {E, V});
  if (!output_) output_ = tok_embd_;
  output_norm_ = to_f32(w.get("output_norm.weight", {E}));
  for (int l = 0; l < cfg_.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    Block b;
    b.attn_norm = to_f32(w.get(p + "attn_norm.weight", {E}));
    b.wq = &w.get(p + "attn_q.weight", {E, Q});
    b.wk = &w.get(p + "attn_k.weight", {E, KV});
    b.wv = &w.get(p + "attn_v.weight", {E, KV});
    b.wo = &w.get(p + "attn_output.weight", {Q, E});
    b.ffn_norm = to_f32(w.get(p + "ffn_norm.weight", {E}));
    b.w_gate = &w.get(p + "ffn_gate.weight", {E, F});
    b.w_up = &w.get(p + "ffn_up.weight", {E, F});
    b.w_down = &w.get(p + "ffn_down.weight", {F, E});
    if (cfg_.qkv_bias) {
      b.bq = to_f32(w.get(p + "attn_q.bias", {Q}));
      b.bk = to_f32(w.get(p + "attn_k.bias", {KV}));
      b.bv = to_f32(w.get(p + "attn_v.bias", {KV}));
    }
    blocks_.push_back(std::move(b));
  }
  rope_ = Rope::linear(cfg_.rope_dim, cfg_.rope_base, cfg_.rope_freq_scale, cfg_.rope_style);
  repack_weights(*file_, output_);
}

size_t DenseModel::kv_bytes_per_token(DType kv_type) const {
  const int w = cfg_.n_head_kv * cfg_.head_dim;
  return KvCache::bytes_per_token(cfg_.n_layer, w, w, kv_type, kv_type);
}

std::unique_ptr<KvCache> DenseModel::new_cache(int n_ctx, DType kv_type) const {
  const int w = cfg_.n_head_kv * cfg_.head_dim;
  return std::make_unique<KvCache>(cfg_.n_layer, n_ctx, w, w, kv_type, kv_type, cfg_.n_head_kv);
}

namespace {

// How many ranges of positions each KV head's attention takes in a decode step when the KV
// heads are fewer than the threads (R1-Distill-Qwen-1.5B has 2: with 8 threads, 6 would wait
// for the other two): n_threads / gcd(n_threads, n_kv), so that the (head, range) tasks are a
// whole number per thread (3 KV heads on 8 threads: 24 tasks, not 9 with one thread doing
// two), none shorter than kMinRangePositions; 1 (whole heads) otherwise.
int ranges_per_head(int n_kv, int n_threads, int64_t n_pos) {
  if (n_kv >= n_threads) return 1;
  const int64_t want = n_threads / std::gcd(n_threads, n_kv);
  return int(std::max<int64_t>(1, std::min(want, n_pos / kMinRangePositions)));
}

// One token's attention over n_pos positions of a cache read in place, each KV head's
// positions in n_split ranges, one (head, range) task at a time per thread: each range's
// unnormalized attention for the query heads of its group (m = scaled maximum, l = sum of
// e^(s - m), acc = their weighted sum of values, as model/latent_attention.h), merged per query
// head (flash-decoding). q, out: [n_head * hd].
void attend_ranges(const KvCache& cache, int layer, int n_head, int n_kv, int hd, int64_t n_pos,
                   const float* q, float scale, int n_split, float* out, ThreadPool& pool) {
  const int group = n_head / n_kv;
  const int64_t n_tasks = int64_t(n_kv) * n_split;
  constexpr int64_t B = KvCache::kBlock;
  const int64_t k_row = int64_t(cache.k_head_bytes()), v_row = int64_t(cache.v_head_bytes());
  thread_local std::vector<float> m_buf, l_buf, acc_buf;
  float* m = scratch(m_buf, size_t(n_tasks * group));           // [n_kv, n_split, group]
  float* l = scratch(l_buf, size_t(n_tasks * group));           // [n_kv, n_split, group]
  float* acc = scratch(acc_buf, size_t(n_tasks * group * hd));  // [n_kv, n_split, group, hd]
  // The rows [j0, j1) of one stream (keys, or values) of KV head kvh as runs, one per cache block
  // they touch: fn(rows as stored, count, offset in the range), the next run's first rows asked
  // for before each.
  auto runs = [&](bool keys, int kvh, int64_t j0, int64_t j1, auto fn) {
    const int64_t row = keys ? k_row : v_row;
    auto at = [&](int64_t j) {  // position j's row
      const int64_t b = j / B;
      return (keys ? cache.k_block(layer, kvh, int(b)) : cache.v_block(layer, kvh, int(b))) +
             (j - b * B) * row;
    };
    for (int64_t j = j0; j < j1;) {
      const int64_t e = std::min(j1, (j / B + 1) * B);
      if (e < j1) prefetch_rows(at(e), row, std::min(j1 - e, kRowsAhead), row);
      fn(at(j), e - j, j - j0);
      j = e;
    }
  };
  pool.parallel_for(n_tasks, [&](int64_t t0, int64_t t1) {
    thread_local std::vector<float> scores;
    for (int64_t task = t0; task < t1; ++task) {
      const int kvh = int(task / n_split), r = int(task % n_split);
      const int64_t j0 = n_pos * r / n_split, j1 = n_pos * (r + 1) / n_split, n = j1 - j0;
      for (int h0 = 0; h0 < group; h0 += kMaxHeadRows) {
        const int n_q = std::min(kMaxHeadRows, group - h0);
        const float* qh = q + int64_t(kvh * group + h0) * hd;  // [n_q, hd]
        float* a = acc + (task * group + h0) * hd;             // [n_q, hd]
        scores.assign(size_t(n_q * n), 0.0f);                  // [n_q, n]
        runs(true, kvh, j0, j1, [&](const uint8_t* k, int64_t count, int64_t at) {
          head_dots(cache.k_type(), k, k_row, count, qh, hd, n_q, hd, scores.data() + at, n);
        });
        for (int i = 0; i < n_q; ++i)
          l[task * group + h0 + i] = float(softmax_unnormalized(scores.data() + i * n, int(n),
                                                                scale, &m[task * group + h0 + i]));
        std::memset(a, 0, sizeof(float) * size_t(n_q * hd));
        runs(false, kvh, j0, j1, [&](const uint8_t* v, int64_t count, int64_t at) {
          head_sums(cache.v_type(), v, v_row, count, scores.data() + at, n, n_q, hd, a, hd);
        });
      }
    }
  });
  thread_local std::vector<LatentPartial> parts;
  parts.resize(size_t(n_split));
  for (int kvh = 0; kvh < n_kv; ++kvh) {
    for (int r = 0; r < n_split; ++r) {
      const int64_t task = int64_t(kvh) * n_split + r;
      parts[size_t(r)] = {m + task * group, l + task * group, acc + task * group * hd, hd};
    }
    for (int i = 0; i < group; ++i)
      merge_latent_partials(parts.data(), n_split, i, hd, out + int64_t(kvh * group + i) * hd);
  }
}

}  // namespace

// Causal attention for every token of the batch, softmax(q k^T / sqrt(hd)) v per head. A
// sequence with kMinBlockQueries new tokens or more (prefill) attends in blocks of tokens as
// matrix products (attend_prefill, model/attention.h). The others (decode: one token, or a
// few) are split into (sequence, KV head) tasks, each attending query by query for the
// `group` query heads that share the KV head (GQA).
void DenseModel::attention(int layer, std::vector<SeqBatch>& batch, const std::vector<int>& tok_pos,
                           const float* q, float* out, ThreadPool& pool) const {
  const int hd = cfg_.head_dim, n_kv = cfg_.n_head_kv, group = cfg_.n_head / cfg_.n_head_kv;
  const int64_t Q = int64_t(cfg_.n_head) * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  struct Chunk {
    int64_t t0, t1;  // token rows [t0, t1) of the batch
    const KvCache* cache;
    int n_pos;  // positions the chunk's last token sees
  };
  std::vector<Chunk> chunks;
  int64_t t_seq = 0;
  for (const SeqBatch& s : batch) {
    const int64_t n = int64_t(s.tokens.size());
    if (n >= kMinBlockQueries) {
      attend_prefill(*s.cache, layer, cfg_.n_head, n_kv, hd, &tok_pos[size_t(t_seq)], n,
                     q + t_seq * Q, Q, scale, out + t_seq * Q, Q, pool);
    } else if (n > 0) {
      Chunk c{t_seq, t_seq + n, s.cache, 0};
      for (int64_t t = c.t0; t < c.t1; ++t) c.n_pos = std::max(c.n_pos, tok_pos[size_t(t)] + 1);
      chunks.push_back(c);
    }
    t_seq += n;
  }
  if (chunks.empty()) return;
  const int64_t n_tasks = int64_t(chunks.size()) * n_kv;
  // A decode task's KV head is read one cache block (B positions) at a time; rows_in(b, n_pos)
  // of block b are in use. Before each block the first rows of the next are asked for (the
  // head_rows kernels ask for the rest of a block as they go): asking for all of a head's rows
  // at once, thousands of lines at a long context, stalled on the prefetches themselves.
  constexpr int64_t B = KvCache::kBlock;
  auto rows_in = [&](int64_t b, int64_t n_pos) { return std::min(B, n_pos - b * B); };
  // Decode reads an F16 or Q8_0 cache in place (kernels/head_rows.h); an F32 one is copied.
  auto in_place = [](const KvCache& c) { return c.k_type() != DType::F32; };
  auto prefetch_block = [&](const uint8_t* rows, size_t row, int64_t n_rows) {
    // rows: [n_rows, hd] as stored, `row` bytes each
    prefetch_rows(rows, int64_t(row), std::min(n_rows, kRowsAhead), int64_t(row));
  };
  auto prefetch = [&](int64_t task) {  // the first block of a task, before it starts
    const Chunk& ch = chunks[size_t(task / n_kv)];
    if (!in_place(*ch.cache)) return;
    const int kvh = int(task % n_kv);
    const KvCache& c = *ch.cache;
    prefetch_block(c.k_block(layer, kvh, 0), c.k_head_bytes(), rows_in(0, ch.n_pos));
    prefetch_block(c.v_block(layer, kvh, 0), c.v_head_bytes(), rows_in(0, ch.n_pos));
  };
  auto head = [&](int64_t task) {
    const Chunk& ch = chunks[size_t(task / n_kv)];
    const int kvh = int(task % n_kv);
    thread_local std::vector<float> keys, values, scores;
    scores.resize(size_t(ch.n_pos));  // [n_pos]
    if (ch.t1 - ch.t0 == 1 && in_place(*ch.cache)) {
      // One query (decode): read the cache in place, converting in registers (a converted
      // copy would be written and read again for a single use), each key and value row once
      // for up to kMaxHeadRows of the query heads that share this KV head. The head's rows
      // come in blocks of B positions, each block one contiguous run (kv_cache.h).
      const int64_t t = ch.t0, n_pos = tok_pos[size_t(t)] + 1, n_blocks = (n_pos + B - 1) / B;
      const KvCache& cache = *ch.cache;
      for (int h0 = kvh * group; h0 < (kvh + 1) * group; h0 += kMaxHeadRows) {
        const int n_q = std::min(kMaxHeadRows, (kvh + 1) * group - h0);
        const float* qh = q + t * Q + int64_t(h0) * hd;  // [n_q, hd]
        float* oh = out + t * Q + int64_t(h0) * hd;      // [n_q, hd]
        scores.assign(size_t(n_q * n_pos), 0.0f);        // [n_q, n_pos]
        for (int64_t b = 0; b < n_blocks; ++b) {
          if (b + 1 < n_blocks)
            prefetch_block(cache.k_block(layer, kvh, int(b + 1)), cache.k_head_bytes(),
                           rows_in(b + 1, n_pos));
          const uint8_t* k_rows = cache.k_block(layer, kvh, int(b));  // [B, hd] as stored
          head_dots(cache.k_type(), k_rows, int64_t(cache.k_head_bytes()), rows_in(b, n_pos), qh,
                    hd, n_q, hd, scores.data() + b * B, n_pos);
        }
        for (int i = 0; i < n_q; ++i) softmax(scores.data() + i * n_pos, int(n_pos), scale);
        std::memset(oh, 0, sizeof(float) * size_t(n_q * hd));
        for (int64_t b = 0; b < n_blocks; ++b) {
          if (b + 1 < n_blocks)
            prefetch_block(cache.v_block(layer, kvh, int(b + 1)), cache.v_head_bytes(),
                           rows_in(b + 1, n_pos));
          const uint8_t* v_rows = cache.v_block(layer, kvh, int(b));  // [B, hd] as stored
          head_sums(cache.v_type(), v_rows, int64_t(cache.v_head_bytes()), rows_in(b, n_pos),
                    scores.data() + b * B, n_pos, n_q, hd, oh, hd);
        }
      }
      return;
    }
    keys.resize(size_t(ch.n_pos) * size_t(hd));    // [n_pos, hd]
    values.resize(size_t(ch.n_pos) * size_t(hd));  // [n_pos, hd]
    for (int j = 0; j < ch.n_pos; ++j) {
      ch.cache->load_k(layer, j, kvh * hd, hd, keys.data() + size_t(j) * size_t(hd));
      ch.cache->load_v(layer, j, kvh * hd, hd, values.data() + size_t(j) * size_t(hd));
    }
    for (int64_t t = ch.t0; t < ch.t1; ++t) {
      const int pos = tok_pos[size_t(t)];
      for (int h = kvh * group; h < (kvh + 1) * group; ++h) {
        const float* qh = q + t * Q + int64_t(h) * hd;  // [hd]
        float* oh = out + t * Q + int64_t(h) * hd;      // [hd]
        for (int j = 0; j <= pos; ++j)
          scores[size_t(j)] = dot_f32(qh, keys.data() + size_t(j) * size_t(hd), hd) * scale;
        softmax(scores.data(), pos + 1);
        std::memset(oh, 0, sizeof(float) * size_t(hd));
        for (int j = 0; j <= pos; ++j)
          axpy_f32(scores[size_t(j)], values.data() + size_t(j) * size_t(hd), oh, hd);
      }
    }
  };
  // One sequence decoding one token over more positions than its KV heads can keep every thread
  // busy with: positions split between the threads too.
  if (chunks.size() == 1 && chunks[0].t1 - chunks[0].t0 == 1 && in_place(*chunks[0].cache)) {
    const int64_t t = chunks[0].t0, n_pos = tok_pos[size_t(t)] + 1;
    const int n_split = ranges_per_head(n_kv, pool.size(), n_pos);
    if (n_split > 1) {
      attend_ranges(*chunks[0].cache, layer, cfg_.n_head, n_kv, hd, n_pos, q + t * Q, scale,
                    n_split, out + t * Q, pool);
      return;
    }
  }
  // One sequence decoding one token: its KV heads cost alike, so a static split (a shared task
  // counter costs a cache line crossing cores per task), each thread asking for the next task's
  // keys and values before it works on one (the cache rows are long out of cache, and one
  // head's rows of a layer lie a page apart). Otherwise tasks are taken one at a time.
  if (chunks.size() == 1 && chunks[0].t1 - chunks[0].t0 == 1) {
    pool.parallel_for(n_tasks, [&](int64_t b, int64_t e) {
      prefetch(b);
      for (int64_t i = b; i < e; ++i) {
        if (i + 1 < e) prefetch(i + 1);
        head(i);
      }
    });
  } else {
    pool.parallel_tasks(n_tasks, head);
  }
}

void DenseModel::forward(std::vector<SeqBatch>& batch, ThreadPool& pool,
                         std::vector<float>& logits) {
  const int E = cfg_.n_embd, hd = cfg_.head_dim, F = cfg_.n_ff;
  const int Q = cfg_.n_head * hd, KV = cfg_.n_head_kv * hd, half = cfg_.rope_dim / 2;
  std::vector<int> tok_pos;
  std::vector<TokenId> ids;
  gather_batch(batch, cfg_.n_vocab, ids, tok_pos);
  const int64_t T = int64_t(ids.size());

  // Working buffers kept from call to call (layers.h, scratch): a decode step allocates nothing.
  // Two of them serve twice, which keeps a prompt batch's working memory down: the attention's
  // output takes the normed input's buffer (xn is dead from the q/k/v products to the ffn's
  // norm), and each sublayer's output takes q's (dead once attention has read it).
  thread_local std::vector<float> x_buf, xn_buf, q_buf, k_buf, v_buf, cs_buf, sn_buf;
  const size_t n_x = size_t(T * E), n_wide = size_t(T * std::max(E, Q));
  float* x = scratch(x_buf, n_x);                 // [T, E] the residual stream
  float* xn = scratch(xn_buf, n_wide);            // [T, E] normed
  float* att = xn;                                // [T, Q] attention output, in xn's buffer
  float* q = scratch(q_buf, n_wide);              // [T, Q]
  float* tmp = q;                                 // [T, E] a sublayer's output, in q's buffer
  float* k = scratch(k_buf, size_t(T * KV));      // [T, KV]
  float* v = scratch(v_buf, size_t(T * KV));      // [T, KV]
  float* cs = scratch(cs_buf, size_t(T * half));  // [T, rope_dim/2]
  float* sn = scratch(sn_buf, size_t(T * half));  // [T, rope_dim/2]
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
      rms_norm(x + t * E, b.attn_norm.data(), xn + t * E, E, cfg_.rms_eps);
    // q, k and v read the same input: one batch, one activation quantization, one loop.
    matmul_batch({{b.wq, 0, b.wq->rows(), xn, T, q},
                  {b.wk, 0, b.wk->rows(), xn, T, k},
                  {b.wv, 0, b.wv->rows(), xn, T, v}},
                 pool);
    for (int64_t t = 0; t < T; ++t) {
      if (cfg_.qkv_bias) {
        for (int i = 0; i < Q; ++i) q[size_t(t * Q + i)] += b.bq[size_t(i)];
        for (int i = 0; i < KV; ++i) k[size_t(t * KV + i)] += b.bk[size_t(i)];
        for (int i = 0; i < KV; ++i) v[size_t(t * KV + i)] += b.bv[size_t(i)];
      }
      rope_.apply(q + t * Q, cfg_.n_head, hd, cs + t * half, sn + t * half);
      rope_.apply(k + t * KV, cfg_.n_head_kv, hd, cs + t * half, sn + t * half);
    }
    int64_t row = 0;
    for (SeqBatch& s : batch)
      for (size_t i = 0; i < s.tokens.size(); ++i, ++row)
        s.cache->store(l, tok_pos[size_t(row)], k + row * KV, v + row * KV);
    attention(l, batch, tok_pos, q, att, pool);
    matmul(*b.wo, att, T, tmp, pool);
    for (size_t i = 0; i < n_x; ++i) x[i] += tmp[i];
    marks.end(Phase::kAttention);

    for (int64_t t = 0; t < T; ++t)
      rms_norm(x + t * E, b.ffn_norm.data(), xn + t * E, E, cfg_.rms_eps);
    swiglu_ffn({b.w_gate, b.w_up, b.w_down, F, 0, 0}, xn, T, E, tmp, pool);
    for (size_t i = 0; i < n_x; ++i) x[i] += tmp[i];
    marks.end(Phase::kFfn);
  }

  finish_batch(batch, x, E, output_norm_, cfg_.rms_eps, *output_, cfg_.n_vocab, pool, logits);
  marks.end(Phase::kOutput);
}

}  // namespace hondo
