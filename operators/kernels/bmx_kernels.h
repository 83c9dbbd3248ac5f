// bmxnet kernel core: the one public header of the framework-free kernels.
//
// Everything in operators/kernels/ is plain C++17 with no MXNet header. The MXNet operators
// (operators/mxnet/) and the benchmarks call the functions declared here, so there is exactly one
// implementation of every kernel, and a runtime without MXNet can link the same code.
//
// Bit convention (the same everywhere: activations, weights, files written by the converter)
// ------------------------------------------------------------------------------------------
//   * A word is a uint64_t (kWordBits = 64).
//   * Bit j (least significant first) of word w holds element 64*w + j of a packed run.
//   * Bit 1 means +1 (the float was >= 0, so sign(0) = +1); bit 0 means -1.
//   * A run of n elements takes words_for(n) words; the unused high bits of the last word are 0.
//
// The xnor-popcount identity every binary kernel relies on: for two runs of K elements with
// values in {-1,+1},   dot = #agree - #disagree = K - 2 * popcount(a XOR b)   (unused bits are 0 in
// both operands, so their XOR is 0 and they count for nothing).
#ifndef BMXNET_KERNELS_BMX_KERNELS_H_
#define BMXNET_KERNELS_BMX_KERNELS_H_

#include <cstdint>
#include <string>

namespace bmx {

using word_t = uint64_t;
constexpr int kWordBits = 64;
inline constexpr int64_t words_for(int64_t n) { return (n + kWordBits - 1) / kWordBits; }

// ---------------------------------------------------------------------------------------------
// Binary 2-D convolution, NCHW float in, NCHW float out.
// ---------------------------------------------------------------------------------------------
struct BConv2DShape {
  int64_t batch = 1, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilate_h = 1, dilate_w = 1;
  int64_t groups = 1;
  // Value of the border taps: 0 (exact zero padding, as float Convolution), +1 or -1.
  int pad_value = 0;
  int64_t out_h() const { return (in_h + 2 * pad_h - dilate_h * (kernel_h - 1) - 1) / stride_h + 1; }
  int64_t out_w() const { return (in_w + 2 * pad_w - dilate_w * (kernel_w - 1) - 1) / stride_w + 1; }
  int64_t group_in() const { return in_channels / groups; }    // input channels of one group
  int64_t group_out() const { return out_channels / groups; }  // output channels of one group
};

// Checks a shape: returns "" when bconv2d can run it, else one message naming the bad field and
// the fix. bconv2d and bconv2d_reference throw std::invalid_argument with that message.
std::string bconv2d_check(const BConv2DShape& s);

// Packed convolution weights: layout [out_channels][kernel_h][kernel_w][words_for(group_in())],
// i.e. for every output channel and every tap, the signs of the group's input channels.
int64_t bconv2d_packed_weight_words(const BConv2DShape& s);
// w: float weights in MXNet's (out_channels, group_in, kernel_h, kernel_w) order.
void pack_conv_weights(const BConv2DShape& s, const float* w, word_t* packed);

// output[n][o][y][x] = float(dot) * (scale ? scale[o] : 1) + (bias ? bias[o] : 0), where dot is
// the {-1,+1} dot product of sign(input) with the weights over the receptive field (border taps
// take pad_value; with pad_value 0 they contribute nothing). Multiplication then addition, in
// float, in that order, so results are bit-identical to the float emulation.
// num_threads <= 0 means omp_get_max_threads().
void bconv2d(const BConv2DShape& s, const float* input, const word_t* packed_w, const float* scale,
             const float* bias, float* output, int num_threads);
// Plain reference: the same result from float weights, no packing, no SIMD.
void bconv2d_reference(const BConv2DShape& s, const float* input, const float* w,
                       const float* scale, const float* bias, float* output);

// ---------------------------------------------------------------------------------------------
// Binary fully-connected layer: y[b][o] = float(dot(sign x[b], sign w[o])) * scale[o] + bias[o].
// ---------------------------------------------------------------------------------------------
// "" when the sizes are valid (batch >= 0, in_units >= 1, num_hidden >= 1), else the message
// bdense / bdense_reference throw as std::invalid_argument.
std::string bdense_check(int64_t batch, int64_t in_units, int64_t num_hidden);
// Packed dense weights: layout [num_hidden][words_for(in_units)]; w is (num_hidden, in_units).
void pack_dense_weights(int64_t num_hidden, int64_t in_units, const float* w, word_t* packed);
void bdense(int64_t batch, int64_t in_units, int64_t num_hidden, const float* x,
            const word_t* packed_w, const float* scale, const float* bias, float* y, int num_threads);
void bdense_reference(int64_t batch, int64_t in_units, int64_t num_hidden, const float* x,
                      const float* w, const float* scale, const float* bias, float* y);

// ---------------------------------------------------------------------------------------------
// Bit packing
// ---------------------------------------------------------------------------------------------
// Packs the signs of x[0..n) into words_for(n) words (bit convention above; NaN packs as -1,
// since NaN >= 0 is false), with the vectorised packer of the active path.
void pack_signs(const float* x, int64_t n, word_t* packed);

// ---------------------------------------------------------------------------------------------
// Kernel paths (chosen at run time, see dispatch.h for the details).
// ---------------------------------------------------------------------------------------------
// Name of the path bconv2d/bdense use now: "reference", "scalar", "avx2", "avx512", "neon".
const char* active_kernel_path();

}  // namespace bmx

#endif  // BMXNET_KERNELS_BMX_KERNELS_H_
