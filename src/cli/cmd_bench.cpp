// hondo bench: prompt processing (one batch of -p tokens) and generation (-n tokens one at a
// time) speed of a model file, after -d tokens of context, peak memory, and generation as a
// fraction of the memory-bandwidth roofline. Flags follow llama-bench (-m, -p, -n, -d, -t, -r).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "core/error.h"
#include "runtime/bench.h"

namespace hondo::cli {

namespace {

void print_text(const BenchResult& r) {
  std::printf("model      %s (%s, %.2f GiB)\n", r.model_path.c_str(), r.arch.c_str(),
              double(r.file_bytes) / double(1ull << 30));
  std::printf("threads    %d   kernels %s (prefetch to %s%s%s)   repetitions %d\n", r.threads,
              r.isa.c_str(), r.line_prefetch.c_str(), r.page_ahead ? "" : "; tiles: no page hint",
              r.page_hint_alone ? "; Q4 tiles and F16/BF16 rows: page hint alone" : "", r.reps);
  // Tests after a context of `depth` tokens are named as llama-bench names them: pp512 @ d4096.
  const std::string at = r.depth > 0 ? " @ d" + std::to_string(r.depth) : "";
  if (r.n_prompt > 0)
    std::printf("prefill    %-14s %8.2f ± %.2f tok/s\n",
                ("pp" + std::to_string(r.n_prompt) + at).c_str(), r.prefill.mean, r.prefill.stddev);
  if (r.n_gen > 0)
    std::printf("decode     %-14s %8.2f ± %.2f tok/s\n",
                ("tg" + std::to_string(r.n_gen) + at).c_str(), r.decode.mean, r.decode.stddev);
  std::printf("peak RSS   %.1f MiB\n", double(r.peak_rss_bytes) / double(1 << 20));
  if (r.n_gen > 0)
    std::printf("bandwidth  %.1f GB/s measured around decoding (probes %.1f-%.1f GB/s)\n",
                r.bandwidth_gbps, r.bandwidth_worst_gbps, r.bandwidth_best_gbps);
  else
    std::printf("bandwidth  %.1f GB/s measured\n", r.bandwidth_gbps);
  std::printf("read       %.1f MB per decoded token (weights %.1f, KV %.2f in %s)\n",
              double(r.weight_bytes_per_token + r.kv_bytes_per_token_read) / 1e6,
              double(r.weight_bytes_per_token) / 1e6, double(r.kv_bytes_per_token_read) / 1e6,
              r.kv_type.c_str());
  if (r.n_gen > 0)
    std::printf("roofline   %.2f tok/s; decode reaches %.1f %% of it\n", r.roofline_tps,
                100.0 * r.roofline_fraction);
  if (!r.phases.empty()) {
    std::printf("phases     per decoded token: time, bytes read, rate (%% of the bandwidth)\n");
    for (const PhaseStat& ph : r.phases) {
      std::printf("  %-10s %8.3f ms", ph.name.c_str(), ph.seconds_per_token * 1e3);
      if (ph.bytes_per_token >= 1000000 && ph.seconds_per_token > 0)  // not an embedding row
        std::printf(" %10.1f MB %7.1f GB/s (%.0f %%)", double(ph.bytes_per_token) / 1e6, ph.gbps(),
                    r.bandwidth_gbps > 0 ? 100.0 * ph.gbps() / r.bandwidth_gbps : 0.0);
      std::printf("\n");
    }
  }
}

nlohmann::json to_json(const BenchResult& r) {
  nlohmann::json j = {{"model", r.model_path},
                      {"arch", r.arch},
                      {"file_bytes", r.file_bytes},
                      {"kernels", r.isa},
                      {"kv_type", r.kv_type},
                      {"line_prefetch", r.line_prefetch},
                      {"page_hint_alone", r.page_hint_alone},
                      {"page_ahead", r.page_ahead},
                      {"threads", r.threads},
                      {"repetitions", r.reps},
                      {"n_prompt", r.n_prompt},
                      {"n_gen", r.n_gen},
                      {"n_depth", r.depth},
                      {"prefill_tps", r.prefill.mean},
                      {"prefill_tps_stddev", r.prefill.stddev},
                      {"prefill_tps_samples", r.prefill.samples},
                      {"decode_tps", r.decode.mean},
                      {"decode_tps_stddev", r.decode.stddev},
                      {"decode_tps_samples", r.decode.samples},
                      {"peak_rss_bytes", r.peak_rss_bytes},
                      {"bandwidth_gbps", r.bandwidth_gbps},
                      {"bandwidth_best_gbps", r.bandwidth_best_gbps},
                      {"bandwidth_worst_gbps", r.bandwidth_worst_gbps},
                      {"weight_bytes_per_token", r.weight_bytes_per_token},
                      {"kv_bytes_per_token_read", r.kv_bytes_per_token_read},
                      {"roofline_tps", r.roofline_tps},
                      {"roofline_fraction", r.roofline_fraction}};
  if (!r.phases.empty()) {
    nlohmann::json phases = nlohmann::json::array();
    for (const PhaseStat& ph : r.phases)
      phases.push_back({{"name", ph.name},
                        {"seconds_per_token", ph.seconds_per_token},
                        {"bytes_per_token", ph.bytes_per_token},
                        {"gbps", ph.gbps()}});
    j["phases"] = phases;
  }
  return j;
}

}  // namespace

void add_bench(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    BenchParams p;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt and generation speed of a model");
  o->model.add(cmd, /*model_required=*/false);
  cmd->add_option("-p,--n-prompt", o->p.n_prompt, "prompt tokens, processed as one batch")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-n,--n-gen", o->p.n_gen, "tokens generated one at a time")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-d,--n-depth", o->p.depth, "tokens already in the context before each test")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  cmd->add_option("-r,--repetitions", o->p.reps, "repetitions of each test")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->add_flag(
      "--phases", o->p.phases,
      "time the decode steps by phase (attention, ffn, output) against the bytes each reads");
  cmd->callback([o] {
    EngineOptions eo = o->model.engine();
    const int needed = o->p.depth + std::max(o->p.n_prompt, o->p.n_gen) + 1;
    if (eo.n_ctx == 0) eo.n_ctx = needed;
    if (eo.n_ctx < needed)
      fail("-c ", eo.n_ctx, " is smaller than the ", needed, " tokens the tests need");
    eo.n_batch = std::max(eo.n_batch, o->p.n_prompt);
    Engine engine(o->model.resolve(), eo);
    const BenchResult r = run_bench(engine, o->p);
    if (o->json)
      std::printf("%s\n", to_json(r).dump(2).c_str());
    else
      print_text(r);
  });
}

}  // namespace hondo::cli
