// Pooling over NCHW planes with MXNet's window arithmetic (src/operator/nn/pool.h): max, avg and
// sum, global or windowed, pooling_convention 'valid' (floor) or 'full' (ceil), and for avg the
// divisor of count_include_pad (the window clipped to the padded input) or of the real pixels.
#include <cmath>
#include <limits>

#include "ops/common.h"
#include "ops/ops.h"

namespace bmxrt {
namespace {

enum class PoolType { kMax, kAvg, kSum };

struct PoolShape {
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

class PoolingStep : public Step {
 public:
  PoolingStep(const PoolShape& s, PoolType type, bool count_include_pad)
      : s_(s), type_(type), count_include_pad_(count_include_pad) {}

  std::string kernel() const override {
    return type_ == PoolType::kMax ? "max_pool" : type_ == PoolType::kAvg ? "avg_pool" : "sum_pool";
  }

  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    const int tasks = ctx.parallel->tasks_for(s_.planes * s_.out_h * s_.out_w * s_.kernel_h *
                                              s_.kernel_w);
    const bool separable = type_ == PoolType::kMax && s_.in_w <= kMaxRow;
    auto task = [&](int t) {
      for (int64_t p = part_begin(s_.planes, tasks, t); p < part_begin(s_.planes, tasks, t + 1);
           ++p) {
        const float* in = x + p * s_.in_h * s_.in_w;
        float* out = y + p * s_.out_h * s_.out_w;
        if (separable) max_plane(in, out);
        else plane(in, out);
      }
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }

 private:
  static constexpr int64_t kMaxRow = 2048;

  // Max pooling in two passes per output row: the window's rows reduced into one row (a
  // contiguous loop the compiler vectorises), then the window's columns of that row. max is
  // exact in any order, so this equals the direct loop bit for bit.
  void max_plane(const float* x, float* y) const {
    float row[kMaxRow];
    for (int64_t oy = 0; oy < s_.out_h; ++oy) {
      const int64_t h0 = std::max<int64_t>(oy * s_.stride_h - s_.pad_h, 0);
      const int64_t h1 = std::min(oy * s_.stride_h - s_.pad_h + s_.kernel_h, s_.in_h);
      for (int64_t w = 0; w < s_.in_w; ++w) row[w] = std::numeric_limits<float>::lowest();
      for (int64_t h = h0; h < h1; ++h) {
        const float* src = x + h * s_.in_w;
        for (int64_t w = 0; w < s_.in_w; ++w) row[w] = src[w] > row[w] ? src[w] : row[w];
      }
      float* out = y + oy * s_.out_w;
      for (int64_t ox = 0; ox < s_.out_w; ++ox) {
        const int64_t w0 = std::max<int64_t>(ox * s_.stride_w - s_.pad_w, 0);
        const int64_t w1 = std::min(ox * s_.stride_w - s_.pad_w + s_.kernel_w, s_.in_w);
        float m = std::numeric_limits<float>::lowest();
        for (int64_t w = w0; w < w1; ++w) m = row[w] > m ? row[w] : m;
        out[ox] = m;
      }
    }
  }

  void plane(const float* x, float* y) const {
    for (int64_t oy = 0; oy < s_.out_h; ++oy) {
      for (int64_t ox = 0; ox < s_.out_w; ++ox) {
        int64_t h0 = oy * s_.stride_h - s_.pad_h, w0 = ox * s_.stride_w - s_.pad_w;
        int64_t h1 = std::min(h0 + s_.kernel_h, s_.in_h + s_.pad_h);
        int64_t w1 = std::min(w0 + s_.kernel_w, s_.in_w + s_.pad_w);
        int64_t pool_size = (h1 - h0) * (w1 - w0);
        h0 = std::max<int64_t>(h0, 0);
        w0 = std::max<int64_t>(w0, 0);
        h1 = std::min(h1, s_.in_h);
        w1 = std::min(w1, s_.in_w);
        float& out = y[oy * s_.out_w + ox];
        if (type_ == PoolType::kMax) {
          float m = std::numeric_limits<float>::lowest();
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) m = x[h * s_.in_w + w] > m ? x[h * s_.in_w + w] : m;
          out = m;
          continue;
        }
        float sum = 0.f;
        for (int64_t h = h0; h < h1; ++h)
          for (int64_t w = w0; w < w1; ++w) sum += x[h * s_.in_w + w];
        if (type_ == PoolType::kSum) {
          out = sum;
          continue;
        }
        if (!count_include_pad_) pool_size = (h1 - h0) * (w1 - w0);
        out = pool_size > 0 ? sum / static_cast<float>(pool_size)
                            : std::numeric_limits<float>::quiet_NaN();
      }
    }
  }

  PoolShape s_;
  PoolType type_;
  bool count_include_pad_;
};

void pooling(Builder& b) {
  b.only_attrs({"kernel", "pool_type", "global_pool", "pooling_convention", "stride", "pad",
                "cudnn_off", "p_value", "count_include_pad", "layout"});
  b.expect_inputs(1, 1);
  b.expect_value("layout", {"NCHW"});
  const Shape& x = b.shape(0);
  if (x.size() != 4) {
    b.unsupported("data has shape " + shape_str(x) + "; the runtime pools 2-D NCHW data");
  }
  const std::string type = b.str("pool_type", "max");
  PoolType pt;
  if (type == "max") pt = PoolType::kMax;
  else if (type == "avg") pt = PoolType::kAvg;
  else if (type == "sum") pt = PoolType::kSum;
  else b.unsupported("pool_type '" + type + "' is not supported; the runtime runs max, avg, sum");
  const std::string conv = b.str("pooling_convention", "valid");
  if (conv != "valid" && conv != "full") {
    b.unsupported("pooling_convention '" + conv + "' is not supported; the runtime runs 'valid' "
                  "and 'full'");
  }
  PoolShape s;
  s.planes = x[0] * x[1];
  s.in_h = x[2];
  s.in_w = x[3];
  if (b.boolean("global_pool", false)) {
    s.kernel_h = s.in_h;
    s.kernel_w = s.in_w;
    s.stride_h = s.stride_w = 1;
    s.pad_h = s.pad_w = 0;
  } else {
    if (!b.has("kernel")) b.bad("parameter 'kernel' is required unless global_pool=True");
    const std::vector<int64_t> k = b.tuple("kernel", 2, 1, 1, true);
    const std::vector<int64_t> st = b.tuple("stride", 2, 1, 1);
    const std::vector<int64_t> p = b.tuple("pad", 2, 0, 0);
    s.kernel_h = k[0];
    s.kernel_w = k[1];
    s.stride_h = st[0];
    s.stride_w = st[1];
    s.pad_h = p[0];
    s.pad_w = p[1];
  }
  const int64_t span_h = s.in_h + 2 * s.pad_h - s.kernel_h;
  const int64_t span_w = s.in_w + 2 * s.pad_w - s.kernel_w;
  if (span_h < 0 || span_w < 0) {
    b.bad("the kernel is larger than the padded input " + shape_str(x));
  }
  if (conv == "valid") {
    s.out_h = 1 + span_h / s.stride_h;
    s.out_w = 1 + span_w / s.stride_w;
  } else {
    s.out_h = 1 + (span_h + s.stride_h - 1) / s.stride_h;
    s.out_w = 1 + (span_w + s.stride_w - 1) / s.stride_w;
  }
  auto step = std::make_unique<PoolingStep>(s, pt, b.boolean("count_include_pad", true));
  step->inputs = {b.value(0)};
  b.emit(std::move(step), {x[0], x[1], s.out_h, s.out_w});
}

}  // namespace

void register_pooling(OpTable* t) { (*t)["Pooling"] = pooling; }

}  // namespace bmxrt
