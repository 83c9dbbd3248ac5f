"""Converting trained models into binarized (packed 1-bit) models.

Every ``QConvolution`` / ``QFullyConnected`` node with ``act_bit = weight_bit = 1`` (the
defaults when a node does not say) gets its float weight replaced by packed int64 words (see
:mod:`bmxnet.converter.packing`) and ``binarized_weights_only=True``; nodes with
``scaling_mode='forward'`` get one more input, ``<node>_weight_scale``, holding the per-channel
mean |W| the operator computed from the float weights; every packed node carries its input size
(``in_channels`` / ``in_units``), which the operator checks. Everything else (float layers,
BatchNorm, k-bit Q-layers) is copied unchanged, except a loss head, which is written as its
inference output (``SoftmaxOutput`` -> ``softmax``, no label input). The operators run the same packed xnor kernels on float and
packed weights, so a converted model computes bit-identical outputs.

Two entry points:

>>> sym, args, aux, report = convert_model(sym, arg_params, aux_params)   # in memory
>>> report = convert_checkpoint("out/mnist-0001.params", verify=2)       # files
>>> print(report.format())

Parameters are matched to nodes through the graph, by the name of the variable node that feeds
the operator's weight input, never by name patterns.
"""
import os
import re

import mxnet as mx
import numpy as np

from . import packing
from .report import ConversionReport, LayerReport, nbytes
from ..graph import (AlreadyBinarizedError, ConversionError, DTYPE_IDS, Graph, Q_OPS, QLayer,
                     atomic_write, check_runs, inference_symbol, read_params_file,
                     load_symbol_file, resolve_data_shape, split_params)

__all__ = ["convert_model", "convert_checkpoint", "verify_models", "channel_scale",
           "output_paths"]

# Operators whose inputs after the first are stored parameters (weights, biases, BN statistics).
_PARAMETRIC_OPS = ("Convolution", "Deconvolution", "FullyConnected", "BatchNorm", "Embedding",
                   "LayerNorm", "InstanceNorm", "GroupNorm", "LeakyReLU") + Q_OPS


def channel_scale(w):
    """Per output channel mean |W|, exactly as the operators compute it for scaling_mode='forward'.

    Sequential float64 sum over each channel's weights, one float64 division, one rounding to
    float32.
    """
    w = np.asarray(w, np.float32)
    flat = np.abs(w.reshape(w.shape[0], -1)).astype(np.float64)
    return (np.cumsum(flat, axis=1)[:, -1] / flat.shape[1]).astype(np.float32)


def _to_nd(value):
    if isinstance(value, mx.nd.NDArray):
        return value
    arr = np.asarray(value)
    return mx.nd.array(arr, dtype=arr.dtype)


def _check_weight(layer, wname, w, source):
    """The float weight of a 1-bit layer against the layer's attributes."""
    if layer.conv:
        want = "(%d, C/num_group, %d, %d)" % ((layer.num_out,) + layer.kernel)
        ok = w.ndim == 4 and w.shape[0] == layer.num_out and tuple(w.shape[2:]) == layer.kernel
    else:
        want = "(%d, in_units)" % layer.num_out
        ok = w.ndim == 2 and w.shape[0] == layer.num_out
    if not ok:
        raise ConversionError(
            "shape mismatch in layer '%s' (%s): its attributes need weight '%s' of shape %s, "
            "but %s holds %s; the params file does not belong to this symbol — pass the matching "
            "PREFIX-symbol.json / .params pair" % (layer.name, layer.op, wname, want, source,
                                                    tuple(w.shape)))
    if w.size == 0:
        raise ConversionError("weight '%s' of layer '%s' is empty (shape %s)"
                              % (wname, layer.name, tuple(w.shape)))
    key, size = layer.input_size(w.shape)
    stated = getattr(layer, key)
    if stated is not None and stated != size:
        raise ConversionError(
            "shape mismatch in layer '%s' (%s): it says %s=%d, but weight '%s' of shape %s is "
            "for %s=%d; the params file does not belong to this symbol"
            % (layer.name, layer.op, key, stated, wname, tuple(w.shape), key, size))
    return key, size


def convert_model(sym, arg_params, aux_params, *, skip_binarized=False, source="the model"):
    """Packs the 1-bit layers of an in-memory model.

    Parameters
    ----------
    sym : mx.sym.Symbol
    arg_params, aux_params : dict of str -> NDArray (numpy arrays are accepted too)
        As returned by ``mx.model.load_checkpoint``.
    skip_binarized : bool, default False
        Layers that already hold packed weights (``binarized_weights_only=True``) raise
        :class:`AlreadyBinarizedError` unless this is True; then they are kept as they are.
    source : str
        What to call the parameters in error messages (e.g. the .params path).

    Returns
    -------
    (sym, arg_params, aux_params, report)
        The converted symbol, new parameter dicts (unchanged arrays are shared, not copied) and
        a :class:`ConversionReport`. Packed layers carry ``in_channels`` / ``in_units`` (the
        input size the packed words were made for). A loss head (``SoftmaxOutput`` …) becomes
        its forward computation (``softmax`` …) without the label input, since a packed model
        is for inference: it loads with ``SymbolBlock.imports(json, ['data'], params)``;
        ``report.loss_heads`` lists what was replaced.

    Raises
    ------
    ConversionError
        A weight the graph needs is missing or empty, a shape does not match the layer's
        attributes, a weight is not a stored parameter, or the model is binarized already.
    """
    if not isinstance(sym, mx.sym.Symbol):
        raise ConversionError("convert_model needs an mx.sym.Symbol, got %s" % type(sym).__name__)
    arg_params = {k: _to_nd(v) for k, v in (arg_params or {}).items()}
    aux_params = {k: _to_nd(v) for k, v in (aux_params or {}).items()}
    for key, value in sorted(arg_params.items()) + sorted(aux_params.items()):
        if value.size == 0:
            raise ConversionError("parameter '%s' in %s is empty (shape %s); pass the .params "
                                  "file saved with this symbol" % (key, source, value.shape))
    graph = Graph.of_symbol(sym, source)
    nodes = graph.nodes
    _check_required_params(nodes, arg_params, aux_params, source)
    existing = {n["name"] for n in nodes} | set(arg_params) | set(aux_params)

    new_args = dict(arg_params)
    layers, packed_vars, scale_nodes, size_attrs = [], {}, {}, {}
    for layer in graph.qlayers():
        i, name, op, node = layer.index, layer.name, layer.op, nodes[layer.index]
        if layer.weight_index is None:
            raise ConversionError("layer '%s' (%s) has no weight input" % (name, op))
        windex = layer.weight_index
        wnode = nodes[windex]
        wname = wnode["name"]
        if layer.packed:
            if not skip_binarized:
                raise AlreadyBinarizedError(
                    "%s is already binarized: layer '%s' (%s) has binarized_weights_only=True "
                    "and packed weights; it needs no conversion (load it as it is), and packing it "
                    "again would corrupt it — convert the original, unconverted checkpoint "
                    "instead" % (source, name, op))
            layers.append(LayerReport(name, op, "already packed", wname,
                                      reason="already packed (binarized_weights_only=True)"))
            continue
        if layer.act_bit != 1 or layer.weight_bit != 1:
            layers.append(LayerReport(name, op, "copied", wname, reason="k-bit layer (act_bit=%d, "
                                      "weight_bit=%d): copied unchanged"
                                      % (layer.act_bit, layer.weight_bit),
                                      act_bit=layer.act_bit, weight_bit=layer.weight_bit))
            continue
        if wnode["op"] != "null":
            raise ConversionError("the weight of layer '%s' (%s) is computed by node '%s' (%s), "
                                  "not stored as a parameter; only stored weights can be packed"
                                  % (name, op, wname, wnode["op"]))
        if wname not in arg_params:
            raise ConversionError("%s lacks the weight '%s' that layer '%s' (%s) needs; pass the "
                                  ".params file saved together with this symbol"
                                  % (source, wname, name, op))
        warr = arg_params[wname]
        if not np.issubdtype(np.dtype(warr.dtype), np.floating):
            raise ConversionError(
                "weight '%s' of layer '%s' is %s, not float, but the layer is not marked "
                "binarized_weights_only; the file looks half-converted — convert the original "
                "checkpoint" % (wname, name, np.dtype(warr.dtype).name))
        w = warr.asnumpy()
        size_attrs[i] = _check_weight(layer, wname, w, source)
        num_out = layer.num_out
        if not layer.no_bias and len(node["inputs"]) > 2:
            bnode = nodes[node["inputs"][2][0]]
            bias = arg_params.get(bnode["name"])
            if bnode["op"] == "null" and bias is not None and tuple(bias.shape) != (num_out,):
                raise ConversionError("shape mismatch in layer '%s' (%s): bias '%s' must have "
                                      "shape (%d,), %s holds %s" % (name, op, bnode["name"],
                                                                    num_out, source,
                                                                    tuple(bias.shape)))
        for user, pos in graph.consumers.get(windex, []):
            unode = nodes[user]
            same = unode["op"] == op and pos == 1 and QLayer(graph, user).act_bit == 1 and \
                QLayer(graph, user).weight_bit == 1
            if not same:
                raise ConversionError("weight '%s' of layer '%s' is also used by '%s' (%s), which "
                                      "needs it unpacked; such shared weights cannot be packed"
                                      % (wname, name, unode["name"], unode["op"]))
        if layer.conv:
            packed = packing.pack_conv_weights(w)
        else:
            packed = packing.pack_dense_weights(w)
        report = LayerReport(name, op, "packed", wname, w.shape)
        report.packed_shape = tuple(packed.shape)
        report.weight_bits = int(w.size) * np.dtype(w.dtype).itemsize * 8
        report.packed_bits = int(packed.size) * 64
        if wname not in packed_vars:
            packed_vars[wname] = (windex, packed)
            new_args[wname] = mx.nd.array(packed, dtype=np.int64)
        if layer.scaling_mode == "forward":
            sname = "%s_weight_scale" % name
            if sname in existing:
                raise ConversionError("layer '%s' needs a new parameter '%s' for its weight scale, "
                                      "but the model already has something of that name; rename "
                                      "the layer" % (name, sname))
            existing.add(sname)
            new_args[sname] = mx.nd.array(channel_scale(w), dtype=np.float32)
            scale_nodes[i] = (sname, num_out, 3 if not layer.no_bias else 2)
            report.scale = sname
        layers.append(report)

    # Mark the packed layers and their weight variables (shape and dtype for bind/simple_bind).
    for windex, packed in packed_vars.values():
        wattrs = nodes[windex].setdefault("attrs", {})
        wattrs["__shape__"] = str(tuple(packed.shape))
        wattrs["__dtype__"] = str(DTYPE_IDS[np.dtype(np.int64)])
    for i, (key, size) in size_attrs.items():  # in_channels / in_units: see QLayer.input_size
        nodes[i].setdefault("attrs", {}).update({"binarized_weights_only": "True", key: str(size)})
    new_graph = _insert_scale_inputs(graph.data, scale_nodes)
    new_sym, loss_heads = inference_symbol(new_graph, source)
    new_args = {k: v for k, v in new_args.items() if k in set(new_sym.list_arguments())
                or k in arg_params}
    report = ConversionReport(layers, dict(arg_params, **aux_params),
                              dict(new_args, **aux_params), source)
    report.loss_heads = loss_heads
    return new_sym, new_args, dict(aux_params), report


def _describe_repacked(report, model):
    """Report entries for the BMXNet layers whose words were re-packed into our layout."""
    by_name = {layer.name: layer for layer in report.layers}
    for info in model.layers:
        layer = by_name.get(info["name"])
        if layer is None or not info["packed"]:
            continue
        shape = info["weight_shape"]
        words = model.arg_params[info["weight"]]
        layer.action = "repacked"
        layer.weight_shape, layer.packed_shape = tuple(shape), tuple(words.shape)
        layer.weight_bits = int(np.prod(shape)) * 32  # as float32 weights
        layer.packed_bits = int(words.size) * 64
        layer.reason = "from BMXNet %d-bit words" % info["word_bits"]


def _check_required_params(nodes, arg_params, aux_params, source):
    for node in nodes:
        if node["op"] not in _PARAMETRIC_OPS:
            continue
        for entry in node["inputs"][1:]:
            var = nodes[entry[0]]
            if var["op"] == "null" and var["name"] not in arg_params \
                    and var["name"] not in aux_params:
                raise ConversionError("%s lacks the parameter '%s' that layer '%s' (%s) needs; "
                                      "pass the .params file saved together with this symbol"
                                      % (source, var["name"], node["name"], node["op"]))


def _insert_scale_inputs(graph, scale_nodes):
    """Adds a variable node before each node in ``scale_nodes`` and wires it as an input."""
    if not scale_nodes:
        return graph
    old = graph["nodes"]
    new, remap = [], {}
    for i, node in enumerate(old):
        if i in scale_nodes:
            sname, num_out, _ = scale_nodes[i]
            new.append({"op": "null", "name": sname, "inputs": [],
                        "attrs": {"__shape__": str((num_out,)),
                                  "__dtype__": str(DTYPE_IDS[np.dtype(np.float32)])}})
            scale_index = len(new) - 1
        remap[i] = len(new)
        node = dict(node)
        node["inputs"] = [[remap[e[0]]] + list(e[1:]) for e in node["inputs"]]
        if i in scale_nodes:
            pos = scale_nodes[i][2]
            node["inputs"].insert(pos, [scale_index, 0, 0])
        new.append(node)
    graph = dict(graph)
    graph["nodes"] = new
    graph["arg_nodes"] = [i for i, n in enumerate(new) if n["op"] == "null"]
    graph["heads"] = [[remap[h[0]]] + list(h[1:]) for h in graph["heads"]]
    graph.pop("node_row_ptr", None)  # recomputed by MXNet on load
    return graph


# ------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------
def _bind(sym, arg_params, aux_params, inputs):
    args = dict(arg_params)
    args.update(inputs)
    args = {k: v for k, v in args.items() if k in set(sym.list_arguments())}
    aux = {k: v for k, v in aux_params.items() if k in set(sym.list_auxiliary_states())}
    return sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")


def verify_models(sym_a, args_a, aux_a, sym_b, args_b, aux_b, *, samples=1, data_shape=None,
                  layers=(), seed=0):
    """Runs ``samples`` random inputs (standard normal) through two models and compares them.

    Parameters
    ----------
    layers : sequence of str
        Node names present in both graphs whose outputs are compared too.
    data_shape : tuple or None
        Shape of the (single) data input, batch included; worked out from the weights when
        None (:func:`bmxnet.graph.resolve_data_shape`).

    Returns
    -------
    dict with 'samples', 'data_shape', 'max_abs_diff' (over all outputs), 'argmax_equal'
    (argmax over axis 1 of the first output agrees everywhere) and 'layers'
    ({name: max_abs_diff}).
    """
    name, data_shape, labels = resolve_data_shape(sym_a, args_a, aux_a, data_shape,
                                                  "the original model")
    data = [name]
    arg_names = set(sym_a.list_arguments())
    known = {k: v.shape for k, v in args_a.items() if k in arg_names}  # extra params: unused
    label_shapes = {}
    if labels:
        shapes, _, _ = sym_a.infer_shape_partial(**dict(known, **{data[0]: data_shape}))
        label_shapes = {n: s for n, s in zip(sym_a.list_arguments(), shapes) if n in labels}

    def group(sym):
        internals = sym.get_internals()
        outs = [sym[i] for i in range(len(sym.list_outputs()))]
        outs += [internals[name + "_output"] for name in layers]
        return mx.sym.Group(outs)

    rng = np.random.RandomState(seed)
    n_out = len(sym_a.list_outputs())
    max_out, per_layer, argmax_ok = 0.0, {name: 0.0 for name in layers}, True
    ex_a = ex_b = None
    for _ in range(int(samples)):
        inputs = {data[0]: mx.nd.array(rng.randn(*data_shape).astype(np.float32))}
        inputs.update({n: mx.nd.zeros(s) for n, s in label_shapes.items()})
        if ex_a is None:
            ex_a = _bind(group(sym_a), args_a, aux_a, inputs)
            ex_b = _bind(group(sym_b), args_b, aux_b, inputs)
        outs_a = ex_a.forward(is_train=False, **inputs)
        outs_a = [o.asnumpy() for o in outs_a]
        inputs_b = {k: v for k, v in inputs.items() if k in ex_b.arg_dict}  # no label input
        outs_b = [o.asnumpy() for o in ex_b.forward(is_train=False, **inputs_b)]
        for k, (a, b) in enumerate(zip(outs_a, outs_b)):
            diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
            if np.isnan(diff) or (np.isnan(a) != np.isnan(b)).any():
                diff = float("inf")
            if k < n_out:
                max_out = max(max_out, diff)
                if k == 0 and a.ndim >= 2 and not np.array_equal(a.argmax(1), b.argmax(1)):
                    argmax_ok = False
            else:
                name = layers[k - n_out]
                per_layer[name] = max(per_layer[name], diff)
    return {"samples": int(samples), "data_shape": data_shape, "max_abs_diff": max_out,
            "argmax_equal": argmax_ok, "layers": per_layer}


# ------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------
_PARAMS_NAME = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d+)\.params$")


def output_paths(params_path, output_dir=None, *, from_bmxnet=False):
    """(symbol_in, symbol_out, params_out) for ``PREFIX-EPOCH.params``.

    The outputs are ``binarized_PREFIX-symbol.json`` and ``binarized_PREFIX-EPOCH.params`` in
    ``output_dir`` (default: the input's folder). For a BMXNet model whose PREFIX starts with
    ``binarized_`` already, that prefix is not doubled.
    """
    base = os.path.basename(params_path)
    match = _PARAMS_NAME.match(base)
    if not match:
        raise ConversionError("%s is not named PREFIX-EPOCH.params (e.g. mnist-0001.params); the "
                              "converter finds PREFIX-symbol.json from that name" % params_path)
    prefix, epoch = match.group("prefix"), match.group("epoch")
    folder = os.path.dirname(os.path.abspath(params_path))
    out = os.path.abspath(output_dir) if output_dir else folder
    out_prefix = prefix
    if from_bmxnet and out_prefix.startswith("binarized_"):
        out_prefix = out_prefix[len("binarized_"):]
    return (os.path.join(folder, prefix + "-symbol.json"),
            os.path.join(out, "binarized_%s-symbol.json" % out_prefix),
            os.path.join(out, "binarized_%s-%s.params" % (out_prefix, epoch)))


def _check_output_dir(folder):
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConversionError("output folder %s is a file, not a folder; pass another "
                              "--output-dir" % folder)
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder)
        except OSError as err:
            raise ConversionError("cannot create the output folder %s: %s; pass another "
                                  "--output-dir" % (folder, err.strerror or err))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConversionError("cannot write to %s (permission denied); pass a writable "
                              "--output-dir" % folder)


def convert_checkpoint(params_path, *, output_dir=None, dry_run=False, verify=0, data_shape=None,
                       from_bmxnet=False, symbol_path=None, seed=0):
    """Converts ``PREFIX-EPOCH.params`` (+ ``PREFIX-symbol.json`` beside it) into
    ``binarized_PREFIX-symbol.json`` + ``binarized_PREFIX-EPOCH.params``.

    Parameters
    ----------
    params_path : str
        The checkpoint's parameter file; the symbol is read from ``PREFIX-symbol.json`` in the
        same folder.
    output_dir : str, optional
        Where the binarized files go (created if missing); default: next to the input.
    dry_run : bool
        Plan only: read, check and convert in memory, write nothing.
    verify : int
        Number of random inputs run through the original and the converted model before
        anything is written; a difference in any output or packed layer raises
        ConversionError (and nothing is written).
    data_shape : tuple, optional
        Input shape (batch first) that the converted model is checked to run with (and that
        ``verify`` uses); worked out from the first layer's weight when omitted, and a
        ConversionError asks for it when that fails. Nothing is written for a model that does
        not run with it.
    from_bmxnet : bool
        The input is a BMXNet v1 model (see :mod:`bmxnet.legacy`).
    symbol_path : str, optional
        The symbol json, when it is not ``PREFIX-symbol.json`` beside ``params_path``.
    seed : int
        Seed of the random verification inputs.

    Returns
    -------
    ConversionReport
        ``report.files`` holds the paths (and, once written, the sizes in bytes) of the input and
        output files; ``report.verify`` the verification result when ``verify > 0``.
    """
    params_path = os.fspath(params_path)
    symbol_in, symbol_out, params_out = output_paths(params_path, output_dir,
                                                      from_bmxnet=from_bmxnet)
    if symbol_path is not None:
        symbol_in = os.fspath(symbol_path)
    if not os.path.isfile(params_path):
        raise ConversionError("params file %s not found" % params_path)
    if from_bmxnet:
        from .. import legacy
        model = legacy.read(symbol_in, params_path, data_shape=data_shape)
        sym, arg_params, aux_params = model.symbol, model.arg_params, model.aux_params
        # Reference for --verify: the same network with the decoded +-1 float weights.
        ref = (model.float_symbol, model.float_arg_params, model.aux_params)
    else:
        sym, _ = load_symbol_file(symbol_in)
        arg_params, aux_params = split_params(read_params_file(params_path), sym, params_path)
        ref = (sym, arg_params, aux_params)
    new_sym, new_args, new_aux, report = convert_model(
        sym, arg_params, aux_params, skip_binarized=from_bmxnet, source=params_path)
    if from_bmxnet:
        report.params_bytes_before = nbytes(read_params_file(params_path))
        _describe_repacked(report, model)
    report.files = {"symbol_in": symbol_in, "params_in": params_path, "symbol_out": symbol_out,
                    "params_out": params_out,
                    "sizes": {p: os.path.getsize(p) for p in (symbol_in, params_path)}}
    report.dry_run = bool(dry_run)
    # Never write a model that does not run: one input shape (given, or worked out from the
    # weights; else the user is asked for --data-shape) must fit the original's parameters,
    # and the converted model must bind and run for it.
    data_name, report.data_shape, _ = resolve_data_shape(
        ref[0], ref[1], ref[2], model.data_shape if from_bmxnet else data_shape, params_path)
    if verify:
        names = [layer.name for layer in report.layers
                 if layer.action in ("packed", "repacked", "already packed")]
        result = verify_models(ref[0], ref[1], ref[2], new_sym, new_args, new_aux,
                               samples=verify, data_shape=report.data_shape, layers=names,
                               seed=seed)
        report.verify = result
        for layer in report.layers:
            layer.max_abs_diff = result["layers"].get(layer.name)
        bad = {k: v for k, v in result["layers"].items() if v != 0}
        if result["max_abs_diff"] != 0 or bad:
            raise ConversionError("verification failed: the converted model differs from the "
                                  "original (max |difference| %g at the outputs, layers %s); "
                                  "nothing was written — please report this as a bug"
                                  % (result["max_abs_diff"], bad or "equal"))
    else:
        check_runs(new_sym, new_args, new_aux, data_name, report.data_shape,
                   "the converted model of %s" % params_path)
    if dry_run:
        return report
    for path in (symbol_out, params_out):
        if os.path.abspath(path) in (os.path.abspath(symbol_in), os.path.abspath(params_path)):
            raise ConversionError("the output %s would overwrite the input file; pass another "
                                  "folder with --output-dir" % path)
    _check_output_dir(os.path.dirname(params_out))
    save = {"arg:" + k: v for k, v in new_args.items()}
    save.update({"aux:" + k: v for k, v in new_aux.items()})

    def write_symbol(tmp):
        with open(tmp, "w") as f:
            f.write(new_sym.tojson())

    def write_params(tmp):
        mx.nd.save(tmp, save)

    atomic_write([(symbol_out, write_symbol), (params_out, write_params)],
                 fix="choose another folder with --output-dir (output_dir=)")
    report.files["sizes"].update({p: os.path.getsize(p) for p in (symbol_out, params_out)})
    return report
