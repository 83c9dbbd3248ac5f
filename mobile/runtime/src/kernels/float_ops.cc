#include "kernels/float_ops.h"

namespace bmxrt {

void pack_matrix_panel(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                       float* panel) {
  const MatrixPanels* m = static_cast<const MatrixPanels*>(ctx);
  for (int64_t k = 0; k < kc; ++k) {
    const float* row = m->B + (k0 + k) * m->ldb + n0;
    float* out = panel + k * 16;
    for (int64_t j = 0; j < cols; ++j) out[j] = row[j];
    for (int64_t j = cols; j < 16; ++j) out[j] = 0.f;
  }
}

void pack_conv_panel(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                     float* panel) {
  const ConvPanels* p = static_cast<const ConvPanels*>(ctx);
  const bmx::BConv2DShape& s = *p->s;
  const int64_t ow = s.out_w();
  // Top-left input pixel of each of the panel's output positions.
  int64_t y0[16], x0[16];
  for (int64_t j = 0; j < cols; ++j) {
    y0[j] = (n0 + j) / ow * s.stride_h - s.pad_h;
    x0[j] = (n0 + j) % ow * s.stride_w - s.pad_w;
  }
  const int64_t taps = s.kernel_h * s.kernel_w;
  // Common case: the panel's columns lie in one output row, so each panel row is one input row
  // read with the horizontal stride, and only its ends can fall into the padding.
  if (y0[0] == y0[cols - 1]) {
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t r = k0 + k, c = r / taps;
      const int64_t iy = y0[0] + r / s.kernel_w % s.kernel_h * s.dilate_h;
      const int64_t ix0 = x0[0] + r % s.kernel_w * s.dilate_w;
      float* out = panel + k * 16;
      const int64_t ix_last = ix0 + (cols - 1) * s.stride_w;
      if (iy < 0 || iy >= s.in_h) {
        for (int64_t j = 0; j < cols; ++j) out[j] = p->pad_fill;
      } else if (ix0 >= 0 && ix_last < s.in_w) {
        const float* row = p->img + (c * s.in_h + iy) * s.in_w + ix0;
        for (int64_t j = 0; j < cols; ++j) out[j] = row[j * s.stride_w];
      } else {
        const float* row = p->img + (c * s.in_h + iy) * s.in_w;
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t ix = ix0 + j * s.stride_w;
          out[j] = ix >= 0 && ix < s.in_w ? row[ix] : p->pad_fill;
        }
      }
      for (int64_t j = cols; j < 16; ++j) out[j] = 0.f;
    }
    return;
  }
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t r = k0 + k, c = r / taps;
    const int64_t dy = r / s.kernel_w % s.kernel_h * s.dilate_h, dx = r % s.kernel_w * s.dilate_w;
    const float* plane = p->img + c * s.in_h * s.in_w;
    float* out = panel + k * 16;
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t iy = y0[j] + dy, ix = x0[j] + dx;
      out[j] = (iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w) ? plane[iy * s.in_w + ix]
                                                                   : p->pad_fill;
    }
    for (int64_t j = cols; j < 16; ++j) out[j] = 0.f;
  }
}

}  // namespace bmxrt
