#include "model/weights.h"

#include "core/error.h"

namespace hondo {

namespace {
std::string shape_str(std::initializer_list<int64_t> shape) {
  std::string s = "[";
  int i = 0;
  for (int64_t d : shape) s += (i++ ? ", " : "") + std::to_string(d);
  return s + "]";
}
}  // namespace

void WeightBinder::check(const Tensor& t, std::initializer_list<int64_t> shape) const {
  bool ok = t.n_dims == int(shape.size());
  int i = 0;
  for (int64_t d : shape) ok = ok && t.ne[size_t(i++)] == d;
  if (!ok)
    fail(f_.path(), ": tensor '", t.name, "' has shape ", t.shape_str(), ", expected ",
         shape_str(shape));
  if (!dtype_info(t.type).can_compute)
    fail(f_.path(), ": tensor '", t.name, "' has type ", dtype_name(t.type),
         ", which hondo cannot compute with yet");
}

const Tensor& WeightBinder::get(const std::string& name,
                                std::initializer_list<int64_t> shape) const {
  const Tensor* t = f_.find_tensor(name);
  if (!t) fail(f_.path(), ": missing tensor '", name, "' (expected shape ", shape_str(shape), ")");
  check(*t, shape);
  return *t;
}

const Tensor* WeightBinder::optional(const std::string& name,
                                     std::initializer_list<int64_t> shape) const {
  const Tensor* t = f_.find_tensor(name);
  if (t) check(*t, shape);
  return t;
}

void repack_weights(GgufFile& f, const Tensor* output) {
  auto embedding = [](const Tensor& t) {
    return t.name == "token_embd.weight" || t.name.find("embed_tokens") != std::string::npos;
  };
  // An older MLA file's attn_kv_b is never multiplied: the model splits it into copies of its
  // own (model/mla.h, split_kv_b).
  auto joined_kv_b = [](const Tensor& t) {
    return t.name.find(".attn_kv_b.") != std::string::npos;
  };
  f.pack_for_matmul(
      [&](const Tensor& t) { return (!embedding(t) || &t == output) && !joined_kv_b(t); },
      [&](const Tensor& t) { return embedding(t); });
}

}  // namespace hondo
