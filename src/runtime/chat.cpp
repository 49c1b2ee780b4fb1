#include "runtime/chat.h"

#include "core/error.h"

namespace hondo {

namespace {
const char* kCoderDefaultSystem =
    "You are an AI programming assistant, utilizing the Deepseek Coder model, developed by "
    "Deepseek Company, and you only answer questions related to computer science. For "
    "politically sensitive questions, security and privacy issues, and other non-computer "
    "science questions, you will refuse to answer\n";
}

ChatFormat chat_format_from_name(const std::string& name) {
  if (name == "deepseek-coder") return ChatFormat::DeepSeekCoder;
  if (name == "deepseek-llm" || name == "deepseek-v2") return ChatFormat::DeepSeekLlm;
  if (name == "deepseek-r1" || name == "deepseek3") return ChatFormat::DeepSeekR1;
  fail("unknown chat format '", name, "' (known: deepseek-coder, deepseek-llm, deepseek-r1)");
}

const char* chat_format_name(ChatFormat f) {
  switch (f) {
    case ChatFormat::DeepSeekCoder:
      return "deepseek-coder";
    case ChatFormat::DeepSeekLlm:
      return "deepseek-llm";
    case ChatFormat::DeepSeekR1:
      return "deepseek-r1";
  }
  return "?";
}

ChatFormat detect_chat_format(const Vocab& v) {
  const std::string& t = v.chat_template;
  if (t.find("### Instruction") != std::string::npos) return ChatFormat::DeepSeekCoder;
  if (t.find("<｜User｜>") != std::string::npos) return ChatFormat::DeepSeekR1;
  if (t.find("'User: '") != std::string::npos) return ChatFormat::DeepSeekLlm;
  if (v.pre == "deepseek-coder") return ChatFormat::DeepSeekCoder;
  if (v.pre == "deepseek-r1-qwen" || v.pre == "qwen2" || v.pre == "deepseek-v3")
    return ChatFormat::DeepSeekR1;
  return ChatFormat::DeepSeekLlm;
}

std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages,
                        const Vocab& vocab) {
  const std::string eos = vocab.eos >= 0 ? vocab.tokens[size_t(vocab.eos)] : "";
  std::string out;
  bool has_system = false;
  for (const auto& m : messages) has_system |= m.role == "system";
  switch (f) {
    case ChatFormat::DeepSeekCoder:
      if (!has_system) out += kCoderDefaultSystem;
      for (const auto& m : messages) {
        if (m.role == "system")
          out += m.content;
        else if (m.role == "user")
          out += "### Instruction:\n" + m.content + "\n";
        else
          out += "### Response:\n" + m.content + "\n<|EOT|>\n";
      }
      return out + "### Response:\n";
    case ChatFormat::DeepSeekLlm:
      for (const auto& m : messages) {
        if (m.role == "system")
          out += m.content + "\n\n";
        else if (m.role == "user")
          out += "User: " + m.content + "\n\n";
        else
          out += "Assistant: " + m.content + eos;
      }
      return out + "Assistant:";
    case ChatFormat::DeepSeekR1:
      for (const auto& m : messages)
        if (m.role == "system") out += m.content;
      for (const auto& m : messages) {
        if (m.role == "user") {
          out += "<｜User｜>" + m.content;
        } else if (m.role == "assistant") {
          // Earlier answers go back without their reasoning, as the official template does.
          std::string c = m.content;
          const size_t think_end = c.rfind("</think>");
          if (think_end != std::string::npos) c = c.substr(think_end + 8);
          out += "<｜Assistant｜>" + c + "<｜end▁of▁sentence｜>";
        }
      }
      return out + "<｜Assistant｜><think>\n";
  }
  return out;
}

std::vector<TokenId> chat_prompt(ChatFormat f, const std::vector<ChatMessage>& messages,
                                 const Tokenizer& tok, int max_tokens, int* dropped_messages) {
  std::vector<ChatMessage> kept = messages;
  int dropped = 0;
  for (;;) {
    std::vector<TokenId> ids;
    if (tok.vocab().bos >= 0) ids.push_back(tok.vocab().bos);
    const auto body = tok.encode(render_chat(f, kept, tok.vocab()), false, true);
    ids.insert(ids.end(), body.begin(), body.end());
    if (int(ids.size()) <= max_tokens) {
      if (dropped_messages) *dropped_messages = dropped;
      return ids;
    }
    // Drop the oldest non-system message (and the reply that follows it), never the last one.
    size_t first = 0;
    while (first < kept.size() && kept[first].role == "system") ++first;
    if (first + 1 >= kept.size())
      fail("the conversation's last message alone needs ", ids.size(), " tokens, more than the ",
           max_tokens, " available; raise -c or shorten it");
    const size_t n = (first + 2 < kept.size() && kept[first + 1].role == "assistant") ? 2 : 1;
    kept.erase(kept.begin() + long(first), kept.begin() + long(first + n));
    dropped += int(n);
  }
}

}  // namespace hondo
