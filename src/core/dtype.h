// The tensor element types of the GGUF/GGML format. Numeric values are the on-disk ids and
// must never change. Quantized types store fixed-size blocks of `block_elems` values.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hondo {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct DTypeInfo {
  const char* name;  // "Q4_K"
  int block_elems;   // values per block (1 for plain types)
  int block_bytes;   // bytes per block
  bool can_compute;  // hondo can dequantize it (and so run a model that uses it)
};

// Returns nullptr for ids that are not GGML types at all.
const DTypeInfo* dtype_info(uint32_t id);
const DTypeInfo& dtype_info(DType t);
inline const char* dtype_name(DType t) {
  return dtype_info(t).name;
}
// Parses "Q8_0", "f16", ... (case-insensitive). Throws on unknown names.
DType dtype_from_name(const std::string& name);

// The `general.file_type` value (llama.cpp's "mostly <type>" enum, not the tensor type id)
// for a file whose matrices are of type t.
uint32_t file_type_of(DType t);

// Bytes of one row of `n` elements; n must be a multiple of the block size.
size_t row_bytes(DType t, int64_t n);

}  // namespace hondo
