// Chat formats: how a conversation becomes the prompt text a model was trained on. Built in
// for the DeepSeek families; chosen from the GGUF chat template when present.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hondo {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

enum class ChatFormat {
  DeepSeekCoder,  // "### Instruction:\n...\n### Response:\n...\n<|EOT|>\n"
  DeepSeekLlm,    // "User: ...\n\nAssistant: ...<｜end▁of▁sentence｜>" (LLM-chat, V2, V2.5)
  DeepSeekR1,  // "<｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜>" (R1 and its distills)
};

ChatFormat chat_format_from_name(
    const std::string& name);  // "deepseek-coder", "deepseek-llm", "deepseek-r1"
const char* chat_format_name(ChatFormat f);
// From the model's template text if it has one, else from its pre-tokenizer.
ChatFormat detect_chat_format(const Vocab& vocab);

// The prompt text (without BOS) for the conversation, ending with the cue for the assistant.
std::string render_chat(ChatFormat f, const std::vector<ChatMessage>& messages, const Vocab& vocab);

// Token ids for the conversation: BOS + rendered text with special tokens parsed. If it does not
// fit in max_tokens, the oldest turns after the system prompt are dropped (whole user/assistant
// pairs); dropped_turns says how many messages went. Throws if even the last message alone
// does not fit.
std::vector<TokenId> chat_prompt(ChatFormat f, const std::vector<ChatMessage>& messages,
                                 const Tokenizer& tok, int max_tokens, int* dropped_messages);

}  // namespace hondo
