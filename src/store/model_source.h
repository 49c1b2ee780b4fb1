// From what the user typed after -m to a GGUF file on disk: a path is used as it is; an
// alias or hub reference is looked up in the cache and, when allowed, downloaded.
#pragma once
#include <string>

#include "core/error.h"
#include "store/hub.h"
#include "store/registry.h"

namespace hondo {

// The model is known but not on this machine (and was not to be downloaded).
class NotCachedError : public Error {
 public:
  using Error::Error;
};

class ModelSource {
 public:
  ModelSource(Hub& hub, const Registry& registry) : hub_(hub), registry_(registry) {}

  // The reference as a hub file (alias or org/repo form); nullopt for a local path.
  // Throws for something that is neither.
  std::optional<HubRef> hub_ref(const std::string& spec) const;

  enum class Fetch {
    Never,      // cache only; a missing model throws NotCachedError
    IfMissing,  // use the cached copy without asking the hub; download what is missing
    Always,     // ask the hub for the current version (hondo pull)
  };
  // The local file for `spec`. The hub is never asked when it is offline.
  std::string locate(const std::string& spec, Fetch fetch);

  // The repository file `ref` stands for (picking by quantization if needed).
  std::string file_of(const HubRef& ref, bool may_ask_hub);

 private:
  Hub& hub_;
  const Registry& registry_;
};

}  // namespace hondo
