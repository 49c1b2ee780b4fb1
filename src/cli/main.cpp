// hondo: run DeepSeek models locally. Each command lives in its own file; this is the
// boundary where errors become one clear line and a non-zero exit status.
#include <cstdio>
#include <exception>

#include "cli/options.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"hondo — run DeepSeek language models locally"};
  app.set_version_flag("--version", "hondo 0.1.0");
  app.require_subcommand(1);
  hondo::cli::add_run(app);
  hondo::cli::add_chat(app);
  hondo::cli::add_info(app);
  hondo::cli::add_tokenize(app);
  hondo::cli::add_perplexity(app);
  hondo::cli::add_bench(app);
  hondo::cli::add_quantize(app);
  hondo::cli::add_store(app);
  hondo::cli::add_convert(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const hondo::Error& e) {
    std::fprintf(stderr, "hondo: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    bool runs_a_model = false;  // the hint about -c only helps where a model runs
    for (const char* c : {"run", "chat", "bench", "perplexity"})
      runs_a_model |= app.got_subcommand(c);
    std::fprintf(stderr, "hondo: error: out of memory%s\n",
                 runs_a_model ? " (try a smaller model or context, -c)" : "");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hondo: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
