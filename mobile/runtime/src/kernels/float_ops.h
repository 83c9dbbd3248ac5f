// Float building blocks of the runtime's convolution and dense steps: im2col and a GEMM driver
// that splits C into row x column blocks for the threads and calls an epilogue on each finished
// block (baseline flags; the vectorised loops are in sgemm_impl.inc).
#ifndef BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_
#define BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_

#include <algorithm>
#include <cstdint>

#include "bmx_kernels.h"
#include "kernels/sgemm.h"
#include "parallel.h"

namespace bmxrt {

// im2col of one image and group: col[(c*kh + i)*kw + j][y*out_w + x] =
// img[c][y*sh - ph + i*dh][x*sw - pw + j*dw], or pad_fill outside the image.
// s describes the whole layer; channels are s.group_in() starting at img.
void im2col(const bmx::BConv2DShape& s, const float* img, float pad_fill, float* col,
            const Parallel& par);

// C[M x N] = A[M x K] * B[K x N] on the threads of `par`, in blocks of whole 4-row and 16-column
// tiles; epilogue(row_begin, row_end, col_begin, col_end) runs on each block once it is done.
template <typename Epilogue>
void parallel_gemm(const Parallel& par, const FloatKernels& k, int64_t M, int64_t N, int64_t K,
                   const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                   int64_t ldc, Epilogue& epilogue) {
  const int tasks = par.tasks_for(M * N * K);
  const int64_t col_tiles = (N + 15) / 16, row_tiles = (M + 3) / 4;
  const int64_t col_parts = std::min<int64_t>(tasks, col_tiles);
  const int64_t row_parts = std::min<int64_t>((tasks + col_parts - 1) / col_parts, row_tiles);
  auto task = [&](int t) {
    const int64_t rp = t / col_parts, cp = t % col_parts;
    const int64_t r0 = std::min(M, row_tiles * rp / row_parts * 4);
    const int64_t r1 = std::min(M, row_tiles * (rp + 1) / row_parts * 4);
    const int64_t c0 = std::min(N, col_tiles * cp / col_parts * 16);
    const int64_t c1 = std::min(N, col_tiles * (cp + 1) / col_parts * 16);
    if (r0 >= r1 || c0 >= c1) return;
    k.sgemm(r1 - r0, c1 - c0, K, A + r0 * lda, lda, B + c0, ldb, C + r0 * ldc + c0, ldc);
    epilogue(r0, r1, c0, c1);
  };
  par.run(static_cast<int>(row_parts * col_parts), task);
}

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_KERNELS_FLOAT_OPS_H_
