// Portable output kernels: plain C++ loops with the per-block choices (scale? bias? correction?)
// hoisted out, so that the compiler vectorises them at the baseline ISA.
#include "bconv2d/epilogue_flags.h"
#include "bconv2d/output_kernels.h"

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

// Where the target has a popcount instruction use it; otherwise (baseline x86-64) the SWAR
// sequence, which beats libgcc's table-driven __popcountdi2.
inline int64_t popcount64(word_t x) {
#if defined(__POPCNT__) || defined(__aarch64__) || defined(__ARM_NEON)
  return __builtin_popcountll(x);
#else
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int64_t>((x * 0x0101010101010101ull) >> 56);
#endif
}

void popcount_runs_portable(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  for (int64_t r = 0; r < runs; ++r) {
    int64_t c = 0;
    for (int64_t w = 0; w < len; ++w) c += popcount64(x[r * len + w]);
    out[r] = static_cast<int32_t>(c);
  }
}

}  // namespace

const OutputKernels kOutputPortable = {"scalar", block_portable, units_portable,
                                       popcount_runs_portable};

}  // namespace bmx
