// hondo quantize IN.gguf OUT.gguf TYPE: rewrite a model's weight matrices in another type or
// quantization mix (Q4_K_M, Q8_0, ...). Input may be F32, F16, BF16 or already quantized.
#include <chrono>
#include <cstdio>

#include "cli/options.h"
#include "core/error.h"
#include "io/requantize.h"

namespace hondo::cli {

void add_quantize(CLI::App& app) {
  struct Opts {
    std::string in, out, type;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  std::string types;
  for (const std::string& n : quant_mix_names()) types += (types.empty() ? "" : ", ") + n;
  CLI::App* cmd = app.add_subcommand("quantize", "write a model in another quantization type");
  cmd->add_option("input", o->in, "model file (GGUF)")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", o->out, "file to write")->required();
  cmd->add_option("type", o->type, "one of: " + types)->required();
  cmd->add_option("-t,--threads", o->threads, "threads (default: one per physical core)");
  cmd->callback([o] {
    const QuantMix mix = quant_mix(o->type);  // unknown names fail before any work
    if (o->in == o->out) fail("input and output are the same file");
    ThreadPool pool(o->threads > 0 ? o->threads : ThreadPool::default_threads());
    const auto t0 = std::chrono::steady_clock::now();
    const RequantizeReport r = requantize_model(o->in, o->out, mix, &pool);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string written;
    for (const auto& [t, n] : r.type_counts)
      written += (written.empty() ? "" : ", ") + std::to_string(n) + " " + dtype_name(t);
    std::printf(
        "%s: %s -> %s, %.1f MiB -> %.1f MiB (%d converted, %d fallback, %d kept) in %.1f s\n",
        o->out.c_str(), o->in.c_str(), mix.name.c_str(), double(r.bytes_in) / (1 << 20),
        double(r.bytes_out) / (1 << 20), r.converted, r.fallback, r.kept, secs);
    std::printf("tensors: %s\n", written.c_str());
  });
}

}  // namespace hondo::cli
