// hondo tokenize: print the token ids of a text, separated by spaces.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/options.h"
#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hondo::cli {

void add_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, text, file;
    bool bos = false, special = false, pieces = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids of a text");
  cmd->add_option("-m,--model", o->model, "model or vocab file (GGUF)")->required();
  auto* text = cmd->add_option("text", o->text, "text to tokenize");
  auto* file = cmd->add_option("-f,--file", o->file, "read the text from a file");
  text->excludes(file);
  file->excludes(text);
  cmd->add_flag("--bos", o->bos, "add BOS/EOS as the model does");
  cmd->add_flag("--special", o->special, "parse special tokens such as <|EOT|> in the text");
  cmd->add_flag("--pieces", o->pieces, "print id and text of each token, one per line");
  cmd->callback([o] {
    if (!o->file.empty()) {
      std::ifstream in(o->file, std::ios::binary);
      if (!in) fail(o->file, ": cannot read");
      std::stringstream ss;
      ss << in.rdbuf();
      o->text = ss.str();
    } else if (o->text.empty()) {
      fail("give the text as an argument or with -f FILE");
    }
    auto f = GgufFile::open(o->model);
    const Tokenizer tok(Vocab::from_gguf(*f));
    const auto ids = tok.encode(o->text, o->bos, o->special);
    if (o->pieces) {
      for (TokenId t : ids) std::printf("%6d '%s'\n", t, tok.vocab().tokens[size_t(t)].c_str());
      return;
    }
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
  });
}

}  // namespace hondo::cli
