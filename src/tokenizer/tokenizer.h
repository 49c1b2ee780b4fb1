// Text <-> token ids for a model, configured entirely from its GGUF metadata.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/pretokenize.h"
#include "tokenizer/vocab.h"

namespace hondo {

class Tokenizer {
 public:
  explicit Tokenizer(Vocab vocab);

  const Vocab& vocab() const { return vocab_; }

  // add_special: BOS/EOS as the model's metadata asks. parse_special: text such as
  // "<|EOT|>" becomes the control token; otherwise it is tokenized as plain text.
  // User-defined tokens are always matched as whole tokens.
  std::vector<TokenId> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Raw bytes of one token (may be part of a UTF-8 character). Control tokens render as
  // their text only when render_special.
  std::string piece(TokenId t, bool render_special = false) const;
  std::string decode(const std::vector<TokenId>& ids, bool render_special = false) const;

 private:
  void encode_text(std::string_view text, bool at_start, std::vector<TokenId>& out) const;

  Vocab vocab_;
  std::unique_ptr<PreTokenizer> pre_;  // byte-level BPE only
  std::vector<TokenId> specials_;      // control / user-defined tokens, longest text first
};

// Turns a stream of tokens into text that never splits a UTF-8 character: bytes of an
// incomplete character are held back until the rest arrives.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false)
      : tok_(tok), render_special_(render_special) {}
  // Drop the space SentencePiece puts before the first word (when no text precedes it).
  void strip_leading_space() { strip_space_ = true; }
  std::string push(TokenId t);
  std::string flush();  // whatever is held back, invalid bytes as U+FFFD

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool strip_space_ = false;
  std::string pending_;
};

}  // namespace hondo
