// Bit output: thresholds from the float formula, and the block kernel. See sign_thresholds.h.
#include "bitout/sign_thresholds.h"

#include <cmath>
#include <cstdint>

namespace bmx {

bool bit_output_sign(int64_t dot, int64_t channel, const float* scale, const float* bias,
                     const BatchNormParams* bn) {
  // The library is compiled with -ffp-contract=off: each line is the separately rounded float
  // operation MXNet performs (float(dot) is exact since |dot| < 2^24).
  float v = static_cast<float>(dot);
  if (scale != nullptr) v = v * scale[channel];
  if (bias != nullptr) v = v + bias[channel];
  if (bn != nullptr) {
    const float gamma = bn->fix_gamma ? 1.0f : bn->gamma[channel];
    const float factor = gamma / std::sqrt(bn->moving_var[channel] + bn->eps);
    v = (v - bn->moving_mean[channel]) * factor + bn->beta[channel];
  }
  return v >= 0.0f;  // NaN -> false (-1), as pack_bits
}

std::string make_sign_thresholds(int64_t channels, int64_t nbits, const float* scale,
                                 const float* bias, const BatchNormParams* bn,
                                 SignFormula formula, const void* user, SignThresholds* out) {
  if (nbits >= (int64_t{1} << 24))
    return "bit output needs fewer than 2^24 bits per dot product (float(dot) must be exact); "
           "this layer has " + std::to_string(nbits) + "; use float output";
  if (formula == nullptr && bn != nullptr &&
      (bn->beta == nullptr || bn->moving_mean == nullptr || bn->moving_var == nullptr ||
       (!bn->fix_gamma && bn->gamma == nullptr)))
    return "batch_norm needs beta, moving_mean, moving_var (and gamma unless fix_gamma); pass "
           "them or leave batch_norm null";
  SignThresholds& t = *out;
  t.nbits = nbits;
  t.threshold.assign(channels, 0);
  t.flip.assign(channels, 0);
  t.table_offset.assign(channels, -1);
  t.table.clear();
  t.table_channels = 0;
  const int64_t span = 2 * nbits + 1, span_words = words_for(span);
  std::vector<word_t> bits(span_words);
  for (int64_t o = 0; o < channels; ++o) {
    // Walk the dots upwards; count the changes of the bit and remember the last one.
    int changes = 0;
    int64_t last_change = -nbits;
    bool first = false, prev = false;
    for (int64_t i = 0; i < span_words; ++i) bits[i] = 0;
    for (int64_t d = -nbits; d <= nbits; ++d) {
      const bool b = formula != nullptr ? formula(user, o, d)
                                        : bit_output_sign(d, o, scale, bias, bn);
      const int64_t i = d + nbits;
      if (b) bits[i / kWordBits] |= word_t{1} << (i % kWordBits);
      if (d == -nbits) {
        first = prev = b;
      } else if (b != prev) {
        ++changes;
        last_change = d;
        prev = b;
      }
    }
    if (changes == 0) {
      t.threshold[o] = static_cast<int32_t>(-nbits);  // dot >= -nbits always holds
      t.flip[o] = first ? 0 : 1;
    } else if (changes == 1) {
      // first == false: bit = dot >= last_change; first == true: bit = !(dot >= last_change).
      t.threshold[o] = static_cast<int32_t>(last_change);
      t.flip[o] = first ? 1 : 0;
    } else {
      t.threshold[o] = INT32_MAX;
      t.table_offset[o] = static_cast<int64_t>(t.table.size());
      t.table.insert(t.table.end(), bits.begin(), bits.end());
      ++t.table_channels;
    }
  }
  return std::string();
}

}  // namespace bmx
