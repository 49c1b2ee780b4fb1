#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace hondo {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::EndOfGeneration:
      return "stop";
    case FinishReason::StopString:
      return "stop";
    case FinishReason::MaxTokens:
      return "length";
    case FinishReason::ContextFull:
      return "context";
    case FinishReason::Cancelled:
      return "cancelled";
  }
  return "?";
}

Engine::Engine(const std::string& model_path, const EngineOptions& opt) : opt_(opt) {
  model_ = Model::load(model_path);
  tokenizer_ = std::make_unique<Tokenizer>(Vocab::from_gguf(model_->file()));
  if (tokenizer_->vocab().size() > model_->n_vocab())
    fail(model_path, ": tokenizer has ", tokenizer_->vocab().size(), " tokens but the model only ",
         model_->n_vocab(), " output rows");
  pool_ = std::make_unique<ThreadPool>(opt.n_threads > 0 ? opt.n_threads
                                                         : ThreadPool::default_threads());
  n_ctx_ = opt.n_ctx > 0 ? opt.n_ctx : std::min(model_->n_ctx_train(), 4096);
  if (opt_.n_batch < 1) opt_.n_batch = 1;
}

std::unique_ptr<Sequence> Engine::new_sequence() const {
  auto s = std::make_unique<Sequence>();
  s->cache = model_->new_cache(n_ctx_, opt_.kv_type);
  return s;
}

const std::vector<float>& Engine::eval(Sequence& seq, const std::vector<TokenId>& tokens,
                                       bool all_logits) {
  if (tokens.empty()) fail("nothing to evaluate: empty prompt");
  if (int(tokens.size()) > n_ctx_)
    fail("prompt of ", tokens.size(), " tokens does not fit in the context of ", n_ctx_,
         " tokens (raise -c or shorten the prompt)");
  // Keep the common prefix; always re-evaluate at least the last token to get its logits.
  size_t keep = 0;
  while (keep < seq.tokens.size() && keep < tokens.size() && seq.tokens[keep] == tokens[keep])
    ++keep;
  if (keep == tokens.size()) --keep;
  seq.cache->set_n_past(int(keep));
  seq.tokens.resize(keep);
  // Without all_logits each pass leaves [1, n_vocab] in seq.logits and the last one is the
  // result; with it the passes' rows are gathered there (the first pass's moved, not copied).
  const size_t V = size_t(model_->n_vocab());
  if (all_logits)
    seq.logits.clear();
  else if (seq.logits.capacity() > 4 * V)
    std::vector<float>().swap(seq.logits);  // let go of an earlier all-logits result
  std::vector<float> rows;
  for (size_t i = keep; i < tokens.size(); i += size_t(opt_.n_batch)) {
    const size_t end = std::min(tokens.size(), i + size_t(opt_.n_batch));
    std::vector<SeqBatch> batch{
        {seq.cache.get(), {tokens.begin() + long(i), tokens.begin() + long(end)}, all_logits}};
    model_->forward(batch, *pool_, all_logits ? rows : seq.logits);
    seq.tokens.insert(seq.tokens.end(), tokens.begin() + long(i), tokens.begin() + long(end));
    if (all_logits && seq.logits.empty())
      seq.logits.swap(rows);
    else if (all_logits)
      seq.logits.insert(seq.logits.end(), rows.begin(), rows.end());
  }
  mask_padding(seq.logits);
  return seq.logits;
}

void Engine::mask_padding(std::vector<float>& logits) const {
  const size_t V = size_t(model_->n_vocab()), n_tok = size_t(tokenizer_->vocab().size());
  for (size_t r = 0; r < logits.size() / V; ++r)
    std::fill(logits.begin() + long(r * V + n_tok), logits.begin() + long((r + 1) * V),
              -std::numeric_limits<float>::infinity());
}

namespace {
// Length of the longest suffix of text that is a proper prefix of some stop string: that
// much must be held back until the next token shows whether a stop string completes.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const auto& s : stops)
    for (size_t n = std::min(s.size() - 1, text.size()); n > hold; --n)
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}
}  // namespace

GenerateResult Engine::generate(Sequence& seq, const std::vector<TokenId>& prompt,
                                const GenerateParams& p,
                                const std::function<bool(std::string_view)>& on_text) {
  using clock = std::chrono::steady_clock;
  GenerateResult r;
  r.prompt_tokens = int(prompt.size());
  size_t common = 0;
  while (common < seq.tokens.size() && common < prompt.size() &&
         seq.tokens[common] == prompt[common])
    ++common;
  r.reused_tokens = int(std::min(common, prompt.size() - (prompt.empty() ? 0 : 1)));

  const auto t0 = clock::now();
  const std::vector<float>& logits = eval(seq, prompt);  // seq.logits, updated each step
  const auto t1 = clock::now();
  r.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  Sampler sampler(p.sampling);
  StreamDecoder decoder(*tokenizer_, p.render_special);
  const Vocab& vocab = tokenizer_->vocab();
  // SentencePiece puts a space before the first word; drop it when nothing precedes it.
  if (vocab.kind == VocabKind::Spm && vocab.add_space_prefix && prompt.size() == 1 &&
      prompt[0] == vocab.bos)
    decoder.strip_leading_space();
  std::string pending;  // decoded text not yet passed to on_text (could start a stop string)
  std::vector<TokenId> history = seq.tokens;
  const int V = model_->n_vocab();
  auto emit = [&](size_t n) -> bool {
    if (n == 0) return true;
    const std::string chunk = pending.substr(0, n);
    pending.erase(0, n);
    r.text += chunk;
    return on_text(chunk);
  };
  for (;;) {
    if (p.max_tokens >= 0 && int(r.generated.size()) >= p.max_tokens) {
      r.reason = FinishReason::MaxTokens;
      break;
    }
    const TokenId t = sampler.sample(logits.data(), V, history);
    if (vocab.is_eog(t)) {
      r.reason = FinishReason::EndOfGeneration;
      break;
    }
    r.generated.push_back(t);
    history.push_back(t);
    pending += decoder.push(t);
    bool stopped = false;
    for (const auto& s : p.stop) {
      const size_t at = s.empty() ? std::string::npos : pending.find(s);
      if (at != std::string::npos) {
        pending.resize(at);
        stopped = true;
      }
    }
    if (stopped) {
      emit(pending.size());
      r.reason = FinishReason::StopString;
      break;
    }
    if (!emit(pending.size() - held_back(pending, p.stop))) {
      r.reason = FinishReason::Cancelled;
      break;
    }
    if (seq.cache->n_past() >= seq.cache->n_ctx()) {
      r.reason = FinishReason::ContextFull;
      break;
    }
    std::vector<SeqBatch> batch{{seq.cache.get(), {t}, false}};
    model_->forward(batch, *pool_, seq.logits);
    seq.tokens.push_back(t);
    mask_padding(seq.logits);
  }
  if (r.reason != FinishReason::StopString && r.reason != FinishReason::Cancelled) {
    pending += decoder.flush();
    emit(pending.size());
  }
  r.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return r;
}

}  // namespace hondo
