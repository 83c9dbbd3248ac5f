// Plain C functions the Python package calls through ctypes (bmxnet.kernel_path(),
// bench/bench_qconv.py, tests/test_op_cache.py). Not part of MXNet's operator interface.
#include "bench.h"
#include "bmx_kernels.h"
#include "common.h"

extern "C" {

// Name of the kernel path 1-bit layers use: "avx512", "avx2", "scalar", "neon" or "reference".
__attribute__((visibility("default"))) const char* bmxnet_kernel_path() {
  return bmx::active_kernel_path();
}

// Median seconds of one binary GEMM of M x N outputs over k_bits bits (see bench.h).
__attribute__((visibility("default"))) double bmxnet_bench_bgemm(int64_t M, int64_t N,
                                                                 int64_t k_bits, int threads,
                                                                 int reps) {
  return bmx::bench_bgemm_seconds(M, N, k_bits, threads, reps);
}

// Median seconds of one binary convolution run without MXNet (see bench.h).
__attribute__((visibility("default"))) double bmxnet_bench_bconv2d(int64_t in_channels,
                                                                  int64_t size,
                                                                  int64_t out_channels,
                                                                  int64_t kernel, int64_t pad,
                                                                  int threads, int reps) {
  return bmx::bench_bconv2d_seconds(in_channels, size, out_channels, kernel, pad, threads, reps);
}

// Peak xor + popcount + add bit-MACs per second of this CPU on `threads` threads (see bench.h).
__attribute__((visibility("default"))) double bmxnet_bench_peak(int threads) {
  return bmx::bench_peak_bitmacs(threads);
}

// Counters of the operators' layer cache (common.h): out[0..4] = hits, packs, plans, entries,
// bytes held.
__attribute__((visibility("default"))) void bmxnet_layer_cache_stats(int64_t* out) {
  const bmx_mx::LayerCacheStats s = bmx_mx::layer_cache_stats();
  out[0] = s.hits;
  out[1] = s.packs;
  out[2] = s.plans;
  out[3] = s.entries;
  out[4] = s.bytes;
}

}  // extern "C"
