// hondo convert: a Hugging Face checkpoint folder -> GGUF, in C++ (io/hf_convert).
#include <cstdio>

#include "cli/options.h"
#include "core/error.h"
#include "io/hf_convert.h"
#include "store/memory.h"

namespace hondo::cli {

void add_convert(CLI::App& app) {
  struct Opts {
    std::string dir, out, type = "auto";
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "convert", "convert a Hugging Face checkpoint (safetensors + config.json) to GGUF");
  cmd->add_option("hf_dir", o->dir, "checkpoint folder")->required();
  cmd->add_option("out", o->out, "GGUF file to write")->required();
  cmd->add_option("--type", o->type,
                  "F32, F16, BF16, or a quantization (Q8_0, Q4_K_M, ...); default: the "
                  "checkpoint's own float type (BF16 for FP8)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "threads for quantizing (default: all cores)");
  cmd->callback([o] {
    ThreadPool pool(o->threads);
    ConvertOptions co;
    co.type = o->type;
    co.pool = &pool;
    co.on_note = [](const std::string& s) { std::fprintf(stderr, "%s\n", s.c_str()); };
    const ConvertReport r = convert_hf(o->dir, o->out, co);
    std::fprintf(stderr, "converted %s (%s -> %s): %d tensors, %s, %s\n", o->dir.c_str(),
                 r.hf_arch.c_str(), r.gguf_arch.c_str(), r.tensors, r.type.c_str(),
                 format_size(r.bytes).c_str());
    std::printf("%s\n", o->out.c_str());
  });
}

}  // namespace hondo::cli
