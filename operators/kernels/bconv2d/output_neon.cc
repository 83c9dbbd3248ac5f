// NEON (aarch64) output kernels; only reached through kOutputNeon (see dispatch.h for the rules
// of ISA files). vmulq_f32 / vaddq_f32 stay two instructions (-ffp-contract=off).
//
// Units (bdense): the same per element, with a scale and a bias loaded per element.
// Output block: 4 outputs of a row per step; the border correction is looked up lane by lane
// (NEON has no gather). Popcount runs: vcnt per byte, pairwise-accumulated into 16-bit lanes
// (flushed before they could overflow), one horizontal sum per run.
#include <arm_neon.h>

#include "bconv2d/epilogue_flags.h"
#include "bconv2d/output_kernels.h"

namespace bmx {
namespace {

template <bool kScale, bool kBias, bool kCorr>
void block_rows(const OutputBlock& b) {
  const int32x4_t nbits = vdupq_n_s32(b.nbits);
  for (int64_t r = 0; r < b.rows; ++r) {
    const int32_t* c = b.counts + r * b.ldc;
    float* out = b.out + r * b.ldo;
    const float scs = kScale ? b.scale[r] : 1.0f, bis = kBias ? b.bias[r] : 0.0f;
    const float32x4_t sc = vdupq_n_f32(scs), bi = vdupq_n_f32(bis);
    const int32_t* corr = kCorr ? b.corr + r * b.ldcorr : nullptr;
    int64_t j = 0;
    for (; j + 4 <= b.n; j += 4) {
      int32x4_t d = vsubq_s32(nbits, vshlq_n_s32(vld1q_s32(c + j), 1));
      if (kCorr) {
        int32_t add[4];
        for (int i = 0; i < 4; ++i) add[i] = corr[b.cls[j + i]];
        d = vaddq_s32(d, vld1q_s32(add));
      }
      float32x4_t v = vcvtq_f32_s32(d);
      if (kScale) v = vmulq_f32(v, sc);
      if (kBias) v = vaddq_f32(v, bi);
      vst1q_f32(out + j, v);
    }
    for (; j < b.n; ++j) {
      int32_t d = b.nbits - 2 * c[j];
      if (kCorr) d += corr[b.cls[j]];
      float v = static_cast<float>(d);
      if (kScale) v = v * scs;
      if (kBias) v = v + bis;
      out[j] = v;
    }
  }
}

template <bool kCorr>
void block_corr(const OutputBlock& b) {
  with_scale_bias(b.scale, b.bias, [&](auto sc, auto bi) {
    block_rows<decltype(sc)::value, decltype(bi)::value, kCorr>(b);
  });
}

void block_neon(const OutputBlock& b) {
  if (b.cls == nullptr)
    block_corr<false>(b);
  else
    block_corr<true>(b);
}

template <bool kScale, bool kBias>
void units_loop(const int32_t* counts, int64_t n, int32_t nbits_s, const float* scale,
                const float* bias, float* out) {
  const int32x4_t nbits = vdupq_n_s32(nbits_s);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vcvtq_f32_s32(vsubq_s32(nbits, vshlq_n_s32(vld1q_s32(counts + i), 1)));
    if (kScale) v = vmulq_f32(v, vld1q_f32(scale + i));
    if (kBias) v = vaddq_f32(v, vld1q_f32(bias + i));
    vst1q_f32(out + i, v);
  }
  for (; i < n; ++i) {
    float v = static_cast<float>(nbits_s - 2 * counts[i]);
    if (kScale) v = v * scale[i];
    if (kBias) v = v + bias[i];
    out[i] = v;
  }
}

void units_neon(const int32_t* counts, int64_t n, int32_t nbits, const float* scale,
                const float* bias, float* out) {
  with_scale_bias(scale, bias, [&](auto sc, auto bi) {
    units_loop<decltype(sc)::value, decltype(bi)::value>(counts, n, nbits, scale, bias, out);
  });
}

constexpr int64_t kU16Block = 4095;  // 2-word steps a 16-bit lane can take (4095 * 16 < 2^16)

void popcount_runs_neon(const word_t* x, int64_t runs, int64_t len, int32_t* out) {
  for (int64_t r = 0; r < runs; ++r) {
    const word_t* p = x + r * len;
    uint64_t total = 0;
    int64_t w = 0;
    while (w + 2 <= len) {
      uint16x8_t acc = vdupq_n_u16(0);
      for (int64_t s = 0; s < kU16Block && w + 2 <= len; ++s, w += 2)
        acc = vpadalq_u8(acc, vcntq_u8(vreinterpretq_u8_u64(vld1q_u64(p + w))));
      total += vaddlvq_u16(acc);
    }
    if (w < len) total += vaddlv_u8(vcnt_u8(vreinterpret_u8_u64(vld1_u64(p + w))));
    out[r] = static_cast<int32_t>(total);
  }
}

}  // namespace

// Bit output: the portable kernel (compiled at the aarch64 baseline, which includes Advanced
// SIMD, so its 32-bit lane loops vectorise to NEON).
const OutputKernels kOutputNeon = {"neon", block_neon, units_neon, popcount_runs_neon,
                                   output_bits_portable};

}  // namespace bmx
