#include "cli/options.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace hondo::cli {

void ModelOptions::add(CLI::App* app, bool model_required) {
  auto* m = app->add_option("-m,--model", model, "model file (GGUF)");
  if (model_required) m->required();
  app->add_option("-t,--threads", threads, "threads (default: one per physical core)");
  app->add_option("-c,--ctx-size", ctx, "context size in tokens (default: min(training, 4096))");
  app->add_option("--kv-type", kv_type, "KV cache type: f16 or f32")
      ->check(CLI::IsMember({"f16", "f32"}));
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

std::string ModelOptions::resolve() const {
  if (!model.empty()) return model;
  const std::string m = bundled_model_path();
  if (m.empty())
    fail("no model given (-m FILE) and the bundled model hondo-coder-tiny.gguf was not found");
  std::fprintf(stderr, "model: %s (bundled)\n", m.c_str());
  return m;
}

EngineOptions ModelOptions::engine() const {
  EngineOptions e;
  e.n_threads = threads;
  e.n_ctx = ctx;
  e.kv_type = kv_type == "f32" ? DType::F32 : DType::F16;
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
