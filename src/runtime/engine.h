// The runtime shared by the CLI and (later) the server: a loaded model with its tokenizer and
// thread pool, sequences with their own KV caches, and the generation loop.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace hondo {

struct EngineOptions {
  int n_threads = 0;  // 0: one per physical core
  int n_ctx = 0;      // 0: min(training context, 4096)
  DType kv_type = DType::F16;
  int n_batch = 512;  // prompt tokens evaluated per forward pass
};

// A conversation or completion in progress: its cache and the tokens the cache holds.
struct Sequence {
  std::unique_ptr<KvCache> cache;
  std::vector<TokenId> tokens;
  // The logits of the last Engine::eval or generation step, kept with the sequence so that
  // decoding a token allocates nothing ([n_vocab] floats: 608 KB for a Qwen2 vocabulary).
  std::vector<float> logits;
};

enum class FinishReason { EndOfGeneration, StopString, MaxTokens, ContextFull, Cancelled };
const char* finish_reason_name(FinishReason r);

struct GenerateParams {
  int max_tokens = -1;            // -1: until end of generation or full context
  std::vector<std::string> stop;  // user stop strings (not included in the output)
  SamplerParams sampling;
  bool render_special = false;  // print control tokens as text
};

struct GenerateResult {
  std::string text;
  std::vector<TokenId> generated;
  int prompt_tokens = 0;
  int reused_tokens = 0;  // prompt prefix already in the cache
  double prefill_seconds = 0, decode_seconds = 0;
  FinishReason reason = FinishReason::EndOfGeneration;
};

class Engine {
 public:
  Engine(const std::string& model_path, const EngineOptions& opt);

  Model& model() { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  ThreadPool& pool() { return *pool_; }
  int n_ctx() const { return n_ctx_; }
  DType kv_type() const { return opt_.kv_type; }

  std::unique_ptr<Sequence> new_sequence() const;

  // Brings seq's cache to hold exactly `tokens` (keeping the common prefix already there) and
  // returns the logits after the last one: [n_vocab]. With all_logits, logits for every newly
  // evaluated token: [n_new, n_vocab]. The result is seq.logits, valid until seq is evaluated
  // again (copy it to keep it).
  const std::vector<float>& eval(Sequence& seq, const std::vector<TokenId>& tokens,
                                 bool all_logits = false);

  // Evaluates the prompt and samples until end of generation, a stop string, max_tokens or a
  // full context. on_text receives text as it becomes final; returning false cancels.
  GenerateResult generate(Sequence& seq, const std::vector<TokenId>& prompt,
                          const GenerateParams& p,
                          const std::function<bool(std::string_view)>& on_text);

 private:
  // Sets the logits of tokens the tokenizer cannot produce (padding rows of the output matrix)
  // to -inf in each [n_vocab] row of `logits`.
  void mask_padding(std::vector<float>& logits) const;

  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ThreadPool> pool_;
  EngineOptions opt_;
  int n_ctx_ = 0;
};

}  // namespace hondo
