// QFullyConnected: fully-connected layer with quantized (1..32 bit) inputs and weights.
//
// Inputs, in order: data; weight; bias (num_hidden,) unless no_bias; weight_scale (num_hidden,)
// only when binarized_weights_only and scaling_mode='forward'. weight is float32
// (num_hidden, in_units), or with binarized_weights_only the packed int64 words
// (num_hidden, ceil(in_units/64)). flatten=True treats data as (batch, prod(rest)); flatten=False
// applies the layer to the last axis.
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
  bool no_bias = false;
  bool flatten = true;
  QuantParams q;

  static FCParams parse(const Attrs& attrs) {
    AttrReader r(attrs);
    std::set<std::string> allowed = {"num_hidden", "no_bias", "flatten"};
    allowed.insert(QuantParams::attr_names().begin(), QuantParams::attr_names().end());
    r.reject_unknown(allowed);
    FCParams p;
    p.num_hidden = r.required_integer("num_hidden");
    if (p.num_hidden < 1) throw OpError("parameter 'num_hidden' must be >= 1");
    p.no_bias = r.boolean("no_bias", false);
    p.flatten = r.boolean("flatten", true);
    p.q = QuantParams::parse(r, true);
    if (p.q.pad_value != 0) throw OpError("parameter 'pad_value' applies to QConvolution only");
    return p;
  }

  WeightedInputs inputs() const { return {no_bias, q.binarized_weights_only && q.scaling}; }

  // (rows, in_units) view of the data.
  template <typename T>
  std::pair<int64_t, int64_t> rows_cols(const std::vector<T>& x) const {
    int64_t total = 1;
    for (auto d : x) total *= static_cast<int64_t>(d);
    const int64_t cols = flatten ? total / static_cast<int64_t>(x[0])
                                 : static_cast<int64_t>(x.back());
    return {total / cols, cols};
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
    const auto& x = in->at(0);
    if (x.size() < (p.flatten ? 2u : 1u) || std::any_of(x.begin(), x.end(), dim_unknown)) {
      throw OpError("data must have a known shape with at least 2 dimensions (batch, ...), got " +
                    shape_str(x));
    }
    const int64_t cols = p.rows_cols(x).second;
    const auto expect = [&](size_t idx, const std::vector<unsigned>& want, const char* name) {
      expect_shape(in, idx, want, name, x);
    };
    const unsigned wcols = static_cast<unsigned>(p.q.binarized_weights_only ? bmx::words_for(cols)
                                                                           : cols);
    expect(1, {static_cast<unsigned>(p.num_hidden), wcols}, "weight");
    const WeightedInputs io = p.inputs();
    const std::vector<unsigned> per_channel = {static_cast<unsigned>(p.num_hidden)};
    if (io.bias() >= 0) expect(io.bias(), per_channel, "bias");
    if (io.scale() >= 0) expect(io.scale(), per_channel, "weight_scale");
    if (p.flatten) {
      out->at(0) = {x[0], static_cast<unsigned>(p.num_hidden)};
    } else {
      out->at(0) = x;
      out->at(0).back() = static_cast<unsigned>(p.num_hidden);
    }
  });
}

// The operator's computation; StatefulOp<QFCState> (common.h) wraps it for lib_api.
class QFCState {
 public:
  static constexpr const char* kName = kOp;
  explicit QFCState(const FCParams& p) : p_(p) {}

  void forward(std::vector<MXTensor>& in, MXTensor* out, const OpResource& res) {
    MXTensor& x = in[0];
    MXTensor& w = in[1];
    const auto rc = p_.rows_cols(x.shape);
    const int64_t rows = rc.first, cols = rc.second, O = p_.num_hidden;
    const WeightedInputs io = p_.inputs();
    const float* bias = io.bias() >= 0 ? in[io.bias()].data<float>() : nullptr;
    float* y = out->data<float>();
    if (p_.q.binarized_weights_only) {
      const float* scale = io.scale() >= 0 ? in[io.scale()].data<float>() : nullptr;
      bmx::bdense(rows, cols, O, x.data<float>(),
                  reinterpret_cast<const bmx::word_t*>(w.data<int64_t>()), scale, bias, y,
                  max_threads());
      return;
    }
    const float* scale = cache_.channel_scale(p_.q.scaling, w, O);
    if (p_.q.act_bit == 1 && p_.q.weight_bit == 1) {
      const bmx::word_t* packed = cache_.packed(w, O * bmx::words_for(cols), [&](bmx::word_t* out) {
        bmx::pack_dense_weights(O, cols, w.data<float>(), out);
      });
      bmx::bdense(rows, cols, O, x.data<float>(), packed, scale, bias, y, max_threads());
      return;
    }
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
    const auto rc = p_.rows_cols(x.shape);
    const int64_t rows = rc.first, cols = rc.second, O = p_.num_hidden;
    const float* dy = in[0].data<float>();
    if (!p_.no_bias) {
      float* db = out->at(2).data<float>();
      for (int64_t o = 0; o < O; ++o) {
        double acc = 0;
        for (int64_t r = 0; r < rows; ++r) acc += dy[r * O + o];
        db[o] = static_cast<float>(acc);
      }
    }
    const float* scale = cache_.channel_scale(p_.q.scaling, w, O);
    const Scratch buf(res, {scale ? rows * O : 0, x.size(), w.size()});
    float *xq = buf[1], *wq = buf[2];
    if (scale) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t o = 0; o < O; ++o) buf[0][r * O + o] = dy[r * O + o] * scale[o];
      dy = buf[0];
    }
    bmx::quantize_activations(p_.q.act_bit, x.data<float>(), xq, x.size());
    bmx::quantize_weights(p_.q.weight_bit, w.data<float>(), wq, w.size());
    float* dx = out->at(0).data<float>();
    float* dw = out->at(1).data<float>();
    sgemm(false, false, rows, cols, O, 1.f, dy, O, wq, cols, 0.f, dx, cols);  // dy W
    sgemm(true, false, O, cols, rows, 1.f, dy, O, xq, cols, 0.f, dw, cols);  // dy^T x
    act_grad(p_.q, x.data<float>(), dx, dx, x.size());
    if (p_.q.weight_bit < 32) ste_mask(w.data<float>(), dw, dw, w.size(), p_.q.grad_cancel);
  }

 private:
  FCParams p_;
  WeightCache cache_;
};

}  // namespace
}  // namespace bmx_mx

REGISTER_OP(QFullyConnected)
    .setParseAttrs(bmx_mx::parse_attrs)
    .setInferType(bmx_mx::infer_type)
    .setInferShape(bmx_mx::infer_shape)
    .setCreateOpState(bmx_mx::create_stateful_op<bmx_mx::QFCState, bmx_mx::FCParams>, "cpu");
