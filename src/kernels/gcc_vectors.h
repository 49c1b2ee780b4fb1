// GCC vector types of each instruction set's register width, for kernels written once and
// compiled per set (a function with target("avx2") or target("avx512f") turns them into ymm or
// zmm code): 4 lanes (SSE2, NEON q), 8 (AVX2), 16 (AVX-512). Loads and stores go through
// memcpy, so they take any alignment.
#pragma once
#include <cstdint>

// The helpers are always inlined into the ISA-specific kernels; GCC's note that a wide vector
// argument or return "changes the ABI" without that instruction set does not apply to them.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace hondo::vec {

typedef float f32x4 __attribute__((vector_size(16)));
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x4 __attribute__((vector_size(16)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef int32_t i32x16 __attribute__((vector_size(64)));

template <typename V>
__attribute__((always_inline)) inline V load(const float* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
template <typename V>
__attribute__((always_inline)) inline void store(float* p, V v) {
  __builtin_memcpy(p, &v, sizeof v);
}

}  // namespace hondo::vec
