// Measurements for bench/: the binary GEMM's throughput and the xor + popcount + add peak it is
// compared with. Not used by the operators; exported through the plugin's C API
// (operators/mxnet/c_api.cc) so bench/bench_qconv.py can call them.
#ifndef BMXNET_KERNELS_BENCH_H_
#define BMXNET_KERNELS_BENCH_H_

#include <cstdint>

namespace bmx {

// Median seconds of one binary GEMM (M x N outputs, k_bits bits per dot product, random
// operands) through the operators' own driver (a prepared bdense plan on packed input rows, see
// bench.cc) on the active path, over `reps` calls on `num_threads` threads.
double bench_bgemm_seconds(int64_t M, int64_t N, int64_t k_bits, int num_threads, int reps);

// Median seconds of one binary convolution run as the operators run it, without MXNet: a
// prepared bconv2d plan (batch 1, stride 1, float input and output, random data) on the active
// path, over `reps` runs on `num_threads` threads.
double bench_bconv2d_seconds(int64_t in_channels, int64_t size, int64_t out_channels,
                             int64_t kernel, int64_t pad, int num_threads, int reps);

// Peak bit-MACs per second of xor + popcount + add with register operands only (no loads), on
// the active path's instruction set (AVX-512 VPOPCNTDQ, AVX2 nibble-table popcount, or 64-bit
// scalar popcount elsewhere), so a GEMM's fraction of it is against the ISA it runs on,
// summed over `num_threads` threads.
double bench_peak_bitmacs(int num_threads);

// Register-only peak loops (per-ISA files, exported as descriptors like the kernels): run
// `iters` iterations and return the number of bit-MACs done; the arithmetic's result goes to
// *sink so it cannot be optimised away.
using PeakLoopFn = uint64_t (*)(int64_t iters, uint64_t* sink);
extern const PeakLoopFn kPeakLoopPortable;
extern const PeakLoopFn kPeakLoopAvx2;    // only when CMakeLists.txt built the AVX2 path
extern const PeakLoopFn kPeakLoopAvx512;  // only when CMakeLists.txt built the AVX512 path

}  // namespace bmx

#endif  // BMXNET_KERNELS_BENCH_H_
