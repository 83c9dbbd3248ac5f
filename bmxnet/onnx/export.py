"""ONNX export of QConvolution, QFullyConnected and QActivation as standard ONNX operators.

The translators here are registered with MXNet's own mx2onnx registry
(``mxnet.onnx.mx2onnx._export_onnx.MXNetGraph.register``) by
:func:`bmxnet.onnx.register_translators`, which ``import bmxnet`` runs, so
``mx.onnx.export_model`` handles networks that contain them; everything else in the graph is
translated by MXNet's built-in translators, two of them corrected here (``BatchNorm`` with
``fix_gamma``, ``SoftmaxOutput``: see the end of this docstring). :func:`export_model` is a
convenience wrapper around ``mx.onnx.export_model`` that also takes files or Gluon blocks, runs
``onnx.checker`` and writes the file atomically.

What each operator becomes
--------------------------
Only standard ONNX operators are written (default domain, opset 12 and later), so any ONNX
runtime runs the model. For ``y = conv(Qa(x), Qw(W)) * alpha + b``:

* ``Qa`` (the layer's input quantizer)

  - 1 bit: ``Where(GreaterOrEqual(x, 0), 1, -1)``. This is ``sign`` with ``sign(0) = +1`` like the
    operator (and its packed kernels); ONNX's own ``Sign`` maps 0 to 0, so it is not used.
  - k bits: ``Div(Round(Mul(Clip(x, 0, 1), 2^k - 1)), 2^k - 1)``. ONNX ``Round`` rounds half to
    even, like the operator's ``rint``.
  - 32 bits: nothing.

* ``Qw`` is applied at export time: the ``Conv`` / ``Gemm`` / ``MatMul`` weight initializer holds
  the quantized weights (``sign(W)`` as ±1 floats, DoReFa levels for k bits, or ``W`` itself).
  Packed models (``binarized_weights_only=True``, written by the model converter) are unpacked
  back into ±1 float initializers; their ``weight_scale`` input becomes ``alpha``.
* ``alpha`` (``scaling_mode='forward'``): a ``Mul`` by a constant of shape (1, O, 1, 1) (dense:
  (O,)), holding mean|W| of each output channel of the latent float weights, computed as the
  operator computes it (float64 sum, one rounding to float32).
* ``b``: an ``Add`` after the ``Mul`` (never the bias input of ``Conv``/``Gemm``), so that the
  result is rounded exactly as the operator rounds it: multiply, then add.

Padding
-------
* ``pad_value=0`` (zero padding, the default): the ``Conv`` node's own ``pads`` attribute. ONNX
  pads the *quantized* input with zeros, which is exactly the operator's zero padding: border
  taps contribute nothing to the ±1 dot product.
* ``pad_value=+1`` or ``-1``: an explicit ``Pad`` node (``mode='constant'``, constant value ±1,
  pads on the two spatial axes only) between the quantizer and the ``Conv``, whose ``pads`` are
  then 0. The border taps are then ±1 values of the quantized input, as in the operator.

QFullyConnected with ``flatten=True`` becomes ``Flatten(axis=1)`` + ``Gemm(transB=1)``; with
``flatten=False`` a ``MatMul`` with the transposed weights (applied to the last axis).
QActivation becomes its quantizer, or ``Identity`` with ``backward_only=True``.

Exactness
---------
For 1-bit layers the ``Conv`` / ``Gemm`` output is a sum of ±1 products, an integer that float32
holds exactly (|dot| < 2^24), and ``Mul``/``Add`` round once each, as the operator does, so an
ONNX runtime reproduces the operator's output bit for bit given the same layer input (checked
with onnxruntime with graph optimizations off, ``ORT_DISABLE_ALL``). k-bit and 32-bit layers, and
float layers such as BatchNormalization, sum or round in a different order than MXNet, so they
agree to float32 rounding (relative differences around 1e-7 to 1e-6).

onnxruntime's default graph optimizations (already at ``ORT_ENABLE_BASIC``) fold the ``Mul`` by
alpha into the ``Conv`` weights and the ``Add`` into its bias. That is a legitimate rewrite but
it replaces the exact integer sum by a float sum of ±alpha terms, so results then differ from
MXNet by float rounding too, and a later sign can flip where the exact value was 0 (an integer
dot product of 0 with no bias): whole values can then move, though rarely. Turn optimizations off
where bit-exact agreement matters.

MXNet's own layers
------------------
* ``BatchNorm`` with ``fix_gamma=True`` (MXNet's default) computes with gamma = 1 whatever the
  stored gamma holds; MXNet's translator writes the stored gamma. Here the gamma input is then an
  initializer of ones.
* ``SoftmaxOutput`` (the loss head of Module checkpoints and BMXNet models) is written as its
  inference output: ``Softmax`` over axis 1 (``multi_output=True``), the last axis
  (``preserve_shape=True``) or the flattened trailing axes (the default); the label input is
  dropped.
"""
import json
import os
import tempfile

import mxnet as mx
import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..converter import channel_scale, unpack_conv_weights, unpack_dense_weights
from ..graph import atomic_write, error_line, flag, parse_int, parse_tuple
from ..shape_inference import add_shape_hints, hinted
from . import OPSET
from .errors import OnnxExportError

__all__ = ["export_model", "quantize_weights", "TRANSLATORS"]


# ------------------------------------------------------------------------------------------------
# Weight helpers (numpy)
# ------------------------------------------------------------------------------------------------
def quantize_weights(w, bits):
    """``Qw(w)`` exactly as the operator computes it.

    1 bit is ``sign`` (sign(0) = +1) and 32 bits the weights themselves. For k bits (DoReFa,
    which involves ``tanh`` and a maximum over the tensor) the operator itself does the work:
    ``QFullyConnected(I, W, act_bit=32, weight_bit=k)`` of an identity matrix ``I`` returns
    ``Qw(W)^T`` exactly (each output is one product with 1), so the exported levels are the ones
    MXNet uses even where numpy's and libm's ``tanh`` differ by an ulp.
    """
    w = np.asarray(w, np.float32)
    if bits == 1:
        return np.where(w >= 0, np.float32(1), np.float32(-1))
    if bits >= 32:
        return w.copy()
    rows = w.reshape(w.shape[0], -1)
    n = rows.shape[1]
    weight = mx.nd.array(rows)
    out = np.empty_like(rows)
    step = 1024
    for start in range(0, n, step):  # chunks of the identity keep memory small
        stop = min(n, start + step)
        eye = np.zeros((stop - start, n), np.float32)
        eye[np.arange(stop - start), np.arange(start, stop)] = 1
        qt = mx.nd.QFullyConnected(mx.nd.array(eye), weight, no_bias=True,
                                   num_hidden=rows.shape[0], act_bit=32, weight_bit=bits)
        out[:, start:stop] = qt.asnumpy().T
    return out.reshape(w.shape)


# ------------------------------------------------------------------------------------------------
# Attribute parsing (MXNet hands every attribute over as a string)
# ------------------------------------------------------------------------------------------------
def _value(attrs, key):
    """The attribute string, None when absent or 'None'."""
    value = attrs.get(key)
    return None if value in (None, "None") else value


def _tuple(attrs, key, n, default):
    return parse_tuple(_value(attrs, key), n, default)


def _flag(attrs, key, default=False):
    return flag(_value(attrs, key), default)


def _int(attrs, key, default):
    return parse_int(_value(attrs, key), default)


def _c_order(array):
    """A C-contiguous array, keeping 0-d arrays 0-d (np.ascontiguousarray makes them 1-d)."""
    return np.array(array, order="C", copy=False)


def _input_name(src, kwargs):
    """ONNX name of the MXNet node output ``src`` = [node index, output index, ...].

    mx2onnx keeps one ``outputs_lookup`` entry per converted node but skips the label variable
    of the graph's loss head (named ``<last node>_label``) without an entry, so the entries of
    the nodes after that variable sit one place earlier than their index. That variable itself
    has no ONNX name (None).
    """
    i, j = src[0], src[1]
    graph = kwargs["mx_graph"]
    label = graph[-1]["name"] + "_label"
    skipped = [k for k, n in enumerate(graph[:i + 1]) if n["op"] == "null"
               and n["name"] == label and n["name"] not in kwargs["weights"]]
    if i in skipped:
        return None
    return kwargs["outputs_lookup"][i - len(skipped)][j].name


class _Layer:
    """One MXNet node being translated: its inputs, parameters and the ONNX nodes it emits."""

    def __init__(self, node, kwargs):
        self.node = node
        self.name = node["name"]
        self.attrs = node.get("attrs", {})
        self.kwargs = kwargs
        self.mx_graph = kwargs["mx_graph"]
        self.inputs = [_input_name(src, kwargs) for src in node["inputs"]]
        self.nodes = []
        self._used = set()
        self._count = 0

    # -- parameters ------------------------------------------------------------------------
    def _param_node(self, k):
        i = self.node["inputs"][k][0]
        pnode = self.mx_graph[i]
        if pnode["op"] != "null" or pnode["name"] not in self.kwargs["weights"]:
            raise OnnxExportError("%s: input %d (%s) must be a parameter with a value in params "
                                  "to be exported" % (self.name, k, pnode["name"]))
        return i, pnode

    def param(self, k):
        """numpy value of input k, which must be a parameter."""
        _, pnode = self._param_node(k)
        return self.kwargs["weights"][pnode["name"]]

    def set_param(self, k, array, suffix):
        """Name of an initializer holding ``array`` for input k.

        When this node is the parameter's only consumer, MXNet's initializer (and the graph
        input describing it) is replaced in place, so the file holds no unused latent weights.
        Otherwise a new initializer named ``<node>_<suffix>`` is added.
        """
        array = _c_order(array)
        i, pnode = self._param_node(k)
        pname = pnode["name"]
        consumers = sum(1 for n in self.mx_graph for src in n.get("inputs", []) if src[0] == i)
        if consumers == 1:
            init = self.kwargs["initializer"]
            for pos, tensor in enumerate(init):
                if tensor.name == pname:
                    init[pos] = numpy_helper.from_array(array, pname)
                    for item in self.kwargs["proc_nodes"]:
                        if isinstance(item, onnx.ValueInfoProto) and item.name == pname:
                            item.CopyFrom(helper.make_tensor_value_info(
                                pname, helper.np_dtype_to_tensor_dtype(array.dtype),
                                array.shape))
                    return pname
        return self.const(suffix, array)

    def const(self, suffix, array):
        name = "%s_%s" % (self.name, suffix)
        self.kwargs["initializer"].append(numpy_helper.from_array(_c_order(array), name))
        return name

    # -- nodes -----------------------------------------------------------------------------
    def add(self, op_type, inputs, **attrs):
        """Appends an ONNX node; returns its (provisional) output name."""
        out = "%s_%s" % (self.name, op_type.lower())
        while out in self._used:
            self._count += 1
            out = "%s_%s%d" % (self.name, op_type.lower(), self._count)
        self._used.add(out)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def finish(self, out):
        """Gives the last node the MXNet node's name as its output (what later nodes look up)."""
        if not self.nodes or self.nodes[-1].output[0] != out:
            self.nodes.append(helper.make_node("Identity", [out], [self.name], name=self.name))
        else:
            self.nodes[-1].output[0] = self.name
            self.nodes[-1].name = self.name
        return self.nodes

    # -- shapes ----------------------------------------------------------------------------
    def input_shape(self, k):
        """Shape of input k (0: an unknown dimension), from MXNet's shape inference of the
        graph up to this node."""
        graph_inputs = {}
        for item in self.kwargs["proc_nodes"]:
            if isinstance(item, onnx.ValueInfoProto) and item.name not in self.kwargs["weights"]:
                dims = [d.dim_value if d.HasField("dim_value") else 0
                        for d in item.type.tensor_type.shape.dim]
                graph_inputs[item.name] = tuple(dims)
        src = self.node["inputs"][k]
        sym_json = {"nodes": self.mx_graph,
                    "arg_nodes": [i for i, n in enumerate(self.mx_graph) if n["op"] == "null"],
                    "heads": [[src[0], src[1], 0]],
                    "attrs": {"mxnet_version": ["int", 10901]}}
        sym = mx.sym.load_json(json.dumps(_shape_hinted(sym_json)))
        shapes = {n: v.shape for n, v in self.kwargs["weights"].items()}
        shapes.update(graph_inputs)
        shapes = {n: s for n, s in shapes.items() if n in sym.list_arguments()}
        try:
            _, out, _ = sym.infer_shape_partial(**shapes)
        except mx.base.MXNetError as err:
            raise OnnxExportError("%s: cannot infer the shape of input %d (%s)"
                                  % (self.name, k, error_line(err))) from None
        if not out or not out[0]:
            raise OnnxExportError("%s: the rank of input %d is unknown; give the data inputs' "
                                  "shapes (in_shapes)" % (self.name, k))
        return tuple(out[0])


# ------------------------------------------------------------------------------------------------
# Quantizers as ONNX subgraphs
# ------------------------------------------------------------------------------------------------
def _sign_pm1(layer, x):
    """sign with sign(0) = +1: Where(GreaterOrEqual(x, 0), 1, -1)."""
    zero = layer.const("zero", np.array(0, np.float32))
    ge = layer.add("GreaterOrEqual", [x, zero])
    return layer.add("Where", [ge, layer.const("plus_one", np.array(1, np.float32)),
                               layer.const("minus_one", np.array(-1, np.float32))])


def _quantize_act(layer, x, bits):
    if bits == 1:
        return _sign_pm1(layer, x)
    if bits >= 32:
        return x
    levels = layer.const("levels", np.array(2 ** bits - 1, np.float32))
    c = layer.add("Clip", [x, layer.const("clip_min", np.array(0, np.float32)),
                           layer.const("clip_max", np.array(1, np.float32))])
    r = layer.add("Round", [layer.add("Mul", [c, levels])])
    return layer.add("Div", [r, levels])


def _check_bits(layer, key):
    bits = _int(layer.attrs, key, 1)
    if not 1 <= bits <= 32:
        raise OnnxExportError("%s: %s=%d is out of range [1, 32]" % (layer.name, key, bits))
    return bits


def _quant_attrs(layer):
    a = layer.attrs
    scaling = a.get("scaling_mode", "none")
    if scaling not in ("none", "forward"):
        raise OnnxExportError("%s: scaling_mode=%r cannot be exported" % (layer.name, scaling))
    return (_check_bits(layer, "act_bit"), _check_bits(layer, "weight_bit"),
            scaling == "forward", _flag(a, "binarized_weights_only"), _flag(a, "no_bias"))


def _weights_and_scale(layer, packed, weight_bit, scaling, no_bias, unpack):
    """Quantized float weights and alpha (or None) of a QConvolution / QFullyConnected."""
    w = layer.param(1)
    if packed:
        if w.dtype != np.int64:
            raise OnnxExportError("%s: binarized_weights_only=True but the weight is %s, not "
                                  "packed int64 words" % (layer.name, w.dtype))
        try:
            wq = unpack(w)
        except ValueError as err:
            raise OnnxExportError("%s: cannot unpack the packed weights: %s" % (layer.name, err))
        alpha = layer.param(2 if no_bias else 3).astype(np.float32) if scaling else None
    else:
        wq = quantize_weights(w, weight_bit)
        alpha = channel_scale(w) if scaling else None
    return wq, alpha


# ------------------------------------------------------------------------------------------------
# Translators
# ------------------------------------------------------------------------------------------------
def convert_qconvolution(node, **kwargs):
    """QConvolution -> [quantizer] -> [Pad ±1] -> Conv -> [Mul alpha] -> [Add bias]."""
    layer = _Layer(node, kwargs)
    a = layer.attrs
    if a.get("layout", "NCHW") not in ("NCHW", "None"):
        raise OnnxExportError("%s: only layout NCHW can be exported" % layer.name)
    kernel = _tuple(a, "kernel", 2, 1)
    stride = _tuple(a, "stride", 2, 1)
    dilate = _tuple(a, "dilate", 2, 1)
    pad = _tuple(a, "pad", 2, 0)
    groups = _int(a, "num_group", 1)
    num_filter = _int(a, "num_filter", 0)
    pad_value = _int(a, "pad_value", 0)
    if pad_value not in (0, 1, -1):
        raise OnnxExportError("%s: pad_value=%d cannot be exported" % (layer.name, pad_value))
    act_bit, weight_bit, scaling, packed, no_bias = _quant_attrs(layer)

    def unpack(words):  # the operator requires in_channels (C, total) with packed weights
        return unpack_conv_weights(words, _int(a, "in_channels", 0) // groups)

    wq, alpha = _weights_and_scale(layer, packed, weight_bit, scaling, no_bias, unpack)
    x = _quantize_act(layer, layer.inputs[0], act_bit)
    conv_pads = list(pad) * 2
    if pad_value != 0 and any(pad):
        pads = np.array([0, 0, pad[0], pad[1], 0, 0, pad[0], pad[1]], np.int64)
        x = layer.add("Pad", [x, layer.const("pads", pads),
                              layer.const("pad_value", np.array(pad_value, np.float32))],
                      mode="constant")
        conv_pads = [0, 0, 0, 0]
    y = layer.add("Conv", [x, layer.set_param(1, wq, "weight_q")], kernel_shape=list(kernel),
                  strides=list(stride), dilations=list(dilate), pads=conv_pads, group=groups)
    if alpha is not None:
        alpha = alpha.reshape(1, num_filter, 1, 1)
        if packed:
            y = layer.add("Mul", [y, layer.set_param(2 if no_bias else 3, alpha, "alpha")])
        else:
            y = layer.add("Mul", [y, layer.const("alpha", alpha)])
    if not no_bias:
        bias = layer.param(2).astype(np.float32).reshape(1, num_filter, 1, 1)
        y = layer.add("Add", [y, layer.set_param(2, bias, "bias")])
    return layer.finish(y)


def convert_qfully_connected(node, **kwargs):
    """QFullyConnected -> [quantizer] -> Flatten + Gemm (or MatMul) -> [Mul alpha] -> [Add bias]."""
    layer = _Layer(node, kwargs)
    flatten = _flag(layer.attrs, "flatten", True)
    act_bit, weight_bit, scaling, packed, no_bias = _quant_attrs(layer)

    def unpack(words):  # the operator requires in_units with packed weights
        return unpack_dense_weights(words, _int(layer.attrs, "in_units", 0))

    wq, alpha = _weights_and_scale(layer, packed, weight_bit, scaling, no_bias, unpack)
    x = _quantize_act(layer, layer.inputs[0], act_bit)
    if flatten:
        x = layer.add("Flatten", [x], axis=1)
        y = layer.add("Gemm", [x, layer.set_param(1, wq, "weight_q")], transB=1)
    else:
        y = layer.add("MatMul", [x, layer.set_param(1, np.ascontiguousarray(wq.T), "weight_qt")])
    if alpha is not None:
        if packed:
            y = layer.add("Mul", [y, layer.set_param(2 if no_bias else 3, alpha, "alpha")])
        else:
            y = layer.add("Mul", [y, layer.const("alpha", alpha)])
    if not no_bias:
        y = layer.add("Add", [y, layer.set_param(2, layer.param(2).astype(np.float32), "bias")])
    return layer.finish(y)


def convert_qactivation(node, **kwargs):
    """QActivation -> its quantizer (Identity with backward_only=True or act_bit=32)."""
    layer = _Layer(node, kwargs)
    if _flag(layer.attrs, "backward_only"):
        return layer.finish(layer.inputs[0])
    return layer.finish(_quantize_act(layer, layer.inputs[0], _check_bits(layer, "act_bit")))


def convert_softmax_output(node, **kwargs):
    """SoftmaxOutput -> Softmax (its inference output); the label input is not used.

    MXNet's softmax axis: 1 with ``multi_output``, the last with ``preserve_shape``. Without
    either, 2-D data (the usual ``FullyConnected -> SoftmaxOutput`` head) is a softmax over
    axis 1; for data of more dimensions MXNet's kernels disagree (the reference kernel flattens
    the data to (N, -1), the oneDNN one in the CPU wheel uses the last axis), so such a head is
    refused with the fix.
    """
    layer = _Layer(node, kwargs)
    x = layer.inputs[0]
    if _flag(layer.attrs, "preserve_shape"):
        return layer.finish(layer.add("Softmax", [x], axis=-1))
    if _flag(layer.attrs, "multi_output"):
        if kwargs.get("opset_version", OPSET) < 13:  # Softmax(axis=1) flattens before opset 13
            raise OnnxExportError("%s: SoftmaxOutput(multi_output=True) needs ONNX opset 13 or "
                                  "later (a softmax over axis 1 only)" % layer.name)
        return layer.finish(layer.add("Softmax", [x], axis=1))
    rank = len(layer.input_shape(0))
    if rank != 2:
        raise OnnxExportError("%s: SoftmaxOutput of %d-D data without multi_output or "
                              "preserve_shape has no single meaning in MXNet (its CPU kernels "
                              "disagree on the axis); flatten the data first, or set "
                              "multi_output=True (axis 1) or preserve_shape=True (last axis)"
                              % (layer.name, rank))
    return layer.finish(layer.add("Softmax", [x], axis=1))


def convert_batchnorm(original, node, **kwargs):
    """MXNet's BatchNorm translator, with gamma = 1 when ``fix_gamma`` (MXNet's default) is set.

    MXNet ignores the stored gamma under ``fix_gamma=True``; the stored value is whatever the
    initializer or a checkpoint left there (often not 1).
    """
    nodes = original(node, **kwargs)
    layer = _Layer(node, kwargs)
    if not _flag(layer.attrs, "fix_gamma", True):
        return nodes
    bn = next(n for n in nodes if n.op_type == "BatchNormalization")
    gamma = layer.param(1)
    bn.input[1] = layer.set_param(1, np.ones(gamma.shape, gamma.dtype), "gamma_fixed")
    return nodes


#: op name -> translator (BatchNorm's takes MXNet's own translator first).
TRANSLATORS = {"QConvolution": convert_qconvolution, "QFullyConnected": convert_qfully_connected,
               "QActivation": convert_qactivation, "SoftmaxOutput": convert_softmax_output,
               "BatchNorm": convert_batchnorm}


# ------------------------------------------------------------------------------------------------
# Convenience entry point
# ------------------------------------------------------------------------------------------------
def _shape_hinted(graph):
    """A copy of a symbol-json dict with a ``__shape__`` of known ndim on every Q-layer parameter
    variable (MXNet's lib_api wrapper must never meet an unknown ndim in shape inference)."""
    graph = json.loads(json.dumps(graph))
    add_shape_hints(graph)
    return graph


def _load_params(params):
    """params: a .params file, a dict (keys may carry arg:/aux:), or an (arg, aux) pair."""
    if isinstance(params, (str, os.PathLike)):
        try:
            params = mx.nd.load(os.fspath(params))
        except mx.base.MXNetError as err:
            raise OnnxExportError("%s: not an MXNet .params file (%s)"
                                  % (params, error_line(err))) from None
    if isinstance(params, (list, tuple)):
        merged = {}
        for part in params:
            merged.update(part or {})
        params = merged
    if not isinstance(params, dict):
        raise TypeError("params must be a .params path, a dict or an (arg_params, aux_params) "
                        "pair, got %s" % type(params).__name__)
    out = {}
    for key, value in params.items():
        name = key.split(":", 1)[1] if key.startswith(("arg:", "aux:")) else key
        out[name] = value if isinstance(value, mx.nd.NDArray) else mx.nd.array(value,
                                                                               dtype=value.dtype)
    return out


def _load_symbol(sym):
    if isinstance(sym, mx.sym.Symbol):
        return sym
    if isinstance(sym, (str, os.PathLike)):
        try:
            return mx.sym.load(os.fspath(sym))
        except (mx.base.MXNetError, ValueError) as err:  # ValueError: not UTF-8 / not JSON
            raise OnnxExportError("%s: not an MXNet symbol file (%s)"
                                  % (sym, error_line(err))) from None
    raise TypeError("sym must be a Symbol, a -symbol.json path or a HybridBlock, got %s"
                    % type(sym).__name__)


def _from_block(block, input_shape):
    """Symbol and parameters of a Gluon HybridBlock (run once on zeros to build the graph)."""
    block.hybridize()
    shapes = input_shape if isinstance(input_shape[0], (list, tuple)) else [input_shape]
    block(*[mx.nd.zeros(s) for s in shapes])
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "net")
        block.export(prefix)
        return mx.sym.load(prefix + "-symbol.json"), mx.nd.load(prefix + "-0000.params")


def _tidy(model):
    """Removes unused initializers, and parameters from the graph inputs.

    mx2onnx lists every initializer among the graph inputs too. Since IR version 4 initializers
    need not be inputs; as inputs, runtimes must treat them as overridable and cannot fold them
    (onnxruntime warns about each one). Initializers become unused where a translator could not
    replace a shared latent weight in place.
    """
    used = {name for node in model.graph.node for name in node.input}
    used.update(o.name for o in model.graph.output)
    inits = {t.name for t in model.graph.initializer}
    keep_init = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep_init)
    keep = [vi for vi in model.graph.input if vi.name not in inits]  # the data inputs
    del model.graph.input[:]
    model.graph.input.extend(keep)


def export_model(sym, params, input_shape, onnx_path, *, input_type=np.float32,
                 check=True, verbose=False):
    """Exports an MXNet network with bmxnet operators to an ONNX file.

    Parameters
    ----------
    sym : Symbol, str or HybridBlock
        The network: a Symbol, the path of a ``-symbol.json`` file, or a Gluon HybridBlock
        (then ``params`` may be None and is taken from the block).
    params : str, dict, (dict, dict) or None
        The path of a ``.params`` file, a dict of name -> NDArray (``arg:``/``aux:`` prefixes
        allowed) or an ``(arg_params, aux_params)`` pair.
    input_shape : tuple or list of tuples
        Shape of the (each) data input, e.g. ``(1, 1, 28, 28)``.
    onnx_path : str
        Where to write the model. It is written to a temporary file first and renamed, so a
        failed export leaves nothing behind.
    input_type : numpy dtype, default float32
    check : bool, default True
        Run ``onnx.checker.check_model`` on the result.

    Returns
    -------
    str
        ``onnx_path``.

    Examples
    --------
    >>> import bmxnet.onnx
    >>> bmxnet.onnx.export_model('lenet-symbol.json', 'lenet-0001.params', (1, 1, 28, 28),
    ...                          'lenet.onnx')
    """
    from mxnet.gluon import HybridBlock
    if isinstance(sym, HybridBlock):
        sym, block_params = _from_block(sym, input_shape)
        params = block_params if params is None else params
    sym = hinted(_load_symbol(sym))
    params = _load_params(params)
    shapes = [tuple(input_shape)] if not isinstance(input_shape[0], (list, tuple)) \
        else [tuple(s) for s in input_shape]
    onnx_path = os.fspath(onnx_path)

    def write(tmp):
        try:
            mx.onnx.export_model(sym, params, in_shapes=shapes,
                                 in_types=[input_type] * len(shapes), onnx_file_path=tmp,
                                 verbose=verbose)
        except (AttributeError, NotImplementedError) as err:
            # mx2onnx: "No conversion function registered for op type X yet." and friends
            raise OnnxExportError("cannot export this network to ONNX: %s" % err) from None
        model = onnx.load(tmp)
        _tidy(model)
        if check:
            onnx.checker.check_model(model, full_check=True)
        onnx.save(model, tmp)

    atomic_write([(onnx_path, write)], error=OnnxExportError)
    return onnx_path
