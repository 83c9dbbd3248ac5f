#include "float_ops.h"

#include <cstdlib>
#include <cstring>

// The mxnet wheel ships OpenBLAS as mxnet/libopenblas.so.0 and libmxnet.so loads it, so by the
// time `import bmxnet` loads this library the symbol is already in the process.
extern "C" {
enum CBLAS_ORDER { CblasRowMajor = 101 };
enum CBLAS_TRANSPOSE { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(CBLAS_ORDER order, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K,
                 float alpha, const float* A, int lda, const float* B, int ldb, float beta,
                 float* C, int ldc);
}

namespace bmx_mx {

namespace {

// Output columns x whose input column x*stride - pad + offset lies inside [0, width): the range
// [*lo, *hi) (empty when lo >= hi). Lets im2col/col2im run branch-free, vectorisable inner loops.
void valid_range(int64_t out_w, int64_t width, int64_t stride, int64_t start, int64_t* lo,
                 int64_t* hi) {
  // need 0 <= x*stride + start < width
  int64_t a = start >= 0 ? 0 : (-start + stride - 1) / stride;
  int64_t b = width - start <= 0 ? 0 : (width - start + stride - 1) / stride;
  *lo = a < out_w ? a : out_w;
  *hi = b < out_w ? b : out_w;
  if (*hi < *lo) *hi = *lo;
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(ldc));
}

void im2col(const ConvGeom& g, const float* img, int64_t img_stride, int64_t count,
            float pad_fill, float* col) {
  const int64_t rows = g.col_rows(), P = g.col_cols(), ld = count * P;
#pragma omp parallel for collapse(2) if (count * rows * P > (1 << 15))
  for (int64_t n = 0; n < count; ++n) {
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t c = r / (g.kernel_h * g.kernel_w);
      const int64_t i = (r / g.kernel_w) % g.kernel_h;
      const int64_t j = r % g.kernel_w;
      const float* plane = img + n * img_stride + c * g.in_h * g.in_w;
      float* out = col + r * ld + n * P;
      const int64_t start_x = j * g.dilate_w - g.pad_w;
      int64_t x0, x1;
      valid_range(g.out_w, g.in_w, g.stride_w, start_x, &x0, &x1);
      for (int64_t y = 0; y < g.out_h; ++y) {
        const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilate_h;
        float* orow = out + y * g.out_w;
        if (iy < 0 || iy >= g.in_h) {
          for (int64_t x = 0; x < g.out_w; ++x) orow[x] = pad_fill;
          continue;
        }
        const float* irow = plane + iy * g.in_w;
        for (int64_t x = 0; x < x0; ++x) orow[x] = pad_fill;
        if (g.stride_w == 1) {
          for (int64_t x = x0; x < x1; ++x) orow[x] = irow[x + start_x];
        } else {
          for (int64_t x = x0; x < x1; ++x) orow[x] = irow[x * g.stride_w + start_x];
        }
        for (int64_t x = x1; x < g.out_w; ++x) orow[x] = pad_fill;
      }
    }
  }
}

void col2im_add(const ConvGeom& g, const float* col, int64_t count, float* img,
                int64_t img_stride) {
  const int64_t P = g.col_cols(), ld = count * P, taps = g.kernel_h * g.kernel_w;
  // Parallel over (image, channel): each plane is written by its own taps only.
#pragma omp parallel for collapse(2) if (count * g.channels * taps * P > (1 << 15))
  for (int64_t n = 0; n < count; ++n) {
    for (int64_t c = 0; c < g.channels; ++c) {
      float* plane = img + n * img_stride + c * g.in_h * g.in_w;
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t i = t / g.kernel_w, j = t % g.kernel_w;
        const float* in = col + (c * taps + t) * ld + n * P;
        const int64_t start_x = j * g.dilate_w - g.pad_w;
        int64_t x0, x1;
        valid_range(g.out_w, g.in_w, g.stride_w, start_x, &x0, &x1);
        for (int64_t y = 0; y < g.out_h; ++y) {
          const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilate_h;
          if (iy < 0 || iy >= g.in_h) continue;
          float* irow = plane + iy * g.in_w;
          const float* crow = in + y * g.out_w;
          if (g.stride_w == 1) {
            for (int64_t x = x0; x < x1; ++x) irow[x + start_x] += crow[x];
          } else {
            for (int64_t x = x0; x < x1; ++x) irow[x * g.stride_w + start_x] += crow[x];
          }
        }
      }
    }
  }
}

void to_side_by_side(const float* image, int64_t image_stride, int64_t count, int64_t rows,
                     int64_t P, float* side) {
#pragma omp parallel for collapse(2) if (count * rows * P > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t n = 0; n < count; ++n) {
      std::memcpy(side + (r * count + n) * P, image + n * image_stride + r * P,
                  sizeof(float) * static_cast<size_t>(P));
    }
  }
}

void from_side_by_side(const float* side, int64_t count, int64_t rows, int64_t P, float* image,
                       int64_t image_stride) {
#pragma omp parallel for collapse(2) if (count * rows * P > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t n = 0; n < count; ++n) {
      std::memcpy(image + n * image_stride + r * P, side + (r * count + n) * P,
                  sizeof(float) * static_cast<size_t>(P));
    }
  }
}

int64_t images_per_chunk(int64_t per_image, int64_t batch) {
  // 64 MiB of im2col columns unless BMXNET_IM2COL_FLOATS says otherwise (read once).
  static const int64_t budget = [] {
    const char* env = std::getenv("BMXNET_IM2COL_FLOATS");
    const long long v = env ? std::atoll(env) : 0;
    return v > 0 ? static_cast<int64_t>(v) : (int64_t{1} << 24);
  }();
  const int64_t n = budget / (per_image > 0 ? per_image : 1);
  return n < 1 ? 1 : (n > batch ? batch : n);
}

}  // namespace bmx_mx
