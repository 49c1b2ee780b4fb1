// Helpers shared by the tests: synthetic models written once into the build tree.
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

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

}  // namespace hondo::test
