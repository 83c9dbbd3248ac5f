// AVX2 binary GEMM kernels: a 4x8 register tile for panels, and a 4x2 GEMV (K along the lanes,
// 4 rows of A against up to 2 rows of B, byte counters flushed like the tile's).
// Compiled with -mavx2 -mfma (see CMakeLists.txt); only reached through kBGemm4x8Avx2 /
// kBGemv4x2Avx2 (see dispatch.h for the rules of ISA files).
//
// AVX2 has no vector popcount, so popcount(x) is computed per byte with the nibble table of
// W. Muła, N. Kurz, D. Lemire, "Faster Population Counts Using AVX2 Instructions"
// (https://arxiv.org/abs/1611.07612, "vectorized lookup"): lo = x & 0x0f, hi = (x >> 4) & 0x0f,
// bytecount = T[lo] + T[hi] with T = popcounts of 0..15 in a register, looked up by vpshufb.
// A byte count is at most 8, so byte accumulators can take 31 K-words (31 * 8 = 248 <= 255)
// before vpsadbw folds each group of 8 bytes, i.e. each 64-bit lane, into a 64-bit sum.
//
// 4x8 tile: the panel holds the same K-word of 8 columns as 2 ymm of 4 words; per K-word the 4
// rows each broadcast their word. 8 byte accumulators + 2 column vectors + table + mask + a few
// temporaries fill the 16 ymm registers; the 64-bit sums live in memory (touched every 31 words).
#include <immintrin.h>

#include "bgemm/bgemm.h"
#include "bgemm/gemv_rows.h"

namespace bmx {
namespace {

constexpr int kNr = 8;
constexpr int64_t kByteBlock = 31;  // K-words a byte accumulator can take without overflow

inline __m256i popcount_bytes(__m256i x, __m256i table, __m256i low4) {
  const __m256i lo = _mm256_and_si256(x, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
  return _mm256_add_epi8(_mm256_shuffle_epi8(table, lo), _mm256_shuffle_epi8(table, hi));
}

inline __m256i nibble_table() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                          2, 2, 3, 2, 3, 3, 4);
}

// Stores the four 64-bit lane sums of v (each < 2^31) as int32 to dst[0..count).
inline void store_lanes(int32_t* dst, __m256i v, int count) {
  const __m256i even = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
  const __m128i lo = _mm256_castsi256_si128(even);
  if (count >= 4) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), lo);
  } else {
    const __m128i idx = _mm_setr_epi32(0, 1, 2, 3);
    const __m128i mask = _mm_cmpgt_epi32(_mm_set1_epi32(count), idx);
    _mm_maskstore_epi32(dst, mask, lo);
  }
}

template <int R, int NV>
void tile_4x8(int64_t K, const word_t* A, int64_t lda, const word_t* panel, int n, int32_t* counts,
              int64_t ldc) {
  const __m256i table = nibble_table();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256i sum[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) sum[r][v] = _mm256_setzero_si256();
  for (int64_t k0 = 0; k0 < K; k0 += kByteBlock) {
    const int64_t k1 = K - k0 < kByteBlock ? K : k0 + kByteBlock;
    __m256i acc[R][NV];
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_si256();
    for (int64_t k = k0; k < k1; ++k) {
      __m256i b[NV];
      for (int v = 0; v < NV; ++v)
        b[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + k * kNr + 4 * v));
      for (int r = 0; r < R; ++r) {
        const __m256i w = _mm256_set1_epi64x(static_cast<long long>(A[r * lda + k]));
        for (int v = 0; v < NV; ++v)
          acc[r][v] =
              _mm256_add_epi8(acc[r][v], popcount_bytes(_mm256_xor_si256(w, b[v]), table, low4));
      }
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < NV; ++v)
        sum[r][v] = _mm256_add_epi64(sum[r][v], _mm256_sad_epu8(acc[r][v], _mm256_setzero_si256()));
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) store_lanes(counts + r * ldc + 4 * v, sum[r][v], n - 4 * v);
}

using TileFn = void (*)(int64_t, const word_t*, int64_t, const word_t*, int, int32_t*, int64_t);

template <int R>
TileFn tile_for_columns(int n) {
  return n > 4 ? tile_4x8<R, 2> : tile_4x8<R, 1>;
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

// R rows of A against NB rows of B, K along the lanes (4 words per ymm).
template <int R, int NB>
void gemv_tile(int64_t K, const word_t* A, int64_t lda, const word_t* B, int32_t* counts,
               int64_t ldc) {
  const __m256i table = nibble_table();
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  __m256i sum[R][NB];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NB; ++j) sum[r][j] = _mm256_setzero_si256();
  const int64_t kfull = K / 4 * 4;
  for (int64_t k0 = 0; k0 < kfull; k0 += 4 * kByteBlock) {
    const int64_t k1 = kfull - k0 < 4 * kByteBlock ? kfull : k0 + 4 * kByteBlock;
    __m256i acc[R][NB];
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NB; ++j) acc[r][j] = _mm256_setzero_si256();
    for (int64_t k = k0; k < k1; k += 4) {
      __m256i vb[NB];
      for (int j = 0; j < NB; ++j)
        vb[j] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + j * K + k));
      for (int r = 0; r < R; ++r) {
        const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(A + r * lda + k));
        for (int j = 0; j < NB; ++j)
          acc[r][j] =
              _mm256_add_epi8(acc[r][j], popcount_bytes(_mm256_xor_si256(va, vb[j]), table, low4));
      }
    }
    for (int r = 0; r < R; ++r)
      for (int j = 0; j < NB; ++j)
        sum[r][j] = _mm256_add_epi64(sum[r][j], _mm256_sad_epu8(acc[r][j], _mm256_setzero_si256()));
  }
  if (kfull < K) {  // 1..3 words left: masked loads read 0 for the rest
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(K - kfull), idx);
    __m256i vb[NB];
    for (int j = 0; j < NB; ++j)
      vb[j] = _mm256_maskload_epi64(reinterpret_cast<const long long*>(B + j * K + kfull), mask);
    for (int r = 0; r < R; ++r) {
      const __m256i va =
          _mm256_maskload_epi64(reinterpret_cast<const long long*>(A + r * lda + kfull), mask);
      for (int j = 0; j < NB; ++j)
        sum[r][j] = _mm256_add_epi64(
            sum[r][j], _mm256_sad_epu8(popcount_bytes(_mm256_xor_si256(va, vb[j]), table, low4),
                                       _mm256_setzero_si256()));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NB; ++j) {
      const __m128i s2 =
          _mm_add_epi64(_mm256_castsi256_si128(sum[r][j]), _mm256_extracti128_si256(sum[r][j], 1));
      const __m128i s1 = _mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2));
      counts[r * ldc + j] = _mm_cvtsi128_si32(s1);
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
  gemv_panel<GemvTile, 2>(M, K, A, lda, panel, n, counts, ldc);
}

}  // namespace

const BGemmKernel kBGemm4x8Avx2 = {"4x8_avx2", kNr, false, run_4x8};
const BGemmKernel kBGemv4x2Avx2 = {"gemv4x2_avx2", 2, true, run_gemv};

}  // namespace bmx
