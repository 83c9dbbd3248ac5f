// Reference binary convolution: a direct loop over the float input and weights, taking signs
// on the fly (x >= 0 -> +1, else -1; border taps take pad_value). No packing, no popcount, no
// SIMD: it is independent of everything the optimised path does, which is what makes it a test
// oracle. Started from the textbook definition of a grouped, strided, dilated convolution.
#include <stdexcept>
#include <string>

#include "bmx_kernels.h"

namespace bmx {

void bconv2d_reference(const BConv2DShape& s, const float* input, const float* w,
                       const float* scale, const float* bias, float* output) {
  const std::string err = bconv2d_check(s);
  if (!err.empty()) throw std::invalid_argument(err);
  const int64_t cg = s.group_in(), mg = s.group_out(), OH = s.out_h(), OW = s.out_w();
  const int64_t kh = s.kernel_h, kw = s.kernel_w;
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < s.out_channels; ++o) {
      const int64_t g = o / mg;
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          int64_t dot = 0;
          for (int64_t c = 0; c < cg; ++c) {
            const int64_t ic = g * cg + c;
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * s.stride_h - s.pad_h + ky * s.dilate_h;
                const int64_t ix = ox * s.stride_w - s.pad_w + kx * s.dilate_w;
                int64_t a;
                if (iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w)
                  a = input[((b * s.in_channels + ic) * s.in_h + iy) * s.in_w + ix] >= 0.0f ? 1
                                                                                            : -1;
                else
                  a = s.pad_value;
                const int64_t wv = w[((o * cg + c) * kh + ky) * kw + kx] >= 0.0f ? 1 : -1;
                dot += a * wv;
              }
          }
          float v = static_cast<float>(dot);
          if (scale != nullptr) v = v * scale[o];
          if (bias != nullptr) v = v + bias[o];
          output[((b * s.out_channels + o) * OH + oy) * OW + ox] = v;
        }
    }
}

}  // namespace bmx
