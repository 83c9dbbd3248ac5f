// Plain C functions the Python package calls through ctypes (bmxnet.kernel_path(),
// bench/bench_qconv.py). Not part of MXNet's operator interface.
#include "bench.h"
#include "bmx_kernels.h"

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

// Peak xor + popcount + add bit-MACs per second of this CPU on `threads` threads (see bench.h).
__attribute__((visibility("default"))) double bmxnet_bench_peak(int threads) {
  return bmx::bench_peak_bitmacs(threads);
}

}  // extern "C"
