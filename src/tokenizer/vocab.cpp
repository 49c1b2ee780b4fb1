#include "tokenizer/vocab.h"

#include <algorithm>

#include "core/error.h"
#include "io/gguf.h"

namespace hondo {

Vocab Vocab::from_gguf(const GgufFile& f) {
  Vocab v;
  const std::string model = f.get_str("tokenizer.ggml.model");
  if (model == "llama") {
    v.kind = VocabKind::Spm;
    v.add_bos = true;
    v.add_space_prefix = true;
  } else if (model == "gpt2") {
    v.kind = VocabKind::Bpe;
    v.pre = f.get_str("tokenizer.ggml.pre", "default");
  } else {
    fail(f.path(), ": tokenizer model '", model, "' is not supported (expected llama or gpt2)");
  }
  v.tokens = f.get_array("tokenizer.ggml.tokens", GgufType::STRING).strs;
  const size_t n = v.tokens.size();
  if (n == 0) fail(f.path(), ": tokenizer.ggml.tokens is empty");

  if (f.has("tokenizer.ggml.scores")) {
    const auto& s = f.get_array("tokenizer.ggml.scores", GgufType::F32).floats;
    if (s.size() != n)
      fail(f.path(), ": tokenizer.ggml.scores has ", s.size(), " entries, expected ", n);
    v.scores.assign(s.begin(), s.end());
  } else {
    v.scores.assign(n, 0.0f);
  }
  v.types.assign(n, TokenType::Normal);
  if (f.has("tokenizer.ggml.token_type")) {
    const auto& t = f.get_array("tokenizer.ggml.token_type", GgufType::I32).ints;
    if (t.size() != n)
      fail(f.path(), ": tokenizer.ggml.token_type has ", t.size(), " entries, expected ", n);
    for (size_t i = 0; i < n; ++i) v.types[i] = TokenType(t[i]);
  }
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) v.token_to_id.emplace(v.tokens[i], TokenId(i));

  if (v.kind == VocabKind::Bpe) {
    const auto& merges = f.get_array("tokenizer.ggml.merges", GgufType::STRING).strs;
    v.merge_rank.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) v.merge_rank.emplace(merges[i], int(i));
  }

  auto id = [&](const char* key, TokenId def) -> TokenId {
    const int64_t x = f.get_int(key, def);
    if (x >= int64_t(n) || x < -1)
      fail(f.path(), ": ", key, " = ", x, " is outside the vocab of ", n);
    return TokenId(x);
  };
  v.bos = id("tokenizer.ggml.bos_token_id", v.kind == VocabKind::Spm ? 1 : -1);
  v.eos = id("tokenizer.ggml.eos_token_id", v.kind == VocabKind::Spm ? 2 : -1);
  v.unk = id("tokenizer.ggml.unknown_token_id", v.kind == VocabKind::Spm ? 0 : -1);
  v.eot = id("tokenizer.ggml.eot_token_id", -1);
  v.pad = id("tokenizer.ggml.padding_token_id", -1);
  v.add_bos = f.get_bool("tokenizer.ggml.add_bos_token", v.add_bos);
  v.add_eos = f.get_bool("tokenizer.ggml.add_eos_token", v.add_eos);
  v.add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  v.chat_template = f.get_str("tokenizer.chat_template", "");

  // Generation ends at EOS, EOT and the turn-end tokens of the chat formats hondo knows.
  // Some converted files mark these as user-defined; they are control tokens (a model never
  // means them as text), so their type is corrected, as llama.cpp does.
  for (TokenId t : {v.eos, v.eot})
    if (t >= 0) v.end_of_generation.push_back(t);
  for (const char* s : {"<|EOT|>", "<|im_end|>", "<|endoftext|>", "<｜end▁of▁sentence｜>",
                        "<|eot_id|>", "<|end|>", "<end_of_turn>"}) {
    const TokenId t = v.find(s);
    if (t < 0) continue;
    v.types[size_t(t)] = TokenType::Control;
    if (std::find(v.end_of_generation.begin(), v.end_of_generation.end(), t) ==
        v.end_of_generation.end())
      v.end_of_generation.push_back(t);
  }
  return v;
}

bool Vocab::is_eog(TokenId t) const {
  return std::find(end_of_generation.begin(), end_of_generation.end(), t) !=
         end_of_generation.end();
}

}  // namespace hondo
