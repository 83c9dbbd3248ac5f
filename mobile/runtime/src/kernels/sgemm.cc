#include "sgemm.h"

namespace bmxrt {

void sgemm_portable(int64_t, int64_t, int64_t, const float*, int64_t, PackPanelFn, const void*,
                    float*, int64_t);
void gemv_portable(int64_t, int64_t, const float*, int64_t, const float*, float*);
#if BMXRT_BUILT_AVX2
void sgemm_avx2(int64_t, int64_t, int64_t, const float*, int64_t, PackPanelFn, const void*,
                float*, int64_t);
void gemv_avx2(int64_t, int64_t, const float*, int64_t, const float*, float*);
#endif

const FloatKernels& float_kernels(bmx::Path path) {
  static const FloatKernels portable = {sgemm_portable, gemv_portable, "portable"};
#if BMXRT_BUILT_AVX2
  static const FloatKernels avx2 = {sgemm_avx2, gemv_avx2, "avx2"};
  if (path == bmx::Path::kAvx2 || path == bmx::Path::kAvx512) return avx2;
#else
  (void)path;
#endif
  return portable;
}

}  // namespace bmxrt
