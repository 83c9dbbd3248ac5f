// k-bit quantizers of the MXNet operators, kept framework-free (header only, no MXNet).
//
//   act_bit = 1        q(x) = +1 if x >= 0 else -1                       (sign, sign(0) = +1)
//   act_bit = k, 2..31 q(x) = rint((2^k - 1) * clip(x, 0, 1)) / (2^k - 1)  (DoReFa activations)
//   act_bit = 32       q(x) = x
//   weight_bit = 1     q(w) = sign(w)
//   weight_bit = k     q(w) = 2 * q_k(tanh(w) / (2 * max|tanh(w)|) + 1/2) - 1   (DoReFa weights,
//                      q_k(v) = rint((2^k - 1) v) / (2^k - 1), max over the whole tensor)
//   weight_bit = 32    q(w) = w
// rint rounds half to even (the default floating-point mode), like numpy.rint and ONNX Round.
// All arithmetic is float32, in the order written, so a numpy float32 reference matches exactly
// (tanh aside: libm and numpy may differ by one ulp there).
#ifndef BMXNET_KERNELS_QUANTIZE_H_
#define BMXNET_KERNELS_QUANTIZE_H_

#include <cmath>
#include <cstdint>

namespace bmx {

inline float sign_pm1(float x) { return x >= 0.f ? 1.f : -1.f; }

inline float quantize_levels(int bits) { return static_cast<float>((1ull << bits) - 1); }

// Below this many elements the loops stay on one thread (a parallel region costs microseconds).
constexpr int64_t kQuantizeParallelMin = int64_t{1} << 16;

// Quantizes n activations in place or out of place (x may equal q).
inline void quantize_activations(int bits, const float* x, float* q, int64_t n) {
  if (bits == 1) {
#pragma omp parallel for if (n > kQuantizeParallelMin)
    for (int64_t i = 0; i < n; ++i) q[i] = sign_pm1(x[i]);
  } else if (bits >= 32) {
    if (q != x) {
#pragma omp parallel for if (n > kQuantizeParallelMin)
      for (int64_t i = 0; i < n; ++i) q[i] = x[i];
    }
  } else {
    const float levels = quantize_levels(bits);
#pragma omp parallel for if (n > kQuantizeParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float c = std::fmin(std::fmax(x[i], 0.f), 1.f);
      q[i] = std::nearbyint(levels * c) / levels;
    }
  }
}

// Quantizes a whole weight tensor of n values (k-bit uses the tensor's max |tanh|).
inline void quantize_weights(int bits, const float* w, float* q, int64_t n) {
  if (bits == 1) {
#pragma omp parallel for if (n > kQuantizeParallelMin)
    for (int64_t i = 0; i < n; ++i) q[i] = sign_pm1(w[i]);
  } else if (bits >= 32) {
    if (q != w) {
#pragma omp parallel for if (n > kQuantizeParallelMin)
      for (int64_t i = 0; i < n; ++i) q[i] = w[i];
    }
  } else {
    float max_abs = 0.f;  // max is exact in any order, so the reduction is deterministic
#pragma omp parallel for reduction(max : max_abs) if (n > kQuantizeParallelMin)
    for (int64_t i = 0; i < n; ++i) max_abs = std::fmax(max_abs, std::fabs(std::tanh(w[i])));
    const float levels = quantize_levels(bits);
    const float denom = 2.f * (max_abs > 0.f ? max_abs : 1.f);
#pragma omp parallel for if (n > kQuantizeParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const float v = std::tanh(w[i]) / denom + 0.5f;
      q[i] = 2.f * (std::nearbyint(levels * v) / levels) - 1.f;
    }
  }
}

// XNOR-Net scale of each output channel: mean |w| over the channel's `per_channel` weights.
// Summed sequentially in double, divided in double, rounded once to float, so any reference that
// sums in the same order in float64 (numpy.cumsum) reproduces it bit for bit.
inline void channel_mean_abs(const float* w, int64_t channels, int64_t per_channel, float* scale) {
  for (int64_t o = 0; o < channels; ++o) {
    double s = 0.0;
    const float* row = w + o * per_channel;
    for (int64_t i = 0; i < per_channel; ++i) s += std::fabs(static_cast<double>(row[i]));
    scale[o] = static_cast<float>(s / static_cast<double>(per_channel));
  }
}

}  // namespace bmx

#endif  // BMXNET_KERNELS_QUANTIZE_H_
