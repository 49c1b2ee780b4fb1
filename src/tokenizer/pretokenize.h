// Pre-tokenization: before BPE merges run, text is cut into "words" by a sequence of
// regular expressions (the Hugging Face `Split` pre-tokenizers, behaviour "isolated").
// Each regex is applied in turn to every piece the previous ones produced; matched spans
// and the unmatched gaps between them both become pieces.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hondo {

class PreTokenizer {
 public:
  // `name` is the GGUF `tokenizer.ggml.pre` value ("deepseek-coder", "qwen2", ...).
  explicit PreTokenizer(const std::string& name);
  ~PreTokenizer();
  PreTokenizer(PreTokenizer&&) noexcept;

  // Splits valid UTF-8 text into pieces (views into `text`).
  std::vector<std::string_view> split(std::string_view text) const;

  // Whether whole pre-tokens found in the vocabulary skip BPE (LLaMA-3 style).
  bool ignore_merges() const { return ignore_merges_; }

  static std::vector<std::string> known_names();
  // The split expressions of a named pre-tokenizer (empty if unknown).
  static std::vector<std::string> patterns(const std::string& name);

 private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes_;
  bool ignore_merges_ = false;
};

}  // namespace hondo
