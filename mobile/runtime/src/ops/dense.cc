// FullyConnected (float dot products) and QFullyConnected (packed 1-bit: the kernel core's
// bdense; k-bit: quantized weights and inputs through the float path), with the semantics of
// operators/mxnet/qfully_connected.cc. flatten=True: data as (batch, features); flatten=False:
// the layer runs on the last axis.
#include "kernels/sgemm.h"
#include "ops/common.h"
#include "ops/ops.h"
#include "quantize.h"

namespace bmxrt {
namespace {

struct DenseGeometry {
  int64_t rows = 1, cols = 1, units = 0;
  Shape out;
};

DenseGeometry geometry(const Builder& b, const Shape& x, int64_t units, bool flatten) {
  if (x.empty()) b.bad("data has no dimensions");
  DenseGeometry g;
  g.units = units;
  const size_t first_feature = flatten ? 1 : x.size() - 1;
  for (size_t i = 0; i < x.size(); ++i) (i < first_feature ? g.rows : g.cols) *= x[i];
  if (flatten) {
    g.out = {x[0], units};
  } else {
    g.out = x;
    g.out.back() = units;
  }
  num_elements(g.out);
  num_elements({units, g.cols});
  return g;
}

// ------------------------------------------------------------------------------- float dense
class FloatDenseStep : public Step {
 public:
  FloatDenseStep(const DenseGeometry& g, std::vector<float> w, std::vector<float> scale,
                 std::vector<float> bias, int act_bit, bool foldable, bmx::Path path)
      : g_(g), w_(std::move(w)), scale_(std::move(scale)), bias_(std::move(bias)),
        act_bit_(act_bit), foldable_(foldable), k_(float_kernels(path)) {}

  std::string kernel() const override { return std::string("gemv/") + k_.name; }
  int64_t workspace_floats() const override { return act_bit_ < 32 ? g_.rows * g_.cols : 0; }

  // Only where the units are axis 1 of the output (flatten, or 2-D data), like the BatchNorm.
  bool fold_batchnorm(const std::vector<float>& mul, const std::vector<float>& add) override {
    if (!foldable_ || !scale_.empty() || g_.out.size() != 2) return false;
    fold_affine_into_rows(&w_, g_.units, g_.cols, &bias_, mul, add);
    return true;
  }

  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    if (act_bit_ < 32) {
      bmx::quantize_activations(act_bit_, x, ctx.workspace, g_.rows * g_.cols);
      x = ctx.workspace;
    }
    const int tasks = ctx.parallel->tasks_for(g_.units * g_.cols);
    for (int64_t r = 0; r < g_.rows; ++r) {
      const float* xr = x + r * g_.cols;
      float* yr = y + r * g_.units;
      auto task = [&](int t) {
        const int64_t o0 = part_begin(g_.units, tasks, t), o1 = part_begin(g_.units, tasks, t + 1);
        k_.gemv(o1 - o0, g_.cols, w_.data() + o0 * g_.cols, g_.cols, xr, yr + o0);
        for (int64_t o = o0; o < o1; ++o) {
          if (!scale_.empty()) yr[o] = yr[o] * scale_[o] + (bias_.empty() ? 0.f : bias_[o]);
          else if (!bias_.empty()) yr[o] = yr[o] + bias_[o];
        }
      };
      ctx.parallel->run(tasks, task);
    }
    finish(ctx);
  }

 private:
  DenseGeometry g_;
  std::vector<float> w_, scale_, bias_;
  int act_bit_;
  bool foldable_;
  const FloatKernels& k_;
};

// ------------------------------------------------------------------------------ binary dense
// The kernel core's packed dense layer (PlannedBinaryStep: float rows in and out).
class BinaryDenseStep : public PlannedBinaryStep<bmx::BDensePlan> {
 public:
  BinaryDenseStep(const Builder& b, const DenseGeometry& g, std::vector<bmx::word_t> w,
                  std::vector<float> scale, std::vector<float> bias)
      : PlannedBinaryStep("bdense", std::move(w), std::move(scale), std::move(bias)) {
    bmx::BDenseOptions options;
    options.path = b.path();
    options.max_threads = b.num_threads();
    const std::string err = bmx::bdense_prepare(g.rows, g.cols, g.units, w_.data(),
                                                scale_or_null(), bias_or_null(), options, &plan_);
    if (!err.empty()) b.bad(err);
  }
};

// ------------------------------------------------------------------------------------ compile
void fully_connected(Builder& b) {
  b.only_attrs({"num_hidden", "no_bias", "flatten"});
  const bool no_bias = b.boolean("no_bias", false);
  b.expect_inputs(no_bias ? 2 : 3, no_bias ? 2 : 3);
  const int64_t units = b.required_size("num_hidden", 1);
  const DenseGeometry g = geometry(b, b.shape(0), units, b.boolean("flatten", true));
  std::vector<float> w = b.floats(1, {units, g.cols}, "weight");
  std::vector<float> bias = no_bias ? std::vector<float>() : b.floats(2, {units}, "bias");
  auto step = std::make_unique<FloatDenseStep>(g, std::move(w), std::vector<float>(),
                                               std::move(bias), 32, true, b.path());
  step->inputs = {b.value(0)};
  b.emit(std::move(step), g.out);
}

void qfully_connected(Builder& b) {
  std::set<std::string> allowed = {"num_hidden", "in_units", "no_bias", "flatten"};
  allowed.insert(quant_attr_names().begin(), quant_attr_names().end());
  b.only_attrs(allowed);
  const QuantAttrs q = parse_quant(b);
  if (q.pad_value != 0) b.bad("parameter 'pad_value' applies to QConvolution only");
  const bool no_bias = b.boolean("no_bias", false);
  const int n_in = 2 + (no_bias ? 0 : 1) + (q.packed && q.scaling ? 1 : 0);
  b.expect_inputs(n_in, n_in);
  const int64_t units = b.required_size("num_hidden", 1);
  const DenseGeometry g = geometry(b, b.shape(0), units, b.boolean("flatten", true));
  const int64_t in_units = b.size("in_units", 0, 1);
  if (q.packed && in_units == 0) {
    b.bad("binarized_weights_only=True needs in_units=<n>; re-convert the model with "
          "model_converter");
  }
  if (in_units != 0 && in_units != g.cols) {
    b.bad("parameter 'in_units' = " + std::to_string(in_units) + " but the data " +
          shape_str(b.shape(0)) + " has " + std::to_string(g.cols) + " input features: set the "
          "input shape the model was made for");
  }
  const std::string check = bmx::bdense_check(g.rows, g.cols, units);
  if (!check.empty()) b.bad(check);
  std::vector<float> bias = no_bias ? std::vector<float>() : b.floats(2, {units}, "bias");
  std::unique_ptr<Step> step;
  if (q.packed) {
    const int64_t words = bmx::words_for(g.cols);
    std::vector<bmx::word_t> w = packed_words(b, 1, {units, words});
    check_packed_tail(b, w.data(), units, words, g.cols, "in_units");
    std::vector<float> scale = q.scaling ? b.floats(n_in - 1, {units}, "weight_scale")
                                         : std::vector<float>();
    step = std::make_unique<BinaryDenseStep>(b, g, std::move(w), std::move(scale),
                                             std::move(bias));
  } else {
    std::vector<float> w = b.floats(1, {units, g.cols}, "weight");
    std::vector<float> scale;
    if (q.scaling) {
      scale.resize(static_cast<size_t>(units));
      bmx::channel_mean_abs(w.data(), units, g.cols, scale.data());
    }
    if (q.act_bit == 1 && q.weight_bit == 1) {
      std::vector<bmx::word_t> packed(static_cast<size_t>(units * bmx::words_for(g.cols)));
      bmx::pack_dense_weights(units, g.cols, w.data(), packed.data());
      step = std::make_unique<BinaryDenseStep>(b, g, std::move(packed), std::move(scale),
                                               std::move(bias));
    } else {
      std::vector<float> wq(w.size());
      bmx::quantize_weights(q.weight_bit, w.data(), wq.data(), static_cast<int64_t>(w.size()));
      step = std::make_unique<FloatDenseStep>(g, std::move(wq), std::move(scale), std::move(bias),
                                              q.act_bit, false, b.path());
    }
  }
  step->inputs = {b.value(0)};
  b.emit(std::move(step), g.out);
}

// dot(x, B) / linalg_gemm2(x, B) with a constant 2-D B (ONNX MatMul / Gemm imports): a dense
// layer on the last axis of x with weights B^T (or B with transpose_b), times alpha for gemm2.
void matmul(Builder& b) {
  const bool gemm2 = b.node().op != "dot";
  if (gemm2) b.only_attrs({"transpose_a", "transpose_b", "alpha", "axis"});
  else b.only_attrs({"transpose_a", "transpose_b", "forward_stype"});
  b.expect_inputs(2, 2);
  if (b.boolean("transpose_a", false)) b.unsupported("transpose_a=True");
  if (gemm2 && b.integer("axis", -2) != -2) b.unsupported("parameter 'axis' other than -2");
  const Shape& x = b.shape(0);
  const Shape& w = b.shape(1);
  const float* data = b.constant_data(1);
  if (!data || w.size() != 2 || (gemm2 && x.size() != 2)) {
    b.unsupported("the runtime multiplies by a constant 2-D matrix only (input 1 must be a "
                  "parameter" + std::string(gemm2 ? ", input 0 2-D)" : ")"));
  }
  const bool tb = b.boolean("transpose_b", false);
  const int64_t K = tb ? w[1] : w[0], N = tb ? w[0] : w[1];
  if (x.empty() || x.back() != K) {
    b.bad("shapes " + shape_str(x) + " and " + shape_str(w) + " do not multiply");
  }
  const DenseGeometry g = geometry(b, x, N, false);
  std::vector<float> weights(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) weights[n * K + k] = tb ? data[n * K + k] : data[k * N + n];
  }
  std::vector<float> scale;
  const double alpha = gemm2 ? b.real("alpha", 1.0) : 1.0;
  if (alpha != 1.0) scale.assign(static_cast<size_t>(N), static_cast<float>(alpha));
  auto step = std::make_unique<FloatDenseStep>(g, std::move(weights), std::move(scale),
                                               std::vector<float>(), 32, alpha == 1.0, b.path());
  step->inputs = {b.value(0)};
  b.emit(std::move(step), g.out);
}

}  // namespace

void register_dense(OpTable* t) {
  (*t)["dot"] = matmul;
  (*t)["linalg_gemm2"] = matmul;
  (*t)["_linalg_gemm2"] = matmul;
  (*t)["FullyConnected"] = fully_connected;
  (*t)["QFullyConnected"] = qfully_connected;
}

}  // namespace bmxrt
