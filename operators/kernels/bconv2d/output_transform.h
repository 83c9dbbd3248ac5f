// From xor-popcount counts to the float output of bconv2d / bdense.
//
// The identity
// ------------
// Encode a value v in {-1,+1} as the bit b = (v + 1) / 2, i.e. +1 -> 1 and -1 -> 0. For two such
// values, v_a * v_w = +1 when the bits agree and -1 when they differ, i.e.
//     v_a * v_w = 1 - 2 * (b_a XOR b_w).
// Summed over n positions:   sum v_a * v_w = n - 2 * popcount(A XOR W),
// where A, W are the packed words. Unused bits (above the real channels of the last word) are 0 in
// both operands, their XOR is 0 and they add nothing to the popcount, so n is the number of *real*
// bits and not the number of words times 64. The BGEMM kernels return c = sum popcount(A XOR W)
// over all K words of a row (a count in [0, n]); the dot product is dot = n - 2c, in [-n, n].
//
// Convolution: which n, and the border taps
// -----------------------------------------
// For output channel o (in group g, with Cg input channels per group), output pixel p and the
// T = kernel_h * kernel_w taps t, the im2col row of p holds, per tap, words_for(Cg) words with
// the Cg channel bits of the input pixel under that tap. In-bounds taps are exact {-1,+1} data, so
//     sum over in-bounds taps = sum_t (Cg - 2 c_t).
// A tap that falls outside the input (the border of a padded convolution) takes pad_value:
//   * pad_value = +1: the tap's words are all ones over the Cg real bits (padding bits stay 0),
//     exactly the encoding of +1, so the identity holds unchanged.
//   * pad_value = -1: the tap's words are 0, the encoding of -1; same.
//   * pad_value = 0 (what float Convolution does) has no encoding in one bit. We write the tap as
//     0 (i.e. -1) and correct. Writing -1 instead of 0 adds, for that tap,
//         sum_c w(o,c,t) * (-1) = -S(o,t),    with S(o,t) = sum_c w(o,c,t) = 2 popcount(W_t) - Cg,
//     (W_t = packed weight words of channel o at tap t) so the true dot product is
//         dot(o,p) = T * Cg - 2 c(o,p) + sum_{t outside at p} S(o,t).
//     The taps outside the input at p form the complement of a rectangle of taps (the valid
//     kernel rows are a contiguous range because the input row of tap ky, y*stride - pad +
//     ky*dilation, is monotone in ky; likewise columns). Output rows therefore fall into a few
//     classes of equal kernel-row range (typically: top border rows, the interior, bottom border
//     rows), and output columns likewise; a pixel's class is the pair. bconv2d.cc builds
//         corr[o][class] = sum_{t outside the class's rectangle} S(o,t)
//     once per call (per block of output channels, with the channels innermost so the sums
//     vectorise; the interior class is 0), and the output kernels (output_kernels.h) add
//     corr[o][class(p)] to the dot products of the panels that hold border pixels. The
//     correction is an integer added before the conversion to float, so the result is exact.
// The S(o,t) come from the packed weights (the popcount of every (channel, tap) word run, by the
// path's own popcount_runs kernel) at every call, so the public API needs no extra weight tensor.
//
// The output transform
// --------------------
// out = float(dot) * scale[o] + bias[o], as two separate float operations in that order (the
// library is compiled with -ffp-contract=off so no fused multiply-add can change the rounding),
// omitting the multiplication when scale is null and the addition when bias is null. This is
// exactly what the float emulation (sign, float convolution, then multiply and add) computes,
// because |dot| < 2^24 makes float(dot) and every partial sum of +-1 products exact.
#ifndef BMXNET_KERNELS_BCONV2D_OUTPUT_TRANSFORM_H_
#define BMXNET_KERNELS_BCONV2D_OUTPUT_TRANSFORM_H_

#include <cstdint>

namespace bmx {

inline float output_transform(int64_t dot, const float* scale, const float* bias, int64_t o) {
  float v = static_cast<float>(dot);
  if (scale != nullptr) v = v * scale[o];
  if (bias != nullptr) v = v + bias[o];
  return v;
}

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_OUTPUT_TRANSFORM_H_
