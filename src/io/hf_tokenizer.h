// Hugging Face tokenizer files <-> GGUF tokenizer metadata (llama.cpp's keys).
//
// tokenizer.json (byte-level BPE: model.vocab, model.merges, added_tokens, pre_tokenizer)
// and tokenizer_config.json (bos/eos/pad tokens, add_bos_token, chat_template) become
// tokenizer.ggml.{model, pre, tokens, token_type, merges, bos/eos/padding_token_id,
// add_bos_token, add_eos_token} and tokenizer.chat_template. The pre-tokenizer is recognised
// by its split expressions (compared with hondo's table after writing \x{...} escapes as
// characters), so a tokenizer whose expressions hondo does not know is an error, not a guess.
#pragma once
#include <string>

namespace hondo {

class GgufWriter;
class GgufFile;

// Reads HF_DIR/tokenizer.json and tokenizer_config.json (chat_template.jinja too, if present)
// into w. n_vocab: the model's embedding rows; ids the tokenizer does not use up to it become
// "[PADn]" placeholders, as llama.cpp writes them.
void hf_tokenizer_to_gguf(const std::string& hf_dir, int64_t n_vocab, GgufWriter& w);

// The GGUF pre-tokenizer name of a tokenizer.json's pre_tokenizer expressions, or throws.
std::string detect_pretokenizer(const std::string& tokenizer_json_text);

// The inverse, for the project's test tool: writes tokenizer.json and tokenizer_config.json
// for the tokenizer a GGUF file holds.
void gguf_tokenizer_to_hf(const GgufFile& f, const std::string& hf_dir);

}  // namespace hondo
