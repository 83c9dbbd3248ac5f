// Float building blocks of the runtime's convolution and dense steps: the panel packers of the
// GEMM (a plain matrix, or a convolution's im2col computed panel by panel, so no im2col buffer
// exists) and a GEMM driver that splits C into row x column blocks for the threads and calls an
// epilogue on each finished block. Baseline flags; the vectorised loops are in sgemm_impl.inc.
#ifndef BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_
#define BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_

#include <algorithm>
#include <cstdint>

#include "bmx_kernels.h"
#include "kernels/sgemm.h"
#include "parallel.h"

namespace bmxrt {

// B is a row-major matrix with leading dimension ldb.
struct MatrixPanels {
  const float* B;
  int64_t ldb;
};
void pack_matrix_panel(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                       float* panel);

// B is the im2col matrix of one image and group of a convolution: row (c*kh + i)*kw + j, column
// y*out_w + x holds img[c][y*sh - ph + i*dh][x*sw - pw + j*dw], or pad_fill outside the image.
struct ConvPanels {
  const bmx::BConv2DShape* s;  // the layer (channels of one group start at img)
  const float* img;
  float pad_fill;
};
void pack_conv_panel(const void* ctx, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                     float* panel);

// C[M x N] = A[M x K] * B[K x N] on the threads of `par`, in blocks of whole 6-row and 16-column
// tiles; epilogue(row_begin, row_end, col_begin, col_end) runs on each block once it is done.
template <typename Epilogue>
void parallel_gemm(const Parallel& par, const FloatKernels& k, int64_t M, int64_t N, int64_t K,
                   const float* A, int64_t lda, PackPanelFn pack, const void* pack_ctx, float* C,
                   int64_t ldc, Epilogue& epilogue) {
  const int tasks = par.tasks_for(M * N * K);
  const int64_t col_tiles = (N + 15) / 16, row_tiles = (M + 5) / 6;
  const int64_t col_parts = std::min<int64_t>(tasks, col_tiles);
  const int64_t row_parts = std::min<int64_t>((tasks + col_parts - 1) / col_parts, row_tiles);
  auto task = [&](int t) {
    const int64_t rp = t / col_parts, cp = t % col_parts;
    const int64_t r0 = std::min(M, row_tiles * rp / row_parts * 6);
    const int64_t r1 = std::min(M, row_tiles * (rp + 1) / row_parts * 6);
    const int64_t c0 = std::min(N, col_tiles * cp / col_parts * 16);
    const int64_t c1 = std::min(N, col_tiles * (cp + 1) / col_parts * 16);
    if (r0 >= r1 || c0 >= c1) return;
    // The block's columns are columns c0.. of the whole B: shift the packer's n0 by c0.
    struct Shifted {
      PackPanelFn pack;
      const void* ctx;
      int64_t c0;
    } shifted{pack, pack_ctx, c0};
    auto shifted_pack = [](const void* p, int64_t k0, int64_t kc, int64_t n0, int64_t cols,
                           float* panel) {
      const Shifted* s = static_cast<const Shifted*>(p);
      s->pack(s->ctx, k0, kc, n0 + s->c0, cols, panel);
    };
    k.sgemm(r1 - r0, c1 - c0, K, A + r0 * lda, lda, shifted_pack, &shifted, C + r0 * ldc + c0,
            ldc);
    epilogue(r0, r1, c0, c1);
  };
  par.run(static_cast<int>(row_parts * col_parts), task);
}

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_
