// hondo-synth: writes a random-weight GGUF model of a real shape, for tests and benchmarks.
//   hondo-synth --preset deepseek-coder-1.3b --vocab VOCAB.gguf --type q8_0 -o model.gguf
#include <CLI/CLI.hpp>
#include <cstdio>

#include "core/error.h"
#include "synth/synthetic.h"

int main(int argc, char** argv) {
  CLI::App app{"hondo-synth — random-weight GGUF models of real shapes"};
  std::string preset = "tiny-llama", out, type = "f32", embd_type, output_type, arch;
  hondo::SynthSpec o;
  int n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, n_ff = 0, n_vocab = 0;
  long long seed = 1;
  bool tied = false, joined_kv_b = false;
  app.add_option("--preset", preset,
                 "deepseek-coder-1.3b | r1-distill-qwen-1.5b | deepseek-v2-lite | tiny-llama | "
                 "tiny-qwen2 | tiny-v2-lite | tiny-v2 | tiny-v3")
      ->capture_default_str();
  app.add_option("--vocab", o.vocab_path, "GGUF whose tokenizer metadata the model gets")
      ->required();
  app.add_option("-o,--out", out, "output file")->required();
  app.add_option("--type", type, "matrix type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1")
      ->capture_default_str();
  app.add_option("--embd-type", embd_type, "token embedding type (default: as --type)");
  app.add_option("--output-type", output_type, "output matrix type (default: as --type)");
  app.add_option("--arch", arch, "override: llama | qwen2");
  app.add_option("--n-embd", n_embd);
  app.add_option("--n-layer", n_layer);
  app.add_option("--n-head", n_head);
  app.add_option("--n-head-kv", n_head_kv);
  app.add_option("--n-ff", n_ff);
  app.add_option("--n-vocab", n_vocab);
  app.add_option("--seed", seed)->capture_default_str();
  app.add_flag("--tied", tied, "no output.weight: reuse the embedding");
  app.add_flag("--joined-kv-b", joined_kv_b,
               "MLA models: one attn_kv_b per layer, as older converters wrote (default: "
               "attn_k_b and attn_v_b)");
  CLI11_PARSE(app, argc, argv);
  try {
    hondo::SynthSpec s = hondo::SynthSpec::preset(preset);
    s.vocab_path = o.vocab_path;
    s.type = hondo::dtype_from_name(type);
    s.embd_type = hondo::dtype_from_name(embd_type.empty() ? type : embd_type);
    s.output_type = hondo::dtype_from_name(output_type.empty() ? type : output_type);
    if (!arch.empty()) s.arch = arch;
    if (n_embd) s.n_embd = n_embd;
    if (n_layer) s.n_layer = n_layer;
    if (n_head) s.n_head = n_head;
    if (n_head_kv) s.n_head_kv = n_head_kv;
    if (n_ff) s.n_ff = n_ff;
    if (n_vocab) s.n_vocab = n_vocab;
    s.tied_output = tied;
    if (joined_kv_b) s.split_kv_b = false;
    s.seed = uint64_t(seed);
    hondo::write_synthetic_model(s, out);
  } catch (const hondo::Error& e) {
    std::fprintf(stderr, "hondo-synth: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
