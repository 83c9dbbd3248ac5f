#include "bench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "bgemm/bgemm.h"
#include "dispatch.h"
#include "threading.h"

namespace bmx {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

double bench_bgemm_seconds(int64_t M, int64_t N, int64_t k_bits, int num_threads, int reps) {
  const int64_t K = words_for(k_bits);
  std::mt19937_64 gen(42);
  std::vector<word_t> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(N * K));
  for (auto& v : A) v = gen();
  for (auto& v : B) v = gen();
  std::vector<int32_t> C(static_cast<size_t>(M * N));
  const Path path = active_path();
  bgemm_with_path(path, M, N, K, A.data(), K, B.data(), K, C.data(), N, num_threads);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const double t0 = now();
    bgemm_with_path(path, M, N, K, A.data(), K, B.data(), K, C.data(), N, num_threads);
    times.push_back(now() - t0);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

double bench_peak_bitmacs(int num_threads) {
  PeakLoopFn loop = kPeakLoopPortable;
#if defined(BMX_BUILT_AVX2)
  if (active_path() == Path::kAvx2) loop = kPeakLoopAvx2;
#endif
#if defined(BMX_BUILT_AVX512)
  if (active_path() == Path::kAvx512) loop = kPeakLoopAvx512;
#endif
  const int threads = resolve_threads(num_threads);
  const int64_t iters = 2000000;
  uint64_t sink = 0;
  loop(iters / 10, &sink);  // warm-up (clock ramp)
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    uint64_t total = 0;
    const double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
      uint64_t local_sink = 0;
      total += loop(iters, &local_sink);
      if (local_sink == 1) total += 1;  // keeps the result live
    }
    best = std::max(best, static_cast<double>(total) / (now() - t0));
  }
  return best;
}

}  // namespace bmx
