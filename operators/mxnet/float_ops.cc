#include "float_ops.h"

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

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<int>(M), static_cast<int>(N),
              static_cast<int>(K), alpha, A, static_cast<int>(lda), B, static_cast<int>(ldb), beta,
              C, static_cast<int>(ldc));
}

void im2col(const ConvGeom& g, const float* img, float pad_fill, float* col) {
  const int64_t rows = g.col_rows(), cols = g.col_cols();
#pragma omp parallel for if (rows * cols > (1 << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r / (g.kernel_h * g.kernel_w);
    const int64_t i = (r / g.kernel_w) % g.kernel_h;
    const int64_t j = r % g.kernel_w;
    const float* plane = img + c * g.in_h * g.in_w;
    float* out = col + r * cols;
    for (int64_t y = 0; y < g.out_h; ++y) {
      const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilate_h;
      float* orow = out + y * g.out_w;
      if (iy < 0 || iy >= g.in_h) {
        for (int64_t x = 0; x < g.out_w; ++x) orow[x] = pad_fill;
        continue;
      }
      const float* irow = plane + iy * g.in_w;
      for (int64_t x = 0; x < g.out_w; ++x) {
        const int64_t ix = x * g.stride_w - g.pad_w + j * g.dilate_w;
        orow[x] = (ix >= 0 && ix < g.in_w) ? irow[ix] : pad_fill;
      }
    }
  }
}

void col2im_add(const ConvGeom& g, const float* col, float* img) {
  const int64_t cols = g.col_cols(), taps = g.kernel_h * g.kernel_w;
  // Parallel over channels: each channel's plane is written by its own taps only.
#pragma omp parallel for if (g.channels * taps * cols > (1 << 15))
  for (int64_t c = 0; c < g.channels; ++c) {
    float* plane = img + c * g.in_h * g.in_w;
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t i = t / g.kernel_w, j = t % g.kernel_w;
      const float* in = col + (c * taps + t) * cols;
      for (int64_t y = 0; y < g.out_h; ++y) {
        const int64_t iy = y * g.stride_h - g.pad_h + i * g.dilate_h;
        if (iy < 0 || iy >= g.in_h) continue;
        float* irow = plane + iy * g.in_w;
        const float* crow = in + y * g.out_w;
        for (int64_t x = 0; x < g.out_w; ++x) {
          const int64_t ix = x * g.stride_w - g.pad_w + j * g.dilate_w;
          if (ix >= 0 && ix < g.in_w) irow[ix] += crow[x];
        }
      }
    }
  }
}

}  // namespace bmx_mx
