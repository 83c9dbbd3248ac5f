"""Validation of an ONNX model before onnx's own checker, its shape inference or MXNet see it.

onnx's shape inference trusts attribute values (``Conv`` with ``strides=[0, 0]`` divides by zero
and kills the process with SIGFPE), ``numpy_helper.to_array`` trusts the tensor sizes, and the
importer trusts input counts. :func:`check_model` checks everything the importer and those
libraries rely on and raises :class:`OnnxImportError` naming the file, the node and the fix:

* the graph: names present and unique (single assignment), every node input defined by a graph
  input, an initializer or an *earlier* node (so no dangling inputs, no cycles), outputs defined;
* tensors (initializers, ``Constant`` values): a numeric data type, non-negative dimensions and
  exactly as many stored elements as the dimensions say, data inside the file;
* data inputs: float32, dimensions >= 1 where given;
* nodes: a supported operator of the default domain, input and output counts of the operator,
  and each attribute the importer reads with the right type and a valid value (spatial
  attributes of the right length and range, axes and permutations, finite floats);
* ranks: the rank of every tensor, propagated from the inputs and constants, fits what each
  operator needs (4-D data for Conv and pooling, 2-D Gemm operands, axes inside the rank, pads
  and permutations as long as the rank). onnx's shape inference reads attributes by the input's
  rank without checking them (a 2-D input to Conv is a segmentation fault).
"""
import math

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from .errors import OnnxImportError

__all__ = ["check_model", "check_tensor", "SUPPORTED", "MAX_ELEMENTS"]

#: Largest element count of a data input or a constant (2^31: far above any real network).
MAX_ELEMENTS = 2 ** 31

_INT, _INTS, _FLOAT, _STRING, _TENSOR = (AttributeProto.INT, AttributeProto.INTS,
                                         AttributeProto.FLOAT, AttributeProto.STRING,
                                         AttributeProto.TENSOR)
_TYPE_NAMES = {_INT: "an int", _INTS: "a list of ints", _FLOAT: "a float", _STRING: "a string",
               _TENSOR: "a tensor"}

# data type -> (TensorProto field holding it when there is no raw_data, bytes per element)
_STORAGE = {TensorProto.FLOAT: ("float_data", 4), TensorProto.DOUBLE: ("double_data", 8),
            TensorProto.FLOAT16: ("int32_data", 2), TensorProto.INT8: ("int32_data", 1),
            TensorProto.UINT8: ("int32_data", 1), TensorProto.INT16: ("int32_data", 2),
            TensorProto.UINT16: ("int32_data", 2), TensorProto.INT32: ("int32_data", 4),
            TensorProto.BOOL: ("int32_data", 1), TensorProto.INT64: ("int64_data", 8),
            TensorProto.UINT32: ("uint64_data", 4), TensorProto.UINT64: ("uint64_data", 8)}

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def _positive(v):
    return v >= 1


def _non_negative(v):
    return v >= 0


def _flag(v):
    return v in (0, 1)


def _finite(v):
    return math.isfinite(v)


def _spatial(n, test, what):
    """INTS of length n, each passing ``test``."""
    return (_INTS, lambda v: len(v) == n and all(test(x) for x in v),
            "%d values, each %s (only 2-D operators are supported)" % (n, what))


_CONV = {"kernel_shape": _spatial(2, _positive, ">= 1"),
         "strides": _spatial(2, _positive, ">= 1"),
         "dilations": _spatial(2, _positive, ">= 1"),
         "pads": _spatial(4, _non_negative, ">= 0"),
         "group": (_INT, _positive, ">= 1"),
         "auto_pad": (_STRING, lambda v: v in _AUTO_PAD, "one of " + ", ".join(_AUTO_PAD))}
_POOL = dict(_CONV, ceil_mode=(_INT, _flag, "0 or 1"),
             count_include_pad=(_INT, _flag, "0 or 1"), storage_order=(_INT, _flag, "0 or 1"))
del _POOL["group"]
_AXIS = {"axis": (_INT, lambda v: abs(v) <= 64, "an axis of the input")}
_AXES = {"axes": (_INTS, lambda v: len(v) == len(set(v)) and all(abs(a) <= 64 for a in v),
                  "distinct axes of the input")}
_EPS = (_FLOAT, lambda v: math.isfinite(v) and v >= 0, "finite and >= 0")

# op -> (min inputs, max inputs, min outputs, max outputs, {attribute: (type, test, what)})
# (optional inputs left empty count: ONNX writes them as '')
_OPS = {
    "Conv": (2, 3, 1, 1, _CONV),
    "Gemm": (2, 3, 1, 1, {"transA": (_INT, _flag, "0 or 1"), "transB": (_INT, _flag, "0 or 1"),
                          "alpha": (_FLOAT, _finite, "finite"),
                          "beta": (_FLOAT, _finite, "finite")}),
    "MatMul": (2, 2, 1, 1, {}),
    "BatchNormalization": (5, 5, 1, 3, {"epsilon": _EPS, "momentum": (_FLOAT, _finite, "finite"),
                                        "training_mode": (_INT, _flag, "0 or 1"),
                                        "spatial": (_INT, lambda v: v == 1, "1")}),
    "Relu": (1, 1, 1, 1, {}), "Sigmoid": (1, 1, 1, 1, {}), "Tanh": (1, 1, 1, 1, {}),
    "LeakyRelu": (1, 1, 1, 1, {"alpha": (_FLOAT, _finite, "finite")}),
    "Softmax": (1, 1, 1, 1, _AXIS), "LogSoftmax": (1, 1, 1, 1, _AXIS),
    "MaxPool": (1, 1, 1, 2, _POOL), "AveragePool": (1, 1, 1, 1, _POOL),
    "GlobalAveragePool": (1, 1, 1, 1, {}), "GlobalMaxPool": (1, 1, 1, 1, {}),
    "Flatten": (1, 1, 1, 1, _AXIS),
    "Reshape": (2, 2, 1, 1, {"allowzero": (_INT, _flag, "0 or 1")}),
    "Squeeze": (1, 2, 1, 1, _AXES), "Unsqueeze": (1, 2, 1, 1, _AXES),
    "Transpose": (1, 1, 1, 1, {"perm": (_INTS, lambda v: sorted(v) == list(range(len(v))),
                                        "a permutation of 0 .. rank-1")}),
    "Concat": (1, 1 << 16, 1, 1, _AXIS),
    "Add": (2, 2, 1, 1, {}), "Sub": (2, 2, 1, 1, {}), "Mul": (2, 2, 1, 1, {}),
    "Div": (2, 2, 1, 1, {}),
    "Pad": (1, 4, 1, 1, {"mode": (_STRING, lambda v: v in ("constant", "reflect", "edge", "wrap"),
                                  "constant, reflect, edge or wrap"),
                         "pads": (_INTS, lambda v: len(v) % 2 == 0 and len(v) <= 128,
                                  "an even number of values"),
                         "value": (_FLOAT, _finite, "finite")}),
    "Clip": (1, 3, 1, 1, {"min": (_FLOAT, lambda v: not math.isnan(v), "a number"),
                          "max": (_FLOAT, lambda v: not math.isnan(v), "a number")}),
    "Identity": (1, 1, 1, 1, {}),
    "Dropout": (1, 3, 1, 2, {"ratio": (_FLOAT, _finite, "finite"),
                             "seed": (_INT, lambda v: True, "an int")}),
    "Constant": (0, 0, 1, 1, {"value": (_TENSOR, lambda v: True, "a tensor")}),
    "Sign": (1, 1, 1, 1, {}), "Round": (1, 1, 1, 1, {}),
    "Where": (3, 3, 1, 1, {}), "GreaterOrEqual": (2, 2, 1, 1, {}), "Less": (2, 2, 1, 1, {}),
}
#: Operator types the importer translates (default ONNX domain).
SUPPORTED = tuple(sorted(_OPS))


def _fail(source, msg):
    raise OnnxImportError("%s: %s" % (source, msg))


def _node_label(node, index):
    return "node %r (%s)" % (node.name or (node.output[0] if node.output else "#%d" % index),
                             node.op_type or "no op_type")


def _elements(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def check_tensor(tensor, what, source):
    """A constant tensor the importer can read with ``numpy_helper.to_array``; returns nothing."""
    if tensor.data_type not in _STORAGE:
        name = TensorProto.DataType.Name(tensor.data_type) \
            if tensor.data_type in TensorProto.DataType.values() else str(tensor.data_type)
        _fail(source, "%s has data type %s; only numeric tensors (float, double, float16, "
                      "integers, bool) can be imported" % (what, name))
    if tensor.data_location == TensorProto.EXTERNAL or tensor.external_data:
        _fail(source, "%s keeps its data in an external file; save the model with its data "
                      "inside (onnx.save(model, path, save_as_external_data=False))" % what)
    if tensor.HasField("segment"):
        _fail(source, "%s is a segment of a larger tensor, which is not supported; save the "
                      "model in one piece" % what)
    if any(d < 0 for d in tensor.dims) or len(tensor.dims) > 16:
        _fail(source, "%s has invalid dimensions %s (at most 16, each >= 0)"
                      % (what, list(tensor.dims)))
    count = _elements(tensor.dims)
    if count > MAX_ELEMENTS:
        _fail(source, "%s has %d elements (dimensions %s), more than %d"
                      % (what, count, list(tensor.dims), MAX_ELEMENTS))
    field, size = _STORAGE[tensor.data_type]
    if tensor.HasField("raw_data"):
        stored, unit = len(tensor.raw_data), "bytes"
        expected = count * size
    else:
        stored, unit = len(getattr(tensor, field)), "values"
        expected = count
    if stored != expected:
        _fail(source, "%s holds %d %s of data but its dimensions %s need %d; the file is "
                      "damaged, re-export it" % (what, stored, unit, list(tensor.dims), expected))


def _check_attributes(node, label, spec, source):
    seen = set()
    for attr in node.attribute:
        if attr.name in seen:
            _fail(source, "%s: attribute %r is given twice" % (label, attr.name))
        seen.add(attr.name)
        if attr.ref_attr_name:
            _fail(source, "%s: attribute %r refers to a function attribute, which is not "
                          "supported" % (label, attr.name))
        if attr.name not in spec:
            continue  # onnx.checker names attributes the operator does not have
        kind, test, what = spec[attr.name]
        if attr.type != kind:
            _fail(source, "%s: attribute %s must be %s" % (label, attr.name, _TYPE_NAMES[kind]))
        if kind == _TENSOR:
            check_tensor(attr.t, "%s: the value of attribute %s" % (label, attr.name), source)
            continue
        value = onnx.helper.get_attribute_value(attr)
        if kind == _STRING:
            try:
                value = value.decode()
            except UnicodeDecodeError:
                value = repr(value)
        elif kind == _INTS:
            value = list(value)
        if not test(value):
            _fail(source, "%s: attribute %s=%s is invalid: expected %s; fix the model"
                          % (label, attr.name, value, what))


def _check_node(node, index, opset, source):
    label = _node_label(node, index)
    if node.domain not in ("", "ai.onnx"):
        _fail(source, "%s: operators of domain %r are not supported" % (label, node.domain))
    if node.op_type not in _OPS:
        _fail(source, "%s: unsupported operator type %r; supported: %s"
                      % (label, node.op_type, ", ".join(SUPPORTED)))
    min_in, max_in, min_out, max_out, spec = _OPS[node.op_type]
    if node.op_type in ("Squeeze", "Unsqueeze") and opset < 13:
        max_in = 1
    if node.op_type == "Pad" and opset < 11:
        max_in = 1
    if node.op_type == "Clip" and opset < 11:
        max_in = 1
    if node.op_type == "Reshape" and opset < 5:
        _fail(source, "%s: Reshape before opset 5 (shape as an attribute) is not supported; "
                      "convert the model to a newer opset (onnx.version_converter)" % label)
    if not min_in <= len(node.input) <= max_in:
        _fail(source, "%s has %d inputs; %s takes %d to %d at opset %d"
                      % (label, len(node.input), node.op_type, min_in, max_in, opset))
    if any(not node.input[i] for i in range(min_in)):
        _fail(source, "%s: required input %d is empty" % (label, 1 + [
            i for i in range(min_in) if not node.input[i]][0]))
    if not min_out <= len(node.output) <= max_out or not node.output[0]:
        _fail(source, "%s has the outputs %s; %s has %d to %d outputs, the first one named"
                      % (label, list(node.output), node.op_type, min_out, max_out))
    _check_attributes(node, label, spec, source)
    names = {a.name for a in node.attribute}
    if node.op_type in ("MaxPool", "AveragePool") and "kernel_shape" not in names:
        _fail(source, "%s: the required attribute kernel_shape is missing" % label)
    if node.op_type == "Concat" and "axis" not in names:
        _fail(source, "%s: the required attribute axis is missing" % label)
    if node.op_type == "Constant" and "value" not in names:
        _fail(source, "%s: only the 'value' form of Constant is supported" % label)
    if node.op_type == "Unsqueeze" and opset < 13 and "axes" not in names:
        _fail(source, "%s: the required attribute axes is missing" % label)
    if node.op_type == "Unsqueeze" and opset >= 13 and len(node.input) < 2:
        _fail(source, "%s: the axes input is missing (required from opset 13)" % label)
    if node.op_type == "Pad" and opset >= 11 and (len(node.input) < 2 or not node.input[1]):
        _fail(source, "%s: the pads input is missing (required from opset 11)" % label)


def _check_inputs(graph, initializers, source):
    for vi in graph.input:
        if vi.name in initializers:
            continue
        if not vi.type.HasField("tensor_type"):
            _fail(source, "input %r is not a tensor" % vi.name)
        elem = vi.type.tensor_type.elem_type
        if elem != TensorProto.FLOAT:
            name = TensorProto.DataType.Name(elem) if elem in TensorProto.DataType.values() \
                else str(elem)
            _fail(source, "input %r is %s; only float32 inputs can be imported" % (vi.name, name))
        dims = vi.type.tensor_type.shape.dim
        if len(dims) > 16:
            _fail(source, "input %r has rank %d; at most 16 is supported" % (vi.name, len(dims)))
        known = [d.dim_value for d in dims if d.HasField("dim_value")]
        if any(d < 1 for d in known):
            _fail(source, "input %r has dimensions %s; each must be >= 1 (or symbolic)"
                          % (vi.name, [d.dim_value if d.HasField("dim_value") else d.dim_param
                                       for d in dims]))
        if _elements(known) > MAX_ELEMENTS:
            _fail(source, "input %r has %d elements, more than %d"
                          % (vi.name, _elements(known), MAX_ELEMENTS))


def _check_names_are_text(model, source):
    """Names that are not valid UTF-8 come out of protobuf as bytes, not str: refused here, before
    any code compares or edits them as text."""
    graph = model.graph
    named = [("opset domain", o.domain) for o in model.opset_import]
    for kind, items in (("graph input", graph.input), ("graph output", graph.output),
                        ("value_info", graph.value_info), ("initializer", graph.initializer)):
        named += [(kind + " name", item.name) for item in items]
    for index, node in enumerate(graph.node):
        label = "node %d" % index
        named += [(label + " name", node.name), (label + " op_type", node.op_type),
                  (label + " domain", node.domain)]
        named += [(label + " input", name) for name in node.input]
        named += [(label + " output", name) for name in node.output]
        named += [(label + " attribute name", a.name) for a in node.attribute]
    for what, value in named:
        if not isinstance(value, str):
            _fail(source, "the %s %r is not valid UTF-8 text; ONNX names are UTF-8 strings "
                          "(re-export the model)" % (what, value))


def check_model(model, source):
    """Raises OnnxImportError unless ``model`` (a parsed ModelProto) is safe to hand to onnx's
    checker and shape inference and to translate; ``source`` names the file in messages."""
    if not model.HasField("graph") or not model.graph.node:
        _fail(source, "not an ONNX model: no graph with nodes in it (a damaged file or another "
                      "format)")
    _check_names_are_text(model, source)
    latest = onnx.defs.onnx_opset_version()
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if len(versions) > 1:
        _fail(source, "the default ONNX domain is imported %d times" % len(versions))
    if versions and not 1 <= versions[0] <= latest:
        _fail(source, "opset version %d is not supported: the onnx package knows opsets 1 .. %d"
                      % (versions[0], latest))
    opset = versions[0] if versions else 1
    graph = model.graph
    if graph.sparse_initializer:
        _fail(source, "sparse initializers are not supported; store them dense")
    initializers = set()
    for t in graph.initializer:
        if not t.name:
            _fail(source, "an initializer has no name")
        if t.name in initializers:
            _fail(source, "initializer name %r is used twice" % t.name)
        initializers.add(t.name)
        check_tensor(t, "initializer %r" % t.name, source)
    inputs = set()
    for vi in graph.input:
        if not vi.name:
            _fail(source, "a graph input has no name")
        if vi.name in inputs:
            _fail(source, "graph input name %r is used twice" % vi.name)
        inputs.add(vi.name)
    if not inputs - initializers:
        _fail(source, "the graph has no data input (every input is an initializer)")
    _check_inputs(graph, initializers, source)
    defined = inputs | initializers
    producers = {out: i for i, node in enumerate(graph.node) for out in node.output if out}
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        _check_node(node, index, opset, source)
        for name in node.input:
            if not name or name in defined:
                continue
            if name in producers and producers[name] >= index:
                _fail(source, "%s: input %r is produced by a later node (or by itself): the "
                              "nodes are not in topological order or form a cycle" % (label, name))
            _fail(source, "%s: input %r is not produced by any node and is neither a graph input "
                          "nor an initializer (a dangling input)" % (label, name))
        for name in node.output:
            if not name:
                continue
            if name in defined:
                _fail(source, "%s: output %r is already defined (by a graph input, an initializer "
                              "or another node); ONNX names each value once" % (label, name))
            defined.add(name)
    _check_ranks(graph, opset, source)
    if not graph.output:
        _fail(source, "the graph has no outputs")
    seen = set()
    for vi in graph.output:
        if vi.name not in defined:
            _fail(source, "graph output %r is not produced by any node" % vi.name)
        if vi.name in seen:
            _fail(source, "graph output %r is listed twice" % vi.name)
        seen.add(vi.name)
    return opset



# ------------------------------------------------------------------------------------------------
# Ranks
# ------------------------------------------------------------------------------------------------
def _ints_attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return list(onnx.helper.get_attribute_value(a)) if a.type == _INTS \
                else onnx.helper.get_attribute_value(a)
    return default


def _const_ints(consts, name, label, what, source):
    """A constant integer vector (Reshape shape, axes, pads) or a clear error."""
    value = consts.get(name)
    if value is None:
        _fail(source, "%s: the %s input %r must be a constant (an initializer or a Constant "
                      "node)" % (label, what, name))
    if value.ndim > 1 or value.dtype.kind not in "iu" or value.size > 64:
        _fail(source, "%s: the %s input %r must be a 1-D integer tensor of at most 64 values, "
                      "got %s of shape %s" % (label, what, name, value.dtype, value.shape))
    return [int(v) for v in value.ravel()]


def _check_axes(axes, rank, label, what, source):
    if any(not -rank <= a < rank for a in axes) or \
            len({a % rank for a in axes}) != len(axes):
        _fail(source, "%s: %s %s do not fit a rank-%d input (distinct, in [-%d, %d])"
                      % (label, what, axes, rank, rank, rank - 1))


def _rank_of(node, ins, consts, opset, label, source):
    """Rank of the node's first output from its input ranks (None: unknown); raises on a
    rank the operator cannot take."""
    op = node.op_type

    def need(i, ranks, what):
        if ins[i] is not None and ins[i] not in ranks:
            _fail(source, "%s: input %r has rank %d; %s" % (label, node.input[i], ins[i], what))

    if op in ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"):
        need(0, (4,), "%s needs 4-D (NCHW) data" % op)
        if op == "Conv":
            need(1, (4,), "Conv needs 4-D weights (O, C/group, kh, kw)")
            if len(ins) > 2 and node.input[2]:
                need(2, (1,), "the Conv bias is 1-D")
        return 4
    if op == "Gemm":
        need(0, (2,), "Gemm's A is 2-D")
        need(1, (2,), "Gemm's B is 2-D")
        if len(ins) > 2 and node.input[2]:
            need(2, (0, 1, 2), "Gemm's C has at most 2 dimensions")
        return 2
    if op == "MatMul":
        need(0, tuple(range(1, 17)), "MatMul needs at least 1 dimension")
        need(1, tuple(range(1, 17)), "MatMul needs at least 1 dimension")
        if None in ins:
            return None
        return max(ins) if min(ins) >= 2 else max(ins) - 1
    if op == "BatchNormalization":
        need(0, tuple(range(2, 17)), "BatchNormalization needs (N, C, ...) data")
        for i in range(1, 5):
            need(i, (1,), "scale, B, mean and var are 1-D")
        return ins[0]
    rank = ins[0] if ins else None
    if op in ("Softmax", "LogSoftmax", "Flatten", "Concat") and rank is not None:
        axis = _ints_attr(node, "axis", 1 if op == "Flatten" or opset < 13 else -1)
        top = rank + 1 if op == "Flatten" else rank
        if not -top <= axis < top or rank == 0:
            _fail(source, "%s: axis=%d does not fit a rank-%d input" % (label, axis, rank))
    if op == "Flatten":
        return 2
    if op == "Concat":
        known = {r for r in ins if r is not None}
        if len(known) > 1:
            _fail(source, "%s: the inputs have different ranks %s" % (label, ins))
        return known.pop() if known else None
    if op == "Reshape":
        return len(_const_ints(consts, node.input[1], label, "shape", source))
    if op in ("Squeeze", "Unsqueeze"):
        if opset >= 13 and len(node.input) > 1 and node.input[1]:
            axes = _const_ints(consts, node.input[1], label, "axes", source)
        else:
            axes = _ints_attr(node, "axes")
        if rank is None:
            return None
        if op == "Squeeze":
            if axes is None:
                return None  # all dimensions of size 1: known only from the shape
            _check_axes(axes, rank, label, "axes", source)
            return rank - len(axes)
        _check_axes(axes, rank + len(axes), label, "axes", source)
        return rank + len(axes)
    if op == "Transpose":
        perm = _ints_attr(node, "perm")
        if perm is not None and rank is not None and len(perm) != rank:
            _fail(source, "%s: perm %s does not fit a rank-%d input" % (label, perm, rank))
        return rank
    if op == "Pad":
        if opset < 11:
            pads = _ints_attr(node, "pads", [])
            axes = None
        else:
            pads = _const_ints(consts, node.input[1], label, "pads", source)
            axes = _const_ints(consts, node.input[3], label, "axes", source) \
                if len(node.input) > 3 and node.input[3] else None
            if len(node.input) > 2 and node.input[2]:
                value = consts.get(node.input[2])
                if value is None or value.size != 1:
                    _fail(source, "%s: the constant_value input must be a constant scalar" % label)
        if rank is not None:
            if axes is not None:
                _check_axes(axes, rank, label, "axes", source)
            if len(pads) != 2 * (len(axes) if axes is not None else rank):
                _fail(source, "%s: %d pads do not fit a rank-%d input (2 per padded axis)"
                              % (label, len(pads), rank))
        return rank
    if op in ("Add", "Sub", "Mul", "Div", "Where", "GreaterOrEqual", "Less"):
        return None if None in ins else max(ins)
    if op == "Clip" and opset >= 11:
        for i in (1, 2):
            if len(node.input) > i and node.input[i]:
                value = consts.get(node.input[i])
                if value is None or value.size != 1:
                    _fail(source, "%s: min and max must be constant scalars" % label)
    if op == "Constant":
        return None  # its value's rank, set by the caller
    return rank  # element-wise: Relu, LeakyRelu, Sigmoid, Tanh, Clip, Identity, Dropout, ...


def _check_ranks(graph, opset, source):
    ranks = {}
    consts = {}
    for t in graph.initializer:
        ranks[t.name] = len(t.dims)
        if t.data_type in (TensorProto.INT64, TensorProto.INT32) and _elements(t.dims) <= 64:
            consts[t.name] = np.asarray(numpy_helper.to_array(t))
        elif _elements(t.dims) == 1:
            consts[t.name] = np.asarray(numpy_helper.to_array(t))
    for vi in graph.input:
        if vi.name not in ranks:
            ranks[vi.name] = len(vi.type.tensor_type.shape.dim) \
                if vi.type.tensor_type.HasField("shape") else None
    for index, node in enumerate(graph.node):
        label = _node_label(node, index)
        ins = [ranks.get(name) if name else None for name in node.input]
        if node.op_type == "Constant":
            value = _ints_attr(node, "value")
            rank = len(value.dims)
            if _elements(value.dims) <= 64:
                consts[node.output[0]] = np.asarray(numpy_helper.to_array(value))
        else:
            rank = _rank_of(node, ins, consts, opset, label, source)
        if rank is not None and not 0 <= rank <= 16:
            _fail(source, "%s: its output would have rank %d; at most 16 is supported"
                          % (label, rank))
        for out in node.output:
            ranks[out] = rank
