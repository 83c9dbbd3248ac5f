// The compiled model: values (activation tensors and constants), steps (one per executed layer,
// with the layers fused into it), the static memory plan, and the compiler that builds them from
// the two files (model_file.h). Nothing here is visible outside the library (c_api.cc is the
// only way in).
#ifndef BMXNET_RUNTIME_GRAPH_H_
#define BMXNET_RUNTIME_GRAPH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bmxnet/runtime.h"
#include "dispatch.h"
#include "epilogue.h"
#include "model_file.h"
#include "parallel.h"

namespace bmxrt {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
// Elements of `s`; throws FORMAT when the count passes kMaxElements (never overflows).
int64_t num_elements(const Shape& s);
// The largest tensor the runtime makes (MXNet's wheel has the same limit: 2^31 - 1 elements).
constexpr int64_t kMaxElements = 2147483647;

// Errors inside the library are thrown as Error and turned into a status and bmx_last_error()
// at the C boundary (c_api.cc); nothing is thrown across it.
struct Error : std::runtime_error {
  Error(bmx_status s, const std::string& message) : std::runtime_error(message), status(s) {}
  bmx_status status;
};

// An activation tensor (in the arena, at its storage's offset) or a constant (model-owned).
struct Value {
  Shape shape;
  int storage = -1;              // index into Model::storages, or -1 for a constant
  const float* constant = nullptr;
  // Index of the step that writes it (-1: an input or a constant); an alias (Reshape...) keeps
  // its source's, so that the order of computation stays known.
  int producer = -1;
};

// One buffer of the arena, shared by a value and its aliases (Reshape, Flatten, Dropout...).
struct Storage {
  int64_t bytes = 0;
  int first = 0, last = 0;  // live from step `first` to step `last` (inclusive); inputs: -1
  int64_t offset = 0;       // in the arena, from the memory plan
};

// What a step sees when it runs: the arena, its scratch, the threads and the kernel path.
struct RunContext {
  uint8_t* arena;
  float* workspace;  // Model::workspace_floats floats, 64-byte aligned
  const Parallel* parallel;
  // The threads the kernel core's runs use: the caller's hook or the predictor's pool, or null
  // (OpenMP where the build has it, else one thread).
  const bmx::ThreadHook* kernel_hook;
  int num_threads;
  bmx::Path path;
  const std::vector<Value>* values;
  const std::vector<Storage>* storages;
  float* data(int value) const {
    const Value& v = (*values)[value];
    if (v.storage < 0) return const_cast<float*>(v.constant);  // read only by every step
    return reinterpret_cast<float*>(arena + (*storages)[v.storage].offset);
  }
};

// One executed layer. The constructor (in ops/) checks everything; run() only computes.
class Step {
 public:
  virtual ~Step() = default;
  virtual void run(const RunContext& ctx) const = 0;
  // Scratch floats run() needs (per call, shared by its threads).
  virtual int64_t workspace_floats() const { return 0; }
  // The kernel and layout it uses, for bmx_model_describe ("bconv2d/avx2", "im2col+sgemm").
  virtual std::string kernel() const = 0;
  // True when the output is written once with channels on axis 1 before run() returns, so that
  // post-ops (BatchNorm, activations, a residual add) can be fused behind it.
  virtual bool takes_post_ops() const { return true; }
  // Folds a BatchNorm into the layer's own float weights and bias (the layer is float, so
  // rounding differs from MXNet's separate pass by float epsilon only). False: append instead.
  virtual bool fold_batchnorm(const std::vector<float>& mul, const std::vector<float>& add) {
    (void)mul; (void)add;
    return false;
  }

  int node = -1;
  std::string op, name;
  std::vector<std::string> fused;  // "BatchNorm 'bn0'", ... in the order applied
  std::vector<int> inputs;         // values read (post-op tensors included)
  int output = -1;
  Epilogue post;

 protected:
  // Applies `post` to the output (after the main computation wrote it).
  void finish(const RunContext& ctx) const;
};

struct Model {
  std::vector<Value> values;
  std::vector<Storage> storages;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<std::vector<float>> constants;  // owned data of constant values
  std::vector<std::string> input_names, output_names;
  std::vector<int> input_values, output_values;
  int64_t arena_bytes = 0;
  int64_t workspace_floats = 0;
  int num_threads = 1;
  bmx::Path path = bmx::Path::kScalar;
  bmx_parallel_for_fn hook = nullptr;
  void* hook_user = nullptr;
  std::string description;
};

// Options as the C API collected them.
struct Options {
  std::map<std::string, Shape> input_shapes;
  int num_threads = 1;
  std::string kernel_path = "auto";
  bmx_parallel_for_fn hook = nullptr;
  void* hook_user = nullptr;
};

// Reads, checks and compiles; throws Error.
std::unique_ptr<Model> compile(const SymbolFile& symbol, std::vector<Tensor> params,
                               const Options& options);

}  // namespace bmxrt

#endif  // BMXNET_RUNTIME_GRAPH_H_
