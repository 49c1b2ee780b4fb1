// The CPU families hondo is built for. Only files under kernels/ (and the thread pool's
// spin hint) look at these; everything else calls the dispatched kernels.
//   x86-64:  integer kernel sets per ISA chosen at run time (qdot_dispatch.cpp), float loops
//            cloned for AVX-512 / AVX2 / baseline by GCC (HONDO_FLOAT_CLONES).
//   ARM64:   NEON is part of the baseline; the dotprod set (qdot_neon.cpp) is chosen at run
//            time from the kernel's hardware capabilities.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define HONDO_X86 1
#define HONDO_FLOAT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HONDO_X86 0
#define HONDO_FLOAT_CLONES
#endif

#if defined(__aarch64__)
#define HONDO_ARM64 1
#else
#define HONDO_ARM64 0
#endif
