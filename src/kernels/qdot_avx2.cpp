// The AVX2 (+FMA, F16C) kernel set. Compiled with -mavx2 -mfma -mf16c; see qdot_x86.inc.
#define HONDO_QDOT_NS qdot_avx2
#define HONDO_QDOT_VNNI 0
#include "kernels/qdot_x86.inc"

namespace hondo {
const QDotKernels& qdot_avx2_kernels() {
  static const QDotKernels ks = qdot_avx2::make_set("avx2");
  return ks;
}
}  // namespace hondo
