// AVX-512 output kernels. Compiled with -mavx512f -mavx512bw -mavx512vpopcntdq (see
// CMakeLists.txt); only reached through kOutputAvx512 (see dispatch.h for the rules of ISA files).
//
// Units (bdense): the same per element, with a scale and a bias loaded per element.
// Output block: 16 outputs of a row per step: load 16 counts, dot = nbits - 2 * count, add the
// border correction (looked up with one vpermd when a row of the table is 16 entries, a gather
// otherwise), convert, multiply, add, store; the tail of a row is masked.
//
// Popcount runs: runs of up to 8 words are loaded with a mask (one run per register), popcounted
// with vpopcntq, and 8 runs are summed horizontally together by a transposing add tree, so that
// 8 results leave in one store.
#include <immintrin.h>

#include "bconv2d/epilogue_flags.h"
#include "bconv2d/output_kernels.h"

namespace bmx {
namespace {

template <bool kScale, bool kBias, int kCorr>
void block_rows(const OutputBlock& b) {
  // Fields in locals: the vector stores may alias anything, so GCC would reload them from b.
  const int32_t* const counts = b.counts;
  const int32_t* const cls = b.cls;
  const int64_t rows = b.rows, n = b.n, ldc = b.ldc, ldo = b.ldo, ldcorr = b.ldcorr;
  const int64_t nfull = n / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (n - nfull)) - 1);
  const __m512i nbits = _mm512_set1_epi32(b.nbits);
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* c = counts + r * ldc;
    float* out = b.out + r * ldo;
    const __m512 sc = _mm512_set1_ps(kScale ? b.scale[r] : 1.0f);
    const __m512 bi = _mm512_set1_ps(kBias ? b.bias[r] : 0.0f);
    const int32_t* corr = kCorr ? b.corr + r * ldcorr : nullptr;
    __m512i table = _mm512_setzero_si512();
    if (kCorr == 1) table = _mm512_loadu_si512(corr);
    // 16 outputs from counts (and classes) loaded with mask m.
    auto step = [&](int64_t j, __mmask16 m) {
      __m512i d = _mm512_sub_epi32(nbits, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, c + j), 1));
      if (kCorr == 1) {
        const __m512i idx = _mm512_maskz_loadu_epi32(m, cls + j);
        d = _mm512_add_epi32(d, _mm512_permutexvar_epi32(idx, table));
      } else if (kCorr == 2) {
        const __m512i idx = _mm512_maskz_loadu_epi32(m, cls + j);
        d = _mm512_add_epi32(
            d, _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, idx, corr, 4));
      }
      __m512 v = _mm512_cvtepi32_ps(d);
      if (kScale) v = _mm512_mul_ps(v, sc);
      if (kBias) v = _mm512_add_ps(v, bi);
      return v;
    };
    for (int64_t j = 0; j < nfull; j += 16) _mm512_storeu_ps(out + j, step(j, 0xffff));
    if (tail) _mm512_mask_storeu_ps(out + nfull, tail, step(nfull, tail));
  }
}

template <int kCorr>
void block_corr(const OutputBlock& b) {
  with_scale_bias(b.scale, b.bias, [&](auto sc, auto bi) {
    block_rows<decltype(sc)::value, decltype(bi)::value, kCorr>(b);
  });
}

void block_avx512(const OutputBlock& b) {
  if (b.cls == nullptr)
    block_corr<0>(b);
  else if (b.ldcorr == 16)
    block_corr<1>(b);
  else
    block_corr<2>(b);
}

template <bool kScale, bool kBias>
void units_loop(const int32_t* counts, int64_t n, int32_t nbits_s, const float* scale,
                const float* bias, float* out) {
  const __m512i nbits = _mm512_set1_epi32(nbits_s);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffffu : (1u << (n - i)) - 1);
    const __m512i d =
        _mm512_sub_epi32(nbits, _mm512_slli_epi32(_mm512_maskz_loadu_epi32(m, counts + i), 1));
    __m512 v = _mm512_cvtepi32_ps(d);
    if (kScale) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, scale + i));
    if (kBias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + i));
    _mm512_mask_storeu_ps(out + i, m, v);
  }
}

void units_avx512(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                  const float* bias, float* out) {
  with_scale_bias(scale, bias, [&](auto sc, auto bi) {
    units_loop<decltype(sc)::value, decltype(bi)::value>(counts, n, nbits, scale, bias, out);
  });
}

// 8 vectors of 8 lanes -> one vector of their 8 horizontal sums (in order).
inline __m512i sum8(const __m512i v[8]) {
  __m512i a[4];
  for (int i = 0; i < 4; ++i)
    a[i] = _mm512_add_epi64(_mm512_unpacklo_epi64(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi64(v[2 * i], v[2 * i + 1]));
  __m512i b[2];
  for (int i = 0; i < 2; ++i)
    b[i] = _mm512_add_epi64(_mm512_shuffle_i64x2(a[2 * i], a[2 * i + 1], 0x88),
                            _mm512_shuffle_i64x2(a[2 * i], a[2 * i + 1], 0xdd));
  return _mm512_add_epi64(_mm512_shuffle_i64x2(b[0], b[1], 0x88),
                          _mm512_shuffle_i64x2(b[0], b[1], 0xdd));
}

// Popcount of one run of len words, as 8 lanes to be summed.
inline __m512i run_counts(const word_t* x, int64_t len) {
  __m512i acc = _mm512_setzero_si512();
  int64_t w = 0;
  for (; w + 8 <= len; w += 8)
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_loadu_si512(x + w)));
  if (w < len) {
    const __mmask8 m = static_cast<__mmask8>((1u << (len - w)) - 1);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_maskz_loadu_epi64(m, x + w)));
  }
  return acc;
}

void popcount_runs_avx512(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  int64_t r = 0;
  if (len == 1) {  // one word per run: 8 runs per vector, no sums
    for (; r + 8 <= runs; r += 8)
      _mm512_mask_cvtepi64_storeu_epi32(out + r, 0xff,
                                        _mm512_popcnt_epi64(_mm512_loadu_si512(x + r)));
  }
  for (; r + 8 <= runs; r += 8) {
    __m512i v[8];
    for (int i = 0; i < 8; ++i) v[i] = run_counts(x + (r + i) * len, len);
    _mm512_mask_cvtepi64_storeu_epi32(out + r, 0xff, sum8(v));
  }
  for (; r < runs; ++r)
    out[r] = static_cast<int32_t>(_mm512_reduce_add_epi64(run_counts(x + r * len, len)));
}

// Bit output, 16 columns per step: per row one compare gives a 16-bit mask (count <= limit, or
// dot >= threshold with the border correction looked up as in block_rows), flipped for a
// negative direction, and a masked OR sets the row's bit in one of two 32-bit accumulators per
// column (rows 0-31, 32-63); the two halves are widened and merged into the columns' words.
inline int32_t count_limit(int32_t nbits, int32_t t) {
  int64_t d = int64_t{nbits} - t;
  d = d >= 0 ? d / 2 : -((1 - d) / 2);
  return d < INT32_MIN ? INT32_MIN : static_cast<int32_t>(d);
}

template <int kCorr>
void bits_rows(const BitsBlock& b) {
  const int32_t* const counts = b.counts;
  const int32_t* const cls = b.cls;
  const int64_t rows = b.rows, n = b.n, ldc = b.ldc, ldcorr = b.ldcorr;
  const __m512i nbits = _mm512_set1_epi32(b.nbits);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - j >= 16 ? 0xffffu : (1u << (n - j)) - 1);
    __m512i acc[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    __m512i idx = _mm512_setzero_si512();
    if (kCorr) idx = _mm512_maskz_loadu_epi32(m, cls + j);
    for (int64_t r = 0; r < rows; ++r) {
      const __m512i c = _mm512_maskz_loadu_epi32(m, counts + r * ldc + j);
      __mmask16 bit;
      if (kCorr == 0) {
        const __m512i limit = _mm512_set1_epi32(count_limit(b.nbits, b.threshold[r]));
        bit = _mm512_mask_cmple_epi32_mask(m, c, limit);
      } else {
        const int32_t* corr = b.corr + r * ldcorr;
        const __m512i zero = _mm512_setzero_si512();
        const __m512i add = kCorr == 1 ? _mm512_permutexvar_epi32(idx, _mm512_loadu_si512(corr))
                                       : _mm512_mask_i32gather_epi32(zero, m, idx, corr, 4);
        const __m512i dot = _mm512_add_epi32(_mm512_sub_epi32(nbits, _mm512_slli_epi32(c, 1)), add);
        bit = _mm512_mask_cmpge_epi32_mask(m, dot, _mm512_set1_epi32(b.threshold[r]));
      }
      if (b.flip[r]) bit = static_cast<__mmask16>(~bit & m);
      __m512i& a = acc[r >> 5];
      a = _mm512_mask_or_epi32(a, bit, a, _mm512_set1_epi32(static_cast<int>(1u << (r & 31))));
    }
    const __m512i w0 = _mm512_or_si512(
        _mm512_cvtepu32_epi64(_mm512_castsi512_si256(acc[0])),
        _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(acc[1])), 32));
    const __m512i w1 = _mm512_or_si512(
        _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(acc[0], 1)),
        _mm512_slli_epi64(_mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(acc[1], 1)), 32));
    _mm512_mask_storeu_epi64(b.out + j, static_cast<__mmask8>(m & 0xff), w0);
    _mm512_mask_storeu_epi64(b.out + j + 8, static_cast<__mmask8>(m >> 8), w1);
  }
}

void bits_avx512(const BitsBlock& b) {
  if (b.cls == nullptr)
    bits_rows<0>(b);
  else if (b.ldcorr == 16)
    bits_rows<1>(b);
  else
    bits_rows<2>(b);
  output_bits_table_rows(b);
}

}  // namespace

const OutputKernels kOutputAvx512 = {"avx512", block_avx512, units_avx512,
                                     popcount_runs_avx512, bits_avx512};

}  // namespace bmx
