// What an operator's compile function (ops/*.cc) sees of the graph: the node, its attributes
// (parsed with MXNet's string forms), its inputs (activations or parameters), and calls to emit
// a step, alias an input (Reshape...), or fuse into the step that produced an input.
// Every error names the node: "node 12 'stage1_conv0' (Pooling): ...".
#ifndef BMXNET_RUNTIME_BUILDER_H_
#define BMXNET_RUNTIME_BUILDER_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "graph.h"

namespace bmxrt {

class Compiler;

class Builder {
 public:
  Builder(Compiler* compiler, int node_index) : c_(compiler), index_(node_index) {}

  const Node& node() const;
  // "node 12 'name' (Op): " + why
  std::string where(const std::string& why) const;
  [[noreturn]] void unsupported(const std::string& why) const;  // BMX_ERROR_UNSUPPORTED
  [[noreturn]] void bad(const std::string& why) const;          // BMX_ERROR_FORMAT

  // ---- attributes ("None" counts as absent)
  bool has(const std::string& key) const;
  std::string str(const std::string& key, const std::string& def) const;
  int64_t integer(const std::string& key, int64_t def) const;
  // an integer in [lo, kMaxElements]
  int64_t size(const std::string& key, int64_t def, int64_t lo) const;
  int64_t required_size(const std::string& key, int64_t lo) const;
  double real(const std::string& key, double def) const;
  bool boolean(const std::string& key, bool def) const;
  // n sizes in [lo, kMaxElements]; def when absent; one value is broadcast ("3" -> (3, 3))
  // unless exact (a convolution's kernel: its length gives the number of spatial axes).
  std::vector<int64_t> tuple(const std::string& key, size_t n, int64_t def, int64_t lo,
                             bool exact = false) const;
  // Refuses (UNSUPPORTED) any attribute outside `allowed` that is not hidden ("__...").
  void only_attrs(const std::set<std::string>& allowed) const;
  // Refuses unless the attribute is absent or equals one of `values` (after trimming).
  void expect_value(const std::string& key, const std::set<std::string>& values) const;

  // ---- inputs
  int num_inputs() const;
  void expect_inputs(int lo, int hi) const;  // FORMAT unless lo <= num_inputs() <= hi
  bool is_param(int i) const;                // a tensor from the params file
  const Tensor& param(int i) const;
  // Float32 parameter data, checked to have exactly `shape` (`what` names it in errors).
  std::vector<float> floats(int i, const Shape& shape, const char* what) const;
  int value(int i) const;  // the value of input i (a constant for a parameter)
  // A copy: making values (value() of a parameter, emit) moves the table that holds shapes.
  Shape shape(int i) const { return c_value(value(i)).shape; }
  // The data of input i when it is a constant (a parameter, or a Reshape of one), else null.
  const float* constant_data(int i) const { return c_value(value(i)).constant; }

  // ---- results (exactly one per node)
  // Adds the step (its inputs, op and name filled in here) writing a new value of `shape`.
  Step* emit(std::unique_ptr<Step> step, const Shape& shape);
  // The node's output is input i seen with another shape (same elements, no copy).
  void alias(int i, const Shape& shape);
  // The step that wrote input i, when this node is the only reader of that value (so the node
  // can be fused into it): it takes post-ops, its output is no graph output. Else null.
  Step* fusable_producer(int i) const;
  // Fuses this node into `step` (from fusable_producer): the node's output is the step's output,
  // `what` is recorded in the step's description.
  void fused_into(Step* step, const std::string& what);
  // True when value v is computed before `step` runs (an input, a constant or an earlier step).
  bool ready_before(int v, const Step* step) const;

  bmx::Path path() const;
  int num_threads() const;  // threads of one inference (>= 1)

 private:
  const Value& c_value(int v) const;
  Compiler* c_;
  int index_;
};

// Operator compile functions (ops/*.cc). Each reads the node's attributes and inputs and emits,
// aliases or fuses; it throws Error for anything it cannot run exactly.
using OpCompileFn = void (*)(Builder& b);
// The function for an operator name, or null.
OpCompileFn find_op(const std::string& op);
// All operator names the runtime runs (for error messages).
std::string supported_ops();

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_BUILDER_H_
