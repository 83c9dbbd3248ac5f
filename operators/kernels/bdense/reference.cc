// Reference binary dense layer: a direct loop over the floats, signs taken on the fly.
#include <stdexcept>
#include <string>

#include "bmx_kernels.h"

namespace bmx {

void bdense_reference(int64_t batch, int64_t in_units, int64_t num_hidden, const float* x,
                      const float* w, const float* scale, const float* bias, float* y) {
  const std::string err = bdense_check(batch, in_units, num_hidden);
  if (!err.empty()) throw std::invalid_argument(err);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t o = 0; o < num_hidden; ++o) {
      int64_t dot = 0;
      for (int64_t i = 0; i < in_units; ++i) {
        const int64_t a = x[b * in_units + i] >= 0.0f ? 1 : -1;
        const int64_t wv = w[o * in_units + i] >= 0.0f ? 1 : -1;
        dot += a * wv;
      }
      float v = static_cast<float>(dot);
      if (scale != nullptr) v = v * scale[o];
      if (bias != nullptr) v = v + bias[o];
      y[b * num_hidden + o] = v;
    }
}

}  // namespace bmx
