#include "cli/options.h"

#include <chrono>
#include <cstdio>

namespace hondo::cli {

void ModelOptions::add(CLI::App* app, bool model_required) {
  auto* m = app->add_option("-m,--model", model, "model file (GGUF)");
  if (model_required) m->required();
  app->add_option("-t,--threads", threads, "threads (default: one per physical core)");
  app->add_option("-c,--ctx-size", ctx, "context size in tokens (default: min(training, 4096))");
  app->add_option("--kv-type", kv_type, "KV cache type: f16 or f32")
      ->check(CLI::IsMember({"f16", "f32"}));
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
