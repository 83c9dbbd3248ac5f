// AVX-512 VPOPCNTDQ binary GEMM kernels: a 4x40 register tile for panels, and a 4-row GEMV.
// Compiled with -mavx512f -mavx512bw -mavx512vpopcntdq (see CMakeLists.txt); only reached
// through kBGemm4x40Avx512 / kBGemv4x4Avx512 (see dispatch.h for the rules of ISA files).
//
// 4x40 tile. The panel holds the same K-word of 40 consecutive columns (pixels) as 5 zmm of 8
// words each. Per K-word the kernel loads those 5 vectors once and, for each of 4 rows (output
// channels), broadcasts that row's word and does xor + vpopcntq + add into 5 accumulators of
// 8 x 64-bit lanes: 20 accumulators, 5 column vectors and a broadcast fit the 32 zmm registers.
// Per K-word that is 60 vector instructions for 4 x 40 x 64 = 10240 bit-MACs, with no
// horizontal reduction at all; the 64-bit lane sums are narrowed to int32 once at the end.
// Edge tiles (fewer than 4 rows, fewer than 40 columns) use instantiations with fewer rows and
// fewer column vectors; a partial last vector is stored with a mask.
//
// GEMV (row panel of up to 4 columns). For few columns of B (dense layers with a small batch),
// K runs along the lanes: 4 rows of A are loaded 8 words at a time, each xor'ed with the same 8
// words of every column, popcounted and accumulated in its own zmm (16 accumulators); one
// horizontal sum per output at the very end. Every row of A is read once for all columns. The
// K tail is read with masked loads (masked-off words are 0 in both, so they count nothing).
#include <immintrin.h>

#include "bgemm/bgemm.h"
#include "bgemm/gemv_rows.h"

namespace bmx {
namespace {

constexpr int kNr = 40;

template <int R, int NV>
void tile_4x40(int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n, int32_t* counts,
               int64_t ldc) {
  // Every loop over r and v is unrolled explicitly: left to itself GCC keeps acc in memory
  // (zeroed on the stack, reloaded, spilled again for the stores), which cost about 60 cycles
  // per tile, as much as 3 K-words of work.
  __m512i acc[R][NV];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 5
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_si512();
  const word_t* a[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) a[r] = A + r * lda;
  for (int64_t k = 0; k < K; ++k) {
    __m512i b[NV];
#pragma GCC unroll 5
    for (int v = 0; v < NV; ++v) b[v] = _mm512_loadu_si512(panel + k * kNr + 8 * v);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i w = _mm512_set1_epi64(static_cast<long long>(a[r][k]));
#pragma GCC unroll 5
      for (int v = 0; v < NV; ++v)
        acc[r][v] = _mm512_add_epi64(acc[r][v], _mm512_popcnt_epi64(_mm512_xor_si512(w, b[v])));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 5
    for (int v = 0; v < NV; ++v) {
      const int left = n - 8 * v;
      const __mmask8 lanes = static_cast<__mmask8>(left >= 8 ? 0xff : (1u << left) - 1);
      _mm512_mask_cvtepi64_storeu_epi32(counts + r * ldc + 8 * v, lanes, acc[r][v]);
    }
  }
}

using TileFn = void (*)(int64_t, const word_t*, int64_t, const word_t*, int, int32_t*, int64_t);

template <int R>
TileFn tile_for_columns(int nv) {
  switch (nv) {
    case 1: return tile_4x40<R, 1>;
    case 2: return tile_4x40<R, 2>;
    case 3: return tile_4x40<R, 3>;
    case 4: return tile_4x40<R, 4>;
    default: return tile_4x40<R, 5>;
  }
}

void run_4x40(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
              int32_t* counts, int64_t ldc) {
  const int nv = (n + 7) / 8;
  const TileFn full = tile_for_columns<4>(nv);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) full(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc);
  switch (M - m) {
    case 3: tile_for_columns<3>(nv)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 2: tile_for_columns<2>(nv)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 1: tile_for_columns<1>(nv)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    default: break;
  }
}

// R rows of A against NB rows of B, K along the lanes.
template <int R, int NB>
void gemv_tile(int64_t K, const word_t* A, int64_t lda, const word_t* B, int32_t* counts,
               int64_t ldc) {
  __m512i acc[R][NB];  // in registers only with the loops unrolled (see tile_4x40)
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) acc[r][j] = _mm512_setzero_si512();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m512i vb[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) vb[j] = _mm512_loadu_si512(B + j * K + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i va = _mm512_loadu_si512(A + r * lda + k);
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j)
        acc[r][j] = _mm512_add_epi64(acc[r][j], _mm512_popcnt_epi64(_mm512_xor_si512(va, vb[j])));
    }
  }
  if (k < K) {
    const __mmask8 lanes = static_cast<__mmask8>((1u << (K - k)) - 1);
    __m512i vb[NB];
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j) vb[j] = _mm512_maskz_loadu_epi64(lanes, B + j * K + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i va = _mm512_maskz_loadu_epi64(lanes, A + r * lda + k);
#pragma GCC unroll 4
      for (int j = 0; j < NB; ++j)
        acc[r][j] = _mm512_add_epi64(acc[r][j], _mm512_popcnt_epi64(_mm512_xor_si512(va, vb[j])));
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < NB; ++j)
      counts[r * ldc + j] = static_cast<int32_t>(_mm512_reduce_add_epi64(acc[r][j]));
}

// gemv_panel (gemv_rows.h) calls the tile through this.
struct GemvTile {
  template <int R, int NB>
  static void run(int64_t K, const word_t* A, int64_t lda, const word_t* B, int32_t* counts,
                  int64_t ldc) {
    gemv_tile<R, NB>(K, A, lda, B, counts, ldc);
  }
};

void run_gemv(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
              int32_t* counts, int64_t ldc) {
  gemv_panel<GemvTile, 4>(M, K, A, lda, panel, n, counts, ldc);
}

}  // namespace

const BGemmKernel kBGemm4x40Avx512 = {"4x40_avx512", kNr, false, run_4x40};
const BGemmKernel kBGemv4x4Avx512 = {"gemv4x4_avx512", 4, true, run_gemv};

}  // namespace bmx
