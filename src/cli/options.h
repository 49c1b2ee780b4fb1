// Options shared by several commands, registered on a CLI11 subcommand.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "store/fallback.h"

namespace hondo::cli {

struct ModelOptions {
  std::string model;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f16";
  bool offline = false, no_fallback = false;
  std::string memory_limit;
  // Without model_required, -m may be omitted and the bundled model is used. With
  // fallback, the command loads through the fallback chain (load()).
  void add(CLI::App* app, bool model_required = true, bool fallback = false);
  EngineOptions engine() const;
  // The model file -m names (a path, or an alias / hub reference, downloaded if missing);
  // without -m the bundled one. Announced on stderr unless it is a plain path.
  std::string resolve() const;
  // -m if given, then the fallback chain, then the bundled model; what was skipped and what
  // was chosen is announced on stderr.
  LoadedModel load() const;
};

// --kv-type: the KV cache's element type. q8_0 halves an F16 cache (a head's values in
// blocks of 32; MLA's rotary key stays F16).
void add_kv_type_option(CLI::App* app, std::string& kv_type, const std::string& what);

// Hub settings from the environment, with --offline applied.
HubOptions hub_options(bool offline);
// Wires a hub's progress and notices to stderr.
void attach_console(Hub& hub);

// The hub (progress and notices on stderr), the alias registry and the resolver over both, as
// every command that names models needs them.
struct ConsoleStore {
  explicit ConsoleStore(bool offline);
  Hub hub;
  Registry registry;
  ModelSource source;
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
void add_store(CLI::App& app);  // pull, list, rm
void add_convert(CLI::App& app);

}  // namespace hondo::cli
