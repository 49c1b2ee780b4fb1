// The interface every architecture implements, and the loader that picks one from a GGUF
// file's `general.architecture`.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/gguf.h"
#include "model/kv_cache.h"
#include "tokenizer/vocab.h"

namespace hondo {

// New tokens of one sequence: they are appended to `cache` at positions cache->n_past()...
struct SeqBatch {
  KvCache* cache;
  std::vector<TokenId> tokens;
  bool all_logits = false;  // logits for every token (perplexity) or only the last (generation)
};

class Model {
 public:
  virtual ~Model() = default;

  // Maps the file, checks every tensor's name, type and shape, and builds the model.
  static std::unique_ptr<Model> load(const std::string& path);

  const GgufFile& file() const { return *file_; }
  virtual std::string arch() const = 0;
  virtual int n_vocab() const = 0;
  virtual int n_ctx_train() const = 0;
  virtual size_t kv_bytes_per_token(DType kv_type) const = 0;
  // What a standard multi-head attention cache of the same model would need (MLA saves).
  virtual size_t kv_bytes_per_token_mha(DType kv_type) const { return kv_bytes_per_token(kv_type); }
  virtual std::unique_ptr<KvCache> new_cache(int n_ctx, DType kv_type) const = 0;

  // One batched pass over several sequences (each with its own cache). Weights are read once
  // for all tokens. logits: [rows, n_vocab], rows in batch order (all tokens of a sequence
  // with all_logits, else its last token).
  virtual void forward(std::vector<SeqBatch>& batch, ThreadPool& pool,
                       std::vector<float>& logits) = 0;

  // Independent plain scalar F32 implementation over the whole sequence, no cache:
  // the reference the fast path is tested against. Returns [tokens.size(), n_vocab], or
  // only the last position's [n_vocab] when last_only.
  virtual std::vector<float> reference_logits(const std::vector<TokenId>& tokens,
                                              bool last_only = false) const = 0;

 protected:
  std::unique_ptr<GgufFile> file_;
};

}  // namespace hondo
