// Options shared by several commands, registered on a CLI11 subcommand.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace hondo::cli {

struct ModelOptions {
  std::string model;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f16";
  // Without model_required, -m may be omitted and the bundled model is used.
  void add(CLI::App* app, bool model_required = true);
  EngineOptions engine() const;
  // The model file to load: -m, else the bundled one (announced on stderr).
  std::string resolve() const;
};

struct SamplingOptions {
  SamplerParams p;
  long long seed = -1;  // -1: from the clock (printed, so a run can be repeated)
  void add(CLI::App* app);
  SamplerParams resolve();  // fills in the seed
};

// Where the bundled model is: $HONDO_MODEL, else models/ next to the executable's folder
// (install tree or build tree), else the source tree's models/. Empty if none exists.
std::string bundled_model_path();

// Registration of each command (one file each).
void add_run(CLI::App& app);
void add_chat(CLI::App& app);
void add_info(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_perplexity(CLI::App& app);
void add_bench(CLI::App& app);
void add_quantize(CLI::App& app);

}  // namespace hondo::cli
