// Bit output (internal header): the per-channel integer thresholds that replace "float output
// transform, BatchNorm, sign" (the formula and why this is exact are in bmx_kernels.h, "Bit
// output"), and the output kernel that turns a block of xor-popcount counts into packed bits.
// Compiled with the baseline flags (drivers only, see dispatch.h).
#ifndef BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_
#define BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bmx_kernels.h"

namespace bmx {

// For channel o and a dot product in [-nbits, nbits]:
//     table_offset[o] < 0:  bit = (dot >= threshold[o]) XOR flip[o]
//     otherwise:            bit = bit (dot + nbits) of the run of words at table + table_offset[o]
// A channel whose bit is the same for every dot gets threshold -nbits (always true) and the flip
// that gives that bit.
struct SignThresholds {
  int64_t nbits = 0;
  std::vector<int32_t> threshold;
  std::vector<uint8_t> flip;
  std::vector<int64_t> table_offset;
  std::vector<word_t> table;
  int64_t table_channels = 0;
};

// Evaluates `formula` (or bit_output_sign with scale, bias, batch_norm when formula is null) at
// every dot in [-nbits, nbits] for each of `channels` channels. Returns "" or the problem
// (missing BatchNorm arrays, nbits too large).
std::string make_sign_thresholds(int64_t channels, int64_t nbits, const float* scale,
                                 const float* bias, const BatchNormParams* batch_norm,
                                 SignFormula formula, const void* user, SignThresholds* out);

// One block of bits: for 0 <= r < rows (rows <= 64) and 0 <= j < n,
//     dot = nbits - 2 * counts[r * ldc + j] + (cls != nullptr ? corr[r * ldcorr + cls[j]] : 0)
// and bit r of out[j] is the thresholded sign of channel o0 + r at dot (other bits 0).
struct BitsBlock {
  const int32_t* counts;
  int64_t ldc;
  int64_t rows;
  int64_t n;
  int32_t nbits;
  const int32_t* corr;  // used only when cls is not null
  int64_t ldcorr;
  const int32_t* cls;
  const SignThresholds* thresholds;
  int64_t o0;
  word_t* out;
};
void output_bits_block(const BitsBlock& b);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_
