// QActivation: quantizes activations to act_bit bits (see quantize.h for the formulas).
//
// Forward:  y = Qa(x), or y = x with backward_only=True (BMXNet's layer in front of Q-layers
//           that binarize their own inputs).
// Backward: dx = dy * q'(x), q' chosen by act_grad (see common.h): 'ste' (default) passes the
//           gradient where |x| <= grad_cancel; 'approx_sign' and 'swish_sign' for act_bit = 1.
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "quantize.h"

namespace bmx_mx {
namespace {

constexpr const char* kOp = "QActivation";

struct ActParams {
  QuantParams q;
  bool backward_only = false;

  static ActParams parse(const Attrs& attrs) {
    AttrReader r(attrs);
    r.reject_unknown({"act_bit", "grad_cancel", "backward_only", "act_grad", "swish_beta"});
    ActParams p;
    p.q = QuantParams::parse(r, false);
    p.backward_only = r.boolean("backward_only", false);
    return p;
  }
};

MXReturnValue parse_attrs(const Attrs& attrs, int* num_in, int* num_out) {
  return guard(kOp, [&] {
    ActParams::parse(attrs);
    *num_in = 1;
    *num_out = 1;
  });
}

MXReturnValue infer_type(const Attrs&, std::vector<int>* in, std::vector<int>* out) {
  return guard(kOp, [&] {
    if (in->at(0) != -1 && in->at(0) != mxnet::ext::kFloat32) {
      throw OpError("data must be float32; cast the input with .astype('float32')");
    }
    in->at(0) = out->at(0) = mxnet::ext::kFloat32;
  });
}

MXReturnValue infer_shape(const Attrs&, std::vector<std::vector<unsigned>>* in,
                          std::vector<std::vector<unsigned>>* out) {
  return guard(kOp, [&] {
    // An unknown dimension cannot be passed on: MXNet would read 0xFFFFFFFF in the output shape
    // as a real size.
    const Shape x = known_shape(in->at(0), "data");
    elements(x, "data");
    out->at(0) = to_infer(x);
  });
}

MXReturnValue forward(const Attrs& attrs, std::vector<MXTensor>* inputs,
                      std::vector<MXTensor>* outputs, const OpResource&) {
  return guard(kOp, [&] {
    const ActParams p = ActParams::parse(attrs);
    MXTensor& x = inputs->at(0);
    expect_tensor(outputs->at(0), x.shape, "output", x.shape);
    float* y = outputs->at(0).data<float>();
    if (p.backward_only) {
      if (y != x.data<float>()) std::memcpy(y, x.data<float>(), sizeof(float) * x.size());
    } else {
      bmx::quantize_activations(p.q.act_bit, x.data<float>(), y, x.size());
    }
  });
}

MXReturnValue backward(const Attrs& attrs, std::vector<MXTensor>* inputs,
                       std::vector<MXTensor>* outputs, const OpResource&) {
  return guard(kOp, [&] {
    const ActParams p = ActParams::parse(attrs);
    // inputs = [dy, x, y]; outputs = [dx]
    MXTensor& dy = inputs->at(0);
    MXTensor& x = inputs->at(1);
    expect_tensor(dy, x.shape, "output gradient", x.shape);
    expect_tensor(outputs->at(0), x.shape, "data gradient", x.shape);
    float* dx = outputs->at(0).data<float>();
    act_grad(p.q, x.data<float>(), dy.data<float>(), dx, x.size());
  });
}

}  // namespace
}  // namespace bmx_mx

REGISTER_OP(QActivation)
    .setParseAttrs(bmx_mx::parse_attrs)
    .setInferType(bmx_mx::infer_type)
    .setInferShape(bmx_mx::infer_shape)
    .setForward(bmx_mx::forward, "cpu")
    .setBackward(bmx_mx::backward, "cpu");
