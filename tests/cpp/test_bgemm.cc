// Every BGEMM kernel of every path against bgemm_reference on awkward M/N/K.
#include "bgemm/bgemm.h"
#include "dispatch.h"
#include "test_util.h"
#include "tiny_test.h"

namespace {

const int32_t kCanary32 = 0x5A5A5A5A;

// Runs one kernel on (M, N, K) with padded leading dimensions and compares with the reference;
// also checks that nothing outside the M x N block of C is written.
void check_kernel(const bmx::BGemmKernel& kernel, std::mt19937_64& rng, int64_t M, int64_t N,
                  int64_t K, int threads) {
  // Contiguous B rows on odd M (GEMV kernels then use them in place), padded rows otherwise.
  const int64_t lda = K + 1, ldb = M % 2 ? K : K + 2, ldc = N + 3;
  std::vector<uint64_t> A = tiny::random_words(rng, M * lda);
  std::vector<uint64_t> B = tiny::random_words(rng, N * ldb);
  std::vector<int32_t> want(M * ldc, kCanary32), got(M * ldc, kCanary32);
  bmx::bgemm_reference(M, N, K, A.data(), lda, B.data(), ldb, want.data(), ldc);
  bmx::bgemm_with_kernel(kernel, M, N, K, A.data(), lda, B.data(), ldb, got.data(), ldc, threads);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < ldc; ++n)
      CHECK(got[m * ldc + n] == want[m * ldc + n])
          << kernel.name << " M=" << M << " N=" << N << " K=" << K << " threads=" << threads
          << " at (" << m << "," << n << "): " << got[m * ldc + n] << " vs " << want[m * ldc + n];
}

std::vector<const bmx::BGemmKernel*> kernels_of(bmx::Path path) {
  const bmx::BGemmKernel* k[8];
  const int n = bmx::bgemm_kernels_for_path(path, k, 8);
  return std::vector<const bmx::BGemmKernel*>(k, k + n);
}

}  // namespace

TEST(bgemm_reference_small) {
  // Hand-checked: 1 x 1 x 2 words.
  const uint64_t A[2] = {0xFFull, 0x1ull};
  const uint64_t B[2] = {0x0Full, 0x3ull};
  int32_t c = -1;
  bmx::bgemm_reference(1, 1, 2, A, 2, B, 2, &c, 1);
  CHECK(c == 4 + 1);
}

TEST(bgemm_all_kernels_awkward_shapes) {
  std::mt19937_64 rng(tiny::g_seed + 10);
  const int64_t Ms[] = {1, 2, 3, 4, 5, 7, 9, 17, 33};
  const int64_t Ns[] = {1, 2, 3, 5, 7, 8, 9, 39, 40, 41, 81};
  const int64_t Ks[] = {1, 2, 3, 7, 8, 9, 31, 32, 33, 65};
  for (bmx::Path path : tiny::paths_under_test()) {
    for (const bmx::BGemmKernel* kernel : kernels_of(path)) {
      for (int64_t M : Ms)
        for (int64_t N : Ns)
          for (int64_t K : Ks)
            check_kernel(*kernel, rng, M, N, K, 1 + static_cast<int>((M + N + K) % 2));
      RETURN_IF_FAILED();
    }
  }
}

TEST(bgemm_all_kernels_long_k) {
  // Crosses the accumulator flush points: 31 words (AVX2 byte counters), 4095 words (NEON
  // 16-bit counters), and large counts.
  std::mt19937_64 rng(tiny::g_seed + 11);
  for (bmx::Path path : tiny::paths_under_test())
    for (const bmx::BGemmKernel* kernel : kernels_of(path)) {
      check_kernel(*kernel, rng, 5, 9, 4200, 2);
      check_kernel(*kernel, rng, 4, 1, 8191, 1);
      check_kernel(*kernel, rng, 3, 41, 100, 2);
      RETURN_IF_FAILED();
    }
}

TEST(bgemm_all_zero_and_all_one_words) {
  // Extreme counts: identical rows give 0, complementary rows give 64 * K.
  for (bmx::Path path : tiny::paths_under_test())
    for (const bmx::BGemmKernel* kernel : kernels_of(path)) {
      const int64_t M = 6, N = 43, K = 70;
      std::vector<uint64_t> A(M * K, ~uint64_t{0}), B(N * K, 0);
      for (int64_t n = 0; n < N; n += 2)
        for (int64_t k = 0; k < K; ++k) B[n * K + k] = ~uint64_t{0};
      std::vector<int32_t> C(M * N, -1);
      bmx::bgemm_with_kernel(*kernel, M, N, K, A.data(), K, B.data(), K, C.data(), N, 1);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n)
          CHECK(C[m * N + n] == (n % 2 == 0 ? 0 : 64 * K)) << kernel->name << " " << m << "," << n;
    }
}

TEST(bgemm_selection) {
  for (bmx::Path path : tiny::paths_under_test()) {
    const bmx::BGemmKernel& gemv = bmx::select_bgemm_kernel(path, 1000, 1, 392);
    CHECK(gemv.row_panel) << bmx::path_name(path)
                          << ": batch-1 dense should use a GEMV kernel, got " << gemv.name;
    const bmx::BGemmKernel& conv = bmx::select_bgemm_kernel(path, 256, 196, 36);
    if (path != bmx::Path::kReference) {
      CHECK(conv.nr > 1 && !conv.row_panel)
          << bmx::path_name(path) << ": conv should use a panel kernel, got " << conv.name;
    }
    // bgemm_with_path uses the selection.
    std::mt19937_64 rng(tiny::g_seed + 12);
    const int64_t M = 13, N = 50, K = 36;
    std::vector<uint64_t> A = tiny::random_words(rng, M * K), B = tiny::random_words(rng, N * K);
    std::vector<int32_t> want(M * N), got(M * N);
    bmx::bgemm_reference(M, N, K, A.data(), K, B.data(), K, want.data(), N);
    bmx::bgemm_with_path(path, M, N, K, A.data(), K, B.data(), K, got.data(), N, 0);
    CHECK(got == want) << bmx::path_name(path);
  }
#if defined(__x86_64__)
  if (bmx::cpu_supported_paths() & bmx::bits(bmx::Path::kAvx512)) {
    CHECK(std::string(bmx::select_bgemm_kernel(bmx::Path::kAvx512, 256, 196, 36).name) ==
          "4x40_avx512");
  }
#endif
}
