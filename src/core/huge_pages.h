// Memory pages.
//
// alloc_huge: memory for data read as long streams (weights, the bandwidth probe) or in rows
// far apart (the KV cache): 2 MiB aligned and advised for transparent huge pages. With 4 KiB
// pages every 4 KiB read costs a TLB miss and restarts the hardware prefetcher; on kernels
// without huge pages it is ordinary memory.
//
// commit_pages: memory that grows a little at a time (the KV cache) gets its pages ahead of
// use in one call, not one fault per page on first write: a fault costs ~15 us on a virtual
// machine (1.2 ms per decoded token for a 1.3B model's cache), committing ~0.8 us a page.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace hondo {

struct HugeFree {
  void operator()(uint8_t* p) const;
};
using HugeBuffer = std::unique_ptr<uint8_t, HugeFree>;

// n bytes (rounded up to whole 2 MiB pages); throws a clear error when memory runs out. The
// pages are not touched: the first thread to write a page places it.
HugeBuffer alloc_huge(size_t n, const char* what);

// Makes the pages holding [p, p + n) resident, keeping their contents. p must lie in memory
// from alloc_huge (the range is widened to whole pages within it).
void commit_pages(uint8_t* p, size_t n);

}  // namespace hondo
