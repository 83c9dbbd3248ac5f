// Portable binary GEMM kernels (plain C++, 64-bit popcount): a 4x2 register tile for panels of
// width 2, and a 4-row GEMV. These run on every CPU; __builtin_popcountll becomes one popcnt /
// cnt instruction where the target has it and a short bit-twiddling sequence otherwise.
#include "bgemm/bgemm.h"
#include "bgemm/popcount_portable.h"

namespace bmx {
namespace {

constexpr int kNr = 2;


// 4 rows x 2 columns: 8 independent accumulators, 6 loads per K-word.
template <int R>
void tile_4x2(int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n, int32_t* counts,
              int64_t ldc) {
  int64_t acc[R][kNr] = {};
  for (int64_t k = 0; k < K; ++k) {
    const word_t b0 = panel[k * kNr], b1 = panel[k * kNr + 1];
    for (int r = 0; r < R; ++r) {
      const word_t a = A[r * lda + k];
      acc[r][0] += popcount64(a ^ b0);
      acc[r][1] += popcount64(a ^ b1);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < n; ++j) counts[r * ldc + j] = static_cast<int32_t>(acc[r][j]);
}

void run_4x2(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
             int32_t* counts, int64_t ldc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile_4x2<4>(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc);
  for (; m < M; ++m) tile_4x2<1>(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc);
}

template <int R>
void gemv_rows(int64_t K, const word_t* A, int64_t lda, const word_t* b, int32_t* counts,
               int64_t ldc) {
  int64_t acc[R] = {};
  for (int64_t k = 0; k < K; ++k) {
    const word_t bk = b[k];
    for (int r = 0; r < R; ++r) acc[r] += popcount64(A[r * lda + k] ^ bk);
  }
  for (int r = 0; r < R; ++r) counts[r * ldc] = static_cast<int32_t>(acc[r]);
}

void run_gemv(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
              int32_t* counts, int64_t ldc) {
  (void)n;  // nr == 1: always one column
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) gemv_rows<4>(K, A + m * lda, lda, panel, counts + m * ldc, ldc);
  for (; m < M; ++m) gemv_rows<1>(K, A + m * lda, lda, panel, counts + m * ldc, ldc);
}

}  // namespace

const BGemmKernel kBGemm4x2Portable = {"4x2_portable", kNr, false, run_4x2};
const BGemmKernel kBGemv4x1Portable = {"gemv4x1_portable", 1, true, run_gemv};

}  // namespace bmx
