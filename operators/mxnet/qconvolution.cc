// QConvolution: 2-D convolution with quantized (1..32 bit) inputs and weights.
//
// Inputs, in order: data (N, C, H, W) float32; weight; bias (num_filter,) unless no_bias;
// weight_scale (num_filter,) only when binarized_weights_only and scaling_mode='forward'.
// weight is float32 (num_filter, C/num_group, kh, kw), or, with binarized_weights_only, the
// packed int64 words (num_filter, kh, kw, ceil((C/num_group)/64)) written by model_converter.
// in_channels (as in Gluon's Conv2D) is C, the channel count of the data: checked against the
// data when given, and required with binarized_weights_only, since the packed shape is the same
// for many C and num_group (32 and 64 channels both take one word per tap).
//
// Forward:  y[n,o] = conv(Qa(x), Qw(W))[n,o] * alpha[o] + b[o],  alpha = mean|W[o]| under
//           scaling_mode='forward', else 1. 1-bit x 1-bit layers run on the packed xnor kernels.
// Backward: straight-through estimator; with g = dy * alpha,
//           dx = conv_data_grad(g, Qw(W)) * (|x| <= grad_cancel)   (act_bit < 32)
//           dW = conv_weight_grad(g, Qa(x)) * (|W| <= grad_cancel) (weight_bit < 32)
//           db = sum(dy). alpha is treated as a constant (no gradient flows into it).
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

constexpr const char* kOp = "QConvolution";

struct ConvParams {
  std::vector<int64_t> kernel, stride, dilate, pad;
  int64_t num_filter = 0, num_group = 1;
  int64_t in_channels = 0;  // 0: not given (required with binarized_weights_only)
  bool no_bias = false;
  QuantParams q;

  static ConvParams parse(const Attrs& attrs) {
    AttrReader r(attrs);
    std::set<std::string> allowed = {"kernel", "stride", "dilate", "pad", "num_filter",
                                     "num_group", "in_channels", "no_bias", "layout",
                                     "workspace", "cudnn_tune", "cudnn_off"};
    allowed.insert(QuantParams::attr_names().begin(), QuantParams::attr_names().end());
    r.reject_unknown(allowed);
    ConvParams p;
    p.kernel = r.required_tuple("kernel", 2, 1);
    p.stride = r.tuple("stride", 2, 1, 1);
    p.dilate = r.tuple("dilate", 2, 1, 1);
    p.pad = r.tuple("pad", 2, 0, 0);
    p.num_filter = r.required_size("num_filter", 1);
    p.num_group = r.size("num_group", 1, 1);
    p.in_channels = r.size("in_channels", 0, 1);
    p.no_bias = r.boolean("no_bias", false);
    const std::string layout = r.str("layout", "NCHW");
    if (layout != "NCHW") {
      throw OpError("parameter 'layout' = '" + layout + "': only 'NCHW' is supported");
    }
    if (p.num_filter % p.num_group != 0) {
      throw OpError("parameter 'num_filter' = " + std::to_string(p.num_filter) +
                    " must be divisible by num_group = " + std::to_string(p.num_group));
    }
    if (p.in_channels % p.num_group != 0) {
      throw OpError("parameter 'in_channels' = " + std::to_string(p.in_channels) +
                    " must be divisible by num_group = " + std::to_string(p.num_group));
    }
    p.q = QuantParams::parse(r, true);
    if (p.q.binarized_weights_only && p.in_channels == 0) {
      throw OpError("binarized_weights_only=True needs in_channels=<C>, the channel count of the "
                    "data (written by model_converter); re-convert the model with "
                    "model_converter");
    }
    return p;
  }

  WeightedInputs inputs() const { return {no_bias, q.binarized_weights_only && q.scaling}; }

  // Checks the data shape `x` against the parameters (a zero-size batch is allowed, zero-size
  // channels or planes are not) and returns the kernel's shape; the weight and output shapes
  // (weight_shape, out_shape) are then within MXNet's tensor size.
  bmx::BConv2DShape geometry(const Shape& x) const {
    if (x.size() != 4) {
      throw OpError("data must be a 4-D (batch, channel, height, width) tensor, got shape " +
                    shape_str(x) + "; reshape the input to NCHW");
    }
    elements(x, "data");
    if (x[1] < 1 || x[2] < 1 || x[3] < 1) {
      throw OpError("data has shape " + shape_str(x) + ": channels, height and width must be "
                    ">= 1; only the batch may be 0");
    }
    if (x[1] % num_group != 0) {
      throw OpError("input channels (" + std::to_string(x[1]) +
                    ") must be divisible by num_group = " + std::to_string(num_group));
    }
    if (in_channels != 0 && in_channels != x[1]) {
      throw OpError("parameter 'in_channels' = " + std::to_string(in_channels) +
                    " but the data " + shape_str(x) + " has " + std::to_string(x[1]) +
                    " channels: the weights belong to a layer with another input; feed the "
                    "data the model was made for");
    }
    bmx::BConv2DShape s;
    s.batch = x[0];
    s.in_channels = x[1];
    s.in_h = x[2];
    s.in_w = x[3];
    s.out_channels = num_filter;
    s.kernel_h = kernel[0];
    s.kernel_w = kernel[1];
    s.stride_h = stride[0];
    s.stride_w = stride[1];
    s.pad_h = pad[0];
    s.pad_w = pad[1];
    s.dilate_h = dilate[0];
    s.dilate_w = dilate[1];
    s.groups = num_group;
    s.pad_value = q.pad_value;
    // Every term is at most 2^31 - 1, so out_h() / out_w() cannot overflow.
    if (s.out_h() < 1 || s.out_w() < 1) {
      throw OpError("the kernel (with dilation) is larger than the padded input " + shape_str(x) +
                    "; use a smaller kernel or more padding");
    }
    elements(weight_shape(s), "weight");
    elements(out_shape(s), "output");
    return s;
  }

  Shape weight_shape(const bmx::BConv2DShape& s) const {
    if (q.binarized_weights_only) {
      return {num_filter, kernel[0], kernel[1], bmx::words_for(s.group_in())};
    }
    return {num_filter, s.group_in(), kernel[0], kernel[1]};
  }

  Shape out_shape(const bmx::BConv2DShape& s) const {
    return {s.batch, num_filter, s.out_h(), s.out_w()};
  }
};

MXReturnValue parse_attrs(const Attrs& attrs, int* num_in, int* num_out) {
  return guard(kOp, [&] {
    *num_in = ConvParams::parse(attrs).inputs().count();
    *num_out = 1;
  });
}

MXReturnValue infer_type(const Attrs& attrs, std::vector<int>* in, std::vector<int>* out) {
  return guard(kOp, [&] {
    infer_weighted_types(ConvParams::parse(attrs).q.binarized_weights_only, in, out);
  });
}

MXReturnValue infer_shape(const Attrs& attrs, std::vector<std::vector<unsigned>>* in,
                          std::vector<std::vector<unsigned>>* out) {
  return guard(kOp, [&] {
    const ConvParams p = ConvParams::parse(attrs);
    const Shape x = known_shape(in->at(0), "data");
    const bmx::BConv2DShape s = p.geometry(x);
    expect_shape(in, 1, p.weight_shape(s), "weight", x);
    const WeightedInputs io = p.inputs();
    const Shape per_channel = {p.num_filter};
    if (io.bias() >= 0) expect_shape(in, io.bias(), per_channel, "bias", x);
    if (io.scale() >= 0) expect_shape(in, io.scale(), per_channel, "weight_scale", x);
    out->at(0) = to_infer(p.out_shape(s));
  });
}

ConvGeom group_geom(const bmx::BConv2DShape& s) {
  return ConvGeom{s.group_in(), s.in_h,     s.in_w,     s.kernel_h, s.kernel_w,
                  s.pad_h,      s.pad_w,    s.stride_h, s.stride_w, s.dilate_h,
                  s.dilate_w,   s.out_h(),  s.out_w()};
}

// Float path: y = conv(xq, wq) before the epilogue (xq, wq already quantized). The batch is
// processed in chunks of images whose im2col columns sit side by side, one GEMM per chunk and
// group.
// Images per chunk of the float path and the sizes of its im2col and output buffers.
struct ChunkPlan {
  int64_t images, col_floats, side_floats;
};
ChunkPlan plan_chunks(const bmx::BConv2DShape& s) {
  const ConvGeom g = group_geom(s);
  const int64_t images = images_per_chunk(g.col_rows() * g.col_cols(), s.batch);
  return {images, g.col_rows() * g.col_cols() * images, s.group_out() * g.col_cols() * images};
}

void conv_forward_float(const bmx::BConv2DShape& s, const float* xq, const float* wq,
                        float pad_fill, float* y, float* col, float* side) {
  const int64_t Cg = s.group_in(), Og = s.group_out();
  const ConvGeom g = group_geom(s);
  const int64_t K = g.col_rows(), P = g.col_cols();
  const int64_t in_stride = s.in_channels * s.in_h * s.in_w, out_stride = s.out_channels * P;
  const int64_t chunk = plan_chunks(s).images;
  for (int64_t n0 = 0; n0 < s.batch; n0 += chunk) {
    const int64_t count = std::min(chunk, s.batch - n0);
    for (int64_t gi = 0; gi < s.groups; ++gi) {
      im2col(g, xq + n0 * in_stride + gi * Cg * s.in_h * s.in_w, in_stride, count, pad_fill,
             col);
      sgemm(false, false, Og, count * P, K, 1.f, wq + gi * Og * K, K, col, count * P, 0.f, side,
            count * P);
      from_side_by_side(side, count, Og, P, y + n0 * out_stride + gi * Og * P, out_stride);
    }
  }
}

// y = y * scale[o] + bias[o] per output channel (either may be null).
void epilogue(float* y, int64_t batch, int64_t channels, int64_t plane, const float* scale,
              const float* bias) {
  if (!scale && !bias) return;
#pragma omp parallel for collapse(2) if (batch * channels * plane > (1 << 16))
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t o = 0; o < channels; ++o) {
      float* row = y + (n * channels + o) * plane;
      const float a = scale ? scale[o] : 1.f, b = bias ? bias[o] : 0.f;
      if (scale) for (int64_t i = 0; i < plane; ++i) row[i] = row[i] * a + b;
      else for (int64_t i = 0; i < plane; ++i) row[i] = row[i] + b;
    }
  }
}

// The operator's computation; StatefulOp<QConvState> (common.h) wraps it for lib_api.
class QConvState {
 public:
  static constexpr const char* kName = kOp;
  explicit QConvState(const ConvParams& p) : p_(p) {}

  // Checks the data shape and the parameter inputs in[first], in[first + 1], ... (weight, bias,
  // weight_scale) exactly: shape inference may have filled in a shape the real array lacks.
  bmx::BConv2DShape check(const Shape& x, const std::vector<MXTensor>& in, size_t first) const {
    const bmx::BConv2DShape s = p_.geometry(x);
    expect_tensor(in[first], p_.weight_shape(s), "weight", x);
    const WeightedInputs io = p_.inputs();
    if (io.bias() >= 0) expect_tensor(in[first - 1 + io.bias()], {p_.num_filter}, "bias", x);
    if (io.scale() >= 0) {
      expect_tensor(in[first - 1 + io.scale()], {p_.num_filter}, "weight_scale", x);
    }
    return s;
  }

  void forward(std::vector<MXTensor>& in, MXTensor* out, const OpResource& res) {
    // in = [x, w, (bias), (weight_scale)]
    const bmx::BConv2DShape s = check(in[0].shape, in, 1);
    expect_tensor(*out, p_.out_shape(s), "output", in[0].shape);
    MXTensor& x = in[0];
    MXTensor& w = in[1];
    const WeightedInputs io = p_.inputs();
    const float* bias = io.bias() >= 0 ? in[io.bias()].data<float>() : nullptr;
    float* y = out->data<float>();
    if (s.batch == 0) {  // nothing to compute; packed weights are still checked
      if (p_.q.binarized_weights_only) {
        check_packed_tail(reinterpret_cast<const uint64_t*>(w.data<int64_t>()),
                          s.out_channels * s.kernel_h * s.kernel_w, bmx::words_for(s.group_in()),
                          s.group_in(), "input channels per group");
      }
      return;
    }
    if (p_.q.binarized_weights_only || (p_.q.act_bit == 1 && p_.q.weight_bit == 1)) {
      // 1-bit layer: packed weights and plan from the layer cache (common.h).
      const float* weight_scale = io.scale() >= 0 ? in[io.scale()].data<float>() : nullptr;
      cached_bconv2d(s, one_bit_weights(p_.q, w, p_.num_filter, weight_scale), x.data<float>(),
                     bias, y);
      return;
    }
    const float* scale = scale_.of(p_.q.scaling, w, p_.num_filter);
    const ChunkPlan plan = plan_chunks(s);
    const Scratch buf(res, {x.size(), w.size(), plan.col_floats, plan.side_floats});
    float *xq = buf[0], *wq = buf[1];
    bmx::quantize_activations(p_.q.act_bit, x.data<float>(), xq, x.size());
    bmx::quantize_weights(p_.q.weight_bit, w.data<float>(), wq, w.size());
    conv_forward_float(s, xq, wq, static_cast<float>(p_.q.pad_value), y, buf[2], buf[3]);
    epilogue(y, s.batch, s.out_channels, s.out_h() * s.out_w(), scale, bias);
  }

  void backward(std::vector<MXTensor>& in, std::vector<MXTensor>* out, const OpResource& res) {
    if (p_.q.binarized_weights_only) {
      throw OpError("no gradient for packed weights (binarized_weights_only=True is an "
                    "inference-only model); train the unconverted model instead");
    }
    // in = [dy, x, w, (bias), y]; out = [dx, dw, (dbias)]
    MXTensor& dy_t = in[0];
    MXTensor& x = in[1];
    MXTensor& w = in[2];
    const bmx::BConv2DShape s = check(x.shape, in, 2);
    expect_tensor(dy_t, p_.out_shape(s), "output gradient", x.shape);
    expect_tensor(out->at(0), x.shape, "data gradient", x.shape);
    expect_tensor(out->at(1), p_.weight_shape(s), "weight gradient", x.shape);
    if (!p_.no_bias) expect_tensor(out->at(2), {p_.num_filter}, "bias gradient", x.shape);
    const int64_t G = s.groups, Cg = s.group_in(), Og = s.group_out();
    const ConvGeom g = group_geom(s);
    const int64_t K = g.col_rows(), P = g.col_cols();
    const float* dy = dy_t.data<float>();
    float* dx = out->at(0).data<float>();
    float* dw = out->at(1).data<float>();

    if (!p_.no_bias) {
      float* db = out->at(2).data<float>();
      for (int64_t o = 0; o < s.out_channels; ++o) {
        double acc = 0;
        for (int64_t n = 0; n < s.batch; ++n) {
          const float* row = dy + (n * s.out_channels + o) * P;
          for (int64_t i = 0; i < P; ++i) acc += row[i];
        }
        db[o] = static_cast<float>(acc);
      }
    }
    if (s.batch == 0) {  // an empty batch: no data gradient, a zero weight gradient
      std::fill(dw, dw + w.size(), 0.f);
      return;
    }
    // g = dy * alpha (alpha is a constant per output channel).
    const float* scale = scale_.of(p_.q.scaling, w, p_.num_filter);
    const ChunkPlan plan = plan_chunks(s);
    const int64_t chunk = plan.images;
    const Scratch buf(res, {scale ? dy_t.size() : 0, x.size(), w.size(), plan.col_floats,
                            plan.side_floats});
    float *xq = buf[1], *wq = buf[2], *col = buf[3], *side = buf[4];
    if (scale) {
      std::memcpy(buf[0], dy, sizeof(float) * static_cast<size_t>(dy_t.size()));
      epilogue(buf[0], s.batch, s.out_channels, P, scale, nullptr);
      dy = buf[0];
    }
    bmx::quantize_activations(p_.q.act_bit, x.data<float>(), xq, x.size());
    bmx::quantize_weights(p_.q.weight_bit, w.data<float>(), wq, w.size());
    // Chunks of images side by side: per chunk and group one im2col, one GEMM for dW and one for
    // the column gradients, one col2im.
    const int64_t in_stride = s.in_channels * s.in_h * s.in_w, out_stride = s.out_channels * P;
#pragma omp parallel for if (x.size() > (1 << 16))
    for (int64_t i = 0; i < x.size(); ++i) dx[i] = 0.f;
    for (int64_t n0 = 0; n0 < s.batch; n0 += chunk) {
      const int64_t count = std::min(chunk, s.batch - n0), cols = count * P;
      for (int64_t gi = 0; gi < G; ++gi) {
        const int64_t in_off = n0 * in_stride + gi * Cg * s.in_h * s.in_w;
        to_side_by_side(dy + n0 * out_stride + gi * Og * P, out_stride, count, Og, P, side);
        // dW_g += dy_g (Og x cols) * col^T (cols x K)
        im2col(g, xq + in_off, in_stride, count, static_cast<float>(p_.q.pad_value), col);
        sgemm(false, true, Og, K, cols, 1.f, side, cols, col, cols, n0 == 0 ? 0.f : 1.f,
              dw + gi * Og * K, K);
        // dcol = W_g^T (K x Og) * dy_g (Og x cols); dx += col2im(dcol)
        sgemm(true, false, K, cols, Og, 1.f, wq + gi * Og * K, K, side, cols, 0.f, col, cols);
        col2im_add(g, col, count, dx + in_off, in_stride);
      }
    }
    act_grad(p_.q, x.data<float>(), dx, dx, x.size());
    if (p_.q.weight_bit < 32) ste_mask(w.data<float>(), dw, dw, w.size(), p_.q.grad_cancel);
  }

 private:
  ConvParams p_;
  ChannelScale scale_;
};

}  // namespace
}  // namespace bmx_mx

REGISTER_OP(QConvolution)
    .setParseAttrs(bmx_mx::parse_attrs)
    .setInferType(bmx_mx::infer_type)
    .setInferShape(bmx_mx::infer_shape)
    .setCreateOpState(bmx_mx::create_stateful_op<bmx_mx::QConvState, bmx_mx::ConvParams>, "cpu");
