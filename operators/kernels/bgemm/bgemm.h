// Binary GEMM (xor-popcount) kernels, internal header.
//
//     counts[m][n] = sum_k popcount(A[m][k] XOR B[n][k])        0 <= k < K words
//
// A is M x K words (row m at A + m * lda), B is N x K words (row n at B + n * ldb); in bconv2d A
// holds the packed weights (one row per output channel) and B the packed im2col rows (one per
// output pixel). Because unused bits are 0 in both operands, `counts` is the number of
// disagreeing {-1,+1} pairs, and the caller turns it into a dot product with
//     dot = (number of real bits) - 2 * counts        (see bconv2d/output_transform.h).
//
// Kernels work on *panels* of B: nr consecutive rows of B stored k-major, panel[k * nr + j] =
// B[n0 + j][k]. That puts the same K-word of nr consecutive columns next to each other, so a
// SIMD kernel loads one vector of columns and broadcasts one word of A per row: the popcounts
// then accumulate lane-wise and never need a horizontal reduction (which would cost ~2x).
// Columns j >= n of a partial panel are zero-filled by the packer; kernels may read them but
// write only the n valid columns.
//
// GEMV kernels (few columns: dense layers with batch 1, tiny feature maps) instead put K along
// the SIMD lanes and take a *row panel*: up to nr rows of B, row j at panel + j * K, which are
// just B's own rows when B is contiguous (no packing at all). They read each row of A once for
// all columns of the panel and reduce horizontally once per output at the end; they never read
// rows j >= n.
//
// Every optimised kernel has the same signature as the reference kernel kBGemmReference and is
// tested against bgemm_reference on awkward M/N/K (tests/cpp/test_bgemm.cc).
#ifndef BMXNET_KERNELS_BGEMM_BGEMM_H_
#define BMXNET_KERNELS_BGEMM_BGEMM_H_

#include <cstdint>

#include "bmx_kernels.h"

namespace bmx {

enum class Path : unsigned;  // from dispatch.h, which ISA files need not include

// counts[m * ldc + j] = sum_{k<K} popcount(A[m * lda + k] ^ B_j[k]) for 0 <= m < M and
// 0 <= j < n <= nr, where B_j[k] = panel[k * nr + j] (k-major panel) or panel[j * K + k] (row
// panel, see BGemmKernel::row_panel).
using PanelKernelFn = void (*)(int64_t M, int64_t K, const word_t* A, int64_t lda,
                               const word_t* panel, int n, int32_t* counts, int64_t ldc);

struct BGemmKernel {
  const char* name;  // e.g. "4x40_avx512": rows x columns of the register tile, and the ISA
  int nr;            // panel width (columns per call)
  bool row_panel;    // false: panel[k * nr + j] (k-major); true: panel[j * K + k] (GEMV kernels)
  PanelKernelFn run;
};

// Plain loops, nr = 1: the reference every other kernel is compared with.
extern const BGemmKernel kBGemmReference;
// Portable C++: 4x2 register tile, and a 4-row GEMV.
extern const BGemmKernel kBGemm4x2Portable;
extern const BGemmKernel kBGemv4x1Portable;
// The ISA kernels exist only when CMakeLists.txt built that path. GEMV names give rows x columns.
extern const BGemmKernel kBGemm4x8Avx2;
extern const BGemmKernel kBGemv4x2Avx2;
extern const BGemmKernel kBGemm4x40Avx512;
extern const BGemmKernel kBGemv4x4Avx512;
extern const BGemmKernel kBGemm4x8Neon;
extern const BGemmKernel kBGemv4x4Neon;

// THE kernel choice (LCE's SelectRuntimeKernel style): by path and shape. N is the number of
// columns the caller will process (output pixels of one image, or the batch of a dense layer).
const BGemmKernel& select_bgemm_kernel(Path path, int64_t M, int64_t N, int64_t K);

// Every kernel of a path (for tests): writes up to max pointers, returns how many there are.
int bgemm_kernels_for_path(Path path, const BGemmKernel** out, int max);

// Packs rows [0, n) of B (row j at B + j * ldb), n <= kernel.nr, into the kernel's panel layout
// (k-major panels get columns n..nr-1 zero-filled).
void pack_panel(const BGemmKernel& kernel, int64_t K, const word_t* B, int64_t ldb, int64_t n,
                word_t* panel);

// counts = A x B^T with the given kernel (B row-major, packed into panels here).
// num_threads <= 0 means omp_get_max_threads().
void bgemm_with_kernel(const BGemmKernel& kernel, int64_t M, int64_t N, int64_t K, const word_t* A,
                       int64_t lda, const word_t* B, int64_t ldb, int32_t* counts, int64_t ldc,
                       int num_threads);
// The same with select_bgemm_kernel(path, M, N, K).
void bgemm_with_path(Path path, int64_t M, int64_t N, int64_t K, const word_t* A, int64_t lda,
                     const word_t* B, int64_t ldb, int32_t* counts, int64_t ldc, int num_threads);
// Plain triple loop on row-major A and B.
void bgemm_reference(int64_t M, int64_t N, int64_t K, const word_t* A, int64_t lda, const word_t* B,
                     int64_t ldb, int32_t* counts, int64_t ldc);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BGEMM_BGEMM_H_
