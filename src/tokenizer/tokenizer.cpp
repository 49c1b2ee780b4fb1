#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

namespace hondo {

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {
  if (vocab_.kind == VocabKind::Bpe) pre_ = std::make_unique<PreTokenizer>(vocab_.pre);
  for (TokenId t = 0; t < vocab_.size(); ++t) {
    const TokenType ty = vocab_.types[size_t(t)];
    if ((ty == TokenType::Control || ty == TokenType::UserDefined) &&
        !vocab_.tokens[size_t(t)].empty())
      specials_.push_back(t);
  }
  std::stable_sort(specials_.begin(), specials_.end(), [&](TokenId a, TokenId b) {
    return vocab_.tokens[size_t(a)].size() > vocab_.tokens[size_t(b)].size();
  });
}

void Tokenizer::encode_text(std::string_view raw, bool at_start, std::vector<TokenId>& out) const {
  const std::string text = utf8_sanitize(raw);
  if (vocab_.kind == VocabKind::Bpe) {
    for (std::string_view word : pre_->split(text))
      bpe_encode_word(vocab_, word, pre_->ignore_merges(), out);
    return;
  }
  // SentencePiece: spaces become "▁", and a leading "▁" marks the start of the text.
  std::string escaped = (vocab_.add_space_prefix && at_start) ? "\xE2\x96\x81" : "";
  for (char c : text) {
    if (c == ' ')
      escaped += "\xE2\x96\x81";
    else
      escaped += c;
  }
  spm_encode(vocab_, escaped, out);
}

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<TokenId> out;
  if (add_special && vocab_.add_bos && vocab_.bos >= 0) out.push_back(vocab_.bos);
  // Cut the text at special tokens (longest first), then encode the plain runs between.
  struct Frag {
    std::string_view text;
    TokenId token;  // -1: plain text
  };
  std::vector<Frag> frags;
  if (!text.empty()) frags.push_back({text, -1});
  for (TokenId sp : specials_) {
    if (!parse_special && vocab_.types[size_t(sp)] != TokenType::UserDefined) continue;
    const std::string& s = vocab_.tokens[size_t(sp)];
    std::vector<Frag> next;
    for (const Frag& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = 0;
      for (size_t hit; (hit = f.text.find(s, pos)) != std::string_view::npos;
           pos = hit + s.size()) {
        if (hit > pos) next.push_back({f.text.substr(pos, hit - pos), -1});
        next.push_back({{}, sp});
      }
      if (pos < f.text.size()) next.push_back({f.text.substr(pos), -1});
    }
    frags.swap(next);
  }
  bool prev_special = true;
  for (const Frag& f : frags) {
    if (f.token >= 0) {
      out.push_back(f.token);
      prev_special = true;
    } else {
      encode_text(f.text, prev_special, out);
      prev_special = false;
    }
  }
  if (add_special && vocab_.add_eos && vocab_.eos >= 0) out.push_back(vocab_.eos);
  return out;
}

std::string Tokenizer::piece(TokenId t, bool render_special) const {
  if (t < 0 || t >= vocab_.size()) fail("token id ", t, " is outside the vocab of ", vocab_.size());
  const std::string& text = vocab_.tokens[size_t(t)];
  const TokenType ty = vocab_.types[size_t(t)];
  if (ty == TokenType::Control || ty == TokenType::Unknown || ty == TokenType::Unused)
    return render_special ? text : std::string();
  if (ty == TokenType::UserDefined) return text;
  if (vocab_.kind == VocabKind::Spm) {
    if (ty == TokenType::Byte && text.size() == 6 && text.rfind("<0x", 0) == 0)
      return std::string(1, char(std::stoi(text.substr(3, 2), nullptr, 16)));
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
        out += ' ';
        i += 2;
      } else {
        out += text[i];
      }
    }
    return out;
  }
  // Byte-level BPE: each code point of the token text stands for one byte.
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_valid_at(text, i);
    if (n == 0) n = 1;
    uint32_t cp = uint8_t(text[i]) & (0xFF >> (n == 1 ? 0 : n + 1));
    for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (uint8_t(text[i + k]) & 0x3F);
    const int b = unicode_to_byte(cp);
    if (b >= 0)
      out += char(b);
    else
      out.append(text, i, n);
    i += n;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<TokenId>& ids, bool render_special) const {
  std::string out;
  for (TokenId t : ids) out += piece(t, render_special);
  return out;
}

std::string StreamDecoder::push(TokenId t) {
  pending_ += tok_.piece(t, render_special_);
  if (strip_space_ && !pending_.empty()) {
    if (pending_[0] == ' ') pending_.erase(0, 1);
    strip_space_ = false;
  }
  // Emit everything up to the last character that is still incomplete.
  size_t keep = pending_.size();
  for (size_t back = 1; back <= 3 && back <= pending_.size(); ++back) {
    const size_t i = pending_.size() - back;
    const int n = utf8_seq_len(uint8_t(pending_[i]));
    if (n > 1) {
      if (size_t(n) > back) keep = i;
      break;
    }
    if (n == 1) break;
  }
  std::string out = pending_.substr(0, keep);
  pending_.erase(0, keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  return out;
}

}  // namespace hondo
