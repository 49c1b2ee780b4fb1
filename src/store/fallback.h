// The fallback chain: models in order of preference, each tried until one can run here.
//
// fallback.json in hondo's config folder (see docs/MODELS.md):
//   { "models": ["deepseek-r1:7b", "deepseek-r1:1.5b", "/models/coder.gguf"],
//     "memory_limit": "12GiB" }
// Each candidate is skipped, with a one-line reason, when it is not on this machine, its file
// is not a valid model, its estimated memory (weights + KV cache + scratch) exceeds what is
// available, or it fails to load. The bundled model is always the last resort.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "store/memory.h"
#include "store/model_source.h"

namespace hondo {

struct FallbackConfig {
  std::vector<std::string> models;
  uint64_t memory_limit = 0;  // 0: none beyond what the machine has
  std::string origin;         // the file it came from, for messages

  static std::string default_path();  // config_dir()/fallback.json
  // Reads the file; a missing file is an empty chain, a malformed one an error naming it.
  static FallbackConfig load(const std::string& path);
  static FallbackConfig parse(const std::string& json_text, const std::string& origin);
};

struct Candidate {
  std::string spec;       // as the user wrote it (path, alias, org/repo:quant)
  bool download = false;  // may be fetched if missing (the model asked for with -m)
  bool bundled = false;
};

struct Skipped {
  std::string spec, reason;
};

struct LoadedModel {
  std::unique_ptr<Engine> engine;
  std::string spec, path;
  bool bundled = false;
  MemoryEstimate estimate;
  std::vector<Skipped> skipped;  // the candidates tried before, with why
};

struct FallbackOptions {
  bool enabled = true;        // false: the first candidate or an error (--no-fallback)
  uint64_t memory_limit = 0;  // 0: available_memory()
  // Notices as they happen ("skipped X: reason"), so a slow chain never leaves the user
  // waiting in silence.
  std::function<void(const std::string&)> on_note;
};

// Tries the candidates in order; throws when none can run (or the first fails without
// fallback), with every reason in the message.
LoadedModel load_with_fallback(const std::vector<Candidate>& candidates, ModelSource& source,
                               const EngineOptions& engine_opt, const FallbackOptions& opt);

}  // namespace hondo
