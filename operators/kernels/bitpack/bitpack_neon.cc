// NEON (aarch64 Advanced SIMD) sign packing; only reached through kBitpackNeon (see dispatch.h
// for the rules of ISA files).
//
// Channel-minor packing handles 4 pixels at a time: a 4-float compare per channel plane gives
// all-ones/all-zero 32-bit lanes, sign-extended to two vectors of two 64-bit lanes, ANDed with
// the channel's bit and ORed into the pixels' words.
#include <arm_neon.h>

#include "bitpack/bitpack.h"

namespace bmx {
namespace {

void pack_channels_neon(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                        word_t* out, int64_t out_stride) {
  const int64_t words = (channels + kWordBits - 1) / kWordBits;
  const float32x4_t zero = vdupq_n_f32(0.0f);
  int64_t p0 = 0;
  for (; p0 + 4 <= pixels; p0 += 4) {
    for (int64_t w = 0; w < words; ++w) {
      const int64_t c0 = w * kWordBits;
      const int nc = static_cast<int>(channels - c0 < kWordBits ? channels - c0 : kWordBits);
      uint64x2_t acc0 = vdupq_n_u64(0), acc1 = vdupq_n_u64(0);
      uint64x2_t bit = vdupq_n_u64(1);
      const float* src = x + c0 * plane_stride + p0;
      for (int c = 0; c < nc; ++c, src += plane_stride) {
        const int32x4_t ge = vreinterpretq_s32_u32(vcgeq_f32(vld1q_f32(src), zero));
        const uint64x2_t lo = vreinterpretq_u64_s64(vmovl_s32(vget_low_s32(ge)));
        const uint64x2_t hi = vreinterpretq_u64_s64(vmovl_high_s32(ge));
        acc0 = vorrq_u64(acc0, vandq_u64(lo, bit));
        acc1 = vorrq_u64(acc1, vandq_u64(hi, bit));
        bit = vshlq_n_u64(bit, 1);
      }
      out[(p0 + 0) * out_stride + w] = vgetq_lane_u64(acc0, 0);
      out[(p0 + 1) * out_stride + w] = vgetq_lane_u64(acc0, 1);
      out[(p0 + 2) * out_stride + w] = vgetq_lane_u64(acc1, 0);
      out[(p0 + 3) * out_stride + w] = vgetq_lane_u64(acc1, 1);
    }
  }
  for (; p0 < pixels; ++p0) {
    for (int64_t w = 0; w < words; ++w) {
      const int64_t c0 = w * kWordBits;
      const int nc = static_cast<int>(channels - c0 < kWordBits ? channels - c0 : kWordBits);
      word_t acc = 0;
      for (int c = 0; c < nc; ++c) acc |= word_t(x[(c0 + c) * plane_stride + p0] >= 0.0f) << c;
      out[p0 * out_stride + w] = acc;
    }
  }
}

// 64 consecutive floats -> one word: each 4-float compare, ANDed with {1,2,4,8} and summed
// across lanes, gives 4 bits.
void pack_row_neon(const float* x, int64_t n, word_t* out) {
  const float32x4_t zero = vdupq_n_f32(0.0f);
  const uint32_t weights_arr[4] = {1, 2, 4, 8};
  const uint32x4_t weights = vld1q_u32(weights_arr);
  int64_t w = 0;
  for (; (w + 1) * kWordBits <= n; ++w) {
    const float* s = x + w * kWordBits;
    uint64_t acc = 0;
    for (int q = 0; q < 16; ++q) {
      const uint32x4_t ge = vcgeq_f32(vld1q_f32(s + 4 * q), zero);
      acc |= uint64_t(vaddvq_u32(vandq_u32(ge, weights))) << (4 * q);
    }
    out[w] = acc;
  }
  const int64_t rest = n - w * kWordBits;
  if (rest > 0) {
    uint64_t acc = 0;
    for (int64_t j = 0; j < rest; ++j) acc |= uint64_t(x[w * kWordBits + j] >= 0.0f) << j;
    out[w] = acc;
  }
}

}  // namespace

const BitpackKernels kBitpackNeon = {"neon", pack_channels_neon, pack_row_neon,
                                     rows_mean_abs_reference, nullptr};

}  // namespace bmx
