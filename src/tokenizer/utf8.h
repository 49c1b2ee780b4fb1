// Small UTF-8 helpers for the tokenizer and the streaming decoder.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace hondo {

// Length of the sequence a lead byte starts (1..4), or 0 for a continuation/invalid byte.
inline int utf8_seq_len(uint8_t lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return lead >= 0xC2 ? 2 : 0;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return lead <= 0xF4 ? 4 : 0;
  return 0;
}

// Length of the complete, valid sequence at s[i], or 0 if it is invalid or cut short.
size_t utf8_valid_at(std::string_view s, size_t i);

// Copy of s with every invalid byte replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

void utf8_append(std::string& out, uint32_t cp);

}  // namespace hondo
