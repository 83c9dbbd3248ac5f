// Binary GEMM: the reference kernel, the panel packer, the threaded driver and THE kernel choice.
#include "bgemm/bgemm.h"

#include <algorithm>

#include "dispatch.h"
#include "threading.h"

namespace bmx {

namespace {

// Plain loops, one count at a time.
void run_reference(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
                   int32_t* counts, int64_t ldc) {
  (void)n;  // nr == 1 (either panel layout is the row itself)
  for (int64_t m = 0; m < M; ++m) {
    int64_t c = 0;
    for (int64_t k = 0; k < K; ++k) c += __builtin_popcountll(A[m * lda + k] ^ panel[k]);
    counts[m * ldc] = static_cast<int32_t>(c);
  }
}

}  // namespace

const BGemmKernel kBGemmReference = {"1x1_reference", 1, true, run_reference};

const BGemmKernel& select_bgemm_kernel(Path path, int64_t M, int64_t N, int64_t K) {
  (void)M;
  (void)K;
  switch (path) {
    case Path::kReference: return kBGemmReference;
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
    case Path::kAvx512:
      // Fewer than 8 columns would leave most lanes of the 40-column tile idle: put K along
      // the lanes instead.
      return N < 8 ? kBGemv4x4Avx512 : kBGemm4x40Avx512;
#endif
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
    case Path::kAvx2: return N < 4 ? kBGemv4x2Avx2 : kBGemm4x8Avx2;
#endif
#if defined(BMX_BUILT_NEON) && BMX_BUILT_NEON
    case Path::kNeon: return N < 4 ? kBGemv4x4Neon : kBGemm4x8Neon;
#endif
    default: break;
  }
  if (N == 1) return kBGemv4x1Portable;
  return kBGemm4x2Portable;
}

int bgemm_kernels_for_path(Path path, const BGemmKernel** out, int max) {
  const BGemmKernel* list[2] = {nullptr, nullptr};
  int count = 0;
  switch (path) {
    case Path::kReference: list[count++] = &kBGemmReference; break;
    case Path::kScalar:
      list[count++] = &kBGemm4x2Portable;
      list[count++] = &kBGemv4x1Portable;
      break;
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
    case Path::kAvx2:
      list[count++] = &kBGemm4x8Avx2;
      list[count++] = &kBGemv4x2Avx2;
      break;
#endif
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
    case Path::kAvx512:
      list[count++] = &kBGemm4x40Avx512;
      list[count++] = &kBGemv4x4Avx512;
      break;
#endif
#if defined(BMX_BUILT_NEON) && BMX_BUILT_NEON
    case Path::kNeon:
      list[count++] = &kBGemm4x8Neon;
      list[count++] = &kBGemv4x4Neon;
      break;
#endif
    default: break;
  }
  for (int i = 0; i < count && i < max; ++i) out[i] = list[i];
  return count;
}

void pack_panel(const BGemmKernel& kernel, int64_t K, const word_t* B, int64_t ldb, int64_t n,
                word_t* panel) {
  const int nr = kernel.nr;
  if (kernel.row_panel) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t k = 0; k < K; ++k) panel[j * K + k] = B[j * ldb + k];
    return;
  }
  for (int64_t j = 0; j < n; ++j)
    for (int64_t k = 0; k < K; ++k) panel[k * nr + j] = B[j * ldb + k];
  for (int64_t j = n; j < nr; ++j)
    for (int64_t k = 0; k < K; ++k) panel[k * nr + j] = 0;
}

void bgemm_with_kernel(const BGemmKernel& kernel, int64_t M, int64_t N, int64_t K, const word_t* A,
                       int64_t lda, const word_t* B, int64_t ldb, int32_t* counts, int64_t ldc,
                       int num_threads) {
  if (M <= 0 || N <= 0) return;
  const int threads = resolve_threads(num_threads);
  const int nr = kernel.nr;
  const int64_t panels = (N + nr - 1) / nr;
  const RowSplit split = split_rows(M, panels, threads);
  const int64_t tasks = panels * split.chunks;
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1)
  {
    const bool in_place = kernel.row_panel && ldb == K;  // B's rows are the row panel
    AlignedBuffer<word_t> panel(in_place ? 1 : K * nr);
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t p = t / split.chunks, chunk = t % split.chunks;
      const int64_t n0 = p * nr;
      const int n = static_cast<int>(std::min<int64_t>(nr, N - n0));
      const word_t* pp = B + n0 * ldb;
      if (!in_place) {
        pack_panel(kernel, K, B + n0 * ldb, ldb, n, panel.get());
        pp = panel.get();
      }
      const int64_t m0 = chunk * split.rows;
      const int64_t m1 = std::min(M, m0 + split.rows);
      kernel.run(m1 - m0, K, A + m0 * lda, lda, pp, n, counts + m0 * ldc + n0, ldc);
    }
  }
}

void bgemm_with_path(Path path, int64_t M, int64_t N, int64_t K, const word_t* A, int64_t lda,
                     const word_t* B, int64_t ldb, int32_t* counts, int64_t ldc, int num_threads) {
  bgemm_with_kernel(select_bgemm_kernel(path, M, N, K), M, N, K, A, lda, B, ldb, counts, ldc,
                    num_threads);
}

void bgemm_reference(int64_t M, int64_t N, int64_t K, const word_t* A, int64_t lda, const word_t* B,
                     int64_t ldb, int32_t* counts, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t c = 0;
      for (int64_t k = 0; k < K; ++k) c += __builtin_popcountll(A[m * lda + k] ^ B[n * ldb + k]);
      counts[m * ldc + n] = static_cast<int32_t>(c);
    }
}

}  // namespace bmx
