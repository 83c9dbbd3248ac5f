// Float building blocks of the quantized operators' non-packed paths (k-bit forward, all
// backward passes): im2col/col2im and the OpenBLAS sgemm shipped inside the mxnet wheel.
#ifndef BMXNET_MXNET_FLOAT_OPS_H_
#define BMXNET_MXNET_FLOAT_OPS_H_

#include <cstdint>

namespace bmx_mx {

// C[M x N] = alpha * op(A) * op(B) + beta * C, row-major; op(X) = X^T when trans_x.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
           int64_t ldc);

// Geometry of one 2-D convolution window pass over a single image/group.
struct ConvGeom {
  int64_t channels, in_h, in_w, kernel_h, kernel_w, pad_h, pad_w, stride_h, stride_w, dilate_h,
      dilate_w, out_h, out_w;
  int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  int64_t col_cols() const { return out_h * out_w; }
};

// im2col of `count` images (image n at img + n * img_stride) side by side, so that one GEMM
// covers them all: col is col_rows() x (count * P), P = col_cols(), and
// col[(c*kh + i)*kw + j][n*P + y*out_w + x] = img_n[c][y*sh - ph + i*dh][x*sw - pw + j*dw], or
// pad_fill outside the image.
void im2col(const ConvGeom& g, const float* img, int64_t img_stride, int64_t count,
            float pad_fill, float* col);
// The adjoint of im2col with pad_fill 0: img_n += scatter(col columns of image n).
void col2im_add(const ConvGeom& g, const float* col, int64_t count, float* img,
                int64_t img_stride);

// Moves `rows` rows of P values between the per-image layout src[n * src_stride + r * P + i]
// (n < count) and the side-by-side layout dst[r * count * P + n * P + i] (to_side_by_side), or
// back (!to_side_by_side, with src/dst roles swapped: side-by-side `side`, per-image `image`).
void to_side_by_side(const float* image, int64_t image_stride, int64_t count, int64_t rows,
                     int64_t P, float* side);
void from_side_by_side(const float* side, int64_t count, int64_t rows, int64_t P, float* image,
                       int64_t image_stride);

// Images per chunk so that a chunk's im2col buffer (per_image floats each) stays within a budget
// of 2^24 floats (64 MiB), or the number of floats in the environment variable
// BMXNET_IM2COL_FLOATS (for small-memory devices; always at least one image per chunk).
int64_t images_per_chunk(int64_t per_image, int64_t batch);

}  // namespace bmx_mx

#endif  // BMXNET_MXNET_FLOAT_OPS_H_
