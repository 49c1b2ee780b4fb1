#include "core/huge_pages.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace hondo {

void HugeFree::operator()(uint8_t* p) const {
  std::free(p);
}

namespace {
constexpr size_t kPage = 4096, kHugePage = size_t(2) << 20;

size_t round_up(size_t n, size_t page) {
  return (n + page - 1) / page * page;
}
}  // namespace

HugeBuffer alloc_huge(size_t n, const char* what) {
  const size_t rounded = round_up(n, kHugePage);
  void* p = rounded ? std::aligned_alloc(kHugePage, rounded) : nullptr;
  if (rounded && !p) fail("out of memory for ", what, " (", rounded, " bytes)");
#ifdef MADV_HUGEPAGE
  if (p) madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return HugeBuffer(static_cast<uint8_t*>(p));
}

void commit_pages(uint8_t* p, size_t n) {
  if (n == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t first = begin / kPage * kPage, last = round_up(begin + n, kPage);
#ifdef MADV_POPULATE_WRITE
  if (madvise(reinterpret_cast<void*>(first), last - first, MADV_POPULATE_WRITE) == 0) return;
#endif
  // Kernels before Linux 5.14: touch every page with a write that keeps what is there.
  for (uintptr_t a = first; a < last; a += kPage)
    __atomic_fetch_or(reinterpret_cast<uint8_t*>(std::max(a, begin)), uint8_t(0), __ATOMIC_RELAXED);
}

}  // namespace hondo
