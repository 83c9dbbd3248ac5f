// Binary fully-connected layer, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BDENSE_BDENSE_H_
#define BMXNET_KERNELS_BDENSE_BDENSE_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// bdense() on an explicit path (tests run every path the CPU supports in one process).
void bdense_with_path(Path path, int64_t batch, int64_t in_units, int64_t num_hidden,
                      const float* x, const word_t* packed_w, const float* scale, const float* bias,
                      float* y, int num_threads);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BDENSE_BDENSE_H_
