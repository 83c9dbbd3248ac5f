// Binary convolution, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BCONV2D_BCONV2D_H_
#define BMXNET_KERNELS_BCONV2D_BCONV2D_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// bconv2d() on an explicit path with the given options (tests run every path the CPU supports
// in one process): prepare + run with a thread-local workspace; throws std::invalid_argument.
// Only the float formats: options' input/output formats are ignored.
void bconv2d_with_path(Path path, const BConv2DShape& s, const float* input, const word_t* packed_w,
                       const float* scale, const float* bias, float* output, int num_threads,
                       const BConv2DOptions& options = BConv2DOptions());

}  // namespace bmx

#endif  // BMXNET_KERNELS_BCONV2D_BCONV2D_H_
