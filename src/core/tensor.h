// A read-only view of a weight tensor: GGML order, ne[0] is the contiguous (innermost)
// dimension. A 2-D weight of ne = [n_in, n_out] is a matrix of n_out rows of n_in values.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace hondo {

struct Tensor {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  const void* data = nullptr;
  // The same rows repacked into tiles for this CPU's tile kernels (kernels/packed.h), when
  // the model loader made them; matmul then reads these instead of `data`.
  const void* packed = nullptr;

  int64_t cols() const { return ne[0]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  size_t row_size() const { return row_bytes(type, ne[0]); }
  size_t nbytes() const { return row_size() * size_t(rows()); }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + size_t(r) * row_size();
  }
  std::string shape_str() const;
};

}  // namespace hondo
