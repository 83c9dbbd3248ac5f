// The one type the float GEMM shares with its callers, kept in a header of its own so that the
// ISA files (sgemm_avx2.cc) include nothing but <cstdint> and this (see dispatch.h's ODR note).
#ifndef BMXNET_RUNTIME_KERNELS_SGEMM_TYPES_H_
#define BMXNET_RUNTIME_KERNELS_SGEMM_TYPES_H_

#include <cstdint>

namespace bmxrt {

// Writes panel[k * 16 + j] = B(k0 + k, n0 + j) for k < kc and j < cols, and 0 for cols <= j < 16
// (those lanes only reach discarded columns of C).
using PackPanelFn = void (*)(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                             float* panel);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_KERNELS_SGEMM_TYPES_H_
