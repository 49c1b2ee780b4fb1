// hondo run: complete a prompt, streaming the generated text to stdout (only that text, so the
// output can be piped); speed and diagnostics go to stderr.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/options.h"
#include "core/error.h"

namespace hondo::cli {

void add_run(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    SamplingOptions sampling;
    std::string prompt, prompt_file;
    int n_predict = -1;
    std::vector<std::string> stop;
    bool special = false, no_bos = false, quiet = false, truncate = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("run", "complete a prompt and stream the text");
  o->model.add(cmd, /*model_required=*/false, /*fallback=*/true);
  o->sampling.add(cmd);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text");
  cmd->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  cmd->add_option("-n,--n-predict", o->n_predict,
                  "tokens to generate; -1 = until end or full context");
  cmd->add_option("--stop", o->stop, "stop string (repeatable); not included in the output");
  cmd->add_flag("--special", o->special,
                "parse special tokens in the prompt, print them in the output");
  cmd->add_flag("--no-bos", o->no_bos, "do not add the model's BOS token");
  cmd->add_flag("-q,--quiet", o->quiet, "no speed report on stderr");
  cmd->add_flag("--truncate", o->truncate,
                "if the prompt does not fit, keep its end (and BOS) instead of failing");
  cmd->callback([o] {
    std::string prompt = o->prompt;
    if (!o->prompt_file.empty()) {
      std::ifstream in(o->prompt_file, std::ios::binary);
      if (!in) fail(o->prompt_file, ": cannot read prompt file");
      std::stringstream ss;
      ss << in.rdbuf();
      prompt = ss.str();
    }
    LoadedModel loaded = o->model.load();
    Engine& engine = *loaded.engine;
    const Tokenizer& tok = engine.tokenizer();
    std::vector<TokenId> ids = tok.encode(prompt, !o->no_bos, o->special);
    if (ids.empty())
      fail("the prompt is empty and the model adds no BOS token: nothing to start from");
    // Room for the answer: what -n asks (at most half the context), else a quarter of it.
    const int n_ctx = engine.n_ctx();
    const int room = n_ctx - (o->n_predict > 0 ? std::min(o->n_predict, n_ctx / 2) : n_ctx / 4);
    if (int(ids.size()) > room) {
      if (!o->truncate)
        fail("the prompt has ", ids.size(), " tokens; with room for the answer only ", room,
             " fit in the ", n_ctx,
             "-token context (use --truncate, a larger -c, or a shorter prompt)");
      const bool bos = ids.front() == tok.vocab().bos;
      std::vector<TokenId> kept(ids.end() - (room - (bos ? 1 : 0)), ids.end());
      if (bos) kept.insert(kept.begin(), ids.front());
      std::fprintf(stderr, "(prompt truncated from %zu to its last %zu tokens)\n", ids.size(),
                   kept.size());
      ids.swap(kept);
    }
    GenerateParams gp;
    gp.max_tokens = o->n_predict;
    gp.stop = o->stop;
    gp.sampling = o->sampling.resolve();
    gp.render_special = o->special;
    auto seq = engine.new_sequence();
    const GenerateResult r = engine.generate(*seq, ids, gp, [](std::string_view s) {
      std::fwrite(s.data(), 1, s.size(), stdout);
      std::fflush(stdout);
      return true;
    });
    std::printf("\n");
    if (!o->quiet) {
      const double pp =
          r.prefill_seconds > 0 ? (r.prompt_tokens - r.reused_tokens) / r.prefill_seconds : 0;
      const double tg = r.decode_seconds > 0 ? r.generated.size() / r.decode_seconds : 0;
      std::fprintf(stderr,
                   "\nprompt: %d tokens, %.2f tok/s | generated: %zu tokens, %.2f tok/s | "
                   "threads %d | stop: %s\n",
                   r.prompt_tokens, pp, r.generated.size(), tg, engine.pool().size(),
                   finish_reason_name(r.reason));
    }
  });
}

}  // namespace hondo::cli
