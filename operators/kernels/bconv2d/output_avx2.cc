// AVX2 output kernels. Compiled with -mavx2 -mfma (see CMakeLists.txt; the multiplication and the
// addition stay separate instructions, -ffp-contract=off); only reached through kOutputAvx2 (see
// dispatch.h for the rules of ISA files).
//
// Units (bdense): the same per element, with a scale and a bias loaded per element.
// Output block: 8 outputs of a row per step (counts -> dot -> + correction -> float -> scale ->
// bias), the tail of a row with masked loads and stores; the correction is two permutes of the
// table row when it has 16 entries, a gather otherwise.
// Popcount runs: the pshufb nibble-table popcount, bytes summed into 64-bit lanes with vpsadbw.
#include <immintrin.h>

#include "bconv2d/epilogue_flags.h"
#include "bconv2d/output_kernels.h"

namespace bmx {
namespace {

inline __m256i tail_mask(int64_t left) {  // lanes < left all-ones (left < 8)
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left)), lane);
}

// How a kernel looks up the border corrections of 8 columns (classes idx) in a row of the table.
enum class Corr { kNone, kPermute, kGather };

// Corrections of row `row` for classes idx when the table rows have 16 entries (ldcorr == 16,
// every layer with at most 16 border classes): two in-register permutes of the row's halves and
// a blend on idx > 7 (high), instead of a gather (slow on AMD cores and ~4x the uops on Intel).
inline __m256i corr16(const int32_t* row, __m256i idx, __m256i high) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 8));
  return _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(lo, idx),
                            _mm256_permutevar8x32_epi32(hi, idx), high);
}

// Columns outer, rows inner: the classes (and what the lookup derives from them) are read once
// per 8 columns for all rows. The block's fields are copied to locals, since the stores could
// otherwise alias them.
template <bool kScale, bool kBias, Corr kCorr>
void block_rows(const OutputBlock& b) {
  const __m256i nbits = _mm256_set1_epi32(b.nbits);
  const __m256i all = _mm256_set1_epi32(-1);
  const int32_t* counts = b.counts;
  const int32_t* corr = b.corr;
  const int32_t* cls = b.cls;
  const float* scale = b.scale;
  const float* bias = b.bias;
  float* out = b.out;
  const int64_t rows = b.rows, n = b.n, ldc = b.ldc, ldo = b.ldo, ldcorr = b.ldcorr;
  for (int64_t j = 0; j < n; j += 8) {
    const bool full = n - j >= 8;
    const __m256i m = full ? all : tail_mask(n - j);
    __m256i idx = _mm256_setzero_si256(), high = _mm256_setzero_si256();
    if (kCorr != Corr::kNone) {
      idx = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cls + j))
                 : _mm256_maskload_epi32(reinterpret_cast<const int*>(cls + j), m);
      if (kCorr == Corr::kPermute) high = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7));
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int32_t* c = counts + r * ldc + j;
      const __m256i cnt = full ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c))
                               : _mm256_maskload_epi32(reinterpret_cast<const int*>(c), m);
      __m256i d = _mm256_sub_epi32(nbits, _mm256_slli_epi32(cnt, 1));
      if (kCorr == Corr::kPermute) d = _mm256_add_epi32(d, corr16(corr + r * 16, idx, high));
      if (kCorr == Corr::kGather)
        d = _mm256_add_epi32(d, _mm256_mask_i32gather_epi32(_mm256_setzero_si256(),
                                                            corr + r * ldcorr, idx, m, 4));
      __m256 v = _mm256_cvtepi32_ps(d);
      if (kScale) v = _mm256_mul_ps(v, _mm256_set1_ps(scale[r]));
      if (kBias) v = _mm256_add_ps(v, _mm256_set1_ps(bias[r]));
      if (full)
        _mm256_storeu_ps(out + r * ldo + j, v);
      else
        _mm256_maskstore_ps(out + r * ldo + j, m, v);
    }
  }
}

template <Corr kCorr>
void block_corr(const OutputBlock& b) {
  with_scale_bias(b.scale, b.bias, [&](auto sc, auto bi) {
    block_rows<decltype(sc)::value, decltype(bi)::value, kCorr>(b);
  });
}

void block_avx2(const OutputBlock& b) {
  if (b.cls == nullptr)
    block_corr<Corr::kNone>(b);
  else if (b.ldcorr == 16)
    block_corr<Corr::kPermute>(b);
  else
    block_corr<Corr::kGather>(b);
}

template <bool kScale, bool kBias>
void units_loop(const int32_t* counts, int64_t n, int32_t nbits_s, const float* scale,
                const float* bias, float* out) {
  const __m256i nbits = _mm256_set1_epi32(nbits_s);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(counts + i));
    __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(nbits, _mm256_slli_epi32(c, 1)));
    if (kScale) v = _mm256_mul_ps(v, _mm256_loadu_ps(scale + i));
    if (kBias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    _mm256_storeu_ps(out + i, v);
  }
  for (; i < n; ++i) {
    float v = static_cast<float>(nbits_s - 2 * counts[i]);
    if (kScale) v = v * scale[i];
    if (kBias) v = v + bias[i];
    out[i] = v;
  }
}

void units_avx2(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                const float* bias, float* out) {
  with_scale_bias(scale, bias, [&](auto sc, auto bi) {
    units_loop<decltype(sc)::value, decltype(bi)::value>(counts, n, nbits, scale, bias, out);
  });
}

// Popcounts of 4 words as 4 64-bit lanes.
inline __m256i popcount4(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
}

void popcount_runs_avx2(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  int64_t r = 0;
  if (len == 1) {  // 4 runs per vector
    alignas(32) long long tmp[4];
    for (; r + 4 <= runs; r += 4) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp),
                         popcount4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + r))));
      for (int i = 0; i < 4; ++i) out[r + i] = static_cast<int32_t>(tmp[i]);
    }
  }
  const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
  for (; r < runs; ++r) {
    const word_t* p = x + r * len;
    __m256i acc = _mm256_setzero_si256();
    int64_t w = 0;
    for (; w + 4 <= len; w += 4)
      acc = _mm256_add_epi64(
          acc, popcount4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + w))));
    if (w < len) {
      const __m256i m = _mm256_cmpgt_epi64(_mm256_set1_epi64x(len - w), lane);
      acc = _mm256_add_epi64(
          acc, popcount4(_mm256_maskload_epi64(reinterpret_cast<const long long*>(p + w), m)));
    }
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    out[r] = static_cast<int32_t>(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
  }
}

// Bit output, 8 columns per step (a partial step works on zero-padded copies): per row one
// compare of 32-bit lanes (count > limit, or threshold > dot with the border correction
// looked up), XORed with all-ones unless the row is flipped, ANDed with the row's bit and ORed into
// one of two 32-bit accumulators per column (rows 0-31, 32-63), which are widened and merged into
// the columns' words at the end.
inline int32_t count_limit(int32_t nbits, int32_t t) {
  int64_t d = int64_t{nbits} - t;
  d = d >= 0 ? d / 2 : -((1 - d) / 2);
  return d < INT32_MIN ? INT32_MIN : static_cast<int32_t>(d);
}

template <Corr kCorr>
void bits_step(const BitsBlock& b, const int32_t* counts, int64_t ldc,
               const int32_t* cls, word_t* out) {
  const __m256i ones = _mm256_set1_epi32(-1);
  const __m256i nbits = _mm256_set1_epi32(b.nbits);
  __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  __m256i idx = _mm256_setzero_si256(), high = _mm256_setzero_si256();
  if (kCorr != Corr::kNone) idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(cls));
  if (kCorr == Corr::kPermute) high = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7));
  for (int64_t r = 0; r < b.rows; ++r) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(counts + r * ldc));
    __m256i fail;  // lanes where the unflipped bit is 0
    if (kCorr == Corr::kNone) {
      fail = _mm256_cmpgt_epi32(c, _mm256_set1_epi32(count_limit(b.nbits, b.threshold[r])));
    } else {
      const __m256i add = kCorr == Corr::kPermute
                              ? corr16(b.corr + r * 16, idx, high)
                              : _mm256_i32gather_epi32(b.corr + r * b.ldcorr, idx, 4);
      const __m256i dot = _mm256_add_epi32(_mm256_sub_epi32(nbits, _mm256_slli_epi32(c, 1)), add);
      fail = _mm256_cmpgt_epi32(_mm256_set1_epi32(b.threshold[r]), dot);
    }
    const __m256i set = b.flip[r] ? fail : _mm256_xor_si256(fail, ones);
    __m256i& a = acc[r >> 5];
    a = _mm256_or_si256(
        a, _mm256_and_si256(set, _mm256_set1_epi32(static_cast<int>(1u << (r & 31)))));
  }
  const __m256i w0 = _mm256_or_si256(
      _mm256_cvtepu32_epi64(_mm256_castsi256_si128(acc[0])),
      _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(acc[1])), 32));
  const __m256i w1 = _mm256_or_si256(
      _mm256_cvtepu32_epi64(_mm256_extracti128_si256(acc[0], 1)),
      _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(acc[1], 1)), 32));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), w0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 4), w1);
}

template <Corr kCorr>
void bits_rows(const BitsBlock& b) {
  const int64_t n = b.n, full = n / 8 * 8;
  for (int64_t j = 0; j < full; j += 8)
    bits_step<kCorr>(b, b.counts + j, b.ldc, kCorr != Corr::kNone ? b.cls + j : nullptr,
                     b.out + j);
  if (full == n) return;
  // The last columns: counts and classes copied into zero-padded buffers (class 0 is a valid
  // index), words written to a buffer and copied out.
  alignas(32) int32_t c[64 * 8];
  alignas(32) int32_t k[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  alignas(32) word_t w[8];
  const int64_t rest = n - full;
  for (int64_t r = 0; r < b.rows; ++r)
    for (int64_t i = 0; i < 8; ++i) c[r * 8 + i] = i < rest ? b.counts[r * b.ldc + full + i] : 0;
  if (kCorr != Corr::kNone)
    for (int64_t i = 0; i < rest; ++i) k[i] = b.cls[full + i];
  bits_step<kCorr>(b, c, 8, k, w);
  for (int64_t i = 0; i < rest; ++i) b.out[full + i] = w[i];
}

void bits_avx2(const BitsBlock& b) {
  if (b.cls == nullptr)
    bits_rows<Corr::kNone>(b);
  else if (b.ldcorr == 16)
    bits_rows<Corr::kPermute>(b);
  else
    bits_rows<Corr::kGather>(b);
  output_bits_table_rows(b);
}

}  // namespace

const OutputKernels kOutputAvx2 = {"avx2", block_avx2, units_avx2, popcount_runs_avx2,
                                   bits_avx2};

}  // namespace bmx
