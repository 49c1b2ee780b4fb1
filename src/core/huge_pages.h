// Memory for data read as long streams (weights, the bandwidth probe): 2 MiB aligned and
// advised for transparent huge pages. With 4 KiB pages every 4 KiB read costs a TLB miss and
// restarts the hardware prefetcher; on kernels without huge pages it is ordinary memory.
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

}  // namespace hondo
