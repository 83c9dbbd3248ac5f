// Portable sign packing (plain C++; the compiler vectorises the inner loops at the baseline ISA).
#include "bitpack/bitpack.h"

namespace bmx {
namespace {

constexpr int64_t kChunk = 64;  // pixels packed together in a local buffer

void pack_channels_portable(const float* x, int64_t channels, int64_t plane_stride, int64_t pixels,
                            word_t* out, int64_t out_stride) {
  const int64_t words = (channels + kWordBits - 1) / kWordBits;
  word_t acc[kChunk];
  for (int64_t p0 = 0; p0 < pixels; p0 += kChunk) {
    const int64_t np = pixels - p0 < kChunk ? pixels - p0 : kChunk;
    for (int64_t w = 0; w < words; ++w) {
      for (int64_t i = 0; i < kChunk; ++i) acc[i] = 0;
      const int64_t c0 = w * kWordBits;
      const int64_t nc = channels - c0 < kWordBits ? channels - c0 : kWordBits;
      for (int64_t c = 0; c < nc; ++c) {
        const float* row = x + (c0 + c) * plane_stride + p0;
        for (int64_t i = 0; i < np; ++i) acc[i] |= word_t(row[i] >= 0.0f) << c;
      }
      for (int64_t i = 0; i < np; ++i) out[(p0 + i) * out_stride + w] = acc[i];
    }
  }
}

void pack_row_portable(const float* x, int64_t n, word_t* out) {
  const int64_t full = n / kWordBits;
  for (int64_t w = 0; w < full; ++w) {
    word_t acc = 0;
    for (int j = 0; j < kWordBits; ++j) acc |= word_t(x[w * kWordBits + j] >= 0.0f) << j;
    out[w] = acc;
  }
  if (n % kWordBits) {
    word_t acc = 0;
    for (int64_t j = 0; j < n % kWordBits; ++j) acc |= word_t(x[full * kWordBits + j] >= 0.0f) << j;
    out[full] = acc;
  }
}

}  // namespace

// A row's sum is one dependent chain in a fixed order: nothing for plain C++ to vectorise.
const BitpackKernels kBitpackPortable = {"scalar", pack_channels_portable, pack_row_portable,
                                         rows_mean_abs_reference, nullptr};

}  // namespace bmx
