// Perplexity by llama.cpp's method, so figures compare across engines: the text is tokenized
// once (with BOS when the model adds one), cut into non-overlapping chunks of n_ctx tokens,
// each chunk starts with BOS (when used) and is evaluated from an empty cache, and only the
// predictions of the second half of each chunk are scored.
#pragma once
#include <functional>
#include <string>

#include "runtime/engine.h"

namespace hondo {

struct PerplexityResult {
  double ppl = 0;
  double stderr_ppl = 0;  // delta-method standard error of the estimate
  int chunks = 0;
  long scored_tokens = 0;
};

// max_chunks <= 0: all chunks. on_chunk(i, running ppl) reports progress.
PerplexityResult perplexity(Engine& engine, const std::string& text, int n_ctx, int max_chunks,
                            const std::function<void(int, double)>& on_chunk = {});

}  // namespace hondo
