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

// col[(c*kh + i)*kw + j][y*out_w + x] = img[c][y*sh - ph + i*dh][x*sw - pw + j*dw], or pad_fill
// outside the image.
void im2col(const ConvGeom& g, const float* img, float pad_fill, float* col);
// The adjoint of im2col with pad_fill 0: img += scatter(col).
void col2im_add(const ConvGeom& g, const float* col, float* img);

}  // namespace bmx_mx

#endif  // BMXNET_MXNET_FLOAT_OPS_H_
