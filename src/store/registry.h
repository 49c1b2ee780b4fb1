// Model references as users type them, and the alias registry behind the short names.
//
//   ./model.gguf, /abs/path.gguf   a file
//   deepseek-r1:1.5b               an alias: NAME[:TAG], TAG = SIZE, QUANT or SIZE-QUANT
//   org/repo:Q4_K_M                a hub repository and the quantization to take from it
//   org/repo/path/file.gguf        one file of a hub repository
//
// The registry is built in (store/registry.json) and extended or overridden by the user's
// models.json in hondo's config folder ($HONDO_CONFIG_DIR, else $XDG_CONFIG_HOME/hondo, else
// ~/.config/hondo).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace hondo {

// Where hondo's user-editable files live (models.json, fallback.json).
std::string config_dir();

// A file of a hub repository, or a repository and a quantization to pick a file by.
struct HubRef {
  std::string repo;
  std::string file;  // empty: choose by quant
  std::string quant;
  std::string revision = "main";
  std::string display() const;
};

class Registry {
 public:
  // The built-in aliases plus $config_dir/models.json if present (a malformed user file is an
  // error naming it).
  static Registry load();
  static Registry builtin();
  // Adds or replaces families from a JSON text in registry.json's format.
  void merge(const std::string& json_text, const std::string& origin);

  // NAME[:TAG] -> hub file; nullopt if NAME is not an alias. A TAG the alias does not know is
  // an error listing the known ones.
  std::optional<HubRef> lookup(const std::string& name) const;

  struct Family {
    std::string description, default_tag, default_quant;
    std::map<std::string, std::pair<std::string, std::string>> tags;  // tag -> (repo, file)
  };
  const std::map<std::string, Family>& families() const { return families_; }

 private:
  std::map<std::string, Family> families_;
};

// Parses a reference that is not an alias or an existing file: "org/repo[:QUANT]" or
// "org/repo/path/file". nullopt if it has neither form.
std::optional<HubRef> parse_hub_ref(const std::string& s);

// The .gguf file of `files` that holds quantization `quant` (matched case-insensitively as a
// whole word of the name); with no quant, Q4_K_M if present, else the only .gguf file.
std::string pick_gguf(const std::vector<std::string>& files, const std::string& quant,
                      const std::string& repo);

}  // namespace hondo
