#include "core/huge_pages.h"

#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <mutex>

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

void keep_freed_memory() {
#if defined(__GLIBC__)
  // glibc serves blocks over 128 KiB with mmap, unmaps them when freed, and gives the top of
  // the heap back above 128 KiB free; it raises both limits only after freeing a larger mapped
  // block. So whether a decoding step faulted its buffers in anew depended on what ran before:
  // after a long prompt nothing, after a one-token prompt every Engine::eval of one token
  // faulted in its logits (R1-Distill-1.5B's 151936 floats) and their copy, 270 page faults a
  // token (V2-Lite 176, Coder-1.3B 35), and such a loop decoded R1 Q4_K_M at 55.6-58.3 tok/s
  // instead of 64.7-68.7 (three alternated pairs). Blocks up to 32 MiB (glibc's largest
  // threshold) now always come from the heap, which keeps up to 256 MiB free.
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  });
#endif
}

}  // namespace hondo
