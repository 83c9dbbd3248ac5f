// Operators that only rearrange elements: Reshape, Flatten and the identities of inference
// (Dropout, _copy, identity, BlockGrad) become aliases of their input (no step, no copy);
// Concat copies its inputs side by side.
#include <algorithm>
#include <cstring>

#include "ops/common.h"
#include "ops/ops.h"

namespace bmxrt {
namespace {

// MXNet's Reshape codes (src/operator/tensor/matrix_op-inl.h, InferReshapeShape):
// 0 copies a dimension, -1 is inferred, -2 copies all remaining ones, -3 merges two, -4 splits
// one into the next two values (one of which may be -1).
Shape reshape_target(const Builder& b, const Shape& src_in, std::vector<int64_t> spec,
                     bool reverse) {
  Shape src = src_in;
  if (reverse) {
    std::reverse(src.begin(), src.end());
    std::reverse(spec.begin(), spec.end());
  }
  Shape out;
  size_t i = 0;
  int inferred = -1;
  auto need = [&](size_t count) {
    if (i + count > src.size()) {
      b.bad("parameter 'shape' refers to more dimensions than the input " + shape_str(src_in) +
            " has");
    }
  };
  for (size_t j = 0; j < spec.size(); ++j) {
    const int64_t p = spec[j];
    if (p > 0) {
      out.push_back(p);
      ++i;
    } else if (p == 0) {
      need(1);
      out.push_back(src[i++]);
    } else if (p == -1) {
      if (inferred >= 0) b.bad("parameter 'shape' has more than one -1");
      inferred = static_cast<int>(out.size());
      out.push_back(1);
      ++i;
    } else if (p == -2) {
      while (i < src.size()) out.push_back(src[i++]);
    } else if (p == -3) {
      need(2);
      out.push_back(src[i] * src[i + 1]);
      i += 2;
    } else if (p == -4) {
      need(1);
      if (j + 2 >= spec.size()) b.bad("parameter 'shape': -4 must be followed by two values");
      int64_t d0 = spec[j + 1], d1 = spec[j + 2];
      j += 2;
      if (d0 == -1 && d1 > 0) d0 = src[i] / d1;
      if (d1 == -1 && d0 > 0) d1 = src[i] / d0;
      if (d0 < 1 || d1 < 1 || d0 * d1 != src[i]) {
        b.bad("parameter 'shape': -4 cannot split dimension " + std::to_string(src[i]));
      }
      out.push_back(d0);
      out.push_back(d1);
      ++i;
    } else {
      b.bad("parameter 'shape' has the value " + std::to_string(p) +
            "; allowed are positive sizes, 0, -1, -2, -3 and -4");
    }
  }
  const int64_t total = num_elements(src_in);
  if (inferred >= 0) {
    int64_t known = 1;
    for (size_t k = 0; k < out.size(); ++k) {
      if (static_cast<int>(k) != inferred) known *= out[k];
    }
    if (known < 1 || total % known) {
      b.bad("cannot infer the -1 of 'shape' for input " + shape_str(src_in));
    }
    out[inferred] = total / known;
  }
  if (reverse) std::reverse(out.begin(), out.end());
  if (num_elements(out) != total) {
    b.bad("target shape " + shape_str(out) + " has another element count than the input " +
          shape_str(src_in));
  }
  return out;
}

void reshape(Builder& b) {
  b.only_attrs({"shape", "reverse", "target_shape", "keep_highest"});
  b.expect_inputs(1, 1);
  if (b.has("target_shape") && b.str("target_shape", "") != "()" &&
      b.str("target_shape", "") != "[]") {
    b.unsupported("the deprecated parameter 'target_shape'; use 'shape'");
  }
  std::vector<int64_t> spec;
  const std::string err = parse_int_tuple(b.str("shape", "()"), &spec);
  if (!err.empty()) b.bad("parameter 'shape': " + err);
  b.alias(0, reshape_target(b, b.shape(0), spec, b.boolean("reverse", false)));
}

void flatten(Builder& b) {
  b.only_attrs({});
  b.expect_inputs(1, 1);
  const Shape& x = b.shape(0);
  if (x.empty()) b.bad("data has no dimensions");
  int64_t rest = 1;
  for (size_t i = 1; i < x.size(); ++i) rest *= x[i];
  b.alias(0, {x[0], rest});
}

void identity(Builder& b) {
  b.expect_inputs(1, 1);
  if (b.node().op == "Dropout") {
    b.only_attrs({"p", "mode", "axes", "cudnn_off"});
    if (b.str("mode", "training") == "always" && b.real("p", 0.5) > 0) {
      b.unsupported("mode='always' drops values at inference too; the runtime only runs "
                    "deterministic models (use mode='training')");
    }
  } else {
    b.only_attrs({});
  }
  b.alias(0, b.shape(0));
}

// ---------------------------------------------------------------------------------- Concat
class ConcatStep : public Step {
 public:
  ConcatStep(int64_t outer, std::vector<int64_t> chunks) : outer_(outer), chunks_(chunks) {
    for (int64_t c : chunks_) row_ += c;
  }
  std::string kernel() const override { return "copy"; }
  void run(const RunContext& ctx) const override {
    float* y = ctx.data(output);
    const int tasks = ctx.parallel->tasks_for(outer_ * row_);
    auto task = [&](int t) {
      for (int64_t o = part_begin(outer_, tasks, t); o < part_begin(outer_, tasks, t + 1); ++o) {
        float* dst = y + o * row_;
        for (size_t k = 0; k < chunks_.size(); ++k) {
          std::memcpy(dst, ctx.data(inputs[k]) + o * chunks_[k],
                      static_cast<size_t>(chunks_[k]) * sizeof(float));
          dst += chunks_[k];
        }
      }
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }

 private:
  int64_t outer_, row_ = 0;
  std::vector<int64_t> chunks_;
};

void concat(Builder& b) {
  b.only_attrs({"num_args", "dim"});
  const int64_t n = b.required_size("num_args", 1);
  b.expect_inputs(static_cast<int>(n), static_cast<int>(n));
  const Shape& first = b.shape(0);
  int64_t dim = b.integer("dim", 1);
  const int64_t nd = static_cast<int64_t>(first.size());
  if (dim < 0) dim += nd;
  if (dim < 0 || dim >= nd) b.bad("parameter 'dim' is out of range for " + shape_str(first));
  Shape out = first;
  out[dim] = 0;
  std::vector<int64_t> chunks;
  std::vector<int> values;
  for (int i = 0; i < static_cast<int>(n); ++i) {
    const Shape& s = b.shape(i);
    bool ok = s.size() == first.size();
    for (size_t k = 0; ok && k < s.size(); ++k) ok = static_cast<int64_t>(k) == dim || s[k] == first[k];
    if (!ok) {
      b.bad("input " + std::to_string(i) + " has shape " + shape_str(s) + ", which does not "
            "match " + shape_str(first) + " outside axis " + std::to_string(dim));
    }
    out[dim] += s[dim];
    chunks.push_back(split_at(s, static_cast<size_t>(dim)).len *
                     split_at(s, static_cast<size_t>(dim)).inner);
    values.push_back(b.value(i));
  }
  num_elements(out);
  auto step = std::make_unique<ConcatStep>(split_at(first, static_cast<size_t>(dim)).outer,
                                           std::move(chunks));
  step->inputs = values;
  b.emit(std::move(step), out);
}

}  // namespace

void register_shape(OpTable* t) {
  (*t)["Reshape"] = reshape;
  (*t)["reshape"] = reshape;
  (*t)["Flatten"] = flatten;
  (*t)["flatten"] = flatten;
  (*t)["Dropout"] = identity;
  (*t)["_copy"] = identity;
  (*t)["identity"] = identity;
  (*t)["BlockGrad"] = identity;
  (*t)["Concat"] = concat;
  (*t)["concat"] = concat;
}

}  // namespace bmxrt
