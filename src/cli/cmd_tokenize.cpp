// hondo tokenize: print the token ids of a text, separated by spaces.
#include <cstdio>

#include "cli/options.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hondo::cli {

void add_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, text;
    bool bos = false, special = false, pieces = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "print the token ids of a text");
  cmd->add_option("-m,--model", o->model, "model or vocab file (GGUF)")->required();
  cmd->add_option("text", o->text, "text to tokenize")->required();
  cmd->add_flag("--bos", o->bos, "add BOS/EOS as the model does");
  cmd->add_flag("--special", o->special, "parse special tokens such as <|EOT|> in the text");
  cmd->add_flag("--pieces", o->pieces, "print id and text of each token, one per line");
  cmd->callback([o] {
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
