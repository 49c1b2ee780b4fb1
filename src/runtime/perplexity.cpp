#include "runtime/perplexity.h"

#include <cmath>

#include "core/error.h"

namespace hondo {

PerplexityResult perplexity(Engine& engine, const std::string& text, int n_ctx, int max_chunks,
                            const std::function<void(int, double)>& on_chunk) {
  const Tokenizer& tok = engine.tokenizer();
  const bool add_bos = tok.vocab().add_bos && tok.vocab().bos >= 0;
  std::vector<TokenId> tokens = tok.encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (n_ctx < 4) fail("perplexity: context must be at least 4 tokens, got ", n_ctx);
  if (n_ctx > engine.n_ctx())
    fail("perplexity: -c ", n_ctx, " exceeds the engine context ", engine.n_ctx());
  int n_chunks = int(tokens.size() / size_t(n_ctx));
  if (n_chunks == 0)
    fail("perplexity: the text has ", tokens.size(), " tokens, fewer than one chunk of ", n_ctx);
  if (max_chunks > 0) n_chunks = std::min(n_chunks, max_chunks);

  const int V = engine.model().n_vocab();
  const int first = n_ctx / 2;
  double nll = 0, nll2 = 0;
  long count = 0;
  auto seq = engine.new_sequence();
  for (int c = 0; c < n_chunks; ++c) {
    std::vector<TokenId> chunk(tokens.begin() + long(c) * n_ctx,
                               tokens.begin() + long(c + 1) * n_ctx);
    if (add_bos) chunk[0] = tok.vocab().bos;
    seq->tokens.clear();  // each chunk starts from an empty cache
    const std::vector<float>& logits = engine.eval(*seq, chunk, /*all_logits=*/true);  // [n_ctx, V]
    for (int j = first; j < n_ctx - 1; ++j) {
      const float* l = logits.data() + size_t(j) * size_t(V);
      double mx = l[0];
      for (int i = 1; i < V; ++i) mx = std::max(mx, double(l[i]));
      double sum = 0;
      for (int i = 0; i < V; ++i) sum += std::exp(double(l[i]) - mx);
      const double v = -(double(l[chunk[size_t(j + 1)]]) - mx - std::log(sum));
      nll += v;
      nll2 += v * v;
      ++count;
    }
    if (on_chunk) on_chunk(c, std::exp(nll / double(count)));
  }
  PerplexityResult r;
  r.chunks = n_chunks;
  r.scored_tokens = count;
  const double mean = nll / double(count);
  r.ppl = std::exp(mean);
  const double var = nll2 / double(count) - mean * mean;
  r.stderr_ppl = (var > 0 && count > 1) ? std::sqrt(var / double(count - 1)) * r.ppl : 0.0;
  return r;
}

}  // namespace hondo
