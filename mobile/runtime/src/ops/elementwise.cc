// Element-wise operators: BatchNorm (inference), Activation, LeakyReLU, QActivation, clip, the
// scalar ops, elemwise_add and the broadcast_* ops. Each becomes a post-op fused behind the layer
// that produced its input where possible (epilogue.h), else a stand-alone step.
#include <cmath>

#include "ops/common.h"
#include "ops/ops.h"

namespace bmxrt {
namespace {

// ---------------------------------------------------------------------------------- BatchNorm
void batch_norm(Builder& b) {
  b.only_attrs({"axis", "eps", "fix_gamma", "use_global_stats", "momentum", "output_mean_var",
                "cudnn_off", "min_calib_range", "max_calib_range"});
  b.expect_inputs(5, 5);
  if (b.boolean("output_mean_var", false)) {
    b.unsupported("output_mean_var=True (the batch statistics are training outputs)");
  }
  const Shape& x = b.shape(0);
  const int64_t axis = b.integer("axis", 1);
  if (x.size() < 2 || (axis != 1 && axis != 1 - static_cast<int64_t>(x.size()))) {
    b.unsupported("BatchNorm over axis " + std::to_string(axis) + " of a " +
                  std::to_string(x.size()) + "-D input; the runtime normalises axis 1 (channels)");
  }
  const double eps = b.real("eps", 1e-3);
  if (eps <= 0) b.bad("parameter 'eps' must be > 0");
  const int64_t C = x[1];
  // In inference BatchNorm always uses the moving statistics (use_global_stats only matters in
  // training); fix_gamma=True means gamma is taken as 1, whatever the file holds. The formula
  // and its rounding are MXNet 1.9.1's CPU BatchNorm: (x - mean) * (g / sqrtf(var + eps)) + beta,
  // each operation a float (the kernel core's bit-output thresholds use the same, bmx_kernels.h).
  PostOp bn;
  bn.kind = PostKind::kBatchNorm;
  std::vector<float> gamma = b.floats(1, {C}, "gamma");
  bn.c = b.floats(2, {C}, "beta");
  bn.a = b.floats(3, {C}, "moving_mean");
  const std::vector<float> var = b.floats(4, {C}, "moving_var");
  if (b.boolean("fix_gamma", true)) gamma.assign(static_cast<size_t>(C), 1.f);
  bn.b.resize(static_cast<size_t>(C));
  const float eps_f = static_cast<float>(eps);
  for (int64_t c = 0; c < C; ++c) bn.b[c] = gamma[c] / std::sqrt(var[c] + eps_f);
  // A float layer before it takes the BatchNorm into its weights and bias.
  if (Step* p = b.fusable_producer(0)) {
    std::vector<float> mul, add;
    batchnorm_affine(bn, &mul, &add);
    if (p->post.empty() && p->fold_batchnorm(mul, add)) {
      b.fused_into(p, "(folded into the weights)");
      return;
    }
  }
  pointwise(b, 0, std::move(bn), "");
}

// -------------------------------------------------------------------------------- activations
PostOp simple(PostKind kind, float s = 0.f, float t = 0.f) {
  PostOp op;
  op.kind = kind;
  op.s = s;
  op.t = t;
  return op;
}

void activation(Builder& b) {
  b.only_attrs({"act_type"});
  b.expect_inputs(1, 1);
  const std::string type = b.str("act_type", "");
  PostKind kind;
  if (type == "relu") kind = PostKind::kRelu;
  else if (type == "sigmoid") kind = PostKind::kSigmoid;
  else if (type == "tanh") kind = PostKind::kTanh;
  else if (type == "softrelu") kind = PostKind::kSoftrelu;
  else b.unsupported("act_type '" + type + "' is not supported; the runtime runs relu, sigmoid, "
                     "tanh and softrelu");
  pointwise(b, 0, simple(kind), "(" + type + ")");
}

// relu, sigmoid, tanh, softrelu and sign as operators of their own (ONNX-imported models).
void unary(Builder& b) {
  b.only_attrs({});
  b.expect_inputs(1, 1);
  const std::string& op = b.node().op;
  const PostKind kind = op == "relu"      ? PostKind::kRelu
                        : op == "sigmoid" ? PostKind::kSigmoid
                        : op == "tanh"    ? PostKind::kTanh
                        : op == "sign"    ? PostKind::kSignZero
                                          : PostKind::kSoftrelu;
  pointwise(b, 0, simple(kind), "");
}

void leaky_relu(Builder& b) {
  b.only_attrs({"act_type", "slope", "lower_bound", "upper_bound"});
  const std::string type = b.str("act_type", "leaky");
  if (type == "prelu") {
    b.expect_inputs(2, 2);
    const Shape& x = b.shape(0);
    const Tensor& g = b.param(1);
    const int64_t C = x.size() >= 2 ? x[1] : 1;
    const int64_t n = num_elements(g.shape);
    if (g.shape.size() != 1 || (n != C && n != 1)) {
      b.bad("gamma '" + g.name + "' has shape " + shape_str(g.shape) + "; PReLU needs (" +
            std::to_string(C) + ",) or (1,) for data " + shape_str(x));
    }
    PostOp op = simple(PostKind::kPrelu);
    op.a = b.floats(1, g.shape, "gamma");
    pointwise(b, 0, std::move(op), "(prelu)");
    return;
  }
  b.expect_inputs(1, 1);
  if (type == "leaky") {
    pointwise(b, 0, simple(PostKind::kLeaky, static_cast<float>(b.real("slope", 0.25))),
              "(leaky)");
  } else if (type == "elu") {
    pointwise(b, 0, simple(PostKind::kElu, static_cast<float>(b.real("slope", 0.25))), "(elu)");
  } else if (type == "rrelu") {
    // In inference RReLU is a leaky ReLU with the mean of its random slope range.
    const double lo = b.real("lower_bound", 0.125), hi = b.real("upper_bound", 0.334);
    pointwise(b, 0, simple(PostKind::kLeaky, static_cast<float>((lo + hi) / 2)), "(rrelu)");
  } else {
    b.unsupported("act_type '" + type + "' is not supported; the runtime runs leaky, prelu, elu "
                  "and rrelu");
  }
}

void qactivation(Builder& b) {
  b.only_attrs({"act_bit", "grad_cancel", "backward_only", "act_grad", "swish_beta"});
  b.expect_inputs(1, 1);
  const QuantAttrs q = parse_quant(b);
  if (b.boolean("backward_only", false) || q.act_bit == 32) {
    b.alias(0, b.shape(0));  // forward is the identity
  } else if (q.act_bit == 1) {
    pointwise(b, 0, simple(PostKind::kSign), "(sign)");
  } else {
    const float levels = static_cast<float>((1ull << q.act_bit) - 1);
    pointwise(b, 0, simple(PostKind::kQuantize, levels),
              "(" + std::to_string(q.act_bit) + "-bit)");
  }
}

void clip(Builder& b) {
  b.only_attrs({"a_min", "a_max"});
  b.expect_inputs(1, 1);
  if (!b.has("a_min") || !b.has("a_max")) b.bad("parameters 'a_min' and 'a_max' are required");
  pointwise(b, 0, simple(PostKind::kClip, static_cast<float>(b.real("a_min", 0)),
                         static_cast<float>(b.real("a_max", 0))), "");
}

// _plus_scalar, _minus_scalar, _mul_scalar: x + s, x + (-s) (the same float), x * s;
// _rminus_scalar: s - x; _div_scalar: x / s; _rdiv_scalar: s / x.
void scalar_op(Builder& b) {
  b.only_attrs({"scalar", "is_int"});
  b.expect_inputs(1, 1);
  float s = static_cast<float>(b.real("scalar", 0));
  const std::string& op = b.node().op;
  PostOp p;
  if (op == "_rminus_scalar" || op == "_div_scalar" || op == "_rdiv_scalar") {
    p = simple(op == "_rminus_scalar" ? PostKind::kRsubScalar
               : op == "_div_scalar"  ? PostKind::kDivScalar
                                      : PostKind::kRdivScalar, s);
  } else {
    p = simple(op == "_mul_scalar" ? PostKind::kMulChannel : PostKind::kAddChannel);
    if (op == "_minus_scalar") s = -s;
    p.a = {s};
  }
  pointwise(b, 0, std::move(p), "(" + std::to_string(s) + ")");
}

// ------------------------------------------------------------------------ two-tensor arithmetic
// x + t of two tensors of the same shape: fused behind either operand's producer (addition is
// commutative in IEEE arithmetic), else a stand-alone step.
void add_same_shape(Builder& b) {
  for (int i = 0; i < 2; ++i) {
    Step* p = b.fusable_producer(i);
    const int other = b.value(1 - i);
    if (p && b.ready_before(other, p)) {
      PostOp op = simple(PostKind::kAddTensor);
      op.value = other;
      pointwise(b, i, std::move(op), "");
      return;
    }
  }
  PostOp op = simple(PostKind::kAddTensor);
  op.value = b.value(1);
  pointwise(b, 0, std::move(op), "");
}

void elemwise_add(Builder& b) {
  b.only_attrs({});
  b.expect_inputs(2, 2);
  if (b.shape(0) != b.shape(1)) {
    b.bad("inputs have shapes " + shape_str(b.shape(0)) + " and " + shape_str(b.shape(1)) +
          "; elemwise_add needs equal shapes");
  }
  add_same_shape(b);
}

// Numpy broadcasting of a and b (right-aligned): the output shape, or empty when incompatible.
Shape broadcast_shape(const Shape& a, const Shape& c) {
  const size_t n = std::max(a.size(), c.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const int64_t dc = i + c.size() >= n ? c[i + c.size() - n] : 1;
    if (da != dc && da != 1 && dc != 1) return {};
    out[i] = da == 1 ? dc : da;
  }
  return out;
}

// True when constant shape `c` broadcast against `x` (same result shape as x) varies at most
// along axis 1 of x: then it is a per-channel (or scalar) post-op.
bool per_channel(const Shape& x, const Shape& c) {
  if (c.size() > x.size() || broadcast_shape(x, c) != x) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    const size_t axis = i + x.size() - c.size();
    if (c[i] != 1 && axis != 1) return false;
  }
  return true;
}

enum class Arith { kAdd, kSub, kMul, kDiv };

// out[i] = a[ia] (op) c[ic] with numpy broadcasting (up to kMaxDims axes).
class BroadcastStep : public Step {
 public:
  static constexpr size_t kMaxDims = 6;
  BroadcastStep(Arith op, const Shape& a, const Shape& c, const Shape& out) : op_(op) {
    const size_t off = kMaxDims - out.size();
    for (size_t i = 0; i < kMaxDims; ++i) dims_[i] = i < off ? 1 : out[i - off];
    strides(a, sa_);
    strides(c, sc_);
  }
  void run(const RunContext& ctx) const override {
    const float* a = ctx.data(inputs[0]);
    const float* c = ctx.data(inputs[1]);
    float* y = ctx.data(output);
    const int64_t rows = dims_[0] * dims_[1] * dims_[2] * dims_[3] * dims_[4];
    const int tasks = ctx.parallel->tasks_for(rows * dims_[5]);
    auto task = [&](int t) {
      for (int64_t r = part_begin(rows, tasks, t); r < part_begin(rows, tasks, t + 1); ++r) {
        int64_t rem = r, oa = 0, oc = 0;
        for (int d = 4; d >= 0; --d) {
          const int64_t idx = rem % dims_[d];
          rem /= dims_[d];
          oa += idx * sa_[d];
          oc += idx * sc_[d];
        }
        row(a + oa, sa_[5], c + oc, sc_[5], y + r * dims_[5], dims_[5]);
      }
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }
  std::string kernel() const override { return "broadcast"; }

 private:
  void strides(const Shape& s, int64_t* out) const {
    const size_t off = kMaxDims - s.size();
    int64_t stride = 1;
    for (size_t i = kMaxDims; i-- > 0;) {
      const int64_t d = i < off ? 1 : s[i - off];
      out[i] = d == 1 ? 0 : stride;
      stride *= d;
    }
  }
  void row(const float* a, int64_t sa, const float* c, int64_t sc, float* y, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) {
      const float u = a[i * sa], v = c[i * sc];
      switch (op_) {
        case Arith::kAdd: y[i] = u + v; break;
        case Arith::kSub: y[i] = u - v; break;
        case Arith::kMul: y[i] = u * v; break;
        case Arith::kDiv: y[i] = u / v; break;
      }
    }
  }
  Arith op_;
  int64_t dims_[kMaxDims], sa_[kMaxDims], sc_[kMaxDims];
};

void broadcast_arith(Builder& b) {
  b.only_attrs({});
  b.expect_inputs(2, 2);
  const std::string& name = b.node().op;
  const Arith op = name == "broadcast_add" || name == "broadcast_plus"    ? Arith::kAdd
                   : name == "broadcast_sub" || name == "broadcast_minus" ? Arith::kSub
                   : name == "broadcast_mul"                              ? Arith::kMul
                                                                          : Arith::kDiv;
  const Shape& x0 = b.shape(0);
  const Shape& x1 = b.shape(1);
  const Shape out = broadcast_shape(x0, x1);
  if (out.empty() || out.size() > BroadcastStep::kMaxDims) {
    b.unsupported("shapes " + shape_str(x0) + " and " + shape_str(x1) + " do not broadcast "
                  "(or have more than 6 axes)");
  }
  if (op == Arith::kAdd && x0 == x1) return add_same_shape(b);
  // x (op) per-channel constant (x + c, x - c, x * c), or c + x, c * x: a post-op.
  const bool commutes = op == Arith::kAdd || op == Arith::kMul;
  for (int i = 0; i < 2 && op != Arith::kDiv; ++i) {
    const int c = 1 - i;
    if (i == 1 && !commutes) break;
    const Shape& xs = b.shape(i);
    const Shape& cs = b.shape(c);
    const float* data = b.constant_data(c);
    if (!data || xs.size() < 2 || !per_channel(xs, cs)) continue;
    PostOp p;
    p.kind = op == Arith::kMul ? PostKind::kMulChannel : PostKind::kAddChannel;
    p.a.assign(data, data + num_elements(cs));
    if (op == Arith::kSub) {
      for (float& v : p.a) v = -v;  // x - c == x + (-c) exactly
    }
    pointwise(b, i, std::move(p), "");
    return;
  }
  auto step = std::make_unique<BroadcastStep>(op, x0, x1, out);
  step->inputs = {b.value(0), b.value(1)};
  b.emit(std::move(step), out);
}

}  // namespace

void register_elementwise(OpTable* t) {
  (*t)["BatchNorm"] = batch_norm;
  (*t)["Activation"] = activation;
  (*t)["LeakyReLU"] = leaky_relu;
  (*t)["QActivation"] = qactivation;
  (*t)["clip"] = clip;
  (*t)["_plus_scalar"] = scalar_op;
  (*t)["_minus_scalar"] = scalar_op;
  (*t)["_mul_scalar"] = scalar_op;
  (*t)["_rminus_scalar"] = scalar_op;
  (*t)["_div_scalar"] = scalar_op;
  (*t)["_rdiv_scalar"] = scalar_op;
  (*t)["relu"] = unary;
  (*t)["sigmoid"] = unary;
  (*t)["tanh"] = unary;
  (*t)["sign"] = unary;
  (*t)["elemwise_add"] = elemwise_add;
  (*t)["_plus"] = elemwise_add;
  (*t)["_Plus"] = elemwise_add;
  (*t)["broadcast_add"] = broadcast_arith;
  (*t)["broadcast_plus"] = broadcast_arith;
  (*t)["broadcast_sub"] = broadcast_arith;
  (*t)["broadcast_minus"] = broadcast_arith;
  (*t)["broadcast_mul"] = broadcast_arith;
  (*t)["broadcast_div"] = broadcast_arith;
}

}  // namespace bmxrt
