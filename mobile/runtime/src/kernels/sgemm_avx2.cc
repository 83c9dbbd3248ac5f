// The float kernels compiled with -mavx2 -mfma (CMakeLists.txt adds the flags and defines
// BMXRT_BUILT_AVX2); called only when the model's kernel path is avx2 or avx512, which
// dispatch.cc enables only on CPUs that have AVX2 and FMA.
#include <cstdint>

#include "kernels/sgemm_types.h"

namespace {
#include "sgemm_impl.inc"
}  // namespace

namespace bmxrt {
void sgemm_avx2(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, PackPanelFn pack,
                const void* pack_ctx, float* C, int64_t ldc) {
  sgemm_impl(M, N, K, A, lda, pack, pack_ctx, C, ldc);
}
void gemv_avx2(int64_t rows, int64_t K, const float* W, int64_t ldw, const float* x, float* y) {
  gemv_impl(rows, K, W, ldw, x, y);
}
}  // namespace bmxrt
