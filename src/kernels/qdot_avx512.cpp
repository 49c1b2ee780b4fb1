// The AVX-512 VNNI kernel set: the AVX2 code on 256-bit registers with vpdpbusd (AVX512_VNNI
// + AVX512VL) as the integer multiply-add. Compiled with -mavx512vnni -mavx512vl ...
#define HONDO_QDOT_NS qdot_avx512vnni
#define HONDO_QDOT_VNNI 1
#include "kernels/qdot_x86.inc"

namespace hondo {
const QDotKernels& qdot_avx512vnni_kernels() {
  static const QDotKernels ks = qdot_avx512vnni::make_set("avx512vnni");
  return ks;
}
}  // namespace hondo
