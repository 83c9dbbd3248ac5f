// NEON (aarch64) binary GEMM kernels: a 4x8 register tile for panels, and a 4x4 GEMV (K along
// the lanes, 4 rows of A against up to 4 rows of B). Only reached through kBGemm4x8Neon /
// kBGemv4x4Neon (see dispatch.h for the rules of ISA files).
//
// NEON's popcount is per byte (vcnt). The byte counts of xor(a, b) are pairwise-added into
// 16-bit accumulators with vpadal (one instruction does the add and the accumulate), so a K-word
// costs eor + cnt + padal per 128 bits. A 16-bit lane receives at most 2 * 8 = 16 per K-word,
// so it is flushed into 64-bit sums (vpaddl u16 -> u32, vpadal u32 -> u64) every 4095 K-words.
// After the flush the two 64-bit lanes of a q register are the counts of its two columns.
//
// 4x8 tile: the panel holds the same K-word of 8 columns as 4 q registers of 2 words; per
// K-word each of the 4 rows broadcasts its word (ld1r). 16 accumulators + 4 column vectors +
// 4 broadcasts + temporaries fit the 32 vector registers.
#include <arm_neon.h>

#include "bgemm/bgemm.h"
#include "bgemm/gemv_rows.h"

namespace bmx {
namespace {

constexpr int kNr = 8;
constexpr int64_t kU16Block = 4095;  // K-words a 16-bit accumulator can take (4095 * 16 < 2^16)

inline uint16x8_t accumulate(uint16x8_t acc, uint64x2_t a, uint64x2_t b) {
  return vpadalq_u8(acc, vcntq_u8(vreinterpretq_u8_u64(veorq_u64(a, b))));
}

inline uint64x2_t flush(uint64x2_t sum, uint16x8_t acc) {
  return vpadalq_u32(sum, vpaddlq_u16(acc));
}

template <int R, int NV>
void tile_4x8(int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n, int32_t* counts,
              int64_t ldc) {
  uint64x2_t sum[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) sum[r][v] = vdupq_n_u64(0);
  for (int64_t k0 = 0; k0 < K; k0 += kU16Block) {
    const int64_t k1 = K - k0 < kU16Block ? K : k0 + kU16Block;
    uint16x8_t acc[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = vdupq_n_u16(0);
    for (int64_t k = k0; k < k1; ++k) {
      uint64x2_t b[NV];
      for (int v = 0; v < NV; ++v) b[v] = vld1q_u64(panel + k * kNr + 2 * v);
      for (int r = 0; r < R; ++r) {
        const uint64x2_t w = vld1q_dup_u64(A + r * lda + k);
        for (int v = 0; v < NV; ++v) acc[r][v] = accumulate(acc[r][v], w, b[v]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) sum[r][v] = flush(sum[r][v], acc[r][v]);
  }
  for (int r = 0; r < R; ++r) {
    for (int v = 0; v < NV; ++v) {
      const int j = 2 * v;
      if (j < n) counts[r * ldc + j] = static_cast<int32_t>(vgetq_lane_u64(sum[r][v], 0));
      if (j + 1 < n) counts[r * ldc + j + 1] = static_cast<int32_t>(vgetq_lane_u64(sum[r][v], 1));
    }
  }
}

using TileFn = void (*)(int64_t, const word_t*, int64_t, const word_t*, int, int32_t*, int64_t);

template <int R>
TileFn tile_for_columns(int n) {
  switch ((n + 1) / 2) {
    case 1: return tile_4x8<R, 1>;
    case 2: return tile_4x8<R, 2>;
    case 3: return tile_4x8<R, 3>;
    default: return tile_4x8<R, 4>;
  }
}

void run_4x8(int64_t M, int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n,
             int32_t* counts, int64_t ldc) {
  const TileFn full = tile_for_columns<4>(n);
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) full(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc);
  switch (M - m) {
    case 3: tile_for_columns<3>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 2: tile_for_columns<2>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    case 1: tile_for_columns<1>(n)(K, A + m * lda, lda, panel, n, counts + m * ldc, ldc); break;
    default: break;
  }
}

// R rows of A against NB rows of B, K along the lanes (2 words per q register).
template <int R, int NB>
void gemv_tile(int64_t K, const word_t* A, int64_t lda, const word_t* B, int32_t* counts,
               int64_t ldc) {
  uint64x2_t sum[R][NB];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NB; ++j) sum[r][j] = vdupq_n_u64(0);
  const int64_t kfull = K / 2 * 2;
  for (int64_t k0 = 0; k0 < kfull; k0 += 2 * kU16Block) {
    const int64_t k1 = kfull - k0 < 2 * kU16Block ? kfull : k0 + 2 * kU16Block;
    uint16x8_t acc[R][NB];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NB; ++j) acc[r][j] = vdupq_n_u16(0);
    for (int64_t k = k0; k < k1; k += 2) {
      uint64x2_t vb[NB];
      for (int j = 0; j < NB; ++j) vb[j] = vld1q_u64(B + j * K + k);
      for (int r = 0; r < R; ++r) {
        const uint64x2_t va = vld1q_u64(A + r * lda + k);
        for (int j = 0; j < NB; ++j) acc[r][j] = accumulate(acc[r][j], va, vb[j]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NB; ++j) sum[r][j] = flush(sum[r][j], acc[r][j]);
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NB; ++j) {
      uint64_t total = vaddvq_u64(sum[r][j]);
      if (kfull < K)  // one word left
        total += vaddv_u8(vcnt_u8(vcreate_u8(A[r * lda + kfull] ^ B[j * K + kfull])));
      counts[r * ldc + j] = static_cast<int32_t>(total);
    }
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

const BGemmKernel kBGemm4x8Neon = {"4x8_neon", kNr, false, run_4x8};
const BGemmKernel kBGemv4x4Neon = {"gemv4x4_neon", 4, true, run_gemv};

}  // namespace bmx
