// hondo pull / list / rm: the local model store (the Hugging Face hub cache).
#include <cstdio>
#include <filesystem>

#include "cli/options.h"
#include "core/error.h"
#include "store/memory.h"

namespace hondo::cli {

namespace {

void add_pull(CLI::App& app) {
  struct Opts {
    std::vector<std::string> names;
    bool offline = false;
    std::string revision;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "pull", "download models into the local cache (alias, org/repo:QUANT or org/repo/FILE)");
  cmd->add_option("names", o->names, "what to download")->required();
  cmd->add_option("--revision", o->revision, "branch, tag or commit (default main)");
  cmd->add_flag("--offline", o->offline, "only check the cache (as HF_HUB_OFFLINE=1)");
  cmd->callback([o] {
    ConsoleStore store(o->offline);
    for (const std::string& name : o->names) {
      auto ref = store.source.hub_ref(name);
      if (!ref) fail(name, ": a local file, nothing to pull");
      if (!o->revision.empty()) ref->revision = o->revision;
      const std::string file = store.source.file_of(*ref, !store.hub.options().offline);
      const std::string path = store.hub.download(ref->repo, file, ref->revision);
      std::printf("%s\n", path.c_str());
    }
  });
}

void add_list(CLI::App& app) {
  struct Opts {
    bool aliases = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("list", "models in the local cache");
  cmd->add_flag("--aliases", o->aliases, "list the known aliases instead");
  cmd->callback([o] {
    if (o->aliases) {
      const Registry reg = Registry::load();
      std::printf("aliases (built in, extended by %s/models.json):\n", config_dir().c_str());
      for (const auto& [name, f] : reg.families()) {
        std::string tags;
        for (const auto& [t, v] : f.tags) tags += (tags.empty() ? "" : ", ") + t;
        std::printf("  %-24s %s\n  %-24s tags: %s (default %s), quantization default %s\n",
                    name.c_str(), f.description.c_str(), "", tags.c_str(), f.default_tag.c_str(),
                    f.default_quant.c_str());
      }
      return;
    }
    const HfCache cache(HubOptions::from_env().cache_root);
    const auto repos = cache.list();
    std::printf("cache: %s\n", cache.root().c_str());
    if (repos.empty()) std::printf("  (empty)\n");
    for (const auto& r : repos) {
      std::printf("%-56s %10s\n", r.repo.c_str(), format_size(r.blob_bytes).c_str());
      for (const auto& f : r.files)
        std::printf("  %-54s %10s  %.10s\n", f.path.c_str(), format_size(f.size).c_str(),
                    f.commit.c_str());
    }
  });
}

void add_rm(CLI::App& app) {
  struct Opts {
    std::vector<std::string> names;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "rm", "remove models from the cache (alias, org/repo:QUANT, org/repo/FILE or org/repo)");
  cmd->add_option("names", o->names, "what to remove")->required();
  cmd->callback([o] {
    HubOptions ho = HubOptions::from_env();
    ho.offline = true;  // removing never needs the network
    Hub hub(ho);
    const Registry reg = Registry::load();
    ModelSource source(hub, reg);
    for (const std::string& name : o->names) {
      auto ref = source.hub_ref(name);
      if (!ref) fail(name, ": a local file, not a cached model (delete it yourself)");
      const bool whole = ref->file.empty() && ref->quant.empty();
      const std::string file = whole ? "" : source.file_of(*ref, false);
      const uint64_t freed = hub.cache().remove(ref->repo, file);
      std::printf("removed %s%s%s (%s freed)\n", ref->repo.c_str(), file.empty() ? "" : "/",
                  file.c_str(), format_size(freed).c_str());
    }
  });
}

}  // namespace

void add_store(CLI::App& app) {
  add_pull(app);
  add_list(app);
  add_rm(app);
}

}  // namespace hondo::cli
