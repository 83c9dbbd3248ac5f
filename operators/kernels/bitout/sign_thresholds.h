// Bit output (internal header): the per-channel integer thresholds that replace "float output
// transform, BatchNorm, sign" (the formula and why this is exact are in bmx_kernels.h, "Bit
// output"). The output kernels that apply them are OutputKernels::bits (output_kernels.h).
// Compiled with the baseline flags (drivers only, see dispatch.h).
#ifndef BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_
#define BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bconv2d/output_kernels.h"
#include "bmx_kernels.h"

namespace bmx {

// For channel o and a dot product in [-nbits, nbits]:
//     table_offset[o] < 0:  bit = (dot >= threshold[o]) XOR flip[o]
//     otherwise:            bit = bit (dot + nbits) of the run of words at table + table_offset[o]
//                           (and threshold INT32_MAX, flip 0, as OutputKernels::bits expects)
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

// Points a block's threshold fields at the entries of channel o0 on.
inline void set_thresholds(const SignThresholds& t, int64_t o0, BitsBlock* b) {
  b->threshold = t.threshold.data() + o0;
  b->flip = t.flip.data() + o0;
  b->table_offset = t.table_channels > 0 ? t.table_offset.data() + o0 : nullptr;
  b->table = t.table.data();
  b->table_bias = t.nbits;
}

}  // namespace bmx

#endif  // BMXNET_KERNELS_BITOUT_SIGN_THRESHOLDS_H_
