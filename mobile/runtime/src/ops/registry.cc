#include "ops/ops.h"

namespace bmxrt {
namespace {

const OpTable& table() {
  static const OpTable t = [] {
    OpTable m;
    register_convolution(&m);
    register_dense(&m);
    register_elementwise(&m);
    register_pooling(&m);
    register_shape(&m);
    register_softmax(&m);
    return m;
  }();
  return t;
}

}  // namespace

OpCompileFn find_op(const std::string& op) {
  auto it = table().find(op);
  return it == table().end() ? nullptr : it->second;
}

std::string supported_ops() {
  std::string s;
  for (const auto& kv : table()) s += (s.empty() ? "" : ", ") + kv.first;
  return s;
}

}  // namespace bmxrt
