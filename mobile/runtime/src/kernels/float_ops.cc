#include "kernels/float_ops.h"

namespace bmxrt {

void im2col(const bmx::BConv2DShape& s, const float* img, float pad_fill, float* col,
            const Parallel& par) {
  const int64_t oh = s.out_h(), ow = s.out_w(), P = oh * ow;
  const int64_t rows = s.group_in() * s.kernel_h * s.kernel_w;
  const int tasks = par.tasks_for(rows * P);
  auto task = [&](int t) {
    for (int64_t r = part_begin(rows, tasks, t); r < part_begin(rows, tasks, t + 1); ++r) {
      const int64_t c = r / (s.kernel_h * s.kernel_w);
      const int64_t i = r / s.kernel_w % s.kernel_h, j = r % s.kernel_w;
      const float* plane = img + c * s.in_h * s.in_w;
      float* out = col + r * P;
      for (int64_t y = 0; y < oh; ++y) {
        const int64_t iy = y * s.stride_h - s.pad_h + i * s.dilate_h;
        float* o = out + y * ow;
        if (iy < 0 || iy >= s.in_h) {
          for (int64_t x = 0; x < ow; ++x) o[x] = pad_fill;
          continue;
        }
        const float* src = plane + iy * s.in_w;
        for (int64_t x = 0; x < ow; ++x) {
          const int64_t ix = x * s.stride_w + j * s.dilate_w - s.pad_w;
          o[x] = (ix >= 0 && ix < s.in_w) ? src[ix] : pad_fill;
        }
      }
    }
  };
  par.run(tasks, task);
}

}  // namespace bmxrt
