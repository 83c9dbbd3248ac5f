// Sign bit-packing of activations (internal header).
//
// Conventions are those of bmx_kernels.h: 64-bit words, element 64*w + j in bit j of word w,
// bit 1 for x >= 0 (so +0.0f and -0.0f both pack as +1), bit 0 otherwise, unused high bits of
// the last word 0. NaN compares false with ">= 0" and therefore packs as -1 on every path (all
// implementations use an ordered ">=" comparison, never the IEEE sign bit).
//
// Two shapes of input occur:
//   * channel-minor ("NHWC words") packing of an NCHW plane stack, used by bconv2d: for every
//     pixel p, the signs of `channels` consecutive planes go into words_for(channels) words at
//     out + p * out_stride;
//   * row packing of n consecutive floats into words_for(n) words, used by bdense and for weights.
// Each path provides both through a BitpackKernels descriptor (see dispatch.h for why the ISA
// code is reached only through such descriptors).
#ifndef BMXNET_KERNELS_BITPACK_BITPACK_H_
#define BMXNET_KERNELS_BITPACK_BITPACK_H_

#include <cstdint>

#include "bmx_kernels.h"

namespace bmx {

enum class Path : unsigned;  // from dispatch.h, which ISA files need not include

// out[p * out_stride + w], 0 <= p < pixels, 0 <= w < words_for(channels), receives the signs of
// x[c * plane_stride + p] for c in [64 w, 64 w + 64) ∩ [0, channels). Words of a pixel beyond
// words_for(channels) are not touched.
using PackChannelsFn = void (*)(const float* x, int64_t channels, int64_t plane_stride,
                                int64_t pixels, word_t* out, int64_t out_stride);
// out[w], 0 <= w < words_for(n), receives the signs of x[64 w .. 64 w + 63] ∩ [0, n).
using PackRowFn = void (*)(const float* x, int64_t n, word_t* out);
// scale[r], 0 <= r < rows: mean |x| of row r (x[r * per_row .. (r + 1) * per_row)), bit for bit
// channel_mean_abs of quantize.h: each row summed in order in double, divided in double, rounded
// once. Faster paths keep each row's order and work on several rows at once (one vector lane
// per row), since a row's sum is one chain of dependent additions.
using RowsMeanAbsFn = void (*)(const float* x, int64_t rows, int64_t per_row, float* scale);
// rows_mean_abs and pack_row(x, rows * per_row, packed) in one pass, for per_row % 8 == 0 only.
using RowsMeanAbsSignsFn = void (*)(const float* x, int64_t rows, int64_t per_row, float* scale,
                                    word_t* packed);

struct BitpackKernels {
  const char* name;
  PackChannelsFn pack_channels;
  PackRowFn pack_row;
  RowsMeanAbsFn rows_mean_abs;
  RowsMeanAbsSignsFn rows_mean_abs_signs;  // null: pack_signs_and_mean_abs makes two passes
};

// Plain bit-by-bit implementations (the ground truth the others are tested against).
void pack_channels_reference(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                             word_t* out, int64_t out_stride);
void pack_row_reference(const float* x, int64_t n, word_t* out);
void rows_mean_abs_reference(const float* x, int64_t rows, int64_t per_row, float* scale);

// One descriptor per path; the ISA ones exist only when CMakeLists.txt built that path.
extern const BitpackKernels kBitpackReference;
extern const BitpackKernels kBitpackPortable;
extern const BitpackKernels kBitpackAvx2;
extern const BitpackKernels kBitpackAvx512;
extern const BitpackKernels kBitpackNeon;

// The packers of a path (the portable ones for a path that is not built).
const BitpackKernels& bitpack_for_path(Path path);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BITPACK_BITPACK_H_
