// Post-ops: the element-wise layers fused behind a layer that writes channels on axis 1
// (BatchNorm, activations, PReLU, per-channel adds, a residual add). They run on the layer's
// output rows right after it is written, in the order of the graph, each with exactly the float
// arithmetic of the MXNet operator it replaces, so fusing never changes a value.
#ifndef BMXNET_RUNTIME_EPILOGUE_H_
#define BMXNET_RUNTIME_EPILOGUE_H_

#include <cstdint>
#include <vector>

namespace bmxrt {

enum class PostKind {
  kBatchNorm,   // (y - a[c]) * b[c] + c[c]: moving mean, gamma / sqrtf(moving_var + eps), beta
  kAddChannel,  // y + a[c]  (broadcast_add of a (1, C, 1, ...) constant; a[0] if a has 1 value)
  kMulChannel,  // y * a[c]  (broadcast_mul likewise, and _mul_scalar)
  kAddTensor,   // y + t[i]         (elemwise_add of another tensor of the same shape)
  kRelu,
  kSigmoid,
  kTanh,
  kSoftrelu,
  kLeaky,       // y > 0 ? y : s * y
  kPrelu,       // y > 0 ? y : a[c] * y   (a has C values, or 1 for all channels)
  kElu,         // y > 0 ? y : s * (exp(y) - 1)
  kSign,        // QActivation act_bit = 1: y >= 0 ? 1 : -1
  kSignZero,    // mx.sym.sign: y > 0 ? 1 : y < 0 ? -1 : 0
  kRsubScalar,  // s - y
  kDivScalar,   // y / s
  kRdivScalar,  // s / y
  kQuantize,    // QActivation act_bit = k: rint(s * clip(y, 0, 1)) / s, s = 2^k - 1
  kClip,        // min(max(y, s), t)
};

struct PostOp {
  PostKind kind;
  std::vector<float> a, b, c;  // per-channel parameters
  float s = 0.f, t = 0.f;         // scalars
  int value = -1;                 // kAddTensor: the value added
};

// The fused post-ops of one step. apply() treats y as (outer, channels, plane) and processes the
// (outer, channel) rows [row_begin, row_end); tensors[i] is the data of ops[i].value (or null).
struct Epilogue {
  std::vector<PostOp> ops;
  bool empty() const { return ops.empty(); }
  void apply(float* y, const float* const* tensors, int64_t channels, int64_t plane,
             int64_t row_begin, int64_t row_end) const;
};

// One post-op on a whole contiguous row of `n` values of channel `ch` (t: the kAddTensor row).
void apply_post_op(const PostOp& op, float* y, const float* t, int64_t ch, int64_t n);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_EPILOGUE_H_
