// The runtime's float GEMM and dot product (first convolutions, 1x1 downsample convolutions,
// dense layers). Plain loops shaped so that the compiler vectorises them; the same source
// (sgemm_impl.inc) is compiled once with the baseline flags and once with AVX2+FMA, and the
// model's kernel path picks one, as in operators/kernels/dispatch.h (the ISA file keeps to
// plain functions and loops, nothing inline or templated from a shared header: see the ODR note
// there).
#ifndef BMXNET_RUNTIME_KERNELS_SGEMM_H_
#define BMXNET_RUNTIME_KERNELS_SGEMM_H_

#include <cstdint>

#include "dispatch.h"
#include "kernels/sgemm_types.h"

namespace bmxrt {

// C[M x N] = A[M x K] * B[K x N], A and C row-major with leading dimensions lda, ldc; B is read
// only through `pack` (see sgemm_types.h), one panel of up to 256 x 16 at a time.
using SgemmFn = void (*)(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                         PackPanelFn pack, const void* pack_ctx, float* C, int64_t ldc);
// y[o] = dot(x, W[o]) for o in [0, rows): W row-major with leading dimension ldw, length K.
using GemvFn = void (*)(int64_t rows, int64_t K, const float* W, int64_t ldw, const float* x,
                        float* y);

struct FloatKernels {
  SgemmFn sgemm;
  GemvFn gemv;
  const char* name;  // "portable", "avx2"
};
// The float kernels for a kernel path: AVX2+FMA code on the avx2 and avx512 paths when it was
// built, portable code otherwise.
const FloatKernels& float_kernels(bmx::Path path);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_KERNELS_SGEMM_H_
