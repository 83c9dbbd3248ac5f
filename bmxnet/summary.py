"""``summary(net, input_shape)``: what a binary network costs, layer by layer.

For each layer: the bits its input is quantized to, the output shape, the number of 1-bit and
32-bit parameters (k-bit ones in their own column when there are any), the memory of its
parameters when 1-bit weights are stored as bits, and its multiply-accumulates split into binary
MACs (1-bit inputs times 1-bit weights: xnor-popcount) and float MACs (everything else,
k-bit included). The totals give the model size, its float-32 equivalent, the compression ratio
and the fraction of MACs that are binary.

The network is traced symbolically (``net(mx.sym.var('data'))`` with forward hooks and one
shape inference), so nothing is computed or allocated: an uninitialized 60M-parameter model is
summarized in milliseconds. Parameter precision comes from ``param.precision`` (set by QConv2D /
QDense from their kernel quantizer; 32 when absent); BatchNorm running statistics count as
32-bit parameters. MACs are per sample.

A ``gluon.SymbolBlock`` (a loaded checkpoint, e.g. ``SymbolBlock.imports(...)``) and any other leaf
block whose graph holds convolutions or dense layers of its own get one row per operator node of
their graph instead: QConvolution / QFullyConnected precision comes from their ``act_bit`` /
``weight_bit``, packed weights (``binarized_weights_only``, written by the model converter) count
as the 1-bit parameters they encode and take the memory of their words.
"""
import collections
import json

import mxnet as mx
from mxnet.gluon import SymbolBlock, nn

from . import graph as _graph
from .gluon.layers import QActivation, QConv2D, QDense

__all__ = ["summary", "Summary", "LayerSummary"]

LayerSummary = collections.namedtuple(
    "LayerSummary", "name type input_bits output_shape params_1bit params_32bit params_kbit "
                    "memory_bits binary_macs float_macs")


def _param_bits(param):
    return int(getattr(param, "precision", 32))


def _macs(block, weight_shape, out_shape):
    """Per-sample MACs of a convolution / dense layer from its weight and output shapes."""
    if weight_shape is None or out_shape is None:
        return 0
    per_output = 1
    for d in weight_shape[1:]:
        per_output *= d
    outputs = 1
    for d in out_shape[1:]:
        outputs *= d
    return outputs * per_output


def _is_mac_layer(block):
    return isinstance(block, (nn.Conv2D, nn.Dense, nn.Conv1D, nn.Conv3D))


def _input_bits(block):
    if isinstance(block, (QConv2D, QDense)):
        return block.input_precision
    if isinstance(block, QActivation):
        return block.precision
    return None


def _human(n):
    return "{:,}".format(int(n))


class Summary:
    """The result of :func:`summary`: ``layers`` (list of :class:`LayerSummary`), ``totals``
    (dict) and the printed ``table`` (``str(summary)``)."""

    def __init__(self, name, input_shape, layers):
        self.name = name
        self.input_shape = tuple(input_shape)
        self.layers = layers
        t = collections.OrderedDict()
        t["params_1bit"] = sum(r.params_1bit for r in layers)
        t["params_32bit"] = sum(r.params_32bit for r in layers)
        t["params_kbit"] = sum(r.params_kbit for r in layers)
        t["params"] = t["params_1bit"] + t["params_32bit"] + t["params_kbit"]
        t["memory_bytes"] = sum(r.memory_bits for r in layers) / 8.0
        t["float32_bytes"] = t["params"] * 4.0
        t["compression"] = t["float32_bytes"] / t["memory_bytes"] if t["memory_bytes"] else 1.0
        t["binary_macs"] = sum(r.binary_macs for r in layers)
        t["float_macs"] = sum(r.float_macs for r in layers)
        macs = t["binary_macs"] + t["float_macs"]
        t["binary_mac_fraction"] = t["binary_macs"] / macs if macs else 0.0
        self.totals = t
        self.table = self._render()

    def _render(self):
        kbit = self.totals["params_kbit"] > 0
        head = ["Layer", "Type", "In bits", "Output shape", "# 1-bit", "# 32-bit"] + \
            (["# k-bit"] if kbit else []) + ["Memory (KiB)", "1-bit MACs", "32-bit MACs"]
        rows = []
        for r in self.layers:
            rows.append([r.name, r.type, "-" if r.input_bits is None else str(r.input_bits),
                         str(r.output_shape), _human(r.params_1bit), _human(r.params_32bit)] +
                        ([_human(r.params_kbit)] if kbit else []) +
                        ["%.2f" % (r.memory_bits / 8192.0), _human(r.binary_macs),
                         _human(r.float_macs)])
        t = self.totals
        total = ["Total", "", "", "", _human(t["params_1bit"]), _human(t["params_32bit"])] + \
            ([_human(t["params_kbit"])] if kbit else []) + \
            ["%.2f" % (t["memory_bytes"] / 1024.0), _human(t["binary_macs"]),
             _human(t["float_macs"])]
        widths = [max(len(str(x)) for x in col) for col in zip(head, total, *rows)]
        left = {0, 1, 3}

        def line(cells):
            return "| " + " | ".join(c.ljust(w) if i in left else c.rjust(w)
                                     for i, (c, w) in enumerate(zip(cells, widths))) + " |"
        sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
        out = ["%s summary, input %s" % (self.name, self.input_shape), sep, line(head), sep]
        out += [line(r) for r in rows]
        out += [sep, line(total), sep]
        stats = [("Total params", _human(t["params"])),
                 ("1-bit params", _human(t["params_1bit"])),
                 ("32-bit params", _human(t["params_32bit"]))]
        if kbit:
            stats.append(("k-bit params", _human(t["params_kbit"])))
        stats += [("Model size", "%.2f KiB" % (t["memory_bytes"] / 1024.0)),
                  ("Float-32 equivalent", "%.2f KiB" % (t["float32_bytes"] / 1024.0)),
                  ("Compression ratio", "%.2fx" % t["compression"]),
                  ("Binary MACs", "%s (%.2f %% of all MACs)"
                   % (_human(t["binary_macs"]), 100.0 * t["binary_mac_fraction"])),
                  ("Float MACs", _human(t["float_macs"]))]
        w = max(len(k) for k, _ in stats)
        out += ["%s  %s" % (k.ljust(w), v) for k, v in stats]
        return "\n".join(out)

    def __str__(self):
        return self.table

    def __repr__(self):
        return "<Summary of %s: %s params, %.2fx smaller, %.1f%% binary MACs>" % (
            self.name, _human(self.totals["params"]), self.totals["compression"],
            100 * self.totals["binary_mac_fraction"])


# ---- operator nodes of a symbol graph (SymbolBlocks and blocks calling F.Convolution & co.) ----
_CONV_OPS = ("Convolution", "QConvolution")
_DENSE_OPS = ("FullyConnected", "QFullyConnected")


def _prod(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _param_counts(params):
    """(1-bit, 32-bit, k-bit parameter counts, storage bits) of (count, bits, storage) triples."""
    p1 = p32 = pk = bits = 0
    for n, b, stored in params:
        if b == 1:
            p1 += n
        elif b >= 32:
            p32 += n
        else:
            pk += n
        bits += stored
    return p1, p32, pk, bits


def _has_mac_nodes(sym, outside):
    return any(n["op"] in _CONV_OPS + _DENSE_OPS and n["name"] not in outside
               for n in json.loads(sym.tojson())["nodes"])


def _node_names(syms):
    names = set()
    for s in syms:
        names.update(n["name"] for n in json.loads(s.tojson())["nodes"])
    return names


def _graph_rows(block_name, out, outside, input_shape, seen_params):
    """Rows for the operator nodes of ``out`` (a traced symbol whose input is ``data``) that
    are not in ``outside`` (the nodes of the block's inputs, i.e. of the layers before it)."""
    internals = out.get_internals()
    try:
        arg_shapes, out_shapes, aux_shapes = internals.infer_shape(data=tuple(input_shape))
    except mx.base.MXNetError as e:
        raise ValueError("%s does not take input %s: %s"
                         % (block_name, tuple(input_shape), _graph.error_line(e))) from None
    if out_shapes is None:
        raise ValueError("could not infer the shapes of %s for input %s"
                         % (block_name, tuple(input_shape)))
    shapes = dict(zip(internals.list_arguments(), arg_shapes))
    shapes.update(zip(internals.list_auxiliary_states(), aux_shapes))
    outputs = dict(zip(internals.list_outputs(), out_shapes))
    g = _graph.Graph.of_symbol(out, block_name)

    def entry_shape(node, index):
        """Shape of output ``index`` of ``node`` (MXNet names them NAME for a variable,
        NAME_output for a single output, NAME_output0, NAME_output1 ... otherwise)."""
        if node["op"] == "null":
            return shapes.get(node["name"])
        keys = ([node["name"] + "_output"] if index == 0 else []) + \
            ["%s_output%d" % (node["name"], index)]
        return next((outputs[k] for k in keys if k in outputs), None)

    rows = []
    for i, node in enumerate(g.nodes):
        if node["op"] == "null" or node["name"] in outside:
            continue
        name = node["name"]
        entries = node.get("inputs", [])
        inputs = [g.nodes[e[0]] for e in entries]
        data_shape = entry_shape(inputs[0], entries[0][1]) if inputs else None
        out_shape = entry_shape(node, 0) or ()
        q = _graph.QLayer(g, i) if node["op"] in _graph.Q_OPS else None
        weight_bits = q.weight_bit if q is not None else 32
        params = []
        for pos, src in enumerate(inputs):
            if src["op"] != "null" or src["name"] in outside or src["name"] in seen_params:
                continue  # data, or a parameter counted already (shared, or of another row)
            seen_params.add(src["name"])
            n = _prod(shapes.get(src["name"]) or ())
            b = weight_bits if (q is not None and pos == 1) else 32
            if q is not None and pos == 1 and q.packed:
                # n int64 words, (O, kh, kw, words) or (O, words), holding O x K weight signs
                if q.conv:
                    k = data_shape[1] // q.num_group * _prod(q.kernel)
                else:
                    k = _prod(data_shape[1:]) if q.flatten else data_shape[-1]
                params.append((q.num_out * k, 1, n * 64))
            else:
                params.append((n, b, n * min(b, 32)))
        p1, p32, pk, bits = _param_counts(params)
        binary = flt = 0
        if node["op"] in _CONV_OPS + _DENSE_OPS and data_shape and out_shape:
            attrs = _graph.node_attrs(node)
            if node["op"] in _CONV_OPS:
                kernel = _graph.parse_tuple(attrs.get("kernel"), len(data_shape) - 2, 1)
                groups = _graph.parse_int(attrs.get("num_group"), 1)
                macs = _prod(out_shape[1:]) * (data_shape[1] // groups) * _prod(kernel)
            elif _graph.flag(attrs.get("flatten"), True):
                macs = _prod(out_shape[1:]) * _prod(data_shape[1:])
            else:
                macs = _prod(out_shape[1:]) * data_shape[-1]
            if q is not None and q.act_bit == 1 and q.weight_bit == 1:
                binary = macs
            else:
                flt = macs
        input_bits = q.act_bit if q is not None else (
            _graph.parse_int(_graph.node_attrs(node).get("act_bit"), 1)
            if node["op"] == "QActivation" else None)
        rows.append(LayerSummary(name, node["op"], input_bits, tuple(out_shape), p1, p32, pk,
                                 bits, binary, flt))
    return rows


def _rows_blocks(net):
    """Leaf blocks and blocks owning parameters, depth first."""
    out = []

    def visit(b):
        if not b._children or b._reg_params:
            out.append(b)
        for c in b._children.values():
            visit(c)
    visit(net)
    return out


def summary(net, input_shape, *, print_fn=print):
    """Per-layer table of a network's precision, parameters, memory and MACs.

    Parameters
    ----------
    net : HybridBlock
        Initialized or not (shapes are inferred symbolically); a ``gluon.SymbolBlock`` (one
        input) is summarized node by node from its graph.
    input_shape : tuple
        Shape of the input batch, e.g. ``(1, 3, 224, 224)``.
    print_fn : callable or None, default print
        Receives the table; None prints nothing.

    Returns
    -------
    Summary
        ``.layers``, ``.totals`` (params, params_1bit, params_32bit, memory_bytes,
        float32_bytes, compression, binary_macs, float_macs, binary_mac_fraction), ``.table``.
    """
    blocks = _rows_blocks(net)
    calls = []

    def hook(blk, inp, out):
        out = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
        calls.append((blk, [x for x in inp if isinstance(x, mx.sym.Symbol)], out))
    handles = [b.register_forward_hook(hook) for b in blocks]
    try:
        net(mx.sym.var("data"))
    except (TypeError, ValueError, AssertionError) as e:
        raise ValueError("summary traces %s with one input named 'data', which it does not "
                         "take: %s" % (net.name, _graph.error_line(e))) from None
    finally:
        for h in handles:
            h.detach()
    outs = [o if len(o.list_outputs()) == 1 else o[0] for _, _, o in calls]
    group = mx.sym.Group(outs)
    try:
        arg_shapes, out_shapes, aux_shapes = group.infer_shape(data=tuple(input_shape))
    except mx.base.MXNetError as e:
        raise ValueError("%s does not take input %s: %s"
                         % (net.name, tuple(input_shape), _graph.error_line(e))) from None
    if out_shapes is None:
        raise ValueError("could not infer the shapes of %s for input %s"
                         % (net.name, tuple(input_shape)))
    shapes = dict(zip(group.list_arguments(), arg_shapes))
    shapes.update(zip(group.list_auxiliary_states(), aux_shapes))

    rows = []
    seen_params = set()
    for (blk, inputs, out), out_shape in zip(calls, out_shapes):
        if not blk._children and not _is_mac_layer(blk):
            outside = _node_names(inputs)
            if isinstance(blk, SymbolBlock) or _has_mac_nodes(out, outside):
                rows += _graph_rows(blk.name, out, outside, input_shape, seen_params)
                continue
        params = []
        for param in blk._reg_params.values():
            if param.name in seen_params:  # shared parameters count once
                continue
            seen_params.add(param.name)
            n = _prod(shapes.get(param.name, param.shape))
            b = _param_bits(param)
            params.append((n, b, n * min(b, 32)))
        p1, p32, pk, bits = _param_counts(params)
        binary = flt = 0
        if _is_mac_layer(blk):
            w = blk._reg_params.get("weight")
            macs = _macs(blk, shapes.get(w.name) if w is not None else None, out_shape)
            if isinstance(blk, (QConv2D, QDense)) and blk.input_precision == 1 and \
                    blk.kernel_precision == 1:
                binary = macs
            else:
                flt = macs
        rows.append(LayerSummary(blk.name, type(blk).__name__, _input_bits(blk),
                                 tuple(out_shape), p1, p32, pk, bits, binary, flt))
    result = Summary(type(net).__name__, input_shape, rows)
    if print_fn is not None:
        print_fn(result.table)
    return result
