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

// reshape_like: the first input with the shape of the second (the default, whole-shape form).
void reshape_like(Builder& b) {
  b.only_attrs({"lhs_begin", "lhs_end", "rhs_begin", "rhs_end"});
  b.expect_inputs(2, 2);
  for (const char* key : {"lhs_begin", "lhs_end", "rhs_begin", "rhs_end"}) {
    if (b.has(key)) b.unsupported(std::string("parameter '") + key + "' (partial reshape_like)");
  }
  b.alias(0, b.shape(1));
}

// squeeze: drops the given axes of size 1 (all of them without 'axis').
void squeeze(Builder& b) {
  b.only_attrs({"axis"});
  b.expect_inputs(1, 1);
  const Shape& x = b.shape(0);
  const int64_t nd = static_cast<int64_t>(x.size());
  std::vector<bool> drop(x.size(), false);
  if (b.has("axis")) {
    std::vector<int64_t> axes;
    const std::string err = parse_int_tuple(b.str("axis", ""), &axes);
    if (!err.empty()) b.bad("parameter 'axis': " + err);
    for (int64_t a : axes) {
      if (a < 0) a += nd;
      if (a < 0 || a >= nd || x[a] != 1) {
        b.bad("parameter 'axis' names an axis that is not of size 1 in " + shape_str(x));
      }
      drop[a] = true;
    }
  } else {
    for (size_t i = 0; i < x.size(); ++i) drop[i] = x[i] == 1;
  }
  Shape out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!drop[i]) out.push_back(x[i]);
  }
  if (out.empty()) out.push_back(1);
  b.alias(0, out);
}

void expand_dims(Builder& b) {
  b.only_attrs({"axis"});
  b.expect_inputs(1, 1);
  Shape x = b.shape(0);
  const int64_t nd = static_cast<int64_t>(x.size());
  int64_t axis = b.integer("axis", 0);
  if (axis < 0) axis += nd + 1;
  if (axis < 0 || axis > nd) b.bad("parameter 'axis' is out of range for " + shape_str(x));
  x.insert(x.begin() + axis, 1);
  b.alias(0, x);
}

// ------------------------------------------------------------------------ transpose and pad
constexpr size_t kMaxDims = 6;

// Row-major strides of a shape, left-padded with size-1 axes to kMaxDims.
void padded(const Shape& s, int64_t* dims, int64_t* strides) {
  const size_t off = kMaxDims - s.size();
  int64_t stride = 1;
  for (size_t i = kMaxDims; i-- > 0;) {
    dims[i] = i < off ? 1 : s[i - off];
    strides[i] = stride;
    stride *= dims[i];
  }
}

// out[i0..i5] = in[...] through a per-axis source offset: src = sum(i_d * stride_d) (transpose)
// or, for pad, the same with a shift per axis and a fill value outside the input.
class GatherStep : public Step {
 public:
  GatherStep(const Shape& out, std::vector<int64_t> in_strides, std::vector<int64_t> shift,
             std::vector<int64_t> in_dims, float fill, const char* name)
      : in_strides_(std::move(in_strides)), shift_(std::move(shift)),
        in_dims_(std::move(in_dims)), fill_(fill), name_(name) {
    int64_t unused[kMaxDims];
    padded(out, dims_, unused);
  }
  std::string kernel() const override { return name_; }
  void run(const RunContext& ctx) const override {
    const float* x = ctx.data(inputs[0]);
    float* y = ctx.data(output);
    const int64_t rows = dims_[0] * dims_[1] * dims_[2] * dims_[3] * dims_[4];
    const int64_t n = dims_[5];
    const int tasks = ctx.parallel->tasks_for(rows * n);
    auto task = [&](int t) {
      for (int64_t r = part_begin(rows, tasks, t); r < part_begin(rows, tasks, t + 1); ++r) {
        int64_t rem = r, src = 0;
        bool inside = true;
        for (int d = 4; d >= 0; --d) {
          const int64_t idx = rem % dims_[d] - shift_[d];
          rem /= dims_[d];
          inside = inside && idx >= 0 && idx < in_dims_[d];
          src += idx * in_strides_[d];
        }
        float* out = y + r * n;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t idx = i - shift_[5];
          out[i] = inside && idx >= 0 && idx < in_dims_[5] ? x[src + idx * in_strides_[5]] : fill_;
        }
      }
    };
    ctx.parallel->run(tasks, task);
    finish(ctx);
  }

 private:
  int64_t dims_[kMaxDims];
  std::vector<int64_t> in_strides_, shift_, in_dims_;
  float fill_;
  const char* name_;
};

void transpose(Builder& b) {
  b.only_attrs({"axes"});
  b.expect_inputs(1, 1);
  const Shape& x = b.shape(0);
  const size_t nd = x.size();
  if (nd > kMaxDims) b.unsupported("transpose of more than 6 axes");
  std::vector<int64_t> axes;
  const std::string err = parse_int_tuple(b.str("axes", "()"), &axes);
  if (!err.empty()) b.bad("parameter 'axes': " + err);
  if (axes.empty()) {
    for (size_t i = 0; i < nd; ++i) axes.push_back(static_cast<int64_t>(nd - 1 - i));
  }
  if (axes.size() != nd) b.bad("parameter 'axes' must list every axis of " + shape_str(x));
  std::vector<bool> seen(nd, false);
  Shape out(nd);
  int64_t in_dims[kMaxDims], in_strides[kMaxDims];
  padded(x, in_dims, in_strides);
  const size_t off = kMaxDims - nd;
  std::vector<int64_t> strides(kMaxDims, 0), shift(kMaxDims, 0), dims(kMaxDims, 1);
  for (size_t i = 0; i < nd; ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + static_cast<int64_t>(nd) : axes[i];
    if (a < 0 || a >= static_cast<int64_t>(nd) || seen[a]) {
      b.bad("parameter 'axes' is not a permutation of the axes of " + shape_str(x));
    }
    seen[a] = true;
    out[i] = x[a];
    strides[off + i] = in_strides[off + a];
    dims[off + i] = x[a];
  }
  auto step = std::make_unique<GatherStep>(out, strides, shift, dims, 0.f, "transpose");
  step->inputs = {b.value(0)};
  b.emit(std::move(step), out);
}

void pad(Builder& b) {
  b.only_attrs({"mode", "pad_width", "constant_value"});
  b.expect_inputs(1, 1);
  b.expect_value("mode", {"constant"});
  const Shape& x = b.shape(0);
  const size_t nd = x.size();
  if (nd > kMaxDims) b.unsupported("pad of more than 6 axes");
  std::vector<int64_t> width;
  const std::string err = parse_int_tuple(b.str("pad_width", "()"), &width);
  if (!err.empty()) b.bad("parameter 'pad_width': " + err);
  if (width.size() != 2 * nd) {
    b.bad("parameter 'pad_width' needs 2 values per axis of " + shape_str(x));
  }
  int64_t in_dims[kMaxDims], in_strides[kMaxDims];
  padded(x, in_dims, in_strides);
  const size_t off = kMaxDims - nd;
  std::vector<int64_t> strides(in_strides, in_strides + kMaxDims), shift(kMaxDims, 0);
  std::vector<int64_t> dims(in_dims, in_dims + kMaxDims);
  Shape out(nd);
  for (size_t i = 0; i < nd; ++i) {
    if (width[2 * i] < 0 || width[2 * i + 1] < 0 || width[2 * i] > kMaxElements ||
        width[2 * i + 1] > kMaxElements) {
      b.bad("parameter 'pad_width' values must be >= 0");
    }
    out[i] = x[i] + width[2 * i] + width[2 * i + 1];
    shift[off + i] = width[2 * i];
  }
  num_elements(out);
  auto step = std::make_unique<GatherStep>(out, strides, shift, dims,
                                           static_cast<float>(b.real("constant_value", 0)), "pad");
  step->inputs = {b.value(0)};
  b.emit(std::move(step), out);
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
  (*t)["reshape_like"] = reshape_like;
  (*t)["squeeze"] = squeeze;
  (*t)["expand_dims"] = expand_dims;
  (*t)["transpose"] = transpose;
  (*t)["pad"] = pad;
  (*t)["Pad"] = pad;
  (*t)["concat"] = concat;
}

}  // namespace bmxrt
