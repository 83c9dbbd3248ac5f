// Binary convolution, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BCONV2D_BCONV2D_H_
#define BMXNET_KERNELS_BCONV2D_BCONV2D_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// bconv2d() on an explicit path (tests run every path the CPU supports in one process).
void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_BCONV2D_H_
