#include "cli/options.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/progress.h"
#include "core/error.h"

namespace hondo::cli {

void ModelOptions::add(CLI::App* app, bool model_required, bool fallback) {
  auto* m = app->add_option("-m,--model", model,
                            "model: a GGUF file, an alias (deepseek-r1:1.5b) or org/repo:QUANT");
  if (model_required) m->required();
  app->add_flag("--offline", offline, "never use the network (as HF_HUB_OFFLINE=1)");
  if (fallback) {
    app->add_flag("--no-fallback", no_fallback,
                  "fail if the model cannot run instead of trying the fallback chain");
    app->add_option("--memory-limit", memory_limit,
                    "skip models estimated to need more than this (e.g. 8GiB)");
  }
  app->add_option("-t,--threads", threads, "threads (default: one per physical core)");
  app->add_option("-c,--ctx-size", ctx, "context size in tokens (default: min(training, 4096))");
  add_kv_type_option(app, kv_type, "KV cache type");
}

void add_kv_type_option(CLI::App* app, std::string& kv_type, const std::string& what) {
  app->add_option("--kv-type", kv_type, what + ": f16, q8_0 or f32")
      ->check(CLI::IsMember({"f16", "q8_0", "f32"}));
}

std::string bundled_model_path() {
  namespace fs = std::filesystem;
  const char* kName = "hondo-coder-tiny.gguf";
  if (const char* env = std::getenv("HONDO_MODEL"); env && *env) return env;
  std::vector<fs::path> candidates;
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    const fs::path dir = fs::path(std::string(exe, size_t(n))).parent_path();
    candidates = {dir / "../models" / kName, dir / "../share/hondo/models" / kName,
                  dir / "models" / kName};
  }
  candidates.push_back(fs::path(HONDO_SOURCE_DIR) / "models" / kName);
  for (const auto& c : candidates)
    if (fs::exists(c)) return fs::weakly_canonical(c).string();
  return "";
}

HubOptions hub_options(bool offline) {
  HubOptions h = HubOptions::from_env();
  h.offline = h.offline || offline;
  return h;
}

void attach_console(Hub& hub) {
  auto bar = std::make_shared<ProgressBar>();
  hub.on_progress = [bar](const Progress& p) { bar->update(p); };
  hub.on_note = [](const std::string& s) { std::fprintf(stderr, "note: %s\n", s.c_str()); };
}

ConsoleStore::ConsoleStore(bool offline)
    : hub(hub_options(offline)), registry(Registry::load()), source(hub, registry) {
  attach_console(hub);
}

std::string ModelOptions::resolve() const {
  if (model.empty()) {
    const std::string m = bundled_model_path();
    if (m.empty())
      fail("no model given (-m FILE) and the bundled model hondo-coder-tiny.gguf was not found");
    std::fprintf(stderr, "model: %s (bundled)\n", m.c_str());
    return m;
  }
  ConsoleStore store(offline);
  const std::string path = store.source.locate(model, ModelSource::Fetch::IfMissing);
  if (path != model) std::fprintf(stderr, "model: %s (%s)\n", model.c_str(), path.c_str());
  return path;
}

LoadedModel ModelOptions::load() const {
  ConsoleStore store(offline);
  const FallbackConfig chain = FallbackConfig::load(FallbackConfig::default_path());
  std::vector<Candidate> cands;
  if (!model.empty()) cands.push_back({model, /*download=*/true, false});
  if (!no_fallback || model.empty())
    for (const auto& m : chain.models)
      if (m != model) cands.push_back({m, false, false});
  const std::string bundled = bundled_model_path();
  if (!bundled.empty()) cands.push_back({bundled, false, true});
  if (cands.empty())
    fail("no model given (-m FILE), no fallback chain (", chain.origin,
         ") and the bundled model hondo-coder-tiny.gguf was not found");
  FallbackOptions fo;
  fo.enabled = !no_fallback;
  fo.memory_limit = chain.memory_limit;
  if (const char* env = std::getenv("HONDO_MEMORY_LIMIT"); env && *env)
    fo.memory_limit = parse_size(env);
  if (!memory_limit.empty()) fo.memory_limit = parse_size(memory_limit);
  fo.on_note = [](const std::string& s) {
    if (s.rfind("skipped ", 0) == 0) std::fprintf(stderr, "model: %s\n", s.c_str());
  };
  LoadedModel lm = load_with_fallback(cands, store.source, engine(), fo);
  if (lm.bundled)
    std::fprintf(stderr, "model: %s (bundled)\n", lm.path.c_str());
  else if (lm.path != lm.spec)
    std::fprintf(stderr, "model: %s (%s)%s\n", lm.spec.c_str(), lm.path.c_str(),
                 lm.skipped.empty() ? "" : " (fallback)");
  else if (!lm.skipped.empty())
    std::fprintf(stderr, "model: %s (fallback)\n", lm.path.c_str());
  return lm;
}

EngineOptions ModelOptions::engine() const {
  EngineOptions e;
  e.n_threads = threads;
  e.n_ctx = ctx;
  e.kv_type = dtype_from_name(kv_type);
  return e;
}

void SamplingOptions::add(CLI::App* app) {
  app->add_option("--temp", p.temperature, "temperature; 0 = greedy")->capture_default_str();
  app->add_option("--top-k", p.top_k, "keep the k most likely tokens; 0 = off")
      ->capture_default_str();
  app->add_option("--top-p", p.top_p, "nucleus: smallest set with this probability; 1 = off")
      ->capture_default_str();
  app->add_option("--min-p", p.min_p, "drop tokens below min-p x the top probability; 0 = off")
      ->capture_default_str();
  app->add_option("--repeat-penalty", p.repeat_penalty, "penalise recent tokens; 1 = off")
      ->capture_default_str();
  app->add_option("--repeat-last-n", p.repeat_last_n, "window for the penalties; -1 = all")
      ->capture_default_str();
  app->add_option("--frequency-penalty", p.frequency_penalty, "subtract per occurrence")
      ->capture_default_str();
  app->add_option("--presence-penalty", p.presence_penalty, "subtract once if present")
      ->capture_default_str();
  app->add_option("-s,--seed", seed, "random seed; -1 = from the clock")->capture_default_str();
}

SamplerParams SamplingOptions::resolve() {
  SamplerParams r = p;
  if (seed < 0) {
    r.seed = uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
    if (r.temperature > 0) std::fprintf(stderr, "seed: %llu\n", (unsigned long long)r.seed);
  } else {
    r.seed = uint64_t(seed);
  }
  return r;
}

}  // namespace hondo::cli
