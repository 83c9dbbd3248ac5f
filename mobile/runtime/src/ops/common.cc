#include "ops/common.h"

#include <cstring>

namespace bmxrt {

const std::set<std::string>& quant_attr_names() {
  static const std::set<std::string> names = {"act_bit", "weight_bit", "scaling_mode",
                                              "grad_cancel", "binarized_weights_only",
                                              "pad_value", "act_grad", "swish_beta"};
  return names;
}

QuantAttrs parse_quant(const Builder& b) {
  QuantAttrs q;
  auto bits = [&](const char* key) {
    const int64_t v = b.integer(key, 1);
    if (v < 1 || v > 32) {
      b.bad(std::string("parameter '") + key + "' = " + std::to_string(v) +
            ": must be in [1, 32] (1 = binary, 2..31 = k-bit, 32 = full precision)");
    }
    return static_cast<int>(v);
  };
  q.act_bit = bits("act_bit");
  q.weight_bit = bits("weight_bit");
  const std::string mode = b.str("scaling_mode", "none");
  if (mode != "none" && mode != "forward") {
    b.bad("parameter 'scaling_mode' = '" + mode + "': allowed values are 'none' and 'forward'");
  }
  q.scaling = mode == "forward";
  q.packed = b.boolean("binarized_weights_only", false);
  const int64_t pv = b.integer("pad_value", 0);
  if (pv != 0 && pv != 1 && pv != -1) {
    b.bad("parameter 'pad_value' = " + std::to_string(pv) + ": allowed values are 0, 1 and -1");
  }
  q.pad_value = static_cast<int>(pv);
  if (q.pad_value != 0 && q.act_bit != 1) {
    b.bad("parameter 'pad_value' needs act_bit = 1 (only binary inputs pad with +1/-1)");
  }
  b.expect_value("act_grad", {"ste", "approx_sign", "swish_sign"});
  return q;
}

void check_packed_tail(const Builder& b, const bmx::word_t* w, int64_t runs, int64_t words,
                       int64_t bits, const char* inputs) {
  const int64_t used = bits % bmx::kWordBits;
  if (used == 0) return;
  const bmx::word_t unused = ~((bmx::word_t{1} << used) - 1);
  for (int64_t r = 0; r < runs; ++r) {
    if (w[r * words + words - 1] & unused) {
      b.bad(std::string("packed weights have bits set past ") + inputs + " = " +
            std::to_string(bits) + ": they were packed for a layer with more inputs; "
            "re-convert the model with model_converter");
    }
  }
}

std::vector<bmx::word_t> packed_words(const Builder& b, int i, const Shape& shape) {
  const Tensor& t = b.param(i);
  if (t.dtype != kInt64) {
    b.bad("packed weight '" + t.name + "' is " + dtype_name(t.dtype) + ", expected int64 words "
          "(binarized_weights_only=True); re-convert the model with model_converter");
  }
  if (t.shape != shape) {
    b.bad("packed weight '" + t.name + "' has shape " + shape_str(t.shape) +
          " but the layer needs " + shape_str(shape));
  }
  std::vector<bmx::word_t> w(static_cast<size_t>(num_elements(shape)));
  if (!w.empty()) std::memcpy(w.data(), t.data.data(), w.size() * sizeof(bmx::word_t));
  return w;
}

namespace {

// A stand-alone element-wise layer: the output is a copy of the input with the post-ops applied
// (more post-ops may be fused behind it).
class PointwiseStep : public Step {
 public:
  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    const int64_t n = num_elements((*ctx.values)[output].shape);
    const int tasks = ctx.parallel->tasks_for(n);
    auto task = [&](int i) {
      const int64_t b = part_begin(n, tasks, i), e = part_begin(n, tasks, i + 1);
      std::memcpy(y + b, x + b, static_cast<size_t>(e - b) * sizeof(float));
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }
  std::string kernel() const override { return "pointwise"; }
};

}  // namespace

void pointwise(Builder& b, int i, PostOp op, const std::string& what) {
  const int in = b.value(i);
  Step* p = b.fusable_producer(i);
  if (p && (op.value < 0 || b.ready_before(op.value, p))) {
    p->post.ops.push_back(std::move(op));
    if (p->post.ops.back().value >= 0) p->inputs.push_back(p->post.ops.back().value);
    b.fused_into(p, what);
    return;
  }
  auto step = std::make_unique<PointwiseStep>();
  step->inputs.push_back(in);
  if (op.value >= 0) step->inputs.push_back(op.value);
  step->post.ops.push_back(std::move(op));
  if (!what.empty()) step->fused.push_back(what);
  b.emit(std::move(step), b.shape(i));
}

void batchnorm_affine(const PostOp& bn, std::vector<float>* mul, std::vector<float>* add) {
  const size_t n = bn.a.size();
  mul->resize(n);
  add->resize(n);
  for (size_t c = 0; c < n; ++c) {
    (*mul)[c] = bn.b[c];
    (*add)[c] = bn.c[c] - bn.a[c] * (*mul)[c];
  }
}

AxisSplit split_at(const Shape& s, size_t axis) {
  AxisSplit r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i < axis) r.outer *= s[i];
    else if (i == axis) r.len = s[i];
    else r.inner *= s[i];
  }
  return r;
}

}  // namespace bmxrt
