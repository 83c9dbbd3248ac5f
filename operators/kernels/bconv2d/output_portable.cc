// Portable output kernels: plain C++ loops with the per-block choices (scale? bias? correction?)
// hoisted out, so that the compiler vectorises them at the baseline ISA.
#include <cstdint>

#include "bconv2d/epilogue_flags.h"
#include "bconv2d/output_kernels.h"
#include "bgemm/popcount_portable.h"

namespace bmx {
namespace {

template <bool kScale, bool kBias>
void block_rows(const OutputBlock& b) {
  for (int64_t r = 0; r < b.rows; ++r) {
    const int32_t* c = b.counts + r * b.ldc;
    float* out = b.out + r * b.ldo;
    const float sc = kScale ? b.scale[r] : 1.0f, bi = kBias ? b.bias[r] : 0.0f;
    const int32_t nbits = b.nbits;
    if (b.cls == nullptr) {
      for (int64_t j = 0; j < b.n; ++j) {
        float v = static_cast<float>(nbits - 2 * c[j]);
        if (kScale) v = v * sc;
        if (kBias) v = v + bi;
        out[j] = v;
      }
    } else {
      const int32_t* corr = b.corr + r * b.ldcorr;
      for (int64_t j = 0; j < b.n; ++j) {
        float v = static_cast<float>(nbits - 2 * c[j] + corr[b.cls[j]]);
        if (kScale) v = v * sc;
        if (kBias) v = v + bi;
        out[j] = v;
      }
    }
  }
}

void block_portable(const OutputBlock& b) {
  with_scale_bias(b.scale, b.bias, [&](auto sc, auto bi) {
    block_rows<decltype(sc)::value, decltype(bi)::value>(b);
  });
}

template <bool kScale, bool kBias>
void units_loop(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                const float* bias, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(nbits - 2 * counts[i]);
    if (kScale) v = v * scale[i];
    if (kBias) v = v + bias[i];
    out[i] = v;
  }
}

void units_portable(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                    const float* bias, float* out) {
  with_scale_bias(scale, bias, [&](auto sc, auto bi) {
    units_loop<decltype(sc)::value, decltype(bi)::value>(counts, n, nbits, scale, bias, out);
  });
}


void popcount_runs_portable(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  for (int64_t r = 0; r < runs; ++r) {
    int64_t c = 0;
    for (int64_t w = 0; w < len; ++w) c += popcount64(x[r * len + w]);
    out[r] = static_cast<int32_t>(c);
  }
}

// Bit output: strips of kStrip columns; per row one pass over the strip ORs the row's bit into
// two 32-bit accumulators per column (rows 0-31 and 32-63), a loop of compares, ands and ors on
// 32-bit lanes that the compiler vectorises; the two halves make the column's word at the end.
constexpr int64_t kStrip = 64;

// Without a border correction, dot >= t  <=>  nbits - 2 count >= t  <=>  count <= (nbits - t) / 2
// rounded down; computed in 64 bits (t may be INT32_MAX) and clamped to int32.
int32_t count_limit(int32_t nbits, int32_t t) {
  int64_t d = int64_t{nbits} - t;
  d = d >= 0 ? d / 2 : -((1 - d) / 2);
  return d < INT32_MIN ? INT32_MIN : static_cast<int32_t>(d);
}

}  // namespace

void output_bits_portable(const BitsBlock& b) {
  const int32_t* const counts = b.counts;
  const int32_t* const cls = b.cls;
  const int64_t rows = b.rows, n = b.n, ldc = b.ldc;
  const int32_t nbits = b.nbits;
  uint32_t lo[kStrip], hi[kStrip];
  for (int64_t j0 = 0; j0 < n; j0 += kStrip) {
    const int64_t nc = n - j0 < kStrip ? n - j0 : kStrip;
    for (int64_t j = 0; j < nc; ++j) lo[j] = hi[j] = 0;
    for (int64_t r = 0; r < rows; ++r) {
      uint32_t* acc = r < 32 ? lo : hi;
      const uint32_t bit = uint32_t{1} << (r & 31), flip = b.flip[r] ? bit : 0;
      const int32_t* c = counts + r * ldc + j0;
      if (cls == nullptr) {
        const int32_t limit = count_limit(nbits, b.threshold[r]);
        for (int64_t j = 0; j < nc; ++j) acc[j] |= ((c[j] <= limit ? bit : 0) ^ flip);
      } else {
        const int32_t* corr = b.corr + r * b.ldcorr;
        const int32_t t = b.threshold[r];
        for (int64_t j = 0; j < nc; ++j)
          acc[j] |= ((nbits - 2 * c[j] + corr[cls[j0 + j]] >= t ? bit : 0) ^ flip);
      }
    }
    for (int64_t j = 0; j < nc; ++j) b.out[j0 + j] = lo[j] | (word_t{hi[j]} << 32);
  }
  output_bits_table_rows(b);
}

const OutputKernels kOutputPortable = {"scalar", block_portable, units_portable,
                                       popcount_runs_portable, output_bits_portable};

}  // namespace bmx
