// Reference (bit-by-bit) sign packing, and the choice of packers per path.
#include "bitpack/bitpack.h"
#include "dispatch.h"
#include "quantize.h"

namespace bmx {

void pack_channels_reference(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                             word_t* out, int64_t out_stride) {
  const int64_t words = words_for(channels);
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t w = 0; w < words; ++w) out[p * out_stride + w] = 0;
    for (int64_t c = 0; c < channels; ++c) {
      if (x[c * plane_stride + p] >= 0.0f)
        out[p * out_stride + c / kWordBits] |= word_t{1} << (c % kWordBits);
    }
  }
}

void pack_row_reference(const float* x, int64_t n, word_t* out) {
  for (int64_t w = 0; w < words_for(n); ++w) out[w] = 0;
  for (int64_t i = 0; i < n; ++i)
    if (x[i] >= 0.0f) out[i / kWordBits] |= word_t{1} << (i % kWordBits);
}

void rows_mean_abs_reference(const float* x, int64_t rows, int64_t per_row, float* scale) {
  channel_mean_abs(x, rows, per_row, scale);
}

const BitpackKernels kBitpackReference = {"reference", pack_channels_reference, pack_row_reference,
                                          rows_mean_abs_reference, nullptr};

const BitpackKernels& bitpack_for_path(Path path) {
  switch (path) {
    case Path::kReference: return kBitpackReference;
#if defined(BMX_BUILT_AVX2) && BMX_BUILT_AVX2
    case Path::kAvx2: return kBitpackAvx2;
#endif
#if defined(BMX_BUILT_AVX512) && BMX_BUILT_AVX512
    case Path::kAvx512: return kBitpackAvx512;
#endif
#if defined(BMX_BUILT_NEON) && BMX_BUILT_NEON
    case Path::kNeon: return kBitpackNeon;
#endif
    default: break;
  }
  return kBitpackPortable;
}

}  // namespace bmx
