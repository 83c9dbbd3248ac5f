// Binary fully-connected layer, internal entry points (the public ones are in bmx_kernels.h).
#ifndef BMXNET_KERNELS_BDENSE_BDENSE_H_
#define BMXNET_KERNELS_BDENSE_BDENSE_H_

#include "bmx_kernels.h"
#include "dispatch.h"

namespace bmx {

// bdense() on an explicit path (tests run every path the CPU supports in one process).
// exact_threads: use num_threads as given, even where the layer is too small to pay for them
// (bdense() lets useful_threads in threading.h decide; tests want the threaded split).
void bdense_with_path(Path path, int64_t batch, int64_t in_units, int64_t num_hidden,
                      const float* x, const word_t* packed_w, const float* scale, const float* bias,
                      float* y, int num_threads, bool exact_threads = false);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BDENSE_BDENSE_H_
