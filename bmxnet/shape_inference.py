"""Keeps MXNet's symbolic shape inference away from the crash in its custom-operator wrapper.

MXNet 1.9.1 sizes the buffer it hands a library operator's ``inferShape`` by the sum of the input
ndims, counting an input of unknown ndim as -1 (``../shared/LIBAPI_NOTES.md``, "Critical"). A Q-layer
reached by shape inference with any input of unknown ndim therefore overruns the heap or writes
through a null pointer: ``mx.sym.QFullyConnected(mx.sym.var('data'), num_hidden=10)
.infer_shape(data=(2, 48))`` used to die with SIGSEGV, because the created weight and bias
variables had no shape. bmxnet's defence has two layers:

1. **Hints.** Every parameter variable of a Q-layer (weight, bias, weight_scale) gets a
   ``__shape__`` attribute of known ndim, its unknown dimensions 0 (MXNet's legacy "unknown"):
   the ``mx.sym`` wrappers create their variables with one (:mod:`bmxnet.ops`), the converter,
   the legacy loader and the ONNX importer write them (:func:`add_shape_hints`), and
   ``mx.sym.load`` / ``mx.sym.load_json`` add them to files that lack them (so
   ``SymbolBlock.imports`` and ``Module.load`` are covered). Before MXNet infers shapes
   (``infer_shape``, ``infer_shape_partial``, ``simple_bind``, ``Executor.reshape``) the graph
   is hinted again, which covers variables a user made without a shape.
2. **A probe.** A Q-layer's *data* (or a parameter computed by other operators) can still be of
   unknown ndim, e.g. ``infer_shape_partial()`` with nothing known. Before the real inference
   runs, MXNet infers the same graph with each Q-layer replaced by a Python ``Custom`` operator
   (MXNet's Python custom-op wrapper handles unknown shapes safely) that computes the Q-layer's
   output shape and records which inputs had a known ndim. Only when every Q-layer input is
   known (the data fully: a library operator cannot return a partly known shape) does the real
   inference run; otherwise ``infer_shape_partial`` returns the probe's
   partial shapes, ``infer_shape`` returns ``(None, None, None)`` as MXNet does for an
   incomplete graph, and ``simple_bind`` / ``reshape`` raise an ``MXNetError`` that names the
   layer, its input and the argument shapes to give.

Gluon's CachedOp (hybridized blocks) infers shapes from concrete arrays, so it never meets an
unknown ndim; deferred initialisation goes through ``Symbol.infer_shape`` and is covered above.
"""
import functools
import json
import threading

import mxnet as mx
from mxnet.base import MXNetError
from mxnet.util import is_np_shape

from .graph import flag, node_attrs

__all__ = ["add_shape_hints", "hinted", "check_inputs_known", "install", "Q_OPS"]

Q_OPS = ("QConvolution", "QFullyConnected", "QActivation")
WEIGHTED_OPS = ("QConvolution", "QFullyConnected")
_PROBE_OP = "_bmxnet_shape_probe"
_MAX_DIM = 2 ** 31 - 1


# ------------------------------------------------------------------------------------------
# Q-layer attributes (lenient: the operator itself reports bad values)
# ------------------------------------------------------------------------------------------
def _flag(value, default=False):
    """MXNet's string booleans; ``default`` for anything else (the operator reports it)."""
    try:
        return flag(value, default)
    except ValueError:
        return default


def _ints(value):
    """Integers of '(3, 3)', '[3,3]', '3', '(3L, 3L)'; None when not a list of integers."""
    text = str(value).strip()
    if text[:1] in "([" and text[-1:] in ")]":
        text = text[1:-1]
    out = []
    for item in text.split(","):
        item = item.strip().rstrip("L")
        if not item:
            continue
        try:
            out.append(int(item))
        except ValueError:
            return None
    return out


def _size(value):
    """A positive dimension from an attribute, or 0 (unknown) when it is missing or invalid."""
    vals = _ints(value) if value is not None else None
    if not vals or len(vals) != 1 or not 0 < vals[0] <= _MAX_DIM:
        return 0
    return vals[0]


def _pair(value, default):
    vals = _ints(value) if value is not None else None
    if vals is None:
        return None if value is not None else (default, default)
    if len(vals) == 1:
        vals = vals * 2
    return tuple(vals) if len(vals) == 2 else None


def input_names(op, attrs):
    """Input names of a Q-operator for its attributes, in order."""
    if op == "QActivation":
        return ["data"]
    names = ["data", "weight"]
    if not _flag(attrs.get("no_bias"), False):
        names.append("bias")
    if _flag(attrs.get("binarized_weights_only"), False) and \
            str(attrs.get("scaling_mode", "none")).strip() == "forward":
        names.append("weight_scale")
    return names


def param_hints(op, attrs):
    """``{input name: shape}`` hints of known ndim for a weighted Q-operator's parameters.

    Dimensions the attributes do not fix are 0 (unknown, in MXNet's legacy shape semantics);
    the operator's own shape inference fills them in.
    """
    packed = _flag(attrs.get("binarized_weights_only"), False)
    if op == "QConvolution":
        out = _size(attrs.get("num_filter"))
        kernel = _pair(attrs.get("kernel"), 0) or (0, 0)
        kh, kw = (k if 0 < k <= _MAX_DIM else 0 for k in kernel)
        weight = (out, kh, kw, 0) if packed else (out, 0, kh, kw)
    elif op == "QFullyConnected":
        out = _size(attrs.get("num_hidden"))
        weight = (out, 0)
    else:
        return {}
    hints = {"weight": weight, "bias": (out,), "weight_scale": (out,)}
    return {n: hints[n] for n in input_names(op, attrs) if n in hints}


def _known_hint(text):
    vals = _ints(text) if text is not None else None
    return bool(vals)


def _format_shape(shape):
    unknown = -1 if is_np_shape() else 0
    dims = [d if d else unknown for d in shape]
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def add_shape_hints(graph):
    """Adds ``__shape__`` hints of known ndim to the Q-layers' parameter variables of a parsed
    symbol json (``json.loads(sym.tojson())``); returns ``graph``, modified in place.

    Variables that already have a hint of known ndim keep it. Every symbol json bmxnet writes
    passes through here, so MXNet's shape inference never meets a Q-layer parameter of unknown
    ndim (see the module docstring).
    """
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(nodes, list):
        return graph
    for node in nodes:
        if not isinstance(node, dict) or node.get("op") not in WEIGHTED_OPS:
            continue
        attrs = node_attrs(node)
        names = input_names(node["op"], attrs)
        hints = param_hints(node["op"], attrs)
        for name, entry in zip(names, node.get("inputs") or []):
            if name not in hints or not isinstance(entry, list) or not entry:
                continue
            src = entry[0]
            if not isinstance(src, int) or not 0 <= src < len(nodes):
                continue
            var = nodes[src]
            if not isinstance(var, dict) or var.get("op") != "null":
                continue
            key = "attrs" if "attrs" in var or "attr" not in var else "attr"
            var_attrs = var.setdefault(key, {})
            if not isinstance(var_attrs, dict) or _known_hint(node_attrs(var).get("__shape__")):
                continue
            var_attrs["__shape__"] = _format_shape(hints[name])
    return graph


def _has_q_ops(text):
    return any('"%s"' % op in text for op in Q_OPS)


def hinted(sym):
    """``sym`` itself when it holds no Q-layer or all its hints are there; else a copy whose
    Q-layer parameter variables carry ``__shape__`` hints (see :func:`add_shape_hints`)."""
    prepared = _prepare(sym)
    return sym if prepared is None else prepared.hinted(sym)


# ------------------------------------------------------------------------------------------
# The probe: Q-layers replaced by a Python Custom operator that never crashes
# ------------------------------------------------------------------------------------------
_probe_lock = threading.Lock()
_probe_seen = {}


# The probe's own shapes use -1 for an unknown dimension, as MXNet's custom-op wrapper does.
def _conv_out(data, attrs):
    unknown = -1
    if len(data) != 4:
        return [unknown] * 4
    kernel = _pair(attrs.get("kernel"), 0)
    stride = _pair(attrs.get("stride"), 1)
    dilate = _pair(attrs.get("dilate"), 1)
    pad = _pair(attrs.get("pad"), 0)
    out = [data[0], _size(attrs.get("num_filter")) or unknown, unknown, unknown]
    if None in (kernel, stride, dilate, pad):
        return out
    for i in range(2):
        size, k, s, d, p = data[2 + i], kernel[i], stride[i], dilate[i], pad[i]
        if size > 0 and k > 0 and s > 0 and d > 0 and p >= 0:
            span = d * (k - 1) + 1
            if size + 2 * p >= span:
                out[2 + i] = (size + 2 * p - span) // s + 1
    return out


def _dense_out(data, attrs):
    unknown = -1
    hidden = _size(attrs.get("num_hidden")) or unknown
    if _flag(attrs.get("flatten"), True) or not data:
        return [data[0] if data else unknown, hidden]
    return list(data[:-1]) + [hidden]


def _param_shapes(op, data, attrs):
    """Parameter shapes a weighted Q-layer gets from (possibly partly known) data, for partial
    answers; only what the known dimensions fix (the operator itself checks everything)."""
    packed = _flag(attrs.get("binarized_weights_only"), False)
    words = lambda n: -(-n // 64)  # noqa: E731
    shapes = {}
    if op == "QFullyConnected":
        out = _size(attrs.get("num_hidden"))
        feats = data[1:] if _flag(attrs.get("flatten"), True) else data[-1:]
        if out and data and min(feats or [1]) > 0:
            cols = 1
            for d in feats:
                cols *= d
            shapes["weight"] = [out, words(cols) if packed else cols]
    elif op == "QConvolution":
        out = _size(attrs.get("num_filter"))
        group = _size(attrs.get("num_group", "1"))
        kernel = _pair(attrs.get("kernel"), 0)
        if out and group and kernel and min(kernel) > 0 and len(data) == 4 and \
                data[1] > 0 and data[1] % group == 0:
            c = data[1] // group
            shapes["weight"] = [out] + list(kernel) + [words(c)] if packed \
                else [out, c] + list(kernel)
    else:
        return shapes
    if out:
        shapes["bias"] = shapes["weight_scale"] = [out]
    return shapes


class _ProbeProp(mx.operator.CustomOpProp):
    """Shape-only stand-in of a Q-layer; records which inputs reached it with a known ndim."""

    def __init__(self, probe_op, probe_name, probe_inputs, probe_attrs):
        super().__init__(need_top_grad=True)
        self._op = probe_op
        self._name = probe_name
        self._count = int(probe_inputs)
        self._attrs = json.loads(probe_attrs)

    def list_arguments(self):
        return ["in%d" % i for i in range(self._count)]

    def infer_shape(self, in_shape):
        # Parameters need a known ndim (the operator fills in their unknown dimensions); the
        # data must be fully known: a library operator cannot hand back a partly known shape.
        # (MXNet's Python custom-op wrapper hands unknown dimensions over as -1; under legacy
        # shapes a 0 is unknown too.)
        least = 0 if is_np_shape() else 1
        known = [len(s) > 0 and (i > 0 or min(s) >= least) for i, s in enumerate(in_shape)]
        seen = _probe_seen.setdefault(self._name, [False] * len(known))
        _probe_seen[self._name] = [a or b for a, b in zip(seen, known)]
        data = list(in_shape[0]) if in_shape else []
        if not data:
            out = []
        elif self._op == "QConvolution":
            out = _conv_out(data, self._attrs)
        elif self._op == "QFullyConnected":
            out = _dense_out(data, self._attrs)
        else:
            out = data
        params = _param_shapes(self._op, data, self._attrs)
        names = input_names(self._op, self._attrs)
        # Fill parameters of known ndim only: one of unknown ndim is computed by other
        # operators, whose unknown arguments the error message should still name.
        shapes = [params.get(names[i], list(shape))
                  if 0 < i < len(names) and len(shape) and min(shape) <= 0 else list(shape)
                  for i, shape in enumerate(in_shape)]
        return shapes, [out], []

    def create_operator(self, ctx, in_shapes, in_dtypes):
        raise MXNetError("bmxnet's shape probe is not an operator to run")


mx.operator.register(_PROBE_OP)(_ProbeProp)


def _probe_graph(graph):
    """The graph with each Q-layer replaced by the probe (same inputs, same output count)."""
    nodes = []
    for node in graph["nodes"]:
        if isinstance(node, dict) and node.get("op") in Q_OPS:
            attrs = {k: v for k, v in node_attrs(node).items() if not k.startswith("__")}
            node = {"op": "Custom", "name": node.get("name", ""),
                    "attrs": {"op_type": _PROBE_OP, "probe_op": node["op"],
                              "probe_name": str(node.get("name", "")),
                              "probe_inputs": str(len(node.get("inputs") or [])),
                              "probe_attrs": json.dumps(attrs)},
                    "inputs": node.get("inputs") or []}
        nodes.append(node)
    probe = dict(graph)
    probe["nodes"] = nodes
    return probe


class _Unknown:
    """What the probe found: Q-layer inputs of unknown ndim and the partial shapes."""

    def __init__(self, missing, partial):
        self.missing = missing        # [(op, layer name, input name)]
        self.partial = partial        # (arg_shapes, out_shapes, aux_shapes) of the probe

    def describe(self, sym):
        op, name, inp = self.missing[0]
        arg_shapes = self.partial[0] or []
        unknown = [n for n, s in zip(sym.list_arguments(), arg_shapes) if not s]
        text = "%s '%s': the shape of its input '%s' cannot be inferred from the shapes given" \
               % (op, name, inp)
        if len(self.missing) > 1:
            text += " (nor %d more Q-layer inputs)" % (len(self.missing) - 1)
        if unknown:
            text += "; give the shapes of: %s" % ", ".join(unknown[:10])
        return text


class _Prepared:
    """What the hooks need of one symbol json: its hinted form, the probe graph and the
    Q-layers' input names; made once per distinct json text (see :func:`_prepare`)."""

    def __init__(self, text):
        try:
            graph = json.loads(text)
        except ValueError:
            raise MXNetError("this symbol cannot be analysed: MXNet writes it as invalid json "
                             "(an attribute name holds a quote, backslash or control "
                             "character, which MXNet does not escape); rename the attribute") \
                from None
        before = json.dumps(graph, sort_keys=True)
        add_shape_hints(graph)
        self.hinted_text = json.dumps(graph) \
            if json.dumps(graph, sort_keys=True) != before else None
        self.inputs = {}
        for node in graph["nodes"]:
            if isinstance(node, dict) and node.get("op") in Q_OPS:
                self.inputs[str(node.get("name", ""))] = (
                    node["op"], input_names(node["op"], node_attrs(node)))
        self.probe = _load_json_raw(json.dumps(_probe_graph(graph)))

    def hinted(self, sym):
        return sym if self.hinted_text is None else _load_json_raw(self.hinted_text)

    def check(self, args, kwargs):
        with _probe_lock:
            _probe_seen.clear()
            try:
                partial = _ORIGINAL["infer_shape_impl"](self.probe, True, *args,
                                                        **(kwargs or {}))
                seen = dict(_probe_seen)
            finally:
                _probe_seen.clear()
        missing = []
        for name, (op, names) in self.inputs.items():
            flags = seen.get(name)
            if flags is None:
                continue  # never asked: all its shapes were known
            for i, ok in enumerate(flags):
                if not ok:
                    missing.append((op, name, names[i] if i < len(names) else "input %d" % i))
        return _Unknown(missing, partial) if missing else None


_prepared = functools.lru_cache(maxsize=128)(_Prepared)


def _prepare(sym):
    """The cached :class:`_Prepared` of ``sym``, or None when it holds no Q-layer."""
    text = sym.tojson()
    return _prepared(text) if _has_q_ops(text) else None


def check_inputs_known(sym, args=(), kwargs=None):
    """Runs the probe for ``sym`` with the argument shapes ``args`` (positional) or ``kwargs``.

    Returns None when every Q-layer input has a known ndim (the real inference is safe), else
    an object with ``missing`` (``[(op, layer, input)]``), ``partial`` (the probe's
    ``infer_shape_partial`` result) and ``describe(sym)``. An inconsistency that MXNet finds
    in another operator is raised as MXNet raises it.
    """
    prepared = _prepare(sym)
    return None if prepared is None else prepared.check(args, kwargs)


# ------------------------------------------------------------------------------------------
# Hooks on MXNet's entry points
# ------------------------------------------------------------------------------------------
_ORIGINAL = {}


def _load_json_raw(text):
    return _ORIGINAL.get("load_json", mx.sym.load_json)(text)


def _check_dims(args, kwargs):
    """MXNet's Python side raises a bare Exception for a dimension past 2^31 - 1 (this wheel has
    32-bit shape calls): an MXNetError that names the argument instead."""
    named = list(kwargs.items()) + [("argument %d" % i, s) for i, s in enumerate(args)]
    for name, shape in named:
        if isinstance(shape, tuple) and any(isinstance(d, int) and not -1 <= d <= _MAX_DIM
                                            for d in shape):
            raise MXNetError("shape %s of %s: every dimension must be in [0, %d] (MXNet's "
                             "largest tensor dimension)" % (shape, name, _MAX_DIM))


def _infer_shape_impl(self, partial, *args, **kwargs):
    _check_dims(args, kwargs)
    prepared = _prepare(self)
    if prepared is None:
        return _ORIGINAL["infer_shape_impl"](self, partial, *args, **kwargs)
    sym = prepared.hinted(self)
    unknown = prepared.check(args, kwargs)
    if unknown is None:
        return _ORIGINAL["infer_shape_impl"](sym, partial, *args, **kwargs)
    if partial:
        return unknown.partial
    return (None, None, None)


def _simple_bind(self, ctx, *args, **kwargs):
    shapes = {k: v for k, v in kwargs.items() if isinstance(v, tuple)}
    _check_dims((), shapes)
    prepared = _prepare(self)
    if prepared is None:
        return _ORIGINAL["simple_bind"](self, ctx, *args, **kwargs)
    sym = prepared.hinted(self)
    unknown = prepared.check((), shapes)
    if unknown is not None:
        raise MXNetError("simple_bind: " + unknown.describe(sym))
    return _ORIGINAL["simple_bind"](sym, ctx, *args, **kwargs)


def _reshape(self, partial_shaping=False, allow_up_sizing=False, **kwargs):
    unknown = check_inputs_known(self._symbol, (), kwargs)
    if unknown is not None:
        raise MXNetError("Executor.reshape: " + unknown.describe(self._symbol))
    return _ORIGINAL["reshape"](self, partial_shaping, allow_up_sizing, **kwargs)


def _refuse_v1(text):
    """Raises a clear MXNetError when ``text`` is a BMXNet v1 symbol json."""
    from .graph import is_bmxnet_v1
    try:
        graph = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return
    if is_bmxnet_v1(graph):
        raise MXNetError("BMXNet v1 file: MXNet 1.9 cannot load it as it is; migrate it with "
                         "`model_converter --from-bmxnet PREFIX-EPOCH.params` or load it with "
                         "bmxnet.legacy.load(prefix, epoch)") from None


def _load(fname):
    try:
        sym = _ORIGINAL["load"](fname)
    except MXNetError:
        try:
            with open(fname, "r", encoding="utf-8") as f:
                text = f.read()
        except (OSError, TypeError, ValueError):
            text = None  # not a local text file: MXNet's own error stands
        if text is not None:
            _refuse_v1(text)
        raise
    return hinted(sym)


def _load_json(json_str):
    try:
        sym = _ORIGINAL["load_json"](json_str)
    except MXNetError:
        _refuse_v1(json_str)
        raise
    return hinted(sym)


def install():
    """Installs the hooks (once per process)."""
    if _ORIGINAL:
        return
    Symbol = mx.symbol.Symbol
    _ORIGINAL.update(infer_shape_impl=Symbol._infer_shape_impl,
                     simple_bind=Symbol.simple_bind,
                     reshape=mx.executor.Executor.reshape,
                     load=mx.symbol.symbol.load, load_json=mx.symbol.symbol.load_json)
    Symbol._infer_shape_impl = _infer_shape_impl
    Symbol.simple_bind = _simple_bind
    mx.executor.Executor.reshape = _reshape
    for module in (mx.symbol, mx.symbol.symbol):
        module.load = _load
        module.load_json = _load_json
