#include "core/error.h"
#include "model/deepseek2.h"
#include "model/dense.h"
#include "model/model.h"

namespace hondo {

std::unique_ptr<Model> Model::load(const std::string& path) {
  auto file = GgufFile::open(path);
  const std::string arch = file->get_str("general.architecture");
  if (arch == "llama" || arch == "qwen2") return std::make_unique<DenseModel>(std::move(file));
  if (arch == "deepseek2") return std::make_unique<DeepSeek2Model>(std::move(file));
  fail(path, ": unknown architecture '", arch, "' (hondo runs: llama, qwen2, deepseek2)");
}

}  // namespace hondo
