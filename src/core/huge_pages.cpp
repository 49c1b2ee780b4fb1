#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdlib>

#include "core/error.h"

namespace hondo {

void HugeFree::operator()(uint8_t* p) const {
  std::free(p);
}

HugeBuffer alloc_huge(size_t n, const char* what) {
  constexpr size_t kHugePage = size_t(2) << 20;
  const size_t rounded = (n + kHugePage - 1) / kHugePage * kHugePage;
  void* p = rounded ? std::aligned_alloc(kHugePage, rounded) : nullptr;
  if (rounded && !p) fail("out of memory for ", what, " (", rounded, " bytes)");
#ifdef MADV_HUGEPAGE
  if (p) madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return HugeBuffer(static_cast<uint8_t*>(p));
}

}  // namespace hondo
