// Helpers shared by the operator compile functions.
#ifndef BMXNET_RUNTIME_OPS_COMMON_H_
#define BMXNET_RUNTIME_OPS_COMMON_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bmx_kernels.h"
#include "builder.h"

namespace bmxrt {

// The quantization attributes of QConvolution / QFullyConnected / QActivation, with the values
// and checks of operators/mxnet/common.cc (QuantParams::parse).
struct QuantAttrs {
  int act_bit = 1;
  int weight_bit = 1;
  bool scaling = false;  // scaling_mode == 'forward'
  bool packed = false;   // binarized_weights_only
  int pad_value = 0;
};
const std::set<std::string>& quant_attr_names();
QuantAttrs parse_quant(const Builder& b);

// Packed weights hold `runs` runs of `words` words of `bits` inputs; the unused high bits of each
// run's last word must be 0 (as MXNet's check_packed_tail demands). Fails (FORMAT) otherwise.
void check_packed_tail(const Builder& b, const bmx::word_t* w, int64_t runs, int64_t words,
                       int64_t bits, const char* inputs);

// Int64 packed weights of exactly `shape`, as words.
std::vector<bmx::word_t> packed_words(const Builder& b, int i, const Shape& shape);

// Adds a post-op behind input `i`'s producer when the node is its only reader, else emits a
// stand-alone step that copies input i and applies the post-op. `extra` is a value the post-op
// reads (kAddTensor) or -1.
void pointwise(Builder& b, int i, PostOp op, const std::string& what);

// y = (x - mean) * k + beta per channel, as an affine map y = x * mul + add, for folding into a
// float layer's weights and bias.
void batchnorm_affine(const PostOp& bn, std::vector<float>* mul, std::vector<float>* add);

// Elements before axis, along it, after it.
struct AxisSplit {
  int64_t outer = 1, len = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, size_t axis);

// Folds a following per-output-channel affine map (BatchNorm's y * mul + add) into a float
// layer whose weights are `rows` rows of `per_row` values: w[o] *= mul[o],
// bias[o] = bias[o] * mul[o] + add[o] (bias created as zeros when the layer has none).
inline void fold_affine_into_rows(std::vector<float>* w, int64_t rows, int64_t per_row,
                                  std::vector<float>* bias, const std::vector<float>& mul,
                                  const std::vector<float>& add) {
  if (bias->empty()) bias->assign(static_cast<size_t>(rows), 0.f);
  for (int64_t o = 0; o < rows; ++o) {
    for (int64_t i = 0; i < per_row; ++i) (*w)[o * per_row + i] *= mul[o];
    (*bias)[o] = (*bias)[o] * mul[o] + add[o];
  }
}

// The kernel core's run call for each plan type (one name for the template below).
inline const char* run_plan(const bmx::BConv2DPlan& p, const float* in, float* out, void* ws,
                            const bmx::ThreadHook* hook) {
  return bmx::bconv2d_run(p, in, out, ws, hook);
}
inline const char* run_plan(const bmx::BDensePlan& p, const float* in, float* out, void* ws,
                            const bmx::ThreadHook* hook) {
  return bmx::bdense_run(p, in, out, ws, hook);
}

// A packed 1-bit layer planned once by the kernel core (bconv2d_prepare / bdense_prepare:
// layout, kernel, border-correction table, workspace size) and run on the predictor's
// workspace: float in, float out, y = float(dot) * scale + bias bit for bit as MXNet's
// QConvolution / QFullyConnected. The plan keeps pointers to the weights, scale and bias, so
// they are members that never change; the derived class prepares plan_ in its constructor.
template <typename Plan>
class PlannedBinaryStep : public Step {
 public:
  int64_t workspace_floats() const override { return (plan_.workspace_bytes() + 3) / 4; }

  std::string kernel() const override {
    return std::string(family_) + "/" + bmx::path_name(plan_.path()) + "/" + plan_.kernel_name();
  }

  void run(const RunContext& ctx) const override {
    const char* err = run_plan(plan_, ctx.data(inputs[0]), ctx.data(output), ctx.workspace,
                               ctx.kernel_hook);
    if (err) throw Error(BMX_ERROR_INTERNAL, "step '" + name + "': " + err);
    finish(ctx);
  }

 protected:
  PlannedBinaryStep(const char* family, std::vector<bmx::word_t> w, std::vector<float> scale,
                    std::vector<float> bias)
      : w_(std::move(w)), scale_(std::move(scale)), bias_(std::move(bias)), family_(family) {}
  const float* scale_or_null() const { return scale_.empty() ? nullptr : scale_.data(); }
  const float* bias_or_null() const { return bias_.empty() ? nullptr : bias_.data(); }

  std::vector<bmx::word_t> w_;
  std::vector<float> scale_, bias_;
  Plan plan_;

 private:
  const char* family_;
};

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_OPS_COMMON_H_
