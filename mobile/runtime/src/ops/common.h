// Helpers shared by the operator compile functions.
#ifndef BMXNET_RUNTIME_OPS_COMMON_H_
#define BMXNET_RUNTIME_OPS_COMMON_H_

#include <set>
#include <string>
#include <vector>

#include "bmx_kernels.h"
#include "builder.h"

namespace bmxrt {

// The quantization attributes of QConvolution / QFullyConnected / QActivation, with the values
// and checks of operators/mxnet/common.cc (QuantParams::parse).
struct QuantAttrs {
  int act_bit = 1;
  int weight_bit = 1;
  bool scaling = false;  // scaling_mode == 'forward'
  bool packed = false;   // binarized_weights_only
  int pad_value = 0;
};
const std::set<std::string>& quant_attr_names();
QuantAttrs parse_quant(const Builder& b);

// Packed weights hold `runs` runs of `words` words of `bits` inputs; the unused high bits of each
// run's last word must be 0 (as MXNet's check_packed_tail demands). Fails (FORMAT) otherwise.
void check_packed_tail(const Builder& b, const bmx::word_t* w, int64_t runs, int64_t words,
                       int64_t bits, const char* inputs);

// Int64 packed weights of exactly `shape`, as words.
std::vector<bmx::word_t> packed_words(const Builder& b, int i, const Shape& shape);

// Adds a post-op behind input `i`'s producer when the node is its only reader, else emits a
// stand-alone step that copies input i and applies the post-op. `extra` is a value the post-op
// reads (kAddTensor) or -1.
void pointwise(Builder& b, int i, PostOp op, const std::string& what);

// y = (x - mean) * k + beta per channel, as an affine map y = x * mul + add, for folding into a
// float layer's weights and bias.
void batchnorm_affine(const PostOp& bn, std::vector<float>* mul, std::vector<float>* add);

// Elements before axis, along it, after it.
struct AxisSplit {
  int64_t outer = 1, len = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, size_t axis);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_OPS_COMMON_H_
