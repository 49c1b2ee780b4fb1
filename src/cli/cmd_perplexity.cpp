// hondo perplexity: llama.cpp's method (see runtime/perplexity.h), same final line format.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/options.h"
#include "core/error.h"
#include "runtime/perplexity.h"

namespace hondo::cli {

void add_perplexity(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    std::string file;
    int chunks = -1;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a text file");
  o->model.add(cmd);
  o->model.ctx = 512;
  cmd->add_option("-f,--file", o->file, "text file")->required();
  cmd->add_option("--chunks", o->chunks, "score at most this many chunks");
  cmd->callback([o] {
    std::ifstream in(o->file, std::ios::binary);
    if (!in) fail(o->file, ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    Engine engine(o->model.resolve(), o->model.engine());
    const PerplexityResult r =
        perplexity(engine, ss.str(), engine.n_ctx(), o->chunks,
                   [](int c, double ppl) { std::fprintf(stderr, "[%d]%.4f ", c + 1, ppl); });
    std::fprintf(stderr, "\n");
    std::printf("chunks: %d, context: %d, scored tokens: %ld\n", r.chunks, engine.n_ctx(),
                r.scored_tokens);
    std::printf("Final estimate: PPL = %.4f +/- %.5f\n", r.ppl, r.stderr_ppl);
  });
}

}  // namespace hondo::cli
