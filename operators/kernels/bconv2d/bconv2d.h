// Binary convolution, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BCONV2D_BCONV2D_H_
#define BMXNET_KERNELS_BCONV2D_BCONV2D_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// Words of packed input bconv2d packs at a time: the images of a batch are packed and convolved
// in blocks of as many images as fit (at least one), so the packed copy stays bounded.
constexpr int64_t kBConv2DPackBudgetWords = int64_t{1} << 21;  // 16 MiB

// bconv2d() on an explicit path (tests run every path the CPU supports in one process, and
// shrink pack_budget_words to exercise the blocking over images).
void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads,
                       int64_t pack_budget_words = kBConv2DPackBudgetWords);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_BCONV2D_H_
