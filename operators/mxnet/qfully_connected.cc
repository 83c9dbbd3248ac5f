// QFullyConnected: fully-connected layer with quantized (1..32 bit) inputs and weights.
//
// Inputs, in order: data; weight; bias (num_hidden,) unless no_bias; weight_scale (num_hidden,)
// only when binarized_weights_only and scaling_mode='forward'. weight is float32
// (num_hidden, in_units), or with binarized_weights_only the packed int64 words
// (num_hidden, ceil(in_units/64)). flatten=True treats data as (batch, prod(rest)); flatten=False
// applies the layer to the last axis. in_units (as in Gluon's Dense) is the number of input
// features (after flattening): checked against the data when given, and required with
// binarized_weights_only, since the packed shape is the same for up to 64 values of in_units.
//
// Forward:  y = Qa(x) Qw(W)^T * alpha + b (alpha = mean|W[o]| under scaling_mode='forward').
// Backward: straight-through estimator as in QConvolution (alpha constant).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "bmx_kernels.h"
#include "common.h"
#include "float_ops.h"
#include "quantize.h"

namespace bmx_mx {
namespace {

constexpr const char* kOp = "QFullyConnected";

struct FCParams {
  int64_t num_hidden = 0;
  int64_t in_units = 0;  // 0: not given (required with binarized_weights_only)
  bool no_bias = false;
  bool flatten = true;
  QuantParams q;

  static FCParams parse(const Attrs& attrs) {
    AttrReader r(attrs);
    std::set<std::string> allowed = {"num_hidden", "in_units", "no_bias", "flatten"};
    allowed.insert(QuantParams::attr_names().begin(), QuantParams::attr_names().end());
    r.reject_unknown(allowed);
    FCParams p;
    p.num_hidden = r.required_size("num_hidden", 1);
    p.in_units = r.size("in_units", 0, 1);
    p.no_bias = r.boolean("no_bias", false);
    p.flatten = r.boolean("flatten", true);
    p.q = QuantParams::parse(r, true);
    if (p.q.pad_value != 0) throw OpError("parameter 'pad_value' applies to QConvolution only");
    if (p.q.binarized_weights_only && p.in_units == 0) {
      throw OpError("binarized_weights_only=True needs in_units=<n>, the number of input "
                    "features after flattening (written by model_converter); re-convert the "
                    "model with model_converter");
    }
    return p;
  }

  WeightedInputs inputs() const { return {no_bias, q.binarized_weights_only && q.scaling}; }

  // Sizes of one call, from the data shape.
  struct Geometry {
    int64_t rows, cols;  // the data as a (rows, cols) matrix; cols = in_units
    Shape weight, out;
  };

  // Checks the data shape `x` against the parameters (a zero-size batch is allowed, zero-size
  // features are not) and derives every other shape, each within MXNet's tensor size.
  Geometry geometry(const Shape& x) const {
    // As FullyConnected: 1-D data of shape (n,) with flatten=True is n rows of one feature.
    if (x.empty()) throw OpError("data has no dimensions; it needs at least 1");
    elements(x, "data");
    // features: every axis after the first (flatten) or the last axis; rows: the others.
    const size_t first_feature = flatten ? 1 : x.size() - 1;
    Geometry g;
    g.rows = 1;
    g.cols = 1;
    for (size_t i = 0; i < x.size(); ++i) {
      if (i < first_feature) {
        g.rows *= x[i];
        continue;
      }
      if (x[i] < 1) {
        throw OpError("data has shape " + shape_str(x) + ": the input features (" +
                      (flatten ? "every axis after the first" : "the last axis") +
                      ") must all be >= 1; only the batch may be 0");
      }
      g.cols *= x[i];
    }
    if (in_units != 0 && in_units != g.cols) {
      throw OpError("parameter 'in_units' = " + std::to_string(in_units) + " but the data " +
                    shape_str(x) + " has " + std::to_string(g.cols) + " input features" +
                    (flatten ? " after flattening" : "") + ": the weights belong to a layer "
                    "with another input; feed the data the model was made for");
    }
    g.weight = {num_hidden, q.binarized_weights_only ? bmx::words_for(g.cols) : g.cols};
    elements(g.weight, "weight");
    if (flatten) {
      g.out = {x[0], num_hidden};
    } else {
      g.out = x;
      g.out.back() = num_hidden;
    }
    elements(g.out, "output");
    return g;
  }
};

MXReturnValue parse_attrs(const Attrs& attrs, int* num_in, int* num_out) {
  return guard(kOp, [&] {
    *num_in = FCParams::parse(attrs).inputs().count();
    *num_out = 1;
  });
}

MXReturnValue infer_type(const Attrs& attrs, std::vector<int>* in, std::vector<int>* out) {
  return guard(kOp, [&] {
    infer_weighted_types(FCParams::parse(attrs).q.binarized_weights_only, in, out);
  });
}

MXReturnValue infer_shape(const Attrs& attrs, std::vector<std::vector<unsigned>>* in,
                          std::vector<std::vector<unsigned>>* out) {
  return guard(kOp, [&] {
    const FCParams p = FCParams::parse(attrs);
    const Shape x = known_shape(in->at(0), "data");
    const FCParams::Geometry g = p.geometry(x);
    expect_shape(in, 1, g.weight, "weight", x);
    const WeightedInputs io = p.inputs();
    const Shape per_channel = {p.num_hidden};
    if (io.bias() >= 0) expect_shape(in, io.bias(), per_channel, "bias", x);
    if (io.scale() >= 0) expect_shape(in, io.scale(), per_channel, "weight_scale", x);
    out->at(0) = to_infer(g.out);
  });
}

// The operator's computation; StatefulOp<QFCState> (common.h) wraps it for lib_api.
class QFCState {
 public:
  static constexpr const char* kName = kOp;
  explicit QFCState(const FCParams& p) : p_(p) {}

  // Checks the data shape and the parameter inputs in[first], in[first + 1], ... (weight, bias,
  // weight_scale) exactly: shape inference may have filled in a shape the real array lacks.
  FCParams::Geometry check(const Shape& x, const std::vector<MXTensor>& in, size_t first) const {
    const FCParams::Geometry g = p_.geometry(x);
    expect_tensor(in[first], g.weight, "weight", x);
    const WeightedInputs io = p_.inputs();
    if (io.bias() >= 0) expect_tensor(in[first - 1 + io.bias()], {p_.num_hidden}, "bias", x);
    if (io.scale() >= 0) {
      expect_tensor(in[first - 1 + io.scale()], {p_.num_hidden}, "weight_scale", x);
    }
    return g;
  }

  void forward(std::vector<MXTensor>& in, MXTensor* out, const OpResource& res) {
    // in = [x, w, (bias), (weight_scale)]
    const FCParams::Geometry g = check(in[0].shape, in, 1);
    expect_tensor(*out, g.out, "output", in[0].shape);
    MXTensor& x = in[0];
    MXTensor& w = in[1];
    const int64_t rows = g.rows, cols = g.cols, O = p_.num_hidden;
    const WeightedInputs io = p_.inputs();
    const float* bias = io.bias() >= 0 ? in[io.bias()].data<float>() : nullptr;
    float* y = out->data<float>();
    if (rows == 0) {  // nothing to compute; packed weights are still checked
      if (p_.q.binarized_weights_only) {
        check_packed_tail(reinterpret_cast<const uint64_t*>(w.data<int64_t>()), O,
                          bmx::words_for(cols), cols, "in_units");
      }
      return;
    }
    if (p_.q.binarized_weights_only || (p_.q.act_bit == 1 && p_.q.weight_bit == 1)) {
      // 1-bit layer: packed weights and plan from the layer cache (common.h).
      const float* weight_scale = io.scale() >= 0 ? in[io.scale()].data<float>() : nullptr;
      cached_bdense(rows, cols, O, one_bit_weights(p_.q, w, O, weight_scale), x.data<float>(),
                    bias, y);
      return;
    }
    const float* scale = scale_.of(p_.q.scaling, w, O);
    const Scratch buf(res, {x.size(), w.size()});
    float *xq = buf[0], *wq = buf[1];
    bmx::quantize_activations(p_.q.act_bit, x.data<float>(), xq, x.size());
    bmx::quantize_weights(p_.q.weight_bit, w.data<float>(), wq, w.size());
    sgemm(false, true, rows, O, cols, 1.f, xq, cols, wq, cols, 0.f, y, O);
    if (scale || bias) {
#pragma omp parallel for if (rows * O > (1 << 16))
      for (int64_t r = 0; r < rows; ++r) {
        float* row = y + r * O;
        for (int64_t o = 0; o < O; ++o) {
          row[o] = (scale ? row[o] * scale[o] : row[o]) + (bias ? bias[o] : 0.f);
        }
      }
    }
  }

  void backward(std::vector<MXTensor>& in, std::vector<MXTensor>* out, const OpResource& res) {
    if (p_.q.binarized_weights_only) {
      throw OpError("no gradient for packed weights (binarized_weights_only=True is an "
                    "inference-only model); train the unconverted model instead");
    }
    // in = [dy, x, w, (bias), y]; out = [dx, dw, (dbias)]
    MXTensor& x = in[1];
    MXTensor& w = in[2];
    const FCParams::Geometry g = check(x.shape, in, 2);
    expect_tensor(in[0], g.out, "output gradient", x.shape);
    expect_tensor(out->at(0), x.shape, "data gradient", x.shape);
    expect_tensor(out->at(1), g.weight, "weight gradient", x.shape);
    if (!p_.no_bias) expect_tensor(out->at(2), {p_.num_hidden}, "bias gradient", x.shape);
    const int64_t rows = g.rows, cols = g.cols, O = p_.num_hidden;
    const float* dy = in[0].data<float>();
    float* dx = out->at(0).data<float>();
    float* dw = out->at(1).data<float>();
    if (!p_.no_bias) {
      float* db = out->at(2).data<float>();
      for (int64_t o = 0; o < O; ++o) {
        double acc = 0;
        for (int64_t r = 0; r < rows; ++r) acc += dy[r * O + o];
        db[o] = static_cast<float>(acc);
      }
    }
    if (rows == 0) {  // an empty batch: no data gradient, a zero weight gradient
      std::fill(dw, dw + w.size(), 0.f);
      return;
    }
    const float* scale = scale_.of(p_.q.scaling, w, O);
    const Scratch buf(res, {scale ? rows * O : 0, x.size(), w.size()});
    float *xq = buf[1], *wq = buf[2];
    if (scale) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < O; ++o) buf[0][r * O + o] = dy[r * O + o] * scale[o];
      dy = buf[0];
    }
    bmx::quantize_activations(p_.q.act_bit, x.data<float>(), xq, x.size());
    bmx::quantize_weights(p_.q.weight_bit, w.data<float>(), wq, w.size());
    sgemm(false, false, rows, cols, O, 1.f, dy, O, wq, cols, 0.f, dx, cols);  // dy W
    sgemm(true, false, O, cols, rows, 1.f, dy, O, xq, cols, 0.f, dw, cols);  // dy^T x
    act_grad(p_.q, x.data<float>(), dx, dx, x.size());
    if (p_.q.weight_bit < 32) ste_mask(w.data<float>(), dw, dw, w.size(), p_.q.grad_cancel);
  }

 private:
  FCParams p_;
  ChannelScale scale_;
};

}  // namespace
}  // namespace bmx_mx

REGISTER_OP(QFullyConnected)
    .setParseAttrs(bmx_mx::parse_attrs)
    .setInferType(bmx_mx::infer_type)
    .setInferShape(bmx_mx::infer_shape)
    .setCreateOpState(bmx_mx::create_stateful_op<bmx_mx::QFCState, bmx_mx::FCParams>, "cpu");
