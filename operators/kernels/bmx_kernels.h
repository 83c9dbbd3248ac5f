// bmxnet kernel core: the one public header of the framework-free kernels.
//
// Everything in operators/kernels/ is plain C++17 with no MXNet header. The MXNet operators
// (operators/mxnet/), the standalone runtime (mobile/runtime/) and the benchmarks call the
// functions declared here, so there is exactly one implementation of every kernel.
//
// In this header, in order: the bit convention; kernel paths; the thread hook; packed activation
// tensors (BitTensorLayout); bit output (BatchNorm + sign folded into integer thresholds); binary
// convolution (bconv2d in one call, and bconv2d_prepare / bconv2d_run: plan once, run many on a
// caller-owned workspace); binary dense (the same two forms, and dense layers reading packed
// convolution outputs); sign packing. operators/kernels/README.md has a usage example.
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
#include <memory>
#include <string>

namespace bmx {

using word_t = uint64_t;
constexpr int kWordBits = 64;
inline constexpr int64_t words_for(int64_t n) { return (n + kWordBits - 1) / kWordBits; }

// ---------------------------------------------------------------------------------------------
// Kernel paths (which instruction set the kernels use; dispatch.h explains the design)
// ---------------------------------------------------------------------------------------------
enum class Path : unsigned {
  kNone = 0,  // in options: "the active path"
  kReference = 1u << 0,
  kScalar = 1u << 1,
  kAvx2 = 1u << 2,
  kAvx512 = 1u << 3,
  kNeon = 1u << 4,
};
// "reference", "scalar", "avx2", "avx512", "neon" ("none" for kNone).
const char* path_name(Path p);
// The paths this build and CPU can run, narrowed by BMXNET_KERNEL_PATHS (a mask of Path bits).
unsigned enabled_paths();
// The best enabled path: what bconv2d()/bdense() and plans prepared with Path::kNone use.
Path active_path();
// path_name(active_path()).
const char* active_kernel_path();

// ---------------------------------------------------------------------------------------------
// Threads: a parallel-for hook owned by the caller
// ---------------------------------------------------------------------------------------------
// The run functions split their work into `n` worker tasks (n <= num_threads) and call
// parallel_for(user, n, task, context) once per phase (a convolution has at most two phases per
// block of images: sign packing, then GEMM and output). The hook must call task(context, i)
// exactly once for every i in [0, n), on any threads, in any order, and return only when all have
// returned. Work inside a phase is handed out dynamically (an atomic counter), so a hook that runs
// the tasks one after another is correct too, merely slower. Without a hook (nullptr) the run
// functions use OpenMP when the build has it (BMX_KERNELS_OPENMP) and one thread otherwise; iOS
// and other hosts without OpenMP pass their own pool here.
struct ThreadHook {
  void (*parallel_for)(void* user, int n, void (*task)(void* context, int i), void* context) =
      nullptr;
  void* user = nullptr;
  int num_threads = 1;  // most tasks the hook runs at the same time (>= 1)
};

// ---------------------------------------------------------------------------------------------
// Packed activations: the tensor binary layers pass between them
// ---------------------------------------------------------------------------------------------
// Layout [image][group][word][padded_h][padded_w] of words: the channels are cut into `groups`
// equal groups; the channel bits of one group at one pixel take words_per_group() words (bit
// convention above: channel 64*i + j of the group in bit j of word i, unused high bits 0), and
// each (image, group, word) is one plane of padded_h x padded_w words holding the height x width
// pixels at rows pad_h.., columns pad_w.. inside a frame. Every frame word encodes pad_value for
// the group's real channels: ones over the real bits for +1, zero for -1, and zero for 0 (a
// convolution with zero padding corrects for it exactly, see bconv2d/output_transform.h).
// This is the layout bconv2d packs its float input into, so a convolution that takes bits reads
// its input in place: a producer writes the frame its consumer needs (bconv2d_run writes its
// output's frame, pack_bits writes the frame too). plain_bit_layout() is the frameless layout
// with one group, [image][word][height][width], which is what a dense layer's input flattens.
struct BitTensorLayout {
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  int64_t groups = 1;
  int64_t pad_h = 0, pad_w = 0;        // frame rows above / columns left of the pixels
  int64_t padded_h = 0, padded_w = 0;  // plane size (>= pad + size; the rest is frame too)
  int pad_value = 0;                   // -1, 0 or +1: what the frame encodes

  int64_t group_channels() const { return groups > 0 ? channels / groups : 0; }
  int64_t words_per_group() const { return words_for(group_channels()); }
  int64_t plane_words() const { return padded_h * padded_w; }
  int64_t image_words() const { return groups * words_per_group() * plane_words(); }
  int64_t total_words() const { return batch * image_words(); }
  // Index of the word holding channel c of pixel (y, x) of image b (bit c % 64 of the group).
  int64_t word_index(int64_t b, int64_t c, int64_t y, int64_t x) const {
    const int64_t cg = group_channels();
    return ((b * groups + c / cg) * words_per_group() + (c % cg) / kWordBits) * plane_words() +
           (y + pad_h) * padded_w + x + pad_w;
  }
};
BitTensorLayout plain_bit_layout(int64_t batch, int64_t channels, int64_t height, int64_t width);
// "" when the layout is consistent (sizes >= 1 except batch >= 0, groups divide channels, the
// planes hold the pixels, pad_value in {-1, 0, 1}, total size < 2^40 words), else the problem.
std::string bit_layout_check(const BitTensorLayout& layout);
// Packs the signs of an NCHW float tensor (bit 1 for x >= 0) into `layout`, frame included.
// Throws std::invalid_argument when bit_layout_check fails.
void pack_bits(const BitTensorLayout& layout, const float* nchw, word_t* out,
               const ThreadHook* hook = nullptr);
// The inverse on the pixels: +1.0f or -1.0f per element, NCHW (the frame is not read).
void unpack_bits(const BitTensorLayout& layout, const word_t* in, float* nchw);

// ---------------------------------------------------------------------------------------------
// Bit output: a binary layer followed by BatchNorm and sign, fused into integer thresholds
// ---------------------------------------------------------------------------------------------
// A layer in bit-output mode writes, for output channel o and dot product dot (the {-1,+1} dot
// product, border correction included), the bit of
//     v = float(dot);  if (scale) v = v * scale[o];  if (bias) v = v + bias[o];
//     if (batch_norm) v = (v - moving_mean[o]) * (g / sqrtf(moving_var[o] + eps)) + beta[o]
//                     (g = fix_gamma ? 1 : gamma[o]; every operation a separately rounded float)
//     bit = v >= 0     (so sign(0) = +1, and NaN gives -1, as pack_bits)
// which is bit for bit what MXNet 1.9.1's CPU BatchNorm (inference, use_global_stats, oneDNN)
// computes on the float layer output, followed by the sign the next binary layer takes. (Checked
// against mx.nd.BatchNorm on 10^4 values: this order matched every bit; ((x - mean) * invstd) *
// gamma + beta, x * s + (beta - mean * s) and (x - mean) / sqrt(var + eps) * gamma + beta did
// not.) tests/cpp check the kernels against this formula. A host with another formula (PReLU
// before the sign, another framework's BatchNorm) passes its own SignFormula instead: the layer
// then uses exactly the signs that function returns.
//
// How it stays exact: dot ranges over the integers [-n, n] (n = bits in the receptive field), so
// prepare evaluates the formula at every one of them for every channel. When the set of dots
// giving bit 1 is {dot >= t} or {dot < t} (always, for the formula above without NaN, since
// every correctly rounded float operation is monotonic and a negative scale or gamma only
// reverses the direction), the channel keeps the integer threshold t and a flip bit:
//     bit = (dot >= t) XOR flip.
// Otherwise (a pathological formula) the channel keeps a table of 2n + 1 bits and looks the dot
// up. No rounding question is left to the run: it compares integers.
struct BatchNormParams {
  const float* gamma = nullptr;  // may be null when fix_gamma
  const float* beta = nullptr;
  const float* moving_mean = nullptr;
  const float* moving_var = nullptr;
  float eps = 1e-3f;       // MXNet's default
  bool fix_gamma = true;   // MXNet's default: gamma is taken as 1
};
// Returns the sign bit (true: +1) of the fused layer's output for `channel` at dot product `dot`.
using SignFormula = bool (*)(const void* user, int64_t channel, int64_t dot);
// The formula above on one value (what prepare evaluates when no SignFormula is given).
bool bit_output_sign(int64_t dot, int64_t channel, const float* scale, const float* bias,
                     const BatchNormParams* batch_norm);

enum class ActivationFormat : int {
  kFloat = 0,  // NCHW floats (the layer takes their signs itself)
  kBits = 1,   // a packed activation tensor (BitTensorLayout)
};

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

// Prepare once, run many: the engine form of bconv2d.
// ---------------------------------------------------------------------------------------------
// bconv2d_prepare does everything that depends only on the shape, the weights and the options
// (validation, the kernel choice of the path, the padded layout, the border classes and the
// zero-padding correction table, the bit-output thresholds, the work split and the workspace
// size); bconv2d_run then only sequences packing, GEMM panels and the output transform over a
// caller-owned workspace and allocates nothing. bconv2d() above is prepare + run with a
// thread-local workspace; the MXNet operators keep prepared plans in a process-wide cache
// (operators/mxnet/common.cc) and the standalone runtime one per layer (mobile/runtime/).
struct BConv2DOptions {
  ActivationFormat input_format = ActivationFormat::kFloat;  // kBits: input in input_layout()
  ActivationFormat output_format = ActivationFormat::kFloat;
  // kBits output: the layout the bits are written in, usually the next convolution's
  // input_layout() (batch, channels = out_channels, height = out_h, width = out_w; any groups,
  // frame and pad_value); left default (batch 0) it is plain_bit_layout(batch, O, out_h, out_w).
  // Every word of the output must take its channels from one group of this convolution (true
  // whenever groups == 1).
  BitTensorLayout output_layout;
  const BatchNormParams* batch_norm = nullptr;  // kBits output: the BatchNorm after the layer
  SignFormula sign_formula = nullptr;           // kBits output: replaces the formula, if set
  const void* sign_user = nullptr;
  // Workspace for at most this many threads; <= 0: omp_get_max_threads() (1 without OpenMP).
  int max_threads = 0;
  Path path = Path::kNone;  // kNone: active_path()
  // Words of packed input per block of images: the images of a batch are packed and convolved
  // in blocks of as many images as fit (at least one), so the packed copy stays bounded.
  int64_t pack_budget_words = int64_t{1} << 21;  // 16 MiB
  // false: fewer threads than max_threads when the layer is too small to pay for them;
  // true: exactly as many as the run is given (tests of the threaded split).
  bool exact_threads = false;
};

class BConv2DPlan {
 public:
  struct Data;  // bconv2d/plan.h
  bool valid() const { return data_ != nullptr; }
  const BConv2DShape& shape() const;
  const BConv2DOptions& options() const;  // as given (pointers in it are not kept)
  // The layout a kBits input must have: this convolution's groups, its padding as the frame
  // (pad_value included), planes as large as the taps read.
  const BitTensorLayout& input_layout() const;
  const BitTensorLayout& output_layout() const;  // kBits output only
  int64_t workspace_bytes() const;  // for max_threads threads; any alignment is fine
  int max_threads() const;
  Path path() const;
  const char* kernel_name() const;  // the BGEMM kernel chosen, e.g. "4x40_avx512"
  // Channels whose bits need the lookup table (a formula that is not monotonic in dot).
  int64_t table_channels() const;

  std::shared_ptr<const Data> data_;
};

// Builds *plan; returns "" or the problem (the plan is then left invalid). Kept by pointer and
// read at every run, so they must stay alive and unchanged while the plan is used: packed_w
// (pack_conv_weights layout), and for float output scale and bias (either may be null). For bit
// output scale, bias and options.batch_norm are read here only (folded into the thresholds).
std::string bconv2d_prepare(const BConv2DShape& s, const word_t* packed_w, const float* scale,
                            const float* bias, const BConv2DOptions& options, BConv2DPlan* plan);
// Runs the plan: input and output in the formats of the options (float NCHW, or words in
// input_layout() / output_layout(); bit output also writes the output's frame). workspace:
// workspace_bytes() bytes (null when 0), not shared with another run at the same time. hook may
// be null (OpenMP or one thread, see ThreadHook); a hook offering more threads than the plan's
// max_threads uses max_threads. Returns null, or a constant message when the call does not
// match the plan (formats, a missing workspace); nothing throws and nothing is allocated.
const char* bconv2d_run(const BConv2DPlan& plan, const float* input, float* output,
                        void* workspace, const ThreadHook* hook = nullptr);
const char* bconv2d_run(const BConv2DPlan& plan, const word_t* input, float* output,
                        void* workspace, const ThreadHook* hook = nullptr);
const char* bconv2d_run(const BConv2DPlan& plan, const float* input, word_t* output,
                        void* workspace, const ThreadHook* hook = nullptr);
const char* bconv2d_run(const BConv2DPlan& plan, const word_t* input, word_t* output,
                        void* workspace, const ThreadHook* hook = nullptr);

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

// Prepare once, run many (as for bconv2d above). A dense layer can read the packed output of a
// convolution directly: with input_format kBits, input_layout is the producer's layout (any
// groups, frame and pad_value; batch = the dense batch, channels * height * width = in_units)
// and the input of image b is the layout's image_words() words from b * image_words(), flattened
// in MXNet's NCHW order (Flatten then FullyConnected). Prepare permutes the weights into that
// layout (the plan owns the copy): weight bit of unit (c, y, x) goes where the layout keeps
// channel c of pixel (y, x), frame words get the layout's own frame words (so they XOR to 0) and
// unused bits stay 0, hence dot = in_units - 2 * popcount as for a plain input.
// With output_format kBits the output is plain_bit_layout(batch, num_hidden, 1, 1): per input
// row words_for(num_hidden) words, unit o in bit o % 64 of word o / 64 (bit output formula and
// thresholds as for bconv2d).
struct BDenseOptions {
  ActivationFormat input_format = ActivationFormat::kFloat;
  BitTensorLayout input_layout;  // kBits input only
  ActivationFormat output_format = ActivationFormat::kFloat;
  const BatchNormParams* batch_norm = nullptr;  // kBits output: the BatchNorm after the layer
  SignFormula sign_formula = nullptr;           // kBits output: replaces the formula, if set
  const void* sign_user = nullptr;
  int max_threads = 0;       // as BConv2DOptions
  Path path = Path::kNone;   // kNone: active_path()
  bool exact_threads = false;
};

class BDensePlan {
 public:
  struct Data;  // bdense/bdense.cc
  bool valid() const { return data_ != nullptr; }
  int64_t batch() const;
  int64_t in_units() const;
  int64_t num_hidden() const;
  int64_t workspace_bytes() const;  // any alignment is fine
  int max_threads() const;
  Path path() const;
  const char* kernel_name() const;
  int64_t table_channels() const;

  std::shared_ptr<const Data> data_;
};

// Builds *plan; returns "" or the problem (the plan is then invalid). packed_w is
// pack_dense_weights' layout, [num_hidden][words_for(in_units)]: kept by pointer for a float
// input (alive and unchanged while the plan is used), copied into the input layout's order for a
// packed input. scale and bias: kept by pointer for float output, folded for bit output.
std::string bdense_prepare(int64_t batch, int64_t in_units, int64_t num_hidden,
                           const word_t* packed_w, const float* scale, const float* bias,
                           const BDenseOptions& options, BDensePlan* plan);
// x: batch rows of in_units floats, or words in options.input_layout; y: batch rows of
// num_hidden floats, or of words_for(num_hidden) words. Returns null, or a constant message
// when the call does not match the plan; allocates nothing.
const char* bdense_run(const BDensePlan& plan, const float* x, float* y, void* workspace,
                       const ThreadHook* hook = nullptr);
const char* bdense_run(const BDensePlan& plan, const word_t* x, float* y, void* workspace,
                       const ThreadHook* hook = nullptr);
const char* bdense_run(const BDensePlan& plan, const float* x, word_t* y, void* workspace,
                       const ThreadHook* hook = nullptr);
const char* bdense_run(const BDensePlan& plan, const word_t* x, word_t* y, void* workspace,
                       const ThreadHook* hook = nullptr);

// ---------------------------------------------------------------------------------------------
// Bit packing
// ---------------------------------------------------------------------------------------------
// Packs the signs of x[0..n) into words_for(n) words (bit convention above; NaN packs as -1,
// since NaN >= 0 is false), with the vectorised packer of the active path.
void pack_signs(const float* x, int64_t n, word_t* packed);

// Each row's mean |w| (rows rows of per_row floats) into scale[rows], equal bit for bit to
// channel_mean_abs (quantize.h: each row summed in order in double), on the active path's kernel
// (several rows at once, one vector lane per row).
void mean_abs_rows(const float* w, int64_t rows, int64_t per_row, float* scale);

// pack_signs of a weight tensor of `rows` rows of `per_row` floats (words_for(rows * per_row)
// words) and each row's mean |w| into scale[rows], equal bit for bit to channel_mean_abs
// (quantize.h), in one pass over the weights (row blocks that stay in the cache between the two).
void pack_signs_and_mean_abs(const float* w, int64_t rows, int64_t per_row, word_t* packed,
                             float* scale);

}  // namespace bmx

#endif  // BMXNET_KERNELS_BMX_KERNELS_H_
