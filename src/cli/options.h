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
  void add(CLI::App* app, bool model_required = true);
  EngineOptions engine() const;
};

struct SamplingOptions {
  SamplerParams p;
  long long seed = -1;  // -1: from the clock (printed, so a run can be repeated)
  void add(CLI::App* app);
  SamplerParams resolve();  // fills in the seed
};

// Registration of each command (one file each).
void add_run(CLI::App& app);
void add_chat(CLI::App& app);
void add_info(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_perplexity(CLI::App& app);

}  // namespace hondo::cli
