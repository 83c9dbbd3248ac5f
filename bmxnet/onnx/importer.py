"""ONNX import: binary networks from other frameworks -> packed bmxnet files.

:func:`import_model` reads an ONNX model, builds an MXNet symbol in which every binary
convolution / dense layer is a ``QConvolution`` / ``QFullyConnected`` (act_bit = weight_bit = 1)
with float ±1 weights, hands it to :func:`bmxnet.converter.convert_model`, which packs those
weights into int64 words (``binarized_weights_only``), and writes
``<output_prefix>-symbol.json`` / ``<output_prefix>-0000.params``. The files load with
``import bmxnet`` and run on the xnor-popcount kernels.

What is recognised as binary
----------------------------
A ``Conv`` (2-D), ``Gemm`` (transA = 0) or ``MatMul`` (constant 2-D right operand) whose

* input is the output of a *sign pattern*, possibly through a ``Pad`` (constant mode, spatial
  axes only, symmetric, value 0 or ±1; Conv only) or a ``Flatten(axis=1)`` (Gemm only):

  - ``Sign(x)`` (ONNX's sign, with Sign(0) = 0 — see "sign(0)" below), or
  - ``Where(GreaterOrEqual(x, 0), 1, -1)`` / ``Where(Less(x, 0), -1, 1)`` (sign(0) = +1, what
    :mod:`bmxnet.onnx.export` writes), and

* whose constant weights are ±1, or ±alpha[o] with one positive alpha per output channel
  (the scale folded into the weights, ``alpha * sign(W)``), and
* (Conv) whose padding is symmetric (begin = end on each axis): zero padding of the sign output
  becomes ``pad_value=0``, a ``Pad`` of the sign output with constant ±1 (and no padding in the
  Conv itself) ``pad_value=±1``.

The layer's epilogue is folded too: a ``Mul`` by a per-output-channel constant (shape (O,),
(1, O, 1, 1), (O, 1, 1) or a scalar) directly after the layer becomes the layer's scale (bmxnet's
``scaling_mode='forward'``; a negative scale flips that channel's weights), and an ``Add`` of a
per-channel constant after that becomes the bias. Both are folded only when the layer's output
has no other consumer. The result is ``y = dot(sign(x), sign(W)) * alpha + b``, rounded as ONNX
rounds ``Conv -> Mul -> Add``, so outputs agree exactly when the scale is a separate ``Mul``; a
scale folded into the weights is summed in float by an ONNX runtime (not exact, about 1e-6
relative).

Everything else
---------------
A ``Conv``/``Gemm``/``MatMul`` that is fed by a sign pattern but whose weights are not ±1 (times a
per-channel scale) is imported as a *float* layer: the sign pattern becomes ``mx.sym.sign``
(plain ``Sign``, same semantics as ONNX) or ``QActivation(act_bit=1)`` (the sign(0)=+1 pattern),
followed by ``Convolution`` / ``FullyConnected``. Weights that are ±1 but are not fed by a sign
pattern are also a float layer. bmxnet's k-bit activation pattern
``Div(Round(Mul(Clip(x, 0, 1), 2^k-1)), 2^k-1)`` becomes ``QActivation(act_bit=k)``.

Other operators map to MXNet's standard operators: Conv, Gemm, MatMul, BatchNormalization
(inference form), Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax, MaxPool, AveragePool,
GlobalAveragePool, GlobalMaxPool, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Concat, Add,
Sub, Mul, Div, Pad, Clip, Identity, Dropout, Constant. Any other operator raises
:class:`OnnxImportError` naming the node and its op type.

Malformed files
---------------
Before onnx's checker, its shape inference or MXNet see a model, :func:`bmxnet.onnx.checks.
check_model` checks the graph (unique names, no dangling inputs, no cycles), the tensors (numeric,
sizes that match the stored data, data inside the file), each node's input count and attributes
(``strides`` >= 1, ``pads`` >= 0, axes and permutations inside the rank …) and the rank of every
tensor. Whatever is wrong raises :class:`OnnxImportError` naming the file, the node and the fix;
so does a layer that MXNet refuses. No other exception escapes for a bad file, and no input
crashes the process (``tests/test_onnx_robust.py``, and the atheris target in ``tests/fuzz``).
:func:`import_bytes` takes the serialized model instead of a path.

sign(0)
-------
ONNX's ``Sign(0)`` is 0, bmxnet's binary layers use sign(0) = +1 (a bit is either +1 or -1). A
network whose binary layers use plain ``Sign`` therefore imports with that one difference: an
input element that is *exactly* 0.0 counts as +1 instead of 0. For float inputs coming out of a
batch normalization or a convolution an exact zero practically never happens (a set of measure
zero), so the import accepts plain ``Sign`` and documents the gap; the report lists the layers
concerned (``report['plain_sign_layers']``). Models exported by :mod:`bmxnet.onnx.export` use the
sign(0) = +1 pattern and have no gap.
"""
import contextlib
import io
import os
import re

import mxnet as mx
import numpy as np
import onnx
from onnx import numpy_helper

from ..graph import ConversionError, atomic_write, error_line
from ..shape_inference import hinted
from .checks import MAX_ELEMENTS, check_model
from .errors import OnnxImportError

__all__ = ["import_model", "import_bytes", "OnnxImportError"]


_FLOAT_MAX = float(np.finfo(np.float32).max)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------
def _read(path):
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise OnnxImportError("%s: cannot read the file (%s)" % (path, err.strerror)) from None


def _parse(data, source):
    """(ModelProto, opset) of serialized bytes, checked (see :mod:`bmxnet.onnx.checks`)."""
    if not data:
        raise OnnxImportError("%s: the file is empty, not an ONNX model" % source)
    try:
        model = onnx.ModelProto.FromString(bytes(data))
    except Exception as err:  # protobuf's DecodeError and friends
        raise OnnxImportError("%s: not an ONNX model: the protobuf does not parse (%s); the file "
                              "is damaged or truncated, re-export it" % (source, err)) from None
    opset = check_model(model, source)  # before onnx's checker and shape inference see it
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # ValidationError; UnicodeDecodeError from invalid names
        first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
        raise OnnxImportError("%s: invalid ONNX model (onnx.checker: %s)"
                              % (source, first)) from None
    return model, opset


def _shapes(model):
    """name -> shape (tuple, None for an unknown dimension) from ONNX shape inference.

    The model's own value_info is dropped first: it is not needed, and hostile shapes there
    would only mislead the inference.
    """
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(bare)
    except Exception:  # shape inference is a help, not a requirement
        inferred = bare
    shapes = {}
    graph = inferred.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        shapes[vi.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0
                                else None for d in vi.type.tensor_type.shape.dim)
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _sanitize(name, taken):
    base = re.sub(r"[^0-9A-Za-z_]", "_", name) or "t"
    if base[0].isdigit():
        base = "t_" + base
    candidate, i = base, 1
    while candidate in taken:
        candidate = "%s_%d" % (base, i)
        i += 1
    taken.add(candidate)
    return candidate


# ------------------------------------------------------------------------------------------------
# The translator
# ------------------------------------------------------------------------------------------------
class _Importer:
    def __init__(self, model, opset, path):
        self.model = model
        self.path = path
        self.graph = model.graph
        self.opset = opset
        self.shapes = _shapes(model)
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.graph.initializer}
        self.producer = {}
        self.consumers = {}
        for node in self.graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                if inp:
                    self.consumers.setdefault(inp, []).append(node)
        self.graph_outputs = {o.name for o in self.graph.output}
        self.node = None          # the node being translated
        self.syms = {}            # tensor name -> mx symbol
        self.lazy = {}            # tensor name -> callable building its symbol on first use
        self.signs = {}           # sign output -> (input, 'sign' | 'sign_pm1', node)
        self.kbit = {}            # k-bit quantizer output -> (input, bits)
        self.done = set()         # first outputs of nodes folded into another layer
        self.params = {}          # mx variable name -> numpy value
        self.const_vars = {}      # tensor name -> variable symbol
        self.taken = set()
        self.report = {"binary_layers": [], "float_layers": [], "plain_sign_layers": [],
                       "inputs": {}, "outputs": [], "opset": self.opset}

    # -- helpers ---------------------------------------------------------------------------
    def fail(self, node, msg):
        raise OnnxImportError("%s: node %r (%s): %s" % (self.path, node.name or node.output[0],
                                                       node.op_type, msg))

    def layer_name(self, node):
        return _sanitize(node.name or node.output[0], self.taken)

    def param(self, name, value):
        """A new variable ``name`` holding ``value`` (a 0-d value becomes shape (1,), which
        broadcasts the same: MXNet reads the shape () as unknown, like any 0 dimension)."""
        value = np.asarray(value)
        if value.ndim == 0:
            value = value.reshape(1)
        if 0 in value.shape:
            self.fail(self.node, "the constant that becomes %r has the empty shape %s; an empty "
                                 "weight or operand means the model is damaged, re-export it"
                      % (name, value.shape))
        self.params[name] = value
        return mx.sym.var(name, shape=value.shape, dtype=str(value.dtype))

    def const_var(self, tensor):
        if tensor not in self.const_vars:
            value = self.consts[tensor]
            if value.dtype.kind != "f":
                self.fail(self.node, "the constant %r is %s; ONNX arithmetic on float data "
                                     "needs float operands" % (tensor, value.dtype))
            value = value.astype(np.float32)
            self.const_vars[tensor] = self.param(_sanitize(tensor, self.taken), value)
        return self.const_vars[tensor]

    def get(self, tensor, node=None):
        """The mx symbol of an ONNX tensor (materialising lazy patterns and constants)."""
        if tensor in self.syms:
            return self.syms[tensor]
        if tensor in self.lazy:
            self.syms[tensor] = self.lazy.pop(tensor)()
            return self.syms[tensor]
        if tensor in self.consts:
            return self.const_var(tensor)
        where = (" (input of node %r)" % (node.name or node.op_type)) if node is not None else ""
        raise OnnxImportError("%s: tensor %r%s is not produced by any supported node"
                              % (self.path, tensor, where))

    def const(self, tensor):
        return self.consts.get(tensor) if tensor else None

    def rank(self, tensor):
        shape = self.shapes.get(tensor)
        return None if shape is None else len(shape)

    def single_consumer(self, tensor):
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or tensor in self.graph_outputs:
            return None
        return users[0]

    def out(self, node, sym):
        self.syms[node.output[0]] = sym

    # -- driver ----------------------------------------------------------------------------
    def run(self):
        initializers = set(self.consts)
        for vi in self.graph.input:
            if vi.name in initializers:
                continue
            name = _sanitize(vi.name, self.taken)
            shape = tuple(d.dim_value if d.HasField("dim_value") else None
                          for d in vi.type.tensor_type.shape.dim)
            self.syms[vi.name] = mx.sym.var(name)
            self.report["inputs"][name] = shape
        for node in self.graph.node:  # check_model: supported operators, valid attributes
            if node.output[0] in self.done:
                continue
            self.node = node  # named by errors raised below the handler
            try:
                getattr(self, "op_" + node.op_type)(node)
            except mx.base.MXNetError as err:
                self.fail(node, "MXNet refuses the translated layer: %s" % error_line(err))
            except (ArithmeticError, LookupError, TypeError, ValueError) as err:
                if isinstance(err, OnnxImportError):
                    raise
                self.fail(node, "cannot be translated (%s: %s); check the node's inputs and "
                                "attributes against the ONNX operator specification"
                          % (type(err).__name__, err))
        outs = []
        for o in self.graph.output:
            if o.name in self.consts and o.name not in self.syms:
                raise OnnxImportError("%s: graph output %r is a constant; nothing to compute"
                                      % (self.path, o.name))
            self.node = self.producer.get(o.name)
            outs.append(self.get(o.name))
            self.report["outputs"].append(o.name)
        sym = outs[0] if len(outs) == 1 else mx.sym.Group(outs)
        return sym

    # -- sign and k-bit patterns (lazy: materialised only for non-binary consumers) ---------
    def settle(self, tensor, node):
        """Materialises ``tensor`` if it is a lazy pattern output, so that lazy patterns never
        chain (a chain of thousands of Sign nodes would otherwise recurse that deep)."""
        if tensor in self.lazy:
            self.get(tensor, node)

    def op_Sign(self, node):
        x = node.input[0]
        self.settle(x, node)
        self.signs[node.output[0]] = (x, "sign", node)
        self.lazy[node.output[0]] = lambda: mx.sym.sign(self.get(x, node))

    def op_GreaterOrEqual(self, node):
        self._comparison(node)

    def op_Less(self, node):
        self._comparison(node)

    def _comparison(self, node):
        def fail():
            self.fail(node, "comparisons are supported only as part of the sign pattern "
                            "Where(GreaterOrEqual(x, 0), 1, -1)")
        self.lazy[node.output[0]] = fail

    def op_Where(self, node):
        cond, a, b = node.input
        prod = self.producer.get(cond)
        va, vb = self.const(a), self.const(b)
        ok = prod is not None and va is not None and vb is not None and va.size == 1 and \
            vb.size == 1 and prod.op_type in ("GreaterOrEqual", "Less")
        if ok:
            zero = self.const(prod.input[1])
            want = (1.0, -1.0) if prod.op_type == "GreaterOrEqual" else (-1.0, 1.0)
            ok = zero is not None and zero.size == 1 and float(zero.ravel()[0]) == 0.0 and \
                (float(va.ravel()[0]), float(vb.ravel()[0])) == want
        if not ok:
            self.fail(node, "Where is supported only as the sign pattern "
                            "Where(GreaterOrEqual(x, 0), 1, -1) or Where(Less(x, 0), -1, 1)")
        x = prod.input[0]
        self.settle(x, node)
        self.signs[node.output[0]] = (x, "sign_pm1", node)
        name = self.layer_name(node)
        self.lazy[node.output[0]] = lambda: mx.sym.QActivation(self.get(x, node), act_bit=1,
                                                               name=name)

    def op_Round(self, node):
        def fail():
            self.fail(node, "Round is supported only inside the k-bit activation pattern "
                            "Div(Round(Mul(Clip(x, 0, 1), 2^k-1)), 2^k-1)")
        self.lazy[node.output[0]] = fail

    def _kbit_pattern(self, node):
        """Div(Round(Mul(Clip(x, 0, 1), L)), L) with L = 2^k - 1 -> (x, k), else None."""
        levels = self.const(node.input[1])
        rnd = self.producer.get(node.input[0])
        if levels is None or levels.size != 1 or rnd is None or rnd.op_type != "Round":
            return None
        mul = self.producer.get(rnd.input[0])
        if mul is None or mul.op_type != "Mul":
            return None
        clip_in = [t for t in mul.input if self.const(t) is None]
        lv = [self.const(t) for t in mul.input if self.const(t) is not None]
        if len(clip_in) != 1 or len(lv) != 1 or lv[0].size != 1 or \
                float(lv[0].ravel()[0]) != float(levels.ravel()[0]):
            return None
        clip = self.producer.get(clip_in[0])
        if clip is None or clip.op_type != "Clip":
            return None
        lo, hi = self._clip_bounds(clip)
        n = float(levels.ravel()[0])
        if not 3 <= n <= 2 ** 31 - 1:  # 2^k - 1 for k in [2, 31]
            return None
        bits = int(round(np.log2(n + 1)))
        if lo != 0.0 or hi != 1.0 or 2 ** bits - 1 != n:
            return None
        return clip.input[0], bits

    # -- convolution -----------------------------------------------------------------------
    def _pad_info(self, node):
        """(pads (begin..., end...), value, mode) of a Pad node, with constant pads."""
        a = _attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if self.opset < 11:
            pads, value = list(a.get("pads", [])), float(a.get("value", 0.0))
        else:
            p = self.const(node.input[1]) if len(node.input) > 1 else None
            if p is None:
                self.fail(node, "the pads input must be a constant")
            pads = [int(v) for v in p.ravel()]
            v = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if len(node.input) > 2 and node.input[2] and v is None:
                self.fail(node, "the constant_value input must be a constant")
            value = float(v.ravel()[0]) if v is not None else 0.0
            if len(node.input) > 3 and node.input[3]:
                axes = self.const(node.input[3])
                if axes is None:
                    self.fail(node, "the axes input must be a constant")
                rank = self.rank(node.input[0])
                if rank is None:
                    self.fail(node, "Pad with axes needs a known input rank")
                full = [0] * (2 * rank)
                for i, ax in enumerate(int(v) for v in axes.ravel()):
                    ax = ax % rank
                    full[ax], full[rank + ax] = pads[i], pads[len(axes.ravel()) + i]
                pads = full
        return pads, value, mode

    def _binary_source(self, x, allow_pad, allow_flatten):
        """(pre-sign tensor, sign kind, sign node, pad (ph, pw) or None, pad value) or None."""
        pad, pad_value = None, 0.0
        prod = self.producer.get(x)
        if allow_pad and prod is not None and prod.op_type == "Pad":
            pads, value, mode = self._pad_info(prod)
            if mode != "constant" or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or \
                    pads[2:4] != pads[6:8] or min(pads) < 0 or value not in (0.0, 1.0, -1.0):
                return None
            pad, pad_value = (pads[2], pads[3]), value
            x = prod.input[0]
            prod = self.producer.get(x)
        if allow_flatten and prod is not None and prod.op_type == "Flatten" and \
                _attrs(prod).get("axis", 1) == 1:
            x = prod.input[0]
        if x not in self.signs:
            return None
        src, kind, sign_node = self.signs[x]
        return src, kind, sign_node, pad, pad_value

    @staticmethod
    def _binary_alpha(w):
        """alpha[o] when every row w[o] is ±alpha[o] with alpha[o] > 0, else None."""
        if w.size == 0:
            return None  # refused as a float layer's empty weight
        rows = np.abs(w.reshape(w.shape[0], -1))
        alpha = rows[:, 0]
        if not np.all(np.isfinite(rows)) or np.any(alpha <= 0) or \
                not np.all(rows == alpha[:, None]):
            return None
        return alpha.astype(np.float32)

    def _per_channel(self, value, channels, axis, rank):
        """A constant broadcast over one channel axis -> (channels,) float32, else None."""
        if value is None or rank is None:
            return None
        v = np.asarray(value, np.float32)
        if v.size == 1:
            return np.full(channels, v.ravel()[0], np.float32)
        if v.ndim > rank:
            return None
        full = (1,) * (rank - v.ndim) + v.shape
        want = [1] * rank
        want[axis] = channels
        return v.reshape(channels) if list(full) == want else None

    def _fold_epilogue(self, out, channels, axis, rank, scale, bias):
        """Folds Mul (scale) then Add (bias) after a binary layer's output.

        Returns (output tensor, scale or None, bias or None, folded nodes).
        """
        folded = []
        nxt = self.single_consumer(out)
        if scale is None and bias is None and nxt is not None and nxt.op_type == "Mul":
            other = [t for t in nxt.input if t != out]
            s = self._per_channel(self.const(other[0]), channels, axis, rank) \
                if len(other) == 1 else None
            if s is not None:
                scale, out = s, nxt.output[0]
                folded.append(nxt)
                nxt = self.single_consumer(out)
        if bias is None and nxt is not None and nxt.op_type == "Add":
            other = [t for t in nxt.input if t != out]
            b = self._per_channel(self.const(other[0]), channels, axis, rank) \
                if len(other) == 1 else None
            if b is not None:
                bias, out = b, nxt.output[0]
                folded.append(nxt)
        for n in folded:
            self.done.add(n.output[0])
        return out, scale, bias, folded

    @staticmethod
    def _binary_weights(w, alpha, scale):
        """Float weights for the Q-layer and its scaling mode, from ±alpha weights and a scale.

        The Q-layer computes dot(sign x, sign W') * mean|W'[o]| (scaling_mode='forward'). With
        W' = s[o] * sign(W) that is dot * s[o] exactly: mean|W'[o]| = |s[o]| (n equal terms sum
        exactly in float64) and a negative s[o] flips the sign of the row.
        """
        sign = np.where(w >= 0, np.float32(1), np.float32(-1))
        if scale is None:
            if np.all(alpha == 1):
                return sign, "none"
            scale = alpha
        shape = (-1,) + (1,) * (w.ndim - 1)
        return (sign * scale.reshape(shape)).astype(np.float32), "forward"

    def _record(self, node, name, kind, **info):
        entry = {"node": node.name or node.output[0], "layer": name, "type": kind}
        entry.update(info)
        key = "binary_layers" if info.get("binary") else "float_layers"
        self.report[key].append(entry)

    def _conv_geometry(self, node, w):
        a = _attrs(node)
        k = list(a.get("kernel_shape", w.shape[2:]))
        if w.ndim != 4 or len(k) != 2:
            self.fail(node, "only 2-D convolutions (4-D weights) are supported, got weights %s"
                      % (w.shape,))
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        group = int(a.get("group", 1))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if auto == "VALID":
            pads = [0, 0, 0, 0]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            shape = self.shapes.get(node.input[0])
            if shape is None or None in shape[2:]:
                self.fail(node, "auto_pad=%s needs the input's spatial size; give the model "
                                "static input shapes" % auto)
            pads = [0] * 4
            for i in range(2):
                size = shape[2 + i]
                out = -(-size // strides[i])
                total = max(0, (out - 1) * strides[i] + (k[i] - 1) * dil[i] + 1 - size)
                small, big = total // 2, total - total // 2
                pads[i], pads[2 + i] = (small, big) if auto == "SAME_UPPER" else (big, small)
        elif auto != "NOTSET":
            self.fail(node, "auto_pad=%r is not supported" % auto)
        return k, strides, dil, group, pads

    def op_Conv(self, node):
        w = self.const(node.input[1])
        if w is None:
            self.fail(node, "the weight input %r must be a constant initializer" % node.input[1])
        w = w.astype(np.float32)
        bias_in = node.input[2] if len(node.input) > 2 and node.input[2] else None
        b = self.const(bias_in) if bias_in else None
        if bias_in and b is None:
            self.fail(node, "the bias input %r must be a constant initializer" % bias_in)
        kernel, strides, dil, group, pads = self._conv_geometry(node, w)
        name = self.layer_name(node)
        num_filter = w.shape[0]
        src = self._binary_source(node.input[0], allow_pad=True, allow_flatten=False)
        alpha = self._binary_alpha(w) if src is not None else None
        if src is not None and alpha is not None:
            x, kind, sign_node, pad, pad_value = src
            conv_pad = pads[:2]
            fusable = pads[:2] == pads[2:]
            if pad is not None:
                if pad_value == 0.0:
                    conv_pad = [conv_pad[0] + pad[0], conv_pad[1] + pad[1]]
                elif any(pads):
                    fusable = False  # zero padding around ±1 padding: not one pad_value
                else:
                    conv_pad = list(pad)
            if fusable:
                bias = None
                if b is not None:
                    bias = self._per_channel(b, num_filter, 0, 1)
                    if bias is None:
                        self.fail(node, "the bias of shape %s does not match the %d output "
                                        "channels" % (b.shape, num_filter))
                self._emit_binary(node, name, src, w, alpha, np.float32(1), bias, 1, 4,
                                  "QConvolution", kernel=tuple(kernel), stride=tuple(strides),
                                  dilate=tuple(dil), pad=tuple(conv_pad), num_filter=num_filter,
                                  num_group=group, pad_value=int(pad_value))
                return
        data = self.get(node.input[0], node)
        if pads[:2] != pads[2:]:
            data = mx.sym.pad(data, mode="constant", constant_value=0,
                              pad_width=(0, 0, 0, 0, pads[0], pads[2], pads[1], pads[3]))
            pads = [0, 0, 0, 0]
        args = [data, self.param(name + "_weight", w)]
        if b is not None:
            args.append(self.param(name + "_bias", b.astype(np.float32)))
        self.out(node, mx.sym.Convolution(*args, kernel=tuple(kernel), stride=tuple(strides),
                                          dilate=tuple(dil), pad=tuple(pads[:2]),
                                          num_filter=num_filter, num_group=group,
                                          no_bias=b is None, name=name))
        self._record(node, name, "Convolution", binary=False)

    def _emit_binary(self, node, name, src, w, alpha, gain, bias, axis, rank, op, **attrs):
        """Emits the binary layer ``op`` (QConvolution / QFullyConnected) for ``node``.

        ``src`` is what :meth:`_binary_source` matched, ``w`` the ±alpha[o] weights (times
        ``gain``, Gemm's alpha). Without a bias of its own, the Mul / Add after the layer
        (channel ``axis`` of a rank-``rank`` output) are folded in (:meth:`_fold_epilogue`).
        """
        x, kind, sign_node = src[:3]
        out = node.output[0]
        scale = None if np.all(alpha == 1) and gain == 1 else (gain * alpha).astype(np.float32)
        if bias is None:
            out, scale, bias, _ = self._fold_epilogue(out, w.shape[0], axis, rank, scale, None)
        weight, mode = self._binary_weights(w, alpha, scale)
        if out != node.output[0]:  # epilogue folded: name the layer after its final output
            name = _sanitize(out, self.taken)
        args = [self.get(x, sign_node), self.param(name + "_weight", weight)]
        if bias is not None:
            args.append(self.param(name + "_bias", bias))
        self.syms[out] = getattr(mx.sym, op)(*args, no_bias=bias is None, act_bit=1,
                                             weight_bit=1, scaling_mode=mode, name=name, **attrs)
        info = {"pad_value": attrs["pad_value"]} if "pad_value" in attrs else {}
        self._record(node, name, op, binary=True, scaling_mode=mode, sign=kind, **info)
        if kind == "sign":
            self.report["plain_sign_layers"].append(name)

    # -- dense -----------------------------------------------------------------------------
    def op_Gemm(self, node):
        a = _attrs(node)
        if a.get("transA", 0):
            self.fail(node, "transA=1 is not supported")
        bmat = self.const(node.input[1])
        if bmat is None:
            self.fail(node, "the B input %r must be a constant initializer" % node.input[1])
        w = (bmat if a.get("transB", 0) else bmat.T).astype(np.float32)
        gain = np.float32(a.get("alpha", 1.0))
        beta = np.float32(a.get("beta", 1.0))
        units = w.shape[0]
        c = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if len(node.input) > 2 and node.input[2] and c is None:
            self.fail(node, "the C input %r must be a constant initializer" % node.input[2])
        bias = None
        if c is not None:
            bias = self._per_channel(c, units, 1, 2)
            if bias is None:
                self.fail(node, "C of shape %s is not a per-output bias" % (c.shape,))
            bias = (beta * bias).astype(np.float32)
            if not np.any(bias):
                bias = None
        self._dense(node, node.input[0], w, gain, bias, flatten=True)

    def op_MatMul(self, node):
        bmat = self.const(node.input[1])
        if bmat is None or bmat.ndim != 2:
            if self.const(node.input[0]) is not None:
                self.fail(node, "a constant left operand is not supported")
            lhs, rhs = self.get(node.input[0], node), self.get(node.input[1], node)
            self.out(node, mx.sym.linalg.gemm2(lhs, rhs) if self.rank(node.input[0]) != 2
                     else mx.sym.dot(lhs, rhs))
            return
        self._dense(node, node.input[0], bmat.T.astype(np.float32), np.float32(1), None,
                    flatten=False)

    def _dense(self, node, x_name, w, gain, bias, flatten):
        name = self.layer_name(node)
        units = w.shape[0]
        src = self._binary_source(x_name, allow_pad=False, allow_flatten=flatten)
        alpha = self._binary_alpha(w) if src is not None else None
        rank = 2 if flatten else self.rank(x_name)
        if src is not None and alpha is not None and rank is not None:
            self._emit_binary(node, name, src, w, alpha, gain, bias, rank - 1, rank,
                              "QFullyConnected", num_hidden=units, flatten=flatten)
            return
        if gain != 1:
            w = (w * gain).astype(np.float32)
        args = [self.get(x_name, node), self.param(name + "_weight", w)]
        if bias is not None:
            args.append(self.param(name + "_bias", bias))
        self.out(node, mx.sym.FullyConnected(*args, num_hidden=units, flatten=flatten,
                                             no_bias=bias is None, name=name))
        self._record(node, name, "FullyConnected", binary=False)

    # -- normalisation, activations, pooling ----------------------------------------------
    def op_BatchNormalization(self, node):
        if len([o for o in node.output if o]) > 1:
            self.fail(node, "training-mode BatchNormalization (several outputs) is not supported")
        a = _attrs(node)
        if a.get("training_mode", 0):
            self.fail(node, "training_mode=1 is not supported")
        values = [self.const(t) for t in node.input[1:5]]
        if any(v is None for v in values):
            self.fail(node, "scale, B, mean and var must be constant initializers")
        name = self.layer_name(node)
        gamma, beta, mean, var = (v.astype(np.float32) for v in values)
        self.out(node, mx.sym.BatchNorm(self.get(node.input[0], node),
                                        self.param(name + "_gamma", gamma),
                                        self.param(name + "_beta", beta),
                                        self.param(name + "_moving_mean", mean),
                                        self.param(name + "_moving_var", var),
                                        eps=float(a.get("epsilon", 1e-5)), fix_gamma=False,
                                        use_global_stats=True, axis=1, name=name))

    def _unary(self, node, fn):
        self.out(node, fn(self.get(node.input[0], node)))

    def op_Relu(self, node):
        self._unary(node, mx.sym.relu)

    def op_Sigmoid(self, node):
        self._unary(node, mx.sym.sigmoid)

    def op_Tanh(self, node):
        self._unary(node, mx.sym.tanh)

    def op_LeakyRelu(self, node):
        slope = float(_attrs(node).get("alpha", 0.01))
        self._unary(node, lambda x: mx.sym.LeakyReLU(x, act_type="leaky", slope=slope))

    def _softmax(self, node, fn):
        axis = int(_attrs(node).get("axis", 1 if self.opset < 13 else -1))
        rank = self.rank(node.input[0])
        if self.opset < 13 and axis not in (-1, (rank or 0) - 1):
            self.fail(node, "before opset 13 %s flattens from axis %d; only the last axis is "
                            "supported" % (node.op_type, axis))
        self._unary(node, lambda x: fn(x, axis=axis))

    def op_Softmax(self, node):
        self._softmax(node, mx.sym.softmax)

    def op_LogSoftmax(self, node):
        self._softmax(node, mx.sym.log_softmax)

    def _pool(self, node, pool_type):
        a = _attrs(node)
        kernel = list(a["kernel_shape"])
        if len(kernel) != 2:
            self.fail(node, "only 2-D pooling is supported")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            self.fail(node, "dilated pooling is not supported")
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        if auto not in ("NOTSET", "VALID"):
            self.fail(node, "auto_pad=%s is not supported for pooling" % auto)
        pads = [0] * 4 if auto == "VALID" else list(a.get("pads", [0, 0, 0, 0]))
        if pads[:2] != pads[2:]:
            self.fail(node, "asymmetric pads %s are not supported" % pads)
        kw = dict(kernel=tuple(kernel), stride=tuple(a.get("strides", [1, 1])),
                  pad=tuple(pads[:2]), pool_type=pool_type,
                  pooling_convention="full" if a.get("ceil_mode", 0) else "valid")
        if pool_type == "avg":
            kw["count_include_pad"] = bool(a.get("count_include_pad", 0))
        self.out(node, mx.sym.Pooling(self.get(node.input[0], node), name=self.layer_name(node),
                                      **kw))

    def op_MaxPool(self, node):
        if len([o for o in node.output if o]) > 1:
            self.fail(node, "the Indices output is not supported")
        self._pool(node, "max")

    def op_AveragePool(self, node):
        self._pool(node, "avg")

    def _global_pool(self, node, pool_type):
        if self.rank(node.input[0]) not in (None, 4):
            self.fail(node, "only 4-D (NCHW) inputs are supported")
        self.out(node, mx.sym.Pooling(self.get(node.input[0], node), kernel=(1, 1),
                                      global_pool=True, pool_type=pool_type,
                                      name=self.layer_name(node)))

    def op_GlobalAveragePool(self, node):
        self._global_pool(node, "avg")

    def op_GlobalMaxPool(self, node):
        self._global_pool(node, "max")

    # -- shapes ----------------------------------------------------------------------------
    def op_Flatten(self, node):
        axis = int(_attrs(node).get("axis", 1))
        rank = self.rank(node.input[0])
        if axis < 0 and rank is not None:
            axis += rank
        x = self.get(node.input[0], node)
        if axis == 1:
            self.out(node, mx.sym.flatten(x))
        elif axis == 0:
            self.out(node, mx.sym.reshape(x, shape=(1, -1)))
        else:
            shape = self.shapes.get(node.input[0])
            if shape is None or None in shape[:axis]:
                self.fail(node, "Flatten(axis=%d) needs the input shape; give the model static "
                                "input shapes" % axis)
            self.out(node, mx.sym.reshape(x, shape=(int(np.prod(shape[:axis])), -1)))

    def op_Reshape(self, node):
        shape = self.const(node.input[1])
        if shape is None:
            self.fail(node, "the shape input must be a constant")
        shape = [int(v) for v in shape.ravel()]
        if _attrs(node).get("allowzero", 0) and 0 in shape:
            self.fail(node, "allowzero=1 with a zero in the shape is not supported")
        self.out(node, mx.sym.reshape(self.get(node.input[0], node), shape=tuple(shape)))

    def _axes(self, node):
        if self.opset >= 13 and len(node.input) > 1 and node.input[1]:
            axes = self.const(node.input[1])
            if axes is None:
                self.fail(node, "the axes input must be a constant")
            return [int(v) for v in axes.ravel()]
        return list(_attrs(node).get("axes", []))

    def op_Squeeze(self, node):
        axes = self._axes(node)
        x = self.get(node.input[0], node)
        self.out(node, mx.sym.squeeze(x, axis=tuple(axes)) if axes else mx.sym.squeeze(x))

    def op_Unsqueeze(self, node):
        axes = self._axes(node)
        rank = self.rank(node.input[0])
        if any(a < 0 for a in axes):
            if rank is None:
                self.fail(node, "negative axes need a known input rank")
            axes = [a + rank + len(axes) for a in axes]
        x = self.get(node.input[0], node)
        for a in sorted(axes):
            x = mx.sym.expand_dims(x, axis=a)
        self.out(node, x)

    def op_Transpose(self, node):
        perm = _attrs(node).get("perm")
        x = self.get(node.input[0], node)
        self.out(node, mx.sym.transpose(x, axes=tuple(perm)) if perm else mx.sym.transpose(x))

    def op_Concat(self, node):
        axis = int(_attrs(node)["axis"])
        if axis < 0:
            rank = self.rank(node.input[0])
            if rank is None:
                self.fail(node, "a negative axis needs a known input rank")
            axis += rank
        self.out(node, mx.sym.concat(*[self.get(t, node) for t in node.input if t], dim=axis))

    def op_Pad(self, node):
        pads, value, mode = self._pad_info(node)
        if mode not in ("constant", "edge", "reflect"):
            self.fail(node, "mode %r is not supported" % mode)
        rank = len(pads) // 2
        if rank != 4 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            self.fail(node, "only non-negative padding of the two spatial axes of a 4-D tensor "
                            "is supported, got pads %s" % pads)
        width = (0, 0, 0, 0, pads[2], pads[6], pads[3], pads[7])
        self.out(node, mx.sym.pad(self.get(node.input[0], node), mode=mode, pad_width=width,
                                  constant_value=value))

    # -- element-wise ----------------------------------------------------------------------
    def _clip_bounds(self, node):
        if self.opset < 11:
            a = _attrs(node)
            return float(a.get("min", -_FLOAT_MAX)), float(a.get("max", _FLOAT_MAX))
        bounds = []
        for i, default in ((1, -_FLOAT_MAX), (2, _FLOAT_MAX)):
            if len(node.input) > i and node.input[i]:
                v = self.const(node.input[i])
                if v is None:
                    self.fail(node, "min and max must be constants")
                bounds.append(float(v.ravel()[0]))
            else:
                bounds.append(default)
        return tuple(bounds)

    def op_Clip(self, node):
        lo, hi = self._clip_bounds(node)
        self._unary(node, lambda x: mx.sym.clip(x, a_min=lo, a_max=hi))

    def op_Identity(self, node):
        self.syms[node.output[0]] = self.get(node.input[0], node)
        if node.input[0] in self.signs:
            self.signs[node.output[0]] = self.signs[node.input[0]]

    def op_Dropout(self, node):
        if len(node.output) > 1 and node.output[1] and self.consumers.get(node.output[1]):
            self.fail(node, "the mask output is not supported")
        self.syms[node.output[0]] = self.get(node.input[0], node)

    def op_Constant(self, node):
        a = _attrs(node)
        if "value" not in a:
            self.fail(node, "only the 'value' form of Constant is supported")
        self.consts[node.output[0]] = numpy_helper.to_array(a["value"])

    SCALAR = {"Add": ("_plus_scalar", "_plus_scalar"), "Mul": ("_mul_scalar", "_mul_scalar"),
              "Sub": ("_minus_scalar", "_rminus_scalar"), "Div": ("_div_scalar", "_rdiv_scalar")}
    BROADCAST = {"Add": "broadcast_add", "Sub": "broadcast_sub", "Mul": "broadcast_mul",
                 "Div": "broadcast_div"}

    def _arith(self, node):
        a, b = node.input
        ca, cb = self.const(a), self.const(b)
        if ca is not None and cb is not None:  # folded here, in numpy
            try:
                shape = np.broadcast_shapes(ca.shape, cb.shape)
            except ValueError:
                self.fail(node, "the constants of shapes %s and %s do not broadcast"
                          % (ca.shape, cb.shape))
            if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
                self.fail(node, "the constants of shapes %s and %s broadcast to %s, more than "
                                "%d elements" % (ca.shape, cb.shape, shape, MAX_ELEMENTS))
            fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
            with np.errstate(all="ignore"):  # x/0 is inf or nan, as in ONNX
                self.consts[node.output[0]] = fn[node.op_type](ca, cb)
            return
        for const, other, pos in ((cb, a, 0), (ca, b, 1)):
            other_rank = self.rank(other)
            if const is not None and const.size == 1 and \
                    (const.ndim == 0 or (other_rank is not None and const.ndim <= other_rank)):
                op = getattr(mx.sym._internal, self.SCALAR[node.op_type][pos])
                self.out(node, op(self.get(other, node), scalar=float(const.ravel()[0])))
                return
        op = getattr(mx.sym, self.BROADCAST[node.op_type])
        self.out(node, op(self.get(a, node), self.get(b, node)))

    def op_Add(self, node):
        self._arith(node)

    def op_Sub(self, node):
        self._arith(node)

    def op_Mul(self, node):
        self._arith(node)

    def op_Div(self, node):
        found = self._kbit_pattern(node)
        if found is None:
            self._arith(node)
            return
        x, bits = found
        self.settle(x, node)
        self.kbit[node.output[0]] = (x, bits)
        name = self.layer_name(node)
        self.lazy[node.output[0]] = lambda: mx.sym.QActivation(self.get(x, node), act_bit=bits,
                                                               name=name)


# ------------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------------
def _split_params(sym, values):
    args, auxs = set(sym.list_arguments()), set(sym.list_auxiliary_states())
    arg_params = {k: mx.nd.array(v, dtype=v.dtype) for k, v in values.items() if k in args}
    aux_params = {k: mx.nd.array(v, dtype=v.dtype) for k, v in values.items() if k in auxs}
    return arg_params, aux_params


def _save(prefix, epoch, sym, arg_params, aux_params):
    """Writes prefix-symbol.json and prefix-%04d.params: all or nothing, with the usual mode."""
    prefix = os.fspath(prefix)
    directory = os.path.dirname(os.path.abspath(prefix))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as err:
        raise OnnxImportError("cannot create the folder %s: %s" % (directory, err.strerror or err))
    targets = [prefix + "-symbol.json", "%s-%04d.params" % (prefix, epoch)]
    blob = {"arg:" + k: v for k, v in arg_params.items()}
    blob.update({"aux:" + k: v for k, v in aux_params.items()})
    atomic_write([(targets[0], sym.save), (targets[1], lambda tmp: mx.nd.save(tmp, blob))],
                 error=OnnxImportError)
    return targets


def import_model(path, output_prefix=None, *, epoch=0, convert=True):
    """Imports an ONNX (binary) network as bmxnet MXNet files.

    Parameters
    ----------
    path : str
        The ONNX file.
    output_prefix : str or None
        Writes ``<output_prefix>-symbol.json`` and ``<output_prefix>-<epoch:04d>.params``
        (temporary files renamed at the end: nothing is left half-written). None writes nothing.
    epoch : int, default 0
        Epoch number in the params file name.
    convert : bool, default True
        Pack the binary layers with :func:`bmxnet.converter.convert_model`
        (``binarized_weights_only``). False keeps float ±1 weights (trainable, slower).

    Returns
    -------
    (sym, arg_params, aux_params, report)
        The network and its parameters, as written, and a dict describing the import:
        ``binary_layers`` / ``float_layers`` (ONNX node, MXNet layer, type, scaling, pad value,
        sign pattern), ``plain_sign_layers`` (binary layers fed by ONNX ``Sign``: their inputs
        that are exactly 0 count as +1, see the module docstring), ``inputs`` (name -> shape),
        ``outputs``, ``opset`` and ``converter`` (the converter's report).

    Raises
    ------
    OnnxImportError
        For unreadable, malformed or invalid files and unsupported operators (naming the node),
        and for networks MXNet cannot run. No other exception is raised for a bad file.
    """
    return import_bytes(_read(path), output_prefix, epoch=epoch, convert=convert,
                        source=os.fspath(path))


def import_bytes(data, output_prefix=None, *, epoch=0, convert=True, source="<bytes>"):
    """:func:`import_model` of a serialized ONNX model (``bytes``); ``source`` names it in
    error messages. The same checks, result and files."""
    importer = _Importer(*_parse(data, source), source)
    with mx.name.NameManager():  # the same names for the same model, whatever ran before
        sym = importer.run()
    arg_params, aux_params = _split_params(sym, importer.params)
    report = importer.report
    shapes = {n: s for n, s in report["inputs"].items() if s and None not in s}
    if len(shapes) == len(report["inputs"]):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # MXNet prints the arguments
                sym.infer_shape(**shapes, **{k: v.shape for k, v in arg_params.items()},
                                **{k: v.shape for k, v in aux_params.items()})
        except mx.base.MXNetError as err:
            raise OnnxImportError("%s: the imported network does not pass MXNet's shape "
                                  "inference: %s" % (source, error_line(err))) from None
    if convert and report["binary_layers"]:
        from bmxnet.converter import convert_model
        try:
            sym, arg_params, aux_params, report["converter"] = convert_model(
                sym, arg_params, aux_params, source=source)
        except ConversionError as err:
            raise OnnxImportError("%s: the model converter refused the imported network: %s"
                                  % (source, err)) from None
    sym = hinted(sym)  # every Q-layer parameter variable with a __shape__ of known ndim
    if output_prefix is not None:
        report["files"] = _save(output_prefix, epoch, sym, arg_params, aux_params)
    return sym, arg_params, aux_params, report
