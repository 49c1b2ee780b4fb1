// The two merge algorithms: byte-level BPE (GPT-2 family: DeepSeek, Qwen2, LLaMA-3) and
// SentencePiece BPE (LLaMA-1/2 style, "▁" for spaces).
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/vocab.h"

namespace hondo {

// GPT-2's reversible map from bytes to printable code points, as UTF-8 strings.
const std::string& byte_to_unicode(uint8_t b);
// The inverse; returns -1 for code points outside the map.
int unicode_to_byte(uint32_t cp);

// Encodes one pre-token (raw bytes) by byte-level BPE, appending ids to out.
void bpe_encode_word(const Vocab& vocab, std::string_view word, bool ignore_merges,
                     std::vector<TokenId>& out);

// Encodes text (spaces already replaced by "▁") by SentencePiece BPE.
void spm_encode(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out);

}  // namespace hondo
