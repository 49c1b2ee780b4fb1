#include "tokenizer/bpe.h"

#include <array>
#include <cstdio>
#include <queue>
#include <unordered_map>

#include "tokenizer/utf8.h"

namespace hondo {

namespace {

struct ByteMap {
  std::array<std::string, 256> to_utf8;
  std::unordered_map<uint32_t, uint8_t> from_cp;
  ByteMap() {
    // Printable Latin-1 bytes map to themselves; the rest to 256, 257, ... in byte order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const uint32_t cp = printable ? uint32_t(b) : next++;
      utf8_append(to_utf8[size_t(b)], cp);
      from_cp[cp] = uint8_t(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

// A symbol of the word being merged: a byte range of `text` in a doubly linked list.
struct Symbol {
  int prev, next;
  size_t begin, len;  // len == 0: merged into its left neighbour
};

// A candidate merge of symbols left and right; `len` detects stale entries.
struct Bigram {
  double priority;  // smaller first (BPE rank, or -score for SentencePiece)
  int left, right;
  size_t len;
  bool operator<(const Bigram& o) const {  // std::priority_queue pops the largest
    if (priority != o.priority) return priority > o.priority;
    return left > o.left;  // ties: leftmost first
  }
};

std::vector<Symbol> split_chars(std::string_view text) {
  std::vector<Symbol> syms;
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_valid_at(text, i);
    if (n == 0) n = 1;
    syms.push_back({int(syms.size()) - 1, int(syms.size()) + 1, i, n});
    i += n;
  }
  if (!syms.empty()) syms.back().next = -1;
  return syms;
}

}  // namespace

const std::string& byte_to_unicode(uint8_t b) {
  return byte_map().to_utf8[b];
}

int unicode_to_byte(uint32_t cp) {
  const auto& m = byte_map().from_cp;
  auto it = m.find(cp);
  return it == m.end() ? -1 : it->second;
}

void bpe_encode_word(const Vocab& vocab, std::string_view word, bool ignore_merges,
                     std::vector<TokenId>& out) {
  std::string text;
  for (char c : word) text += byte_to_unicode(uint8_t(c));
  if (ignore_merges) {
    const TokenId t = vocab.find(text);
    if (t >= 0) {
      out.push_back(t);
      return;
    }
  }
  std::vector<Symbol> syms = split_chars(text);
  std::priority_queue<Bigram> queue;
  std::string key;
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    key.assign(text, syms[size_t(l)].begin, syms[size_t(l)].len);
    key += ' ';
    key.append(text, syms[size_t(r)].begin, syms[size_t(r)].len);
    auto it = vocab.merge_rank.find(key);
    if (it == vocab.merge_rank.end()) return;
    queue.push({double(it->second), l, r, syms[size_t(l)].len + syms[size_t(r)].len});
  };
  for (int i = 0; i + 1 < int(syms.size()); ++i) try_add(i, i + 1);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[size_t(b.left)];
    Symbol& r = syms[size_t(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[size_t(i)].next) {
    const std::string piece = text.substr(syms[size_t(i)].begin, syms[size_t(i)].len);
    const TokenId t = vocab.find(piece);
    if (t >= 0) {
      out.push_back(t);
      continue;
    }
    // Not in the vocabulary: fall back to one token per mapped character.
    for (const Symbol& c : split_chars(piece)) {
      const TokenId ct = vocab.find(piece.substr(c.begin, c.len));
      if (ct >= 0)
        out.push_back(ct);
      else if (vocab.unk >= 0)
        out.push_back(vocab.unk);
    }
  }
}

void spm_encode(const Vocab& vocab, std::string_view text, std::vector<TokenId>& out) {
  std::vector<Symbol> syms = split_chars(text);
  std::priority_queue<Bigram> queue;
  // A pair is a candidate when its concatenation is a token; the highest score merges first.
  auto try_add = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const size_t len = syms[size_t(l)].len + syms[size_t(r)].len;
    const TokenId t = vocab.find(std::string(text.substr(syms[size_t(l)].begin, len)));
    if (t >= 0) queue.push({-double(vocab.scores[size_t(t)]), l, r, len});
  };
  for (int i = 0; i + 1 < int(syms.size()); ++i) try_add(i, i + 1);
  while (!queue.empty()) {
    const Bigram b = queue.top();
    queue.pop();
    Symbol& l = syms[size_t(b.left)];
    Symbol& r = syms[size_t(b.right)];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.len || l.next != b.right) continue;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[size_t(r.next)].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  // Every merged symbol is a token by construction; a single character that is not one
  // becomes its UTF-8 bytes as <0xXX> tokens (byte fallback).
  for (int i = syms.empty() ? -1 : 0; i >= 0; i = syms[size_t(i)].next) {
    const Symbol& s = syms[size_t(i)];
    const TokenId t = vocab.find(std::string(text.substr(s.begin, s.len)));
    if (t >= 0) {
      out.push_back(t);
      continue;
    }
    for (size_t k = 0; k < s.len; ++k) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "<0x%02X>", unsigned(uint8_t(text[s.begin + k])));
      const TokenId bt = vocab.find(buf);
      if (bt >= 0)
        out.push_back(bt);
      else if (vocab.unk >= 0)
        out.push_back(vocab.unk);
    }
  }
}

}  // namespace hondo
