// The float kernels with the baseline flags of the target (SSE2 on x86-64, NEON on aarch64).
#include <cstdint>

#include "kernels/sgemm_types.h"

namespace {
#include "sgemm_impl.inc"
}  // namespace

namespace bmxrt {
void sgemm_portable(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, PackPanelFn pack,
                    const void* pack_ctx, float* C, int64_t ldc) {
  sgemm_impl(M, N, K, A, lda, pack, pack_ctx, C, ldc);
}
void gemv_portable(int64_t rows, int64_t K, const float* W, int64_t ldw, const float* x,
                   float* y) {
  gemv_impl(rows, K, W, ldw, x, y);
}
}  // namespace bmxrt
