// softmax / log_softmax (axis, temperature), and the loss layers' inference forms: SoftmaxOutput
// and SoftmaxActivation are a softmax (their label input is ignored).
#include <cmath>

#include "ops/common.h"
#include "ops/ops.h"

namespace bmxrt {
namespace {

class SoftmaxStep : public Step {
 public:
  SoftmaxStep(AxisSplit a, float temperature, bool log)
      : a_(a), temperature_(temperature), log_(log) {}
  std::string kernel() const override { return log_ ? "log_softmax" : "softmax"; }
  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    const int64_t rows = a_.outer * a_.inner;
    const int tasks = ctx.parallel->tasks_for(rows * a_.len * 8);
    auto task = [&](int t) {
      for (int64_t r = part_begin(rows, tasks, t); r < part_begin(rows, tasks, t + 1); ++r) {
        const int64_t base = (r / a_.inner) * a_.len * a_.inner + r % a_.inner;
        one(x + base, y + base);
      }
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }

 private:
  // MXNet's softmax: m = max, y = exp((x - m) / t) / sum; log: (x - m) / t - log(sum).
  void one(const float* x, float* y) const {
    const int64_t st = a_.inner;
    float m = x[0];
    for (int64_t i = 1; i < a_.len; ++i) m = x[i * st] > m ? x[i * st] : m;
    float sum = 0.f;
    for (int64_t i = 0; i < a_.len; ++i) sum += std::exp((x[i * st] - m) / temperature_);
    if (log_) {
      const float ls = std::log(sum);
      for (int64_t i = 0; i < a_.len; ++i) y[i * st] = (x[i * st] - m) / temperature_ - ls;
    } else {
      for (int64_t i = 0; i < a_.len; ++i) y[i * st] = std::exp((x[i * st] - m) / temperature_) / sum;
    }
  }
  AxisSplit a_;
  float temperature_;
  bool log_;
};

void emit_softmax(Builder& b, AxisSplit a, float temperature, bool log) {
  auto step = std::make_unique<SoftmaxStep>(a, temperature, log);
  step->inputs = {b.value(0)};
  b.emit(std::move(step), b.shape(0));
}

void softmax(Builder& b) {
  b.only_attrs({"axis", "temperature", "dtype", "use_length"});
  b.expect_inputs(1, 1);
  if (b.boolean("use_length", false)) b.unsupported("use_length=True is not supported");
  b.expect_value("dtype", {"float32"});
  const Shape& x = b.shape(0);
  int64_t axis = b.integer("axis", -1);
  if (axis < 0) axis += static_cast<int64_t>(x.size());
  if (axis < 0 || axis >= static_cast<int64_t>(x.size())) {
    b.bad("parameter 'axis' is out of range for " + shape_str(x));
  }
  const double t = b.real("temperature", 1.0);
  if (t == 0) b.bad("parameter 'temperature' must not be 0");
  emit_softmax(b, split_at(x, static_cast<size_t>(axis)), static_cast<float>(t),
               b.node().op == "log_softmax");
}

// SoftmaxOutput: over all but the first axis, axis 1 with multi_output, the last axis with
// preserve_shape (src/operator/softmax_output-inl.h).
void softmax_output(Builder& b) {
  b.only_attrs({"grad_scale", "ignore_label", "multi_output", "use_ignore", "preserve_shape",
                "normalization", "out_grad", "smooth_alpha"});
  b.expect_inputs(1, 2);
  const Shape& x = b.shape(0);
  AxisSplit a;
  if (b.boolean("preserve_shape", false)) {
    a = split_at(x, x.size() - 1);
  } else if (b.boolean("multi_output", false)) {
    if (x.size() < 2) b.bad("multi_output needs at least 2-D data");
    a = split_at(x, 1);
  } else {
    a.outer = x.empty() ? 1 : x[0];
    a.len = a.outer ? num_elements(x) / a.outer : 0;
  }
  emit_softmax(b, a, 1.f, false);
}

void softmax_activation(Builder& b) {
  b.only_attrs({"mode"});
  b.expect_inputs(1, 1);
  const Shape& x = b.shape(0);
  AxisSplit a;
  if (b.str("mode", "instance") == "channel") {
    if (x.size() < 2) b.bad("mode='channel' needs at least 2-D data");
    a = split_at(x, 1);
  } else {
    b.expect_value("mode", {"instance"});
    a.outer = x.empty() ? 1 : x[0];
    a.len = a.outer ? num_elements(x) / a.outer : 0;
  }
  emit_softmax(b, a, 1.f, false);
}

}  // namespace

void register_softmax(OpTable* t) {
  (*t)["softmax"] = softmax;
  (*t)["log_softmax"] = softmax;
  (*t)["SoftmaxOutput"] = softmax_output;
  (*t)["Softmax"] = softmax_output;
  (*t)["SoftmaxActivation"] = softmax_activation;
}

}  // namespace bmxrt
