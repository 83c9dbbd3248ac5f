"""Running BMXNet (v1) models: ``bmxnet.legacy.load(prefix, epoch)``.

BMXNet v1 was a fork of MXNet 0.9/0.11 whose ``model_converter`` wrote ``binarized_*`` files.
This module reads those files (and BMXNet's unconverted checkpoints) and rebuilds the network on
this project's operators so that it computes exactly what BMXNet computed::

    import bmxnet.legacy
    model = bmxnet.legacy.load("binarized_mnist_64bit", 1)
    probabilities = model.net(x)            # a gluon.SymbolBlock, x: (N, 1, 28, 28) in [0, 1]

or, to migrate the files once (``model_converter --from-bmxnet`` does the same)::

    model_converter --from-bmxnet binarized_mnist_64bit-0001.params

The BMXNet v1 format, and how each part is mapped:

* **Packed words.** Binarized weights are 1-D arrays whose float32 (32-bit words) or float64
  (64-bit words) elements are really unsigned integer words. Their bytes are reinterpreted
  (never converted as values); bit j of a word (LSB first) is 1 for weight +1, 0 for -1.
* **QConvolution weights** are the float tensor flattened in (out, in, kh, kw) order and cut into
  words: ``num_filter * in * kh * kw / bits`` words. **QFullyConnected weights** are packed down
  the columns of the transposed (in, num_hidden) matrix: word (i, o) holds inputs
  ``i*bits ... i*bits+bits-1`` of output o, stored in (in/bits, num_hidden) order. Both are
  re-packed into this project's layout (:mod:`bmxnet.converter.packing`) and run with
  ``binarized_weights_only=True`` on the packed xnor kernels.
* **Output scale.** A binary BMXNet layer outputs the number of matching bits,
  ``(K + dot) / 2`` with ``K = in * kh * kw`` (``in`` for a dense layer), not the +-1 dot product;
  the following BatchNorm was trained on that scale. It is expressed with standard nodes after
  our operator, ``_plus_scalar(K)`` then ``_mul_scalar(0.5)`` (exact in float: integers below
  2^24). A bias, if a layer has one, is added after that count.
* **Padding** of binary convolutions is +1 (``pad_value=1``); sign(0) = +1.
* ``QActivation(backward_only=True)`` is the identity in the forward pass (kept as our
  ``QActivation(backward_only=True)``).
* **Unconverted checkpoints** (Q-layers with float weights) keep their float weights — our
  operators binarize them — with the same count scale and +1 padding.
* **MXNet 0.9 json** (``"attr"``/``"param"`` keys) is parsed here, node by node, not by MXNet's
  upgrader; standard layers are rebuilt with ``mx.sym`` and the layer's attributes.
  :func:`is_bmxnet_v1` tells such a file from one of this project.

What is checked (the files are read with :mod:`bmxnet.graph`, which validates the json graph and
the .params headers before MXNet sees them): the word count of a packed weight only tells its
input size given the layer's attributes, so the whole network is checked for one input shape
(``data_shape``, or worked out from the first layer; when that fails, ``data_shape`` is asked
for): a weight whose words imply another input channel count than the layer receives is refused,
naming the layer. The packed layers carry their input size (``in_channels`` / ``in_units``),
which the operators check.
"""
import json
import os

import mxnet as mx
import numpy as np

from .converter import packing
from .graph import (V1_HINT, ConversionError, DTYPE_IDS, Graph, LOSS_OPS, QLayer, error_line,
                    flag, is_bmxnet_v1, loss_forward, node_attrs, parse_int, parse_json,
                    read_params_file, resolve_data_shape, symbol_from_graph)

__all__ = ["load", "read", "LegacyModel", "LegacyFormatError", "decode_conv_weights",
           "decode_dense_weights", "word_bits_of", "is_bmxnet_v1", "V1_HINT", "STANDARD_OPS"]


class LegacyFormatError(ConversionError):
    """A BMXNet v1 file cannot be read or mapped; the message names the layer and the reason."""


# Standard MXNet layers that are rebuilt as they are (old names mapped to today's).
STANDARD_OPS = {
    "Convolution": "Convolution", "Deconvolution": "Deconvolution",
    "FullyConnected": "FullyConnected", "Activation": "Activation", "LeakyReLU": "LeakyReLU",
    "Pooling": "Pooling", "BatchNorm": "BatchNorm", "Flatten": "Flatten", "Dropout": "Dropout",
    "Concat": "Concat", "Reshape": "Reshape", "LRN": "LRN", "SoftmaxActivation":
    "SoftmaxActivation", "softmax": "softmax", "ElementWiseSum": "add_n", "add_n": "add_n",
    "elemwise_add": "elemwise_add", "_Plus": "elemwise_add", "_plus": "elemwise_add",
    "_Minus": "elemwise_sub", "_minus": "elemwise_sub", "_Mul": "elemwise_mul",
    "_mul": "elemwise_mul", "identity": "identity", "_copy": "identity",
    "SoftmaxOutput": "SoftmaxOutput", "LinearRegressionOutput": "LinearRegressionOutput",
    "LogisticRegressionOutput": "LogisticRegressionOutput",
    "MAERegressionOutput": "MAERegressionOutput", "SVMOutput": "SVMOutput",
}
_Q_CONV_ATTRS = {"kernel", "stride", "dilate", "pad", "num_filter", "num_group", "no_bias",
                 "workspace", "cudnn_tune", "cudnn_off", "layout", "act_bit", "weight_bit",
                 "binarized_weights_only"}
_Q_FC_ATTRS = {"num_hidden", "no_bias", "flatten", "act_bit", "weight_bit",
               "binarized_weights_only"}
_Q_ACT_ATTRS = {"act_bit", "backward_only"}

_WORD_TYPES = {np.dtype(np.float32): (32, np.dtype("<u4")),
               np.dtype(np.float64): (64, np.dtype("<u8"))}


def word_bits_of(array, layer):
    """32 or 64: the word size of a packed BMXNet weight, from its storage dtype."""
    dtype = np.dtype(array.dtype)
    if dtype not in _WORD_TYPES:
        raise LegacyFormatError("packed weight of layer '%s' is stored as %s; BMXNet stored "
                                "32-bit words as float32 and 64-bit words as float64"
                                % (layer, dtype.name))
    return _WORD_TYPES[dtype][0]


def _signs(array):
    """Words (float32/float64 storage) -> +-1 float32 per bit, LSB first, in word order."""
    raw = np.ascontiguousarray(array)
    words = raw.view(_WORD_TYPES[np.dtype(raw.dtype)][1])  # reinterpret, never convert
    bits = np.unpackbits(words.reshape(words.shape + (1,)).view(np.uint8), axis=-1,
                         bitorder="little")
    return np.where(bits == 1, np.float32(1), np.float32(-1))


def decode_conv_weights(array, num_filter, kernel, layer="?"):
    """+-1 float32 weights (num_filter, in, kh, kw) of a packed BMXNet QConvolution.

    ``array`` is the 1-D stored weight (float32 or float64 storage of the words).
    """
    array = np.asarray(array)
    bits = word_bits_of(array, layer)
    per_channel = int(num_filter) * int(kernel[0]) * int(kernel[1])
    total = array.size * bits
    if array.ndim != 1 or array.size == 0 or total % per_channel:
        raise LegacyFormatError(
            "layer '%s' (QConvolution): packed weight has %d %d-bit words (%d bits), which is not "
            "num_filter x kh x kw = %d x %d x %d times a whole number of input channels; the "
            "file is truncated or does not belong to this symbol"
            % (layer, array.size, bits, total, num_filter, kernel[0], kernel[1]))
    channels = total // per_channel
    return _signs(array).reshape(num_filter, channels, kernel[0], kernel[1])


def decode_dense_weights(array, num_hidden, layer="?"):
    """+-1 float32 weights (num_hidden, in) of a packed BMXNet QFullyConnected."""
    array = np.asarray(array)
    bits = word_bits_of(array, layer)
    if array.ndim != 1 or array.size == 0 or array.size % int(num_hidden):
        raise LegacyFormatError(
            "layer '%s' (QFullyConnected): packed weight has %d %d-bit words, which is not a "
            "multiple of num_hidden = %d ((in/%d) x num_hidden words are needed); the file is "
            "truncated or does not belong to this symbol"
            % (layer, array.size, bits, num_hidden, bits))
    rows = array.size // int(num_hidden)
    signs = _signs(array.reshape(rows, int(num_hidden)))  # (in/bits, num_hidden, bits)
    return np.ascontiguousarray(signs.transpose(1, 0, 2).reshape(int(num_hidden), rows * bits))


class LegacyModel:
    """A BMXNet v1 model rebuilt on bmxnet's operators.

    Attributes
    ----------
    symbol : mx.sym.Symbol
        The network, loss layer (e.g. SoftmaxOutput) included, packed layers with
        ``binarized_weights_only=True``.
    arg_params, aux_params : dict of str -> NDArray
        Its parameters (packed weights as int64 words in this project's layout).
    float_symbol, float_arg_params : the same network with every binary layer's weights as
        +-1 float32 (what the packed words decode to), for checking.
    inference_symbol : the network with the loss layer replaced by its forward computation
        (SoftmaxOutput -> softmax), which is what :attr:`net` runs.
    data_names : list of str
    data_shape : tuple
        The input shape the model was checked with (given, or worked out from its weights).
    layers : list of dict
        One entry per binary layer: name, op, packed (bool), word_bits, K, weight_shape.
    net : gluon.SymbolBlock or None
        Set by :func:`load`.
    """

    def __init__(self):
        self.symbol = self.float_symbol = self.inference_symbol = None
        self.arg_params, self.aux_params, self.float_arg_params = {}, {}, {}
        self.data_names, self.layers = [], []
        self.net = None
        self.source = None
        self.data_shape = None

    @property
    def word_bits(self):
        """Word size (32 or 64) of the packed layers (None when nothing was packed)."""
        sizes = {layer["word_bits"] for layer in self.layers if layer["packed"]}
        return sizes.pop() if len(sizes) == 1 else (sorted(sizes) or None)

    def block(self, output=None, ctx=None, packed=True):
        """A gluon.SymbolBlock computing ``output``: a node name, a list of node names (the block
        then returns a list), or None for the inference head (what :attr:`net` computes).

        ``packed=False`` runs the +-1 float weights instead of the packed words.
        """
        sym = self.inference_symbol
        if output is not None:
            internals = sym.get_internals()
            names = [output] if isinstance(output, str) else list(output)
            outs = []
            for name in names:
                key = name if name.endswith("_output") else name + "_output"
                if key not in internals.list_outputs():
                    raise ValueError("the model has no node '%s'" % name)
                outs.append(internals[key])
            sym = outs[0] if isinstance(output, str) else mx.sym.Group(outs)
        args = self.arg_params if packed else self.float_arg_params
        if not packed:
            sym = _float_version(sym, self)
        return make_block(sym, self.data_names, args, self.aux_params, ctx or mx.cpu())


def make_block(sym, data_names, arg_params, aux_params, ctx):
    """SymbolBlock of ``sym`` with the given parameters loaded in their own dtypes (int64 kept)."""
    inputs = [mx.sym.var(n, dtype="float32") for n in data_names]
    net = mx.gluon.SymbolBlock(sym, inputs)
    params = {}
    needed = set(net.collect_params().keys())
    for key, value in list(arg_params.items()) + list(aux_params.items()):
        if key in needed:
            params[key] = value
    net.collect_params().load_dict(params, ctx=ctx, cast_dtype=True, dtype_source="saved")
    net.collect_params().setattr("grad_req", "null")
    return net


def _float_version(sym, model):
    """``sym`` with every packed Q-layer switched to float +-1 weights."""
    graph = json.loads(sym.tojson())
    packed = {layer["weight"] for layer in model.layers if layer["packed"]}
    for node in graph["nodes"]:
        attrs = node.get("attrs", {})
        if node["op"] in ("QConvolution", "QFullyConnected") and \
                flag(attrs.get("binarized_weights_only")):
            attrs["binarized_weights_only"] = "False"
        if node["op"] == "null" and node["name"] in packed:
            attrs.pop("__shape__", None)
            attrs["__dtype__"] = str(DTYPE_IDS[np.dtype(np.float32)])
    return symbol_from_graph(graph, "the float version of %s" % model.source, LegacyFormatError)


_OUR_ATTRS = {"pad_value", "scaling_mode", "act_grad", "grad_cancel", "swish_beta", "in_channels",
              "in_units"}


def _attr_check(layer, op, attrs, allowed):
    ours = sorted(_OUR_ATTRS & set(attrs))
    if ours:
        raise LegacyFormatError("layer '%s' (%s) has the attribute '%s' of this project's "
                                "operators: the model is not a BMXNet v1 model; load it after "
                                "`import bmxnet` directly, or convert it without --from-bmxnet"
                                % (layer, op, ours[0]))
    unknown = sorted(k for k in attrs if not k.startswith("__") and k not in allowed)
    if unknown:
        raise LegacyFormatError("layer '%s' (%s) has attribute(s) %s that bmxnet.legacy cannot "
                                "map; supported: %s" % (layer, op, ", ".join(unknown),
                                                        ", ".join(sorted(allowed))))


def _one_bit(layer, op, attrs):
    try:
        act_bit = parse_int(attrs.get("act_bit"), 1)
        weight_bit = parse_int(attrs.get("weight_bit"), 1)
    except ValueError as err:
        raise LegacyFormatError("layer '%s' (%s): %s" % (layer, op, err))
    if act_bit != 1 or weight_bit != 1:
        raise LegacyFormatError(
            "layer '%s' (%s) has act_bit=%d, weight_bit=%d; bmxnet.legacy maps only BMXNet's "
            "1-bit layers (its k-bit quantization differs from this project's)"
            % (layer, op, act_bit, weight_bit))


def read(symbol_path, params_path, *, data_shape=None):
    """Reads a BMXNet v1 symbol json + .params pair into a :class:`LegacyModel` (no ``net``).

    Parameters
    ----------
    data_shape : tuple, optional
        Input shape (batch first) to check the whole graph with; worked out from the first
        layer when omitted. Every parameter, decoded packed weights included, must fit the
        graph for it: a packed weight whose word count implies another input channel count
        than the layer receives is refused.

    Raises
    ------
    LegacyFormatError (a ConversionError)
        Unreadable file, wrong word count, a layer type or attribute that cannot be mapped,
        weights that do not fit the graph, or no input shape (pass ``data_shape``); the message
        names the layer.
    """
    if not os.path.isfile(symbol_path):
        raise LegacyFormatError("symbol file %s not found (a BMXNet model is PREFIX-symbol.json "
                                "+ PREFIX-EPOCH.params)" % symbol_path)
    try:
        with open(symbol_path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise LegacyFormatError("%s is not utf-8 text; pass the BMXNet PREFIX-symbol.json"
                                % symbol_path)
    except OSError as err:
        raise LegacyFormatError("cannot read %s: %s" % (symbol_path, err.strerror or err))
    graph = Graph(parse_json(text, symbol_path, LegacyFormatError), symbol_path,
                  LegacyFormatError)
    if not is_bmxnet_v1(graph.data):
        raise LegacyFormatError("%s is not a BMXNet v1 model (no Q-layer, or written by MXNet "
                                ">= 1.0): load it after `import bmxnet` directly, or convert it "
                                "without --from-bmxnet" % symbol_path)
    loaded = read_params_file(params_path)
    args, aux = {}, {}
    for key, value in loaded.items():
        (aux if key.startswith("aux:") else args)[key.split(":", 1)[-1]] = value

    nodes, consumers = graph.nodes, graph.consumers

    model = LegacyModel()
    model.source = params_path
    built, built_float, built_inf = {}, {}, {}
    packed_args, float_args, aux_params = {}, {}, {}
    data_names = []

    def entry_of(table, entry):
        s, source = table[entry[0]], nodes[entry[0]]["name"]
        if s is None:
            raise LegacyFormatError("%s uses the stored parameter '%s' as a data input or an "
                                    "output, not as a layer's parameter; the file is damaged"
                                    % (symbol_path, source))
        count = len(s.list_outputs())
        if entry[1] >= count:
            raise LegacyFormatError("%s uses output %d of node '%s', which has %d output(s); the "
                                    "file is damaged" % (symbol_path, entry[1], source, count))
        return s if count == 1 else s[entry[1]]

    for i, node in enumerate(nodes):
        name, op = str(node["name"]), str(node["op"])
        attrs = node_attrs(node)
        inputs = node.get("inputs", [])
        if op == "null":
            if name in args or name in aux:
                built[i] = built_float[i] = built_inf[i] = None  # made by the consumer
            else:
                var = mx.sym.var(name)
                built[i] = built_float[i] = built_inf[i] = var
                is_label = any(nodes[c]["op"] in LOSS_OPS and pos == 1
                               for c, pos in consumers.get(i, []))
                if not is_label:
                    data_names.append(name)
            continue
        if not inputs:
            raise LegacyFormatError("layer '%s' (%s) in %s has no inputs; the file is damaged"
                                    % (name, op, symbol_path))
        if op in ("QConvolution", "QFullyConnected"):
            try:
                outs = _map_q_layer(QLayer(graph, i), node, attrs, nodes, args, model,
                                    packed_args, float_args, [built, built_float, built_inf],
                                    entry_of)
            except mx.base.MXNetError as err:  # the operator refuses the layer's attributes
                raise LegacyFormatError("layer '%s' (%s) cannot be rebuilt: %s"
                                        % (name, op, error_line(err))) from None
            built[i], built_float[i], built_inf[i] = outs
            continue
        # Parameter variables of standard layers: plain float variables.
        for entry in inputs:
            src = nodes[entry[0]]
            if src["op"] == "null" and built[entry[0]] is None:
                var = mx.sym.var(src["name"])
                built[entry[0]] = built_float[entry[0]] = built_inf[entry[0]] = var
                if src["name"] in aux:
                    aux_params[src["name"]] = aux[src["name"]]
                elif src["name"] in args:
                    packed_args[src["name"]] = float_args[src["name"]] = args[src["name"]]
        if op == "QActivation":
            _attr_check(name, op, attrs, _Q_ACT_ATTRS)
            _one_bit(name, op, attrs)
            try:
                backward_only = flag(attrs.get("backward_only"))
            except ValueError as err:
                raise LegacyFormatError("layer '%s' (QActivation): %s" % (name, err))
            make = (lambda table: mx.sym.QActivation(entry_of(table, inputs[0]), act_bit=1,
                                                     backward_only=backward_only, name=name))
        elif op in STANDARD_OPS:
            target = STANDARD_OPS[op]
            kwargs = {k: v for k, v in attrs.items() if not k.startswith("__")}
            fn = getattr(mx.sym, target)

            def make(table, fn=fn, kwargs=kwargs, node_inputs=inputs):
                return fn(*[entry_of(table, e) for e in node_inputs], name=name, **kwargs)
        else:
            raise LegacyFormatError(
                "layer '%s' has type '%s', which bmxnet.legacy cannot map; supported layer types: "
                "QConvolution, QFullyConnected, QActivation, %s"
                % (name, op, ", ".join(sorted(STANDARD_OPS))))
        try:
            built[i] = make(built)
            built_float[i] = make(built_float)
            if op in LOSS_OPS:
                built_inf[i] = loss_forward(op, attrs, entry_of(built_inf, inputs[0]), name)
            else:
                built_inf[i] = make(built_inf)
        except Exception as err:  # noqa: BLE001  MXNet's generated functions raise MXNetError,
            # TypeError, ValueError, AttributeError or NotImplementedError (a surplus input taken
            # as a parameter) on damaged layers: all mean the same to the user
            raise LegacyFormatError("layer '%s' (%s) cannot be rebuilt with these attributes %s: "
                                    "%s" % (name, op, attrs, error_line(err)))

    heads = graph.data["heads"]

    def group(table):
        outs = [entry_of(table, h) for h in heads]
        return outs[0] if len(outs) == 1 else mx.sym.Group(outs)

    model.symbol, model.float_symbol, model.inference_symbol = (
        group(built), group(built_float), group(built_inf))
    model.arg_params, model.float_arg_params, model.aux_params = packed_args, float_args, aux_params
    model.data_names = data_names
    unused = sorted(set(args) - set(packed_args) - set(float_args)) + \
        sorted(set(aux) - set(aux_params))
    if unused:
        raise LegacyFormatError("%s holds parameter(s) %s that no layer of %s uses; the two files "
                                "do not belong together" % (params_path, ", ".join(unused),
                                                            symbol_path))
    _check_shapes(model, data_shape)
    return model


def _map_q_layer(layer, node, attrs, nodes, args, model, packed_args, float_args, tables,
                 entry_of):
    name, op, conv = layer.name, layer.op, layer.conv
    _attr_check(name, op, attrs, _Q_CONV_ATTRS if conv else _Q_FC_ATTRS)
    _one_bit(name, op, attrs)
    inputs = node.get("inputs", [])
    packed, no_bias_attr, num_out = layer.packed, attrs.get("no_bias"), layer.num_out
    kernel, flatten = layer.kernel, layer.flatten
    has_bias = len(inputs) >= 3
    if no_bias_attr is not None and layer.no_bias == has_bias:
        raise LegacyFormatError("layer '%s' (%s) says no_bias=%s but has %d inputs"
                                % (name, op, no_bias_attr, len(inputs)))
    if len(inputs) not in (2, 3):
        raise LegacyFormatError("layer '%s' (%s) has %d inputs; expected data, weight and an "
                                "optional bias" % (name, op, len(inputs)))
    wnode = nodes[inputs[1][0]]
    wname = str(wnode["name"])
    if wnode["op"] != "null" or wname not in args:
        raise LegacyFormatError("the params file lacks the weight '%s' of layer '%s' (%s)"
                                % (wname, name, op))
    stored = args[wname].asnumpy()
    info = {"name": name, "op": op, "packed": packed, "weight": wname, "word_bits": None}
    if packed:
        info["word_bits"] = word_bits_of(stored, name)
        if conv:
            signs = decode_conv_weights(stored, num_out, kernel, name)
            words = packing.pack_conv_weights(signs)
        else:
            signs = decode_dense_weights(stored, num_out, name)
            words = packing.pack_dense_weights(signs)
        packed_args[wname] = mx.nd.array(words, dtype=np.int64)
        float_args[wname] = mx.nd.array(signs, dtype=np.float32)
    else:
        want_ndim = 4 if conv else 2
        if stored.ndim != want_ndim or stored.shape[0] != num_out or \
                (conv and tuple(stored.shape[2:]) != kernel):
            raise LegacyFormatError("layer '%s' (%s): float weight '%s' has shape %s, which does "
                                    "not fit num_%s=%d%s" % (
                                        name, op, wname, stored.shape,
                                        "filter" if conv else "hidden", num_out,
                                        ", kernel=%s" % (kernel,) if conv else ""))
        if np.dtype(stored.dtype) != np.float32:
            raise LegacyFormatError("layer '%s' (%s): float weight '%s' is %s; expected float32"
                                    % (name, op, wname, stored.dtype))
        signs = stored
        packed_args[wname] = float_args[wname] = args[wname]
    info["weight_shape"] = tuple(signs.shape)
    k = int(np.prod(signs.shape[1:]))
    info["K"] = k
    model.layers.append(info)
    bias = None
    if has_bias:
        bnode = nodes[inputs[2][0]]
        bname = str(bnode["name"])
        if bnode["op"] != "null" or bname not in args:
            raise LegacyFormatError("the params file lacks the bias '%s' of layer '%s' (%s)"
                                    % (bname, name, op))
        if tuple(args[bname].shape) != (num_out,):
            raise LegacyFormatError("layer '%s' (%s): bias '%s' has shape %s, expected (%d,)"
                                    % (name, op, bname, tuple(args[bname].shape), num_out))
        packed_args[bname] = float_args[bname] = args[bname]
        bias = bname

    outs = []
    for n_table, table in enumerate(tables):
        use_packed = packed and n_table != 1
        # Float weights: the input size is left to shape inference (0 = unknown), so that a
        # weight decoded to another channel count than the layer receives is a shape mismatch.
        wshape = tuple(words.shape) if use_packed else (num_out, 0) + tuple(signs.shape[2:])
        weight = mx.sym.var(wname, shape=wshape, dtype="int64" if use_packed else "float32")
        data = entry_of(table, inputs[0])
        common = dict(no_bias=True, act_bit=1, weight_bit=1, binarized_weights_only=use_packed,
                      name=name)
        if use_packed:  # the input size the words were made for (QLayer.input_size)
            key, size = layer.input_size(signs.shape)
            common[key] = size
        if conv:
            y = mx.sym.QConvolution(data, weight, num_filter=num_out, kernel=kernel,
                                    stride=layer.stride, pad=layer.pad, dilate=layer.dilate,
                                    num_group=layer.num_group, pad_value=1, **common)
        else:
            y = mx.sym.QFullyConnected(data, weight, num_hidden=num_out, flatten=flatten,
                                       **common)
        # BMXNet's output is the match count (K + dot) / 2.
        y = mx.sym._internal._plus_scalar(y, scalar=float(k), name=name + "_plus_k")
        y = mx.sym._internal._mul_scalar(y, scalar=0.5, name=name + "_count")
        if bias is not None:
            b = mx.sym.var(bias, shape=(num_out,), dtype="float32")
            b = mx.sym.reshape(b, shape=(1, -1, 1, 1) if conv else (1, -1),
                               name=name + "_bias_reshape")
            y = mx.sym.broadcast_add(y, b, name=name + "_plus_bias")
        outs.append(y)
    return outs


def _check_shapes(model, data_shape):
    """Checks every parameter shape (decoded packed weights included) against the graph for
    one input shape, given or worked out from the first layer (else: ask for data_shape)."""
    _, model.data_shape, _ = resolve_data_shape(
        model.float_symbol, model.float_arg_params, model.aux_params, data_shape,
        "%s (packed BMXNet weights are decoded to the input size their word count implies)"
        % model.source, LegacyFormatError)


def load(prefix, epoch, ctx=mx.cpu(), *, data_shape=None):
    """Loads BMXNet v1 files ``PREFIX-symbol.json`` + ``PREFIX-%04d.params`` (EPOCH).

    Parameters
    ----------
    prefix : str
        Path prefix, e.g. ``'models/binarized_mnist_64bit'``.
    epoch : int
    ctx : mx.Context
    data_shape : tuple, optional
        Input shape to check the graph with (guessed when omitted).

    Returns
    -------
    LegacyModel
        ``model.net`` is a ``gluon.SymbolBlock`` returning what BMXNet's forward pass returned
        (softmax probabilities for a SoftmaxOutput network); ``model.symbol`` /
        ``model.arg_params`` / ``model.aux_params`` are the network in this project's binarized
        format (loss layer included), ready for ``mx.model.save_checkpoint``.
    """
    params_path = "%s-%04d.params" % (prefix, int(epoch))
    model = read(prefix + "-symbol.json", params_path, data_shape=data_shape)
    model.net = make_block(model.inference_symbol, model.data_names, model.arg_params,
                           model.aux_params, ctx)
    return model
