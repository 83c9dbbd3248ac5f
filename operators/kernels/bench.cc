#include "bench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <vector>

#include "bmx_kernels.h"
#include "dispatch.h"
#include "threading.h"

namespace bmx {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Median seconds of run() over max(reps, 1) calls, after one untimed call.
template <typename Run>
double median_seconds(Run run, int reps) {
  run();  // warm-up
  std::vector<double> times;
  for (int r = 0; r < std::max(reps, 1); ++r) {
    const double t0 = now();
    run();
    times.push_back(now() - t0);
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

}  // namespace

double bench_bgemm_seconds(int64_t M, int64_t N, int64_t k_bits, int num_threads, int reps) {
  // The GEMM as the operators run it: a prepared dense plan (the same driver, kernel choice and
  // panels as QFullyConnected) on N packed input rows of k_bits bits against M packed weight
  // rows, float output (M * N conversions, small next to the M * N * k_bits bit-MACs).
  const int64_t K = words_for(k_bits);
  std::mt19937_64 gen(42);
  std::vector<word_t> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(N * K));
  const word_t last = k_bits % kWordBits ? (word_t{1} << (k_bits % kWordBits)) - 1 : ~word_t{0};
  for (int64_t r = 0; r < M; ++r)
    for (int64_t k = 0; k < K; ++k) A[r * K + k] = gen() & (k + 1 < K ? ~word_t{0} : last);
  for (int64_t r = 0; r < N; ++r)
    for (int64_t k = 0; k < K; ++k) B[r * K + k] = gen() & (k + 1 < K ? ~word_t{0} : last);
  std::vector<float> C(static_cast<size_t>(M * N));
  BDenseOptions o;
  o.input_format = ActivationFormat::kBits;
  o.input_layout = plain_bit_layout(N, k_bits, 1, 1);
  o.max_threads = num_threads;
  BDensePlan plan;
  if (!bdense_prepare(N, k_bits, M, A.data(), nullptr, nullptr, o, &plan).empty()) return -1.0;
  std::vector<unsigned char> workspace(static_cast<size_t>(plan.workspace_bytes()));
  return median_seconds([&] { bdense_run(plan, B.data(), C.data(), workspace.data()); }, reps);
}

double bench_bconv2d_seconds(int64_t in_channels, int64_t size, int64_t out_channels,
                             int64_t kernel, int64_t pad, int num_threads, int reps) {
  BConv2DShape s;
  s.batch = 1;
  s.in_channels = in_channels;
  s.in_h = s.in_w = size;
  s.out_channels = out_channels;
  s.kernel_h = s.kernel_w = kernel;
  s.pad_h = s.pad_w = pad;
  std::mt19937 gen(42);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<size_t>(in_channels * size * size));
  std::vector<float> w(static_cast<size_t>(out_channels * in_channels * kernel * kernel));
  for (float& v : x) v = normal(gen);
  for (float& v : w) v = normal(gen);
  std::vector<word_t> packed(static_cast<size_t>(bconv2d_packed_weight_words(s)));
  pack_conv_weights(s, w.data(), packed.data());
  BConv2DOptions o;
  o.max_threads = num_threads;
  BConv2DPlan plan;
  if (!bconv2d_prepare(s, packed.data(), nullptr, nullptr, o, &plan).empty()) return -1.0;
  std::vector<unsigned char> workspace(static_cast<size_t>(plan.workspace_bytes()));
  std::vector<float> y(static_cast<size_t>(out_channels * s.out_h() * s.out_w()));
  return median_seconds([&] { bconv2d_run(plan, x.data(), y.data(), workspace.data()); }, reps);
}

double bench_peak_bitmacs(int num_threads) {
  PeakLoopFn loop = kPeakLoopPortable;
#if defined(BMX_BUILT_AVX2)
  if (active_path() == Path::kAvx2) loop = kPeakLoopAvx2;
#endif
#if defined(BMX_BUILT_AVX512)
  if (active_path() == Path::kAvx512) loop = kPeakLoopAvx512;
#endif
  [[maybe_unused]] const int threads = resolve_threads(num_threads);  // OpenMP only
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
