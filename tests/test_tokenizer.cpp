#include <fstream>
#include <sstream>

#include "io/gguf.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

using namespace hondo;

namespace {

Tokenizer load(const std::string& path) {
  auto f = GgufFile::open(path);
  return Tokenizer(Vocab::from_gguf(*f));
}

// The llama.cpp vector format: inputs separated by "\n__ggml_vocab_test__\n", one output line
// of space-separated ids per input.
void check_vectors(const std::string& name) {
  const std::string base = test::shared("testdata/tokenizers/ggml-vocab-" + name + ".gguf");
  HONDO_REQUIRE_FILE(base);
  HONDO_REQUIRE_FILE(base + ".inp");
  const Tokenizer tok = load(base);
  const std::string inp = test::read_file(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0, hit; (hit = inp.find(sep, pos)) != std::string::npos; pos = hit + sep.size())
    inputs.push_back(inp.substr(pos, hit - pos));
  std::ifstream out(base + ".out");
  std::vector<std::string> lines;
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  ASSERT_EQ(inputs.size(), lines.size()) << name;
  int failures = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<TokenId> want;
    std::istringstream ls(lines[i]);
    for (TokenId t; ls >> t;) want.push_back(t);
    const auto got = tok.encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    if (got != want) {
      ++failures;
      std::ostringstream g;
      for (auto t : got) g << ' ' << t;
      ADD_FAILURE() << name << " vector " << i << " input '" << inputs[i]
                    << "'\n  want:" << lines[i] << "\n  got: " << g.str();
    }
    // Decoding gives the input back (these vocabularies are lossless on valid UTF-8).
    if (got == want && name != "llama-spm") {
      EXPECT_EQ(tok.decode(got), inputs[i]) << name << " " << i;
    }
  }
  EXPECT_EQ(failures, 0) << name;
}

}  // namespace

TEST(TokenizerVectors, DeepseekCoder) {
  check_vectors("deepseek-coder");
}
TEST(TokenizerVectors, DeepseekLlm) {
  check_vectors("deepseek-llm");
}
TEST(TokenizerVectors, DeepseekV3) {
  check_vectors("deepseek-v3");
}
TEST(TokenizerVectors, DeepseekR1Qwen) {
  // The r1-qwen vectors use the qwen2 vocab file (same tokenizer).
  const std::string dir = test::shared("testdata/tokenizers/");
  HONDO_REQUIRE_FILE(dir + "ggml-vocab-qwen2.gguf");
  EXPECT_EQ(test::read_file(dir + "ggml-vocab-deepseek-r1-qwen.gguf.out"),
            test::read_file(dir + "ggml-vocab-qwen2.gguf.out"));
}
TEST(TokenizerVectors, Qwen2) {
  check_vectors("qwen2");
}
TEST(TokenizerVectors, LlamaSpm) {
  check_vectors("llama-spm");
}
TEST(TokenizerVectors, Gpt2) {
  check_vectors("gpt-2");
}
