#include "model/batch.h"

#include "core/error.h"
#include "kernels/matmul.h"
#include "model/attention.h"
#include "model/kv_cache.h"
#include "model/layers.h"

namespace hondo {

void prefetch_decode_stores(const std::vector<SeqBatch>& batch, const std::vector<int>& positions,
                            int layer) {
  size_t row = 0;
  for (const SeqBatch& s : batch) {
    if (s.tokens.size() < size_t(kMinBlockQueries))
      for (size_t i = 0; i < s.tokens.size(); ++i)
        s.cache->prefetch_store(layer, positions[row + i]);
    row += s.tokens.size();
  }
}

void gather_batch(const std::vector<SeqBatch>& batch, int n_vocab, std::vector<TokenId>& ids,
                  std::vector<int>& positions) {
  ids.clear();
  positions.clear();
  for (const SeqBatch& s : batch) {
    if (s.cache->n_past() + int(s.tokens.size()) > s.cache->n_ctx())
      fail("context full: ", s.cache->n_past(), " + ", s.tokens.size(), " tokens exceed the ",
           s.cache->n_ctx(), "-token context");
    for (size_t i = 0; i < s.tokens.size(); ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= n_vocab)
        fail("token id ", s.tokens[i], " outside the vocab of ", n_vocab);
      ids.push_back(s.tokens[i]);
      positions.push_back(s.cache->n_past() + int(i));
    }
  }
  if (ids.empty()) fail("forward called with no tokens");
}

void finish_batch(std::vector<SeqBatch>& batch, const float* x, int64_t n_embd,
                  const std::vector<float>& output_norm, float eps, const Tensor& output,
                  int n_vocab, ThreadPool& pool, std::vector<float>& logits) {
  std::vector<int64_t> rows;
  int64_t row = 0;
  for (SeqBatch& s : batch) {
    const int64_t n = int64_t(s.tokens.size());
    for (int64_t i = 0; i < n; ++i)
      if (s.all_logits || i == n - 1) rows.push_back(row + i);
    row += n;
    s.cache->set_n_past(s.cache->n_past() + int(n));
  }
  thread_local std::vector<float> xn_buf;  // kept from call to call (layers.h, scratch)
  float* xn = scratch(xn_buf, rows.size() * size_t(n_embd));  // [rows, n_embd]
  for (size_t r = 0; r < rows.size(); ++r)
    rms_norm(x + rows[r] * n_embd, output_norm.data(), xn + int64_t(r) * n_embd, int(n_embd), eps);
  // [rows, n_vocab]; a caller that keeps its buffer from call to call (Engine: the sequence's
  // logits) has it resized to the same size each token, which allocates nothing.
  logits.resize(rows.size() * size_t(n_vocab));
  matmul(output, xn, int64_t(rows.size()), logits.data(), pool);
}

}  // namespace hondo
