// Looks up a model's tensors by name and checks each one's shape and type at load time, so
// a bad file fails with "tensor X has shape A, expected B" rather than during inference.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "io/gguf.h"

namespace hondo {

class WeightBinder {
 public:
  explicit WeightBinder(const GgufFile& f) : f_(f) {}

  // Shapes are in GGML order (ne[0] first). Missing tensor -> error.
  const Tensor& get(const std::string& name, std::initializer_list<int64_t> shape) const;
  // nullptr when absent; checked like get() when present.
  const Tensor* optional(const std::string& name, std::initializer_list<int64_t> shape) const;

 private:
  void check(const Tensor& t, std::initializer_list<int64_t> shape) const;
  const GgufFile& f_;
};

// Repacks a loaded model's matrix weights for this CPU's tile kernels (GgufFile::
// pack_for_matmul). Token embeddings are gathered row by row and stay as they are, unless
// they are also the output matrix (tied), which then keeps both forms.
void repack_weights(GgufFile& f, const Tensor* output);

}  // namespace hondo
