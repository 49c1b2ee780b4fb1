// Rewrites a GGUF model with its weight matrices in another type. 1-D tensors (norms, biases)
// stay F32; a matrix whose rows do not hold whole blocks of the target type falls back to F16
// (as llama.cpp does), so every file written can be loaded by both engines. For 4- and 5-bit
// targets the output projection (or the tied embedding) is written as Q8_0.
#pragma once
#include <string>

#include "core/dtype.h"

namespace hondo {

struct RequantizeReport {
  int converted = 0, fallback = 0, kept = 0;
  size_t bytes_in = 0, bytes_out = 0;
};

RequantizeReport requantize_model(const std::string& in, const std::string& out, DType type);

}  // namespace hondo
