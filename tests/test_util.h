// Helpers shared by the tests: synthetic models written once into the build tree.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "runtime/engine.h"
#include "synth/synthetic.h"
#include "test_paths.h"

namespace hondo::test {

inline std::string vocab(const std::string& name) {
  return shared("testdata/tokenizers/ggml-vocab-" + name + ".gguf");
}

// Writes (once per process) a synthetic model for the spec and returns its path.
inline std::string synthetic(const std::string& tag, SynthSpec spec) {
  const std::string dir = bin("test-models");
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/" + tag + ".gguf";
  write_synthetic_model(spec, path);
  return path;
}

inline SynthSpec tiny(const std::string& preset, DType type = DType::F32) {
  SynthSpec s = SynthSpec::preset(preset);
  s.vocab_path = vocab(preset == "tiny-qwen2" ? "qwen2" : "deepseek-coder");
  s.type = s.embd_type = s.output_type = type;
  return s;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float d = 0;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}
inline float range(const float* a, size_t n) {
  const auto [mn, mx] = std::minmax_element(a, a + n);
  return *mx - *mn;
}
inline int argmax(const float* a, int n) {
  return int(std::max_element(a, a + n) - a);
}

// Fraction of positions of `ids` where models a and b (same vocabulary) pick the same top-1,
// teacher-forced on ids.
inline double top1_agreement(Engine& a, Engine& b, const std::vector<TokenId>& ids) {
  const int V = a.model().n_vocab();
  auto sa = a.new_sequence(), sb = b.new_sequence();
  const auto la = a.eval(*sa, ids, true), lb = b.eval(*sb, ids, true);
  int same = 0;
  for (size_t p = 0; p < ids.size(); ++p)
    same += argmax(la.data() + p * size_t(V), V) == argmax(lb.data() + p * size_t(V), V);
  return double(same) / double(ids.size());
}

}  // namespace hondo::test
