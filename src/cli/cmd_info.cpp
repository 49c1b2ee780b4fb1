// hondo info: what a GGUF file holds and what running it costs.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "core/error.h"
#include "model/model.h"

namespace hondo::cli {

void add_info(CLI::App& app) {
  struct Opts {
    std::string file;
    bool json = false, tensors = true;
    int ctx = 4096;
    std::string kv_type = "f16";
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("info", "describe a model file and the memory it needs");
  cmd->add_option("file", o->file, "model file (GGUF)")->required();
  cmd->add_flag("--json", o->json, "print one JSON object");
  cmd->add_option("-c,--ctx-size", o->ctx, "context for the memory estimate")
      ->capture_default_str();
  add_kv_type_option(cmd, o->kv_type, "KV cache type for the estimate");
  cmd->callback([o] {
    std::unique_ptr<Model> model;
    std::string load_error;
    try {
      model = Model::load(o->file);
    } catch (const Error& e) {
      load_error = e.what();
    }
    std::unique_ptr<GgufFile> own;
    if (!model) own = GgufFile::open(o->file);  // still describe what can be read
    const GgufFile& f = model ? model->file() : *own;
    const DType kv = dtype_from_name(o->kv_type);

    size_t weight_bytes = 0;
    std::map<std::string, std::pair<int, size_t>> mix;  // type -> (tensors, bytes)
    for (const Tensor& t : f.tensors()) {
      weight_bytes += t.nbytes();
      auto& m = mix[dtype_name(t.type)];
      m.first += 1;
      m.second += t.nbytes();
    }
    nlohmann::json j;
    j["file"] = f.path();
    j["gguf_version"] = f.version();
    j["file_bytes"] = f.file_size();
    j["architecture"] = f.get_str("general.architecture", "?");
    j["tensor_count"] = f.tensors().size();
    j["weight_bytes"] = weight_bytes;
    for (const auto& [k, v] : f.metadata()) {
      if (v.type == GgufType::ARRAY)
        j["metadata"][k] = v.to_string(4);
      else if (v.type == GgufType::STRING)
        j["metadata"][k] = v.s.size() > 200 ? v.s.substr(0, 200) + "..." : v.s;
      else if (v.is_float())
        j["metadata"][k] = v.f;
      else if (v.type == GgufType::BOOL)
        j["metadata"][k] = v.i != 0;
      else
        j["metadata"][k] = v.i;
    }
    for (const auto& [name, m] : mix)
      j["quant_mix"][name] = {{"tensors", m.first}, {"bytes", m.second}};
    for (const Tensor& t : f.tensors())
      j["tensors"].push_back({{"name", t.name},
                              {"type", dtype_name(t.type)},
                              {"shape", t.shape_str()},
                              {"bytes", t.nbytes()}});
    if (model) {
      const size_t per_tok = model->kv_bytes_per_token(kv);
      const size_t per_tok_mha = model->kv_bytes_per_token_mha(kv);
      j["memory"] = {{"context", o->ctx},
                     {"kv_type", o->kv_type},
                     {"kv_bytes_per_token", per_tok},
                     {"kv_bytes", per_tok * size_t(o->ctx)},
                     {"mha_kv_bytes_per_token", per_tok_mha},
                     {"weights_bytes", weight_bytes},
                     {"total_bytes", weight_bytes + per_tok * size_t(o->ctx)}};
    } else {
      j["error"] = load_error;
    }
    if (o->json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      std::printf("file:         %s (GGUF v%u, %.1f MiB)\n", f.path().c_str(), f.version(),
                  f.file_size() / 1048576.0);
      std::printf("architecture: %s\n", j["architecture"].get<std::string>().c_str());
      std::printf("\nmetadata:\n");
      for (const auto& [k, v] : f.metadata()) {
        std::string s = v.to_string(4);
        if (s.size() > 100) s = s.substr(0, 100) + "...";
        for (char& ch : s)
          if (ch == '\n') ch = ' ';
        std::printf("  %-45s %s\n", k.c_str(), s.c_str());
      }
      std::printf("\ntensors (%zu):\n", f.tensors().size());
      for (const Tensor& t : f.tensors())
        std::printf("  %-36s %-6s %-24s %10.2f MiB\n", t.name.c_str(), dtype_name(t.type),
                    t.shape_str().c_str(), t.nbytes() / 1048576.0);
      std::printf("\nquant mix:\n");
      for (const auto& [name, m] : mix)
        std::printf("  %-6s %4d tensors %10.2f MiB\n", name.c_str(), m.first, m.second / 1048576.0);
      if (model) {
        const size_t per_tok = model->kv_bytes_per_token(kv);
        std::printf("\nmemory for a %d-token context (KV %s):\n", o->ctx, o->kv_type.c_str());
        std::printf("  weights         %10.2f MiB\n", weight_bytes / 1048576.0);
        std::printf("  KV cache        %10.2f MiB (%zu bytes per token)\n",
                    per_tok * double(o->ctx) / 1048576.0, per_tok);
        const size_t mha = model->kv_bytes_per_token_mha(kv);
        if (mha != per_tok)
          std::printf(
              "  (standard multi-head attention would need %.2f MiB, %zu bytes per token: %.1fx)\n",
              mha * double(o->ctx) / 1048576.0, mha, double(mha) / double(per_tok));
        std::printf("  total           %10.2f MiB (+ activations scratch)\n",
                    (weight_bytes + per_tok * double(o->ctx)) / 1048576.0);
      }
    }
    if (!model) fail(load_error);
  });
}

}  // namespace hondo::cli
