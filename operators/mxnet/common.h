// Shared glue for the bmxnet MXNet operators: attribute parsing and validation, the quantization
// parameters every Q-op takes, shape helpers. Only this directory includes MXNet's lib_api.h.
#ifndef BMXNET_MXNET_COMMON_H_
#define BMXNET_MXNET_COMMON_H_

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "bmx_kernels.h"
#include "mxnet/lib_api.h"

namespace bmx_mx {

using Attrs = std::unordered_map<std::string, std::string>;
using mxnet::ext::MXReturnValue;
using mxnet::ext::MXTensor;
using mxnet::ext::OpResource;
using mxnet::ext::MX_FAIL;
using mxnet::ext::MX_SUCCESS;

// The largest element count (and so the largest dimension) of one tensor: the mxnet wheel is
// built without USE_INT64_TENSOR_SIZE, and lib_api hands dimensions over as 32-bit unsigned
// integers. Every size attribute and every tensor the operators make stays within it.
constexpr int64_t kMaxElements = 2147483647;  // 2^31 - 1

// A concrete shape (forward and backward get int64 dimensions from MXNet).
using Shape = std::vector<int64_t>;

// Errors inside the glue are thrown as this and turned into MX_ERROR_MSG + MX_FAIL at the
// boundary (guard()), so no C++ exception ever crosses into MXNet.
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs f(); on OpError or any std::exception reports "<op>: <message>" to MXNet and fails.
template <typename F>
MXReturnValue guard(const char* op, F&& f) {
  try {
    f();
    return MX_SUCCESS;
  } catch (const std::exception& e) {
    MX_ERROR_MSG << op << ": " << e.what();
    return MX_FAIL;
  }
}

// Attribute access with MXNet's string forms: "True"/"False", "(3, 3)", "[3, 3]", "3", "1.5".
// Errors name the parameter; guard() prefixes the operator's name.
class AttrReader {
 public:
  explicit AttrReader(const Attrs& attrs) : attrs_(attrs) {}

  bool has(const std::string& key) const {
    auto it = attrs_.find(key);
    return it != attrs_.end() && it->second != "None";
  }
  std::string str(const std::string& key, const std::string& def) const;
  int64_t integer(const std::string& key, int64_t def) const;
  // A size (a dimension, a count, a stride, a padding): an integer in [lo, kMaxElements], or
  // `def` when the attribute is not given.
  int64_t size(const std::string& key, int64_t def, int64_t lo) const;
  int64_t required_size(const std::string& key, int64_t lo) const;
  double real(const std::string& key, double def) const;
  bool boolean(const std::string& key, bool def) const;
  // A tuple of `n` sizes in [lo, kMaxElements]; a single integer is broadcast ("3" -> (3, 3)).
  std::vector<int64_t> tuple(const std::string& key, size_t n, int64_t def, int64_t lo) const;
  std::vector<int64_t> required_tuple(const std::string& key, size_t n, int64_t lo) const;
  // Fails on any attribute that is not in `allowed` and is not hidden (leading "__").
  void reject_unknown(const std::set<std::string>& allowed) const;

 private:
  [[noreturn]] void bad(const std::string& key, const std::string& why) const;
  const Attrs& attrs_;
};

// Pseudo-gradient of the 1-bit activation quantizer (the forward pass is sign in every case).
enum class ActGrad { kSte, kApproxSign, kSwishSign };

// The quantization parameters shared by QConvolution, QFullyConnected and QActivation.
struct QuantParams {
  int act_bit = 1;
  int weight_bit = 1;
  bool scaling = false;  // scaling_mode == 'forward'
  float grad_cancel = 1.f;
  bool binarized_weights_only = false;
  int pad_value = 0;
  ActGrad act_grad = ActGrad::kSte;
  float swish_beta = 5.f;
  static const std::set<std::string>& attr_names();
  static QuantParams parse(const AttrReader& r, bool with_weights);
};

// Input positions of QConvolution / QFullyConnected: data, weight, bias (unless no_bias), and
// weight_scale when packed weights meet scaling_mode='forward' (the scale can no longer be
// computed from the weights).
struct WeightedInputs {
  bool no_bias;
  bool scale_input;
  int count() const { return 2 + (no_bias ? 0 : 1) + (scale_input ? 1 : 0); }
  int bias() const { return no_bias ? -1 : 2; }
  int scale() const { return scale_input ? (no_bias ? 2 : 3) : -1; }
};

// Shapes in shape inference and in forward
// ------------------------------------------
// Shape inference gets dimensions as unsigned: an unknown dimension (-1 inside MXNet) arrives as
// 0xFFFFFFFF, an unknown ndim as an empty shape. Under MXNet's legacy shape semantics a 0 may
// also mean "unknown", so parameter shapes with a 0 are filled in (expect_shape) rather than
// compared. Data shapes are taken as they come (known_shape): a 0 there is kept as a zero size,
// which the layers' checks then accept only where a zero-size tensor is meaningful (the batch).
// Forward and backward see the real arrays: there every shape is compared exactly, zeros
// included (expect_tensor), before any kernel runs.

// An unknown dimension in shape inference (-1 inside MXNet).
constexpr unsigned kUnknownDim = 0xFFFFFFFFu;
// True when a parameter dimension from shape inference is still to be filled in (-1, or 0 in
// MXNet's legacy shape semantics).
inline bool dim_unknown(unsigned d) { return d == 0 || d == kUnknownDim; }

std::string shape_str(const std::vector<unsigned>& s);  // unknown dimensions print as "?"
std::string shape_str(const Shape& s);

// The data shape `s` from shape inference as a Shape; fails, naming `what`, when its ndim or a
// dimension is unknown.
Shape known_shape(const std::vector<unsigned>& s, const char* what);
// A shape for MXNet's shape inference (every dimension must be <= kMaxElements).
std::vector<unsigned> to_infer(const Shape& s);

// Number of elements of a tensor of shape `s`; fails with "<what> ... too large" when it passes
// kMaxElements (never overflows, whatever the dimensions).
int64_t elements(const Shape& s, const std::string& what);

// Type inference of every weighted Q-op: float32 data, weight float32 (or int64 packed words with
// binarized_weights_only), float32 bias/scale and output. Fails on a mismatch with the fix.
void infer_weighted_types(bool packed_weights, std::vector<int>* in, std::vector<int>* out);

// Shape inference helper: sets input `idx` to `want`, or fails if it has another ndim or a
// known dimension that differs.
void expect_shape(std::vector<std::vector<unsigned>>* in, size_t idx, const Shape& want,
                  const char* name, const Shape& data);
// Forward / backward helper: fails unless tensor `t` has exactly the shape `want`.
void expect_tensor(const MXTensor& t, const Shape& want, const char* name, const Shape& data);

// Packed weights hold `runs` runs of `words` words with `bits` inputs each, the unused high bits
// of each run's last word 0 (bmx_kernels.h). Fails when one of those bits is set: the words were
// packed for a layer with more inputs (per group), which the packed shape alone cannot show,
// since ceil(n / 64) words hold 33..64 inputs alike. `inputs` names the count, e.g. "in_units".
void check_packed_tail(const uint64_t* packed, int64_t runs, int64_t words, int64_t bits,
                       const std::string& inputs);

// The XNOR-Net scale of latent weights, mean |W| per output channel (k-bit forward and every
// backward; the 1-bit forward takes its scale from the layer cache below).
class ChannelScale {
 public:
  // mean |W| per output channel (channels rows of w), or null without scaling.
  const float* of(bool scaling, MXTensor& w, int64_t channels);

 private:
  std::vector<float> scale_;
};

// 1-bit layers through the process-wide layer cache
// ---------------------------------------------------
// Without hybridize(static_alloc=True, static_shape=True) MXNet creates the operator state anew
// for every call (LIBAPI_NOTES section 3), so nothing kept in the state survives. The packed
// weights (with the XNOR-Net scale) and the kernel plans of every 1-bit layer are therefore kept
// in one process-wide cache instead: an entry per layer kind, weight geometry and weight
// contents holds the weights in the kernel's layout and one plan per call shape (data shape,
// bias array, thread count, kernel path). The plan holds the validation, layout,
// border-correction table and work split, so a call that hits does none of that again.
//
// Neither the weight array's address nor MXNet's version counter identifies its contents: freed
// memory is reused at once (tests/test_op_cache.py), and a new array at the same address restarts
// at the same version (LIBAPI_NOTES section 3). So every call compares, in full, what the kernel
// reads from its weights with the entry's copy (the address only says which entry to try first):
//   * latent float weights: their sign bits in MXNet's order (one vectorised pass, pack_signs;
//     the packed layout depends on the signs only); under scaling_mode='forward' also each
//     output channel's mean |W|, computed in the same pass (pack_signs_and_mean_abs), since the
//     kernel reads the signs and those scales and nothing else;
//   * packed weights (model_converter's int64 words): the words, and the weight_scale input.
// A cached result is therefore always the one the current weights give, whatever changed them
// (an optimizer step, set_data, another array at a reused address). Entries are never changed
// once made (new weights make a new entry, which replaces the one made at the same address), so
// runs on several threads may share one. Least recently used entries are dropped beyond
// 256 MiB or 1024 entries.
struct LayerWeights {
  const void* array = nullptr;       // the weight array's address (which entry to try first)
  const float* latent = nullptr;     // float weights in MXNet's order, or
  const uint64_t* packed = nullptr;  // the converter's packed words
  int64_t count = 0;                 // floats (latent) or words (packed)
  int64_t channels = 0;              // output channels (rows of the weights)
  bool mean_abs_scale = false;       // latent + scaling_mode='forward': scale = mean |W|
  const float* scale = nullptr;      // packed + scaling_mode='forward': the weight_scale input
};

// The weights of a 1-bit layer as the cache takes them: w is packed (q.binarized_weights_only,
// with its weight_scale input or null) or latent floats (scaled by mean |W| under q.scaling).
LayerWeights one_bit_weights(const QuantParams& q, MXTensor& w, int64_t channels,
                             const float* weight_scale);

// y = bconv2d(x, weights) * scale + bias through the cache (s.batch >= 1; shapes checked by the
// caller). Packed weights are checked (check_packed_tail) when an entry is made from them.
void cached_bconv2d(const bmx::BConv2DShape& s, const LayerWeights& w, const float* x,
                    const float* bias, float* y);
// The same for a dense layer: x is rows x cols, y rows x num_hidden.
void cached_bdense(int64_t rows, int64_t cols, int64_t num_hidden, const LayerWeights& w,
                   const float* x, const float* bias, float* y);

// Counters of the layer cache since the library was loaded (tests, benchmarks).
struct LayerCacheStats {
  int64_t hits = 0;       // calls that reused an entry's weights
  int64_t packs = 0;      // entries made (weights packed / copied, checked)
  int64_t plans = 0;      // plans prepared
  int64_t entries = 0;    // entries held now
  int64_t bytes = 0;      // bytes of weights held now
};
LayerCacheStats layer_cache_stats();

// Float scratch buffers of one operator call, from MXNet's temporary workspace (pooled: reused
// across calls, so large buffers cost no page faults after the first step). MXNet gives an
// operator ONE workspace per call (every alloc_cpu returns the same, resized, space), so all
// buffers of a call are carved out of a single allocation; they live until the call returns.
class Scratch {
 public:
  Scratch(const OpResource& res, const std::vector<int64_t>& sizes);
  float* operator[](size_t i) const { return parts_.at(i); }

 private:
  std::vector<float*> parts_;
};

// The lib_api state object of a weighted Q-op. Impl (built from the op's parsed parameters)
// provides forward(inputs, output, res) and backward(inputs, outputs, res); errors become
// "<kName>: message" MXNet errors. The state lives as long as MXNet keeps it
// (often one call only, hence the layer cache above).
template <typename Impl>
class StatefulOp : public mxnet::ext::CustomStatefulOp {
 public:
  template <typename Params>
  explicit StatefulOp(const Params& p) : impl_(p) {}

  MXReturnValue Forward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                        const OpResource& res) override {
    return guard(Impl::kName, [&] { impl_.forward(*inputs, &outputs->at(0), res); });
  }
  MXReturnValue Backward(std::vector<MXTensor>* inputs, std::vector<MXTensor>* outputs,
                         const OpResource& res) override {
    return guard(Impl::kName, [&] { impl_.backward(*inputs, outputs, res); });
  }

 private:
  Impl impl_;
};

// lib_api's createOpState for StatefulOp<Impl>, parsing the attributes with Params::parse.
template <typename Impl, typename Params>
MXReturnValue create_stateful_op(const Attrs& attrs, const mxnet::ext::MXContext&,
                                 const std::vector<std::vector<unsigned>>&, const std::vector<int>,
                                 mxnet::ext::CustomStatefulOp** state) {
  return guard(Impl::kName, [&] {
    *state = mxnet::ext::CustomStatefulOp::create<StatefulOp<Impl>>(Params::parse(attrs));
  });
}

// OpenMP team size the kernels should use: omp_get_max_threads() (respects OMP_NUM_THREADS
// and MXNet's per-worker cap), 1 without OpenMP.
int max_threads();

// Straight-through estimator: g[i] = dy[i] where |x[i]| <= cancel, else 0 (in place allowed).
void ste_mask(const float* x, const float* dy, float* g, int64_t n, float cancel);

// Gradient of the activation quantizer, g = dy * q'(x) (in place allowed):
//   act_bit = 32            q' = 1
//   ActGrad::kSte           q' = 1 if |x| <= grad_cancel else 0
//   ActGrad::kApproxSign    q' = 2 - 2|x| on [-1, 1], 0 elsewhere (Bi-Real Net)
//   ActGrad::kSwishSign     q' = b (2 - b x tanh(b x / 2)) / (1 + cosh(b x)), b = swish_beta
void act_grad(const QuantParams& q, const float* x, const float* dy, float* g, int64_t n);

}  // namespace bmx_mx

#endif  // BMXNET_MXNET_COMMON_H_
