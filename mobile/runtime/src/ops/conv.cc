// Convolution (float: a GEMM whose B panels are the im2col of the input, computed on the fly,
// or the input itself for 1x1 / stride 1 / no padding) and QConvolution (packed 1-bit: the kernel core's bconv2d; k-bit: quantized weights
// and inputs through the float path), with the semantics of operators/mxnet/qconvolution.cc.
#include <cstring>

#include "kernels/float_ops.h"
#include "ops/common.h"
#include "ops/ops.h"
#include "quantize.h"

namespace bmxrt {
namespace {

const std::set<std::string>& conv_attr_names() {
  static const std::set<std::string> names = {"kernel", "stride", "dilate", "pad", "num_filter",
                                              "num_group", "no_bias", "layout", "workspace",
                                              "cudnn_tune", "cudnn_off"};
  return names;
}

// The layer's geometry from the attributes and the data shape x (checked).
bmx::BConv2DShape geometry(const Builder& b, const Shape& x) {
  if (!b.has("kernel")) b.bad("parameter 'kernel' is required");
  const std::vector<int64_t> kernel = b.tuple("kernel", 2, 1, 1, true);
  const std::vector<int64_t> stride = b.tuple("stride", 2, 1, 1);
  const std::vector<int64_t> dilate = b.tuple("dilate", 2, 1, 1);
  const std::vector<int64_t> pad = b.tuple("pad", 2, 0, 0);
  b.expect_value("layout", {"NCHW"});
  if (x.size() != 4) {
    b.unsupported("data has shape " + shape_str(x) + "; the runtime runs 2-D convolutions on "
                  "NCHW data");
  }
  bmx::BConv2DShape s;
  s.batch = x[0];
  s.in_channels = x[1];
  s.in_h = x[2];
  s.in_w = x[3];
  s.out_channels = b.required_size("num_filter", 1);
  s.groups = b.size("num_group", 1, 1);
  s.kernel_h = kernel[0];
  s.kernel_w = kernel[1];
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.dilate_h = dilate[0];
  s.dilate_w = dilate[1];
  s.pad_h = pad[0];
  s.pad_w = pad[1];
  if (s.in_channels % s.groups || s.out_channels % s.groups) {
    b.bad("channels in (" + std::to_string(s.in_channels) + ") and out (" +
          std::to_string(s.out_channels) + ") must be divisible by num_group = " +
          std::to_string(s.groups));
  }
  if (s.out_h() < 1 || s.out_w() < 1) {
    b.bad("the kernel (with dilation) is larger than the padded input " + shape_str(x));
  }
  num_elements({s.batch, s.out_channels, s.out_h(), s.out_w()});
  num_elements({s.out_channels, s.group_in(), s.kernel_h, s.kernel_w});
  num_elements({s.group_in() * s.kernel_h * s.kernel_w, s.out_h() * s.out_w()});
  return s;
}

Shape out_shape(const bmx::BConv2DShape& s) {
  return {s.batch, s.out_channels, s.out_h(), s.out_w()};
}

// --------------------------------------------------------------------------- float convolution
class FloatConvStep : public Step {
 public:
  // w: (out_channels, group_in * kh * kw); scale/bias: per output channel or empty; act_bit < 32
  // quantizes the input first (k-bit QConvolution), pad_fill is the border value.
  FloatConvStep(const bmx::BConv2DShape& s, std::vector<float> w, std::vector<float> scale,
                std::vector<float> bias, int act_bit, float pad_fill, bool foldable,
                bmx::Path path)
      : s_(s), w_(std::move(w)), scale_(std::move(scale)), bias_(std::move(bias)),
        act_bit_(act_bit), pad_fill_(pad_fill), foldable_(foldable),
        k_(float_kernels(path)) {
    direct_ = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
              s.pad_h == 0 && s.pad_w == 0;
  }

  int64_t workspace_floats() const override { return quant_floats(); }

  std::string kernel() const override {
    return std::string(direct_ ? "sgemm" : "implicit_im2col+sgemm") + "/" + k_.name;
  }

  bool fold_batchnorm(const std::vector<float>& mul, const std::vector<float>& add) override {
    if (!foldable_ || !scale_.empty()) return false;
    const int64_t per = static_cast<int64_t>(w_.size()) / s_.out_channels;
    fold_affine_into_rows(&w_, s_.out_channels, per, &bias_, mul, add);
    return true;
  }

  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    if (act_bit_ < 32) {
      float* xq = ctx.workspace;
      const int64_t n = s_.batch * s_.in_channels * s_.in_h * s_.in_w;
      const int tasks = ctx.parallel->tasks_for(n);
      auto quant = [&](int t) {
        const int64_t b0 = part_begin(n, tasks, t), b1 = part_begin(n, tasks, t + 1);
        bmx::quantize_activations(act_bit_, x + b0, xq + b0, b1 - b0);
      };
      ctx.parallel->run(tasks, quant);
      x = xq;
    }
    const int64_t P = plane(), Cg = s_.group_in(), Og = s_.group_out();
    const int64_t K = Cg * s_.kernel_h * s_.kernel_w;
    for (int64_t n = 0; n < s_.batch; ++n) {
      for (int64_t g = 0; g < s_.groups; ++g) {
        const float* img = x + (n * s_.in_channels + g * Cg) * s_.in_h * s_.in_w;
        // 1x1 / stride 1 / no padding: the image is the GEMM's B; else its im2col, made panel
        // by panel inside the GEMM.
        const MatrixPanels matrix{img, P};
        const ConvPanels conv{&s_, img, pad_fill_};
        const PackPanelFn pack = direct_ ? pack_matrix_panel : pack_conv_panel;
        const void* pack_ctx = direct_ ? static_cast<const void*>(&matrix) : &conv;
        float* out = y + (n * s_.out_channels + g * Og) * P;
        const float* scale = scale_.empty() ? nullptr : scale_.data() + g * Og;
        const float* bias = bias_.empty() ? nullptr : bias_.data() + g * Og;
        // y = acc * scale + bias per channel, in that order (MXNet's epilogue).
        auto epilogue = [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
          for (int64_t o = r0; o < r1; ++o) {
            float* row = out + o * P;
            if (scale) {
              const float a = scale[o], b = bias ? bias[o] : 0.f;
              for (int64_t i = c0; i < c1; ++i) row[i] = row[i] * a + b;
            } else if (bias) {
              for (int64_t i = c0; i < c1; ++i) row[i] = row[i] + bias[o];
            }
          }
        };
        parallel_gemm(*ctx.parallel, k_, Og, P, K, w_.data() + g * Og * K, K, pack, pack_ctx, out,
                      P, epilogue);
      }
    }
    finish(ctx);
  }

 private:
  int64_t plane() const { return s_.out_h() * s_.out_w(); }
  int64_t quant_floats() const {
    if (act_bit_ >= 32) return 0;
    return (s_.batch * s_.in_channels * s_.in_h * s_.in_w + 15) / 16 * 16;
  }
  bmx::BConv2DShape s_;
  std::vector<float> w_, scale_, bias_;
  int act_bit_;
  float pad_fill_;
  bool foldable_;
  bool direct_;
  const FloatKernels& k_;
};

// -------------------------------------------------------------------------- binary convolution
// The kernel core's packed xnor-popcount convolution (PlannedBinaryStep: float NCHW in and out).
class BinaryConvStep : public PlannedBinaryStep<bmx::BConv2DPlan> {
 public:
  BinaryConvStep(const Builder& b, const bmx::BConv2DShape& s, std::vector<bmx::word_t> w,
                 std::vector<float> scale, std::vector<float> bias)
      : PlannedBinaryStep("bconv2d", std::move(w), std::move(scale), std::move(bias)) {
    bmx::BConv2DOptions options;
    options.path = b.path();
    options.max_threads = b.num_threads();
    const std::string err = bmx::bconv2d_prepare(s, w_.data(), scale_or_null(), bias_or_null(),
                                                 options, &plan_);
    if (!err.empty()) b.bad(err);
  }
};

// ------------------------------------------------------------------------------------ compile
void convolution(Builder& b) {
  b.only_attrs(conv_attr_names());
  const bool no_bias = b.boolean("no_bias", false);
  b.expect_inputs(no_bias ? 2 : 3, no_bias ? 2 : 3);
  const bmx::BConv2DShape s = geometry(b, b.shape(0));
  std::vector<float> w = b.floats(1, {s.out_channels, s.group_in(), s.kernel_h, s.kernel_w},
                                  "weight");
  std::vector<float> bias = no_bias ? std::vector<float>() : b.floats(2, {s.out_channels}, "bias");
  auto step = std::make_unique<FloatConvStep>(s, std::move(w), std::vector<float>(),
                                              std::move(bias), 32, 0.f, true, b.path());
  step->inputs = {b.value(0)};
  b.emit(std::move(step), out_shape(s));
}

void qconvolution(Builder& b) {
  std::set<std::string> allowed = conv_attr_names();
  allowed.insert("in_channels");
  allowed.insert(quant_attr_names().begin(), quant_attr_names().end());
  b.only_attrs(allowed);
  const QuantAttrs q = parse_quant(b);
  const bool no_bias = b.boolean("no_bias", false);
  const int n_in = 2 + (no_bias ? 0 : 1) + (q.packed && q.scaling ? 1 : 0);
  b.expect_inputs(n_in, n_in);
  bmx::BConv2DShape s = geometry(b, b.shape(0));
  s.pad_value = q.pad_value;
  const int64_t in_channels = b.size("in_channels", 0, 1);
  if (q.packed && in_channels == 0) {
    b.bad("binarized_weights_only=True needs in_channels=<C>; re-convert the model with "
          "model_converter");
  }
  if (in_channels != 0 && in_channels != s.in_channels) {
    b.bad("parameter 'in_channels' = " + std::to_string(in_channels) + " but the data " +
          shape_str(b.shape(0)) + " has " + std::to_string(s.in_channels) + " channels: the "
          "weights belong to a layer with another input; set the input shape the model was "
          "made for");
  }
  const std::string check = bmx::bconv2d_check(s);
  if (!check.empty()) b.bad(check);
  std::vector<float> bias = no_bias ? std::vector<float>() : b.floats(2, {s.out_channels}, "bias");
  const int64_t O = s.out_channels, per = s.group_in() * s.kernel_h * s.kernel_w;
  std::unique_ptr<Step> step;
  if (q.packed) {
    const int64_t words = bmx::words_for(s.group_in());
    std::vector<bmx::word_t> w = packed_words(b, 1, {O, s.kernel_h, s.kernel_w, words});
    check_packed_tail(b, w.data(), O * s.kernel_h * s.kernel_w, words, s.group_in(),
                      "input channels per group");
    std::vector<float> scale = q.scaling ? b.floats(n_in - 1, {O}, "weight_scale")
                                         : std::vector<float>();
    step = std::make_unique<BinaryConvStep>(b, s, std::move(w), std::move(scale),
                                            std::move(bias));
  } else {
    std::vector<float> w = b.floats(1, {O, s.group_in(), s.kernel_h, s.kernel_w}, "weight");
    std::vector<float> scale;
    if (q.scaling) {
      scale.resize(static_cast<size_t>(O));
      bmx::channel_mean_abs(w.data(), O, per, scale.data());
    }
    if (q.act_bit == 1 && q.weight_bit == 1) {
      std::vector<bmx::word_t> packed(static_cast<size_t>(bmx::bconv2d_packed_weight_words(s)));
      bmx::pack_conv_weights(s, w.data(), packed.data());
      step = std::make_unique<BinaryConvStep>(b, s, std::move(packed), std::move(scale),
                                              std::move(bias));
    } else {
      std::vector<float> wq(w.size());
      bmx::quantize_weights(q.weight_bit, w.data(), wq.data(), static_cast<int64_t>(w.size()));
      step = std::make_unique<FloatConvStep>(s, std::move(wq), std::move(scale), std::move(bias),
                                             q.act_bit, static_cast<float>(q.pad_value), false,
                                             b.path());
    }
  }
  step->inputs = {b.value(0)};
  b.emit(std::move(step), out_shape(s));
}

}  // namespace

void register_convolution(OpTable* t) {
  (*t)["Convolution"] = convolution;
  (*t)["QConvolution"] = qconvolution;
}

}  // namespace bmxrt
