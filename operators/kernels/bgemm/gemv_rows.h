// The row and column loop shared by the SIMD GEMV kernels (kernel_*_{avx2,avx512,neon}.cc).
// Everything is in an unnamed namespace: each ISA file compiles its own copy with its own flags
// and nothing is shared at link time (the ODR rule of dispatch.h).
#ifndef BMXNET_KERNELS_BGEMM_GEMV_ROWS_H_
#define BMXNET_KERNELS_BGEMM_GEMV_ROWS_H_

#include <cstdint>

#include "bmx_kernels.h"

namespace bmx {
namespace {

// Tile::template run<R, NB>(K, A, lda, B, counts, ldc) computes R rows x NB columns. Runs it over
// M rows, 4 at a time then one at a time, with NB = min(n, kMaxNB) columns (n >= 1).
template <typename Tile, int kMaxNB>
void gemv_panel(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* B, int n,
                int32_t* counts, int64_t ldc) {
  if constexpr (kMaxNB > 1) {
    if (n < kMaxNB) return gemv_panel<Tile, kMaxNB - 1>(M, K, A, lda, B, n, counts, ldc);
  }
  int64_t m = 0;
  for (; m + 4 <= M; m += 4)
    Tile::template run<4, kMaxNB>(K, A + m * lda, lda, B, counts + m * ldc, ldc);
  for (; m < M; ++m) Tile::template run<1, kMaxNB>(K, A + m * lda, lda, B, counts + m * ldc, ldc);
}

}  // namespace
}  // namespace bmx

#endif  // BMXNET_KERNELS_BGEMM_GEMV_ROWS_H_
