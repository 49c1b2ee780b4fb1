// hondo chat: a multi-turn conversation in the terminal, in the model family's chat format.
// Commands: /reset, /save FILE, /load FILE, /help, /exit. End a line with \ to continue it.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/options.h"
#include "core/error.h"
#include "runtime/chat.h"

namespace hondo::cli {

namespace {

void save_history(const std::string& path, ChatFormat f, const std::vector<ChatMessage>& h) {
  nlohmann::json j;
  j["chat_format"] = chat_format_name(f);
  j["messages"] = nlohmann::json::array();
  for (const auto& m : h) j["messages"].push_back({{"role", m.role}, {"content", m.content}});
  std::ofstream out(path);
  if (!out) fail(path, ": cannot write");
  out << j.dump(2) << "\n";
}

std::vector<ChatMessage> load_history(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot read");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": invalid JSON: ", e.what());
  }
  std::vector<ChatMessage> h;
  if (!j.contains("messages") || !j["messages"].is_array()) fail(path, ": no \"messages\" array");
  for (const auto& m : j["messages"]) {
    if (!m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      fail(path, ": each message needs string \"role\" and \"content\"");
    h.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return h;
}

}  // namespace

void add_chat(CLI::App& app) {
  struct Opts {
    ModelOptions model;
    SamplingOptions sampling;
    std::string system, format;
    int n_predict = -1;
    bool no_truncate = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("chat", "multi-turn chat in the terminal");
  o->model.add(cmd, /*model_required=*/false, /*fallback=*/true);
  o->sampling.add(cmd);
  cmd->add_option("--system", o->system, "system prompt");
  cmd->add_option("--chat-format", o->format,
                  "deepseek-coder | deepseek-llm | deepseek-r1 (default: from the model)");
  cmd->add_option("-n,--n-predict", o->n_predict,
                  "max tokens per reply; -1 = until the model stops");
  cmd->add_flag("--no-truncate", o->no_truncate,
                "when the conversation outgrows the context, stop with an error instead of "
                "leaving out the oldest turns (the system prompt is always kept)");
  cmd->callback([o] {
    LoadedModel loaded = o->model.load();
    Engine& engine = *loaded.engine;
    const Tokenizer& tok = engine.tokenizer();
    const ChatFormat fmt =
        o->format.empty() ? detect_chat_format(tok.vocab()) : chat_format_from_name(o->format);
    const bool tty = isatty(0);
    std::fprintf(stderr, "hondo chat: %s (%s format, context %d). /help for commands.\n",
                 loaded.path.c_str(), chat_format_name(fmt), engine.n_ctx());
    std::vector<ChatMessage> history;
    if (!o->system.empty()) history.push_back({"system", o->system});
    const std::vector<ChatMessage> initial = history;
    auto seq = engine.new_sequence();
    SamplerParams sp = o->sampling.resolve();
    const int reserve = o->n_predict > 0 ? o->n_predict : std::max(64, engine.n_ctx() / 4);
    for (;;) {
      if (tty) std::printf("> "), std::fflush(stdout);
      std::string input, line;
      while (std::getline(std::cin, line)) {
        if (!line.empty() && line.back() == '\\') {
          input += line.substr(0, line.size() - 1) + "\n";
          continue;
        }
        input += line;
        break;
      }
      if (!std::cin && input.empty()) break;
      if (input.empty()) continue;
      if (input[0] == '/') {
        const std::string c = input.substr(0, input.find(' '));
        const std::string arg =
            input.find(' ') == std::string::npos ? "" : input.substr(input.find(' ') + 1);
        try {
          if (c == "/exit" || c == "/quit") break;
          if (c == "/reset") {
            history = initial;
            seq->tokens.clear();
            std::fprintf(stderr, "(conversation cleared)\n");
          } else if (c == "/save") {
            if (arg.empty()) fail("usage: /save FILE");
            save_history(arg, fmt, history);
            std::fprintf(stderr, "(saved %zu messages to %s)\n", history.size(), arg.c_str());
          } else if (c == "/load") {
            if (arg.empty()) fail("usage: /load FILE");
            history = load_history(arg);
            std::fprintf(stderr, "(loaded %zu messages)\n", history.size());
          } else {
            std::fprintf(stderr,
                         "/reset  clear the conversation\n/save FILE  save it as JSON\n"
                         "/load FILE  continue a saved one\n/exit  quit\n");
          }
        } catch (const Error& e) {
          std::fprintf(stderr, "error: %s\n", e.what());
        }
        continue;
      }
      history.push_back({"user", input});
      int dropped = 0;
      std::vector<TokenId> prompt;
      try {
        prompt = chat_prompt(fmt, history, tok, engine.n_ctx() - reserve, &dropped);
      } catch (const Error& e) {
        history.pop_back();
        std::fprintf(stderr, "error: %s\n", e.what());
        continue;
      }
      if (dropped && o->no_truncate) {
        history.pop_back();
        std::fprintf(stderr,
                     "error: the conversation no longer fits the %d-token context; /reset, or "
                     "/save and start again\n",
                     engine.n_ctx());
        continue;
      }
      if (dropped)
        std::fprintf(stderr,
                     "(the %d oldest messages no longer fit the context and were left out)\n",
                     dropped);
      GenerateParams gp;
      gp.max_tokens = o->n_predict;
      gp.sampling = sp;
      sp.seed += 1;  // a different draw each turn, still reproducible from the first seed
      const GenerateResult r = engine.generate(*seq, prompt, gp, [](std::string_view s) {
        std::fwrite(s.data(), 1, s.size(), stdout);
        std::fflush(stdout);
        return true;
      });
      std::printf("\n");
      std::fflush(stdout);
      history.push_back({"assistant", r.text});
      std::fprintf(stderr, "[%zu tokens, %.1f tok/s]\n", r.generated.size(),
                   r.decode_seconds > 0 ? r.generated.size() / r.decode_seconds : 0.0);
    }
  });
}

}  // namespace hondo::cli
