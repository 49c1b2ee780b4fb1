// A model's vocabulary as stored in GGUF metadata (`tokenizer.ggml.*`).
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace hondo {

class GgufFile;

using TokenId = int32_t;

enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

enum class VocabKind {
  Spm,  // "llama": SentencePiece BPE by token score, "▁" for spaces, <0xXX> byte fallback
  Bpe,  // "gpt2":  byte-level BPE by merge rank, GPT-2 byte<->unicode mapping
};

struct Vocab {
  VocabKind kind = VocabKind::Bpe;
  std::string pre = "default";  // pre-tokenizer name (BPE only)
  std::vector<std::string> tokens;
  std::vector<float> scores;  // SPM merge priority
  std::vector<TokenType> types;
  std::unordered_map<std::string, TokenId> token_to_id;
  std::unordered_map<std::string, int> merge_rank;  // "left right" -> rank (BPE)

  TokenId bos = -1, eos = -1, eot = -1, unk = -1, pad = -1;
  bool add_bos = false, add_eos = false, add_space_prefix = false;
  std::vector<TokenId> end_of_generation;  // EOS, EOT and the model's other turn-end tokens
  std::string chat_template;               // tokenizer.chat_template, may be empty

  static Vocab from_gguf(const GgufFile& f);

  int size() const { return int(tokens.size()); }
  TokenId find(const std::string& text) const {
    auto it = token_to_id.find(text);
    return it == token_to_id.end() ? -1 : it->second;
  }
  bool is_eog(TokenId t) const;
  bool is_control(TokenId t) const { return types[size_t(t)] == TokenType::Control; }
};

}  // namespace hondo
