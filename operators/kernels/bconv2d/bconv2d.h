// Binary convolution, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BCONV2D_BCONV2D_H_
#define BMXNET_KERNELS_BCONV2D_BCONV2D_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// Knobs of bconv2d_with_path that the public bconv2d() leaves at their defaults; tests change
// them to reach every code path with small shapes.
struct BConv2DOptions {
  // Words of packed input per block of images: the images of a batch are packed and convolved
  // in blocks of as many images as fit (at least one), so the packed copy stays bounded.
  int64_t pack_budget_words = int64_t{1} << 21;  // 16 MiB
  // false: fewer threads than asked when the layer is too small to pay for them
  // (useful_threads in threading.h); true: exactly num_threads (tests of the threaded split).
  bool exact_threads = false;
};

// bconv2d() on an explicit path (tests run every path the CPU supports in one process).
void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads,
                       const BConv2DOptions& options = BConv2DOptions());

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_BCONV2D_H_
