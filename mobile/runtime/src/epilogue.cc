#include "epilogue.h"

#include <cmath>

#include "quantize.h"

namespace bmxrt {

namespace {

// MXNet's softrelu (mshadow_op::softrelu): x itself past 20, where log1p(exp(x)) == x in float.
inline float softrelu(float x) { return x > 20.f ? x : std::log1p(std::exp(x)); }

}  // namespace

void apply_post_op(const PostOp& op, float* y, const float* t, int64_t ch, int64_t n) {
  switch (op.kind) {
    case PostKind::kBatchNorm: {
      const float mean = op.a[ch], k = op.b[ch], beta = op.c[ch];
      for (int64_t i = 0; i < n; ++i) y[i] = (y[i] - mean) * k + beta;
      break;
    }
    case PostKind::kAddChannel: {
      const float a = op.a.size() == 1 ? op.a[0] : op.a[ch];
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] + a;
      break;
    }
    case PostKind::kMulChannel: {
      const float a = op.a.size() == 1 ? op.a[0] : op.a[ch];
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] * a;
      break;
    }
    case PostKind::kAddTensor:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] + t[i];
      break;
    case PostKind::kRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : 0.f;
      break;
    case PostKind::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = 1.f / (1.f + std::exp(-y[i]));
      break;
    case PostKind::kTanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(y[i]);
      break;
    case PostKind::kSoftrelu:
      for (int64_t i = 0; i < n; ++i) y[i] = softrelu(y[i]);
      break;
    case PostKind::kLeaky:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : op.s * y[i];
      break;
    case PostKind::kPrelu: {
      const float a = op.a.size() == 1 ? op.a[0] : op.a[ch];
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : a * y[i];
      break;
    }
    case PostKind::kElu:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] > 0.f ? y[i] : op.s * std::expm1(y[i]);
      break;
    case PostKind::kSign:
      for (int64_t i = 0; i < n; ++i) y[i] = bmx::sign_pm1(y[i]);
      break;
    case PostKind::kSignZero:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] < 0.f ? -1.f : (y[i] > 0.f ? 1.f : 0.f);
      break;
    case PostKind::kRsubScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = op.s - y[i];
      break;
    case PostKind::kDivScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = y[i] / op.s;
      break;
    case PostKind::kRdivScalar:
      for (int64_t i = 0; i < n; ++i) y[i] = op.s / y[i];
      break;
    case PostKind::kQuantize:
      for (int64_t i = 0; i < n; ++i) {
        y[i] = std::nearbyint(op.s * std::fmin(std::fmax(y[i], 0.f), 1.f)) / op.s;
      }
      break;
    case PostKind::kClip:
      for (int64_t i = 0; i < n; ++i) y[i] = std::fmin(std::fmax(y[i], op.s), op.t);
      break;
  }
}

void Epilogue::apply(float* y, const float* const* tensors, int64_t channels, int64_t plane,
                     int64_t row_begin, int64_t row_end) const {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t ch = r % channels;
    float* row = y + r * plane;
    for (size_t k = 0; k < ops.size(); ++k) {
      apply_post_op(ops[k], row, tensors[k] ? tensors[k] + r * plane : nullptr, ch, plane);
    }
  }
}

}  // namespace bmxrt
