// The bookkeeping every architecture's forward pass shares: the batch's tokens and their
// positions in their own sequences, and the final norm + output projection for the rows
// whose logits are wanted.
#pragma once
#include <vector>

#include "model/model.h"

namespace hondo {

// Checks that every sequence fits its cache and every id is in the vocabulary; lists the
// tokens in batch order with their positions.
void gather_batch(const std::vector<SeqBatch>& batch, int n_vocab, std::vector<TokenId>& ids,
                  std::vector<int>& positions);

// At the start of each layer of a decode step (sequences of fewer than kMinBlockQueries new
// tokens, attention.h), asks for the cache lines the layer's k/v (or latent) store will write
// once the q, k and v products are done. The store runs on one thread while the others wait,
// and each line it writes had first to come from memory: Coder-1.3B's 16 heads took 6.1-9.8 us
// a layer, 2.0-3.2 with the lines asked for here (`hondo bench -p 0 -n 128`, the store timed on
// its own; whole decode steps within the noise).
void prefetch_decode_stores(const std::vector<SeqBatch>& batch, const std::vector<int>& positions,
                            int layer);

// x: [T, n_embd] final hidden states. Advances each sequence's cache by its tokens and writes
// logits = output · RMSNorm(x) for the rows wanted: [rows, n_vocab].
void finish_batch(std::vector<SeqBatch>& batch, const float* x, int64_t n_embd,
                  const std::vector<float>& output_norm, float eps, const Tensor& output,
                  int n_vocab, ThreadPool& pool, std::vector<float>& logits);

}  // namespace hondo
