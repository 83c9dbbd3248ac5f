"""Reading and writing MXNet checkpoints for the converter: symbol json, .params, atomic writes.

Every failure raises :class:`ConversionError` with one message that names the file (or layer)
and the fix; nothing here leaves a partly written file behind.
"""
import contextlib
import io
import json
import os
import tempfile

import mxnet as mx
import numpy as np

__all__ = ["ConversionError", "AlreadyBinarizedError", "node_attrs", "flag", "parse_int",
           "parse_tuple", "load_symbol_file", "load_symbol_json", "load_params_file",
           "split_params", "atomic_write", "guess_data_shape", "data_input_names",
           "LOSS_OPS", "DTYPE_IDS"]

# mshadow type ids, as written in a variable's __dtype__ attribute.
DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2,
             np.dtype(np.uint8): 3, np.dtype(np.int32): 4, np.dtype(np.int8): 5,
             np.dtype(np.int64): 6}

# Output layers whose second input is a label (not a parameter).
LOSS_OPS = ("SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput",
            "MAERegressionOutput", "SVMOutput")


class ConversionError(Exception):
    """A model or file cannot be converted; the message names the file or layer and the fix."""


class AlreadyBinarizedError(ConversionError):
    """The model's 1-bit layers hold packed weights already (``binarized_weights_only=True``)."""


def node_attrs(node):
    """Operator attributes of a json node, in any MXNet json generation.

    MXNet >= 1.0 writes ``"attrs"``; 0.9.x wrote ``"attr"``; 0.8 split them into ``"param"``
    (operator parameters) and ``"attr"`` (hidden ``__x__`` attributes).
    """
    attrs = {}
    for key in ("param", "attr", "attrs"):
        value = node.get(key)
        if isinstance(value, dict):
            attrs.update({str(k): str(v) for k, v in value.items()})
    return attrs


def flag(value, default=False):
    """MXNet's string booleans: 'True'/'true'/'1' and 'False'/'false'/'0'."""
    if value is None:
        return default
    text = str(value).strip()
    if text in ("True", "true", "1"):
        return True
    if text in ("False", "false", "0"):
        return False
    raise ValueError("expected True or False, got %r" % (value,))


def parse_int(value, default):
    if value is None:
        return default
    text = str(value).strip()
    if text.endswith("L"):  # "3L" in Python 2 era files
        text = text[:-1]
    return int(text)


def parse_tuple(value, n, default):
    """'(3, 3)' / '[3,3]' / '3' -> tuple of n ints; None -> (default,) * n."""
    if value is None:
        return (default,) * n
    text = str(value).strip().strip("()[]")
    items = [parse_int(t, None) for t in text.split(",") if t.strip()]
    if len(items) == 1:
        items = items * n
    if len(items) != n:
        raise ValueError("expected %d integers, got %r" % (n, value))
    return tuple(items)


def _check_graph(graph, source):
    """Raises ConversionError unless ``graph`` looks like an MXNet symbol json."""
    hint = ("%s is not an MXNet symbol file (expected a json object with 'nodes', 'arg_nodes' "
            "and 'heads', as written by Symbol.save or HybridBlock.export)" % source)
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) \
            or "heads" not in graph or "arg_nodes" not in graph or not graph["nodes"]:
        raise ConversionError(hint)
    for i, node in enumerate(graph["nodes"]):
        if not isinstance(node, dict) or "op" not in node or "name" not in node \
                or not isinstance(node.get("inputs", []), list):
            raise ConversionError("%s: node %d is malformed (%s)" % (hint, i, str(node)[:80]))
        for entry in node.get("inputs", []):
            if not isinstance(entry, list) or not entry or not isinstance(entry[0], int) \
                    or not 0 <= entry[0] < i:
                raise ConversionError("%s: node %d ('%s') has a bad input %r"
                                      % (hint, i, node["name"], entry))


def load_symbol_json(text, source):
    """(symbol, graph dict) from json text; ``source`` names the file in messages."""
    try:
        graph = json.loads(text)
    except ValueError as err:
        raise ConversionError("%s is not valid json (%s); pass the PREFIX-symbol.json written "
                              "by HybridBlock.export or Module.save_checkpoint" % (source, err))
    _check_graph(graph, source)
    try:
        sym = mx.sym.load_json(text)
    except mx.base.MXNetError as err:
        msg = str(err).strip().splitlines()
        detail = next((line for line in reversed(msg) if line.strip()), "")
        if "is not registered" in str(err):
            detail += " (run `import bmxnet` before loading, and check the operator's name)"
        raise ConversionError("MXNet cannot load the symbol in %s: %s" % (source, detail))
    return sym, graph


def load_symbol_file(path):
    """(symbol, graph dict) of a symbol json file."""
    if not os.path.isfile(path):
        raise ConversionError("symbol file %s not found; the converter reads PREFIX-symbol.json "
                              "next to PREFIX-EPOCH.params (export both with "
                              "HybridBlock.export, or name the symbol file with --symbol)" % path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConversionError("%s is not an MXNet symbol file (not utf-8 text)" % path)
    except OSError as err:
        raise ConversionError("cannot read %s: %s" % (path, err.strerror or err))
    return load_symbol_json(text, path)


def load_params_file(path):
    """The raw {name: NDArray} dict of a .params file (names keep their arg:/aux: prefix)."""
    if not os.path.isfile(path):
        raise ConversionError("params file %s not found" % path)
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:
        detail = [line for line in str(err).splitlines() if "Check failed" in line]
        raise ConversionError(
            "cannot read %s: the file is truncated or corrupted, or not an MXNet .params file "
            "(%s); re-export the checkpoint" % (path, detail[-1].strip() if detail else "MXNet "
                                                 "could not parse it"))
    if not isinstance(loaded, dict):
        raise ConversionError("%s holds an unnamed list of arrays, not named parameters; save "
                              "it with HybridBlock.export or Module.save_checkpoint" % path)
    return loaded


def split_params(loaded, sym, source):
    """(arg_params, aux_params) from a loaded .params dict.

    Names may carry MXNet's 'arg:'/'aux:' prefixes (export, save_checkpoint) or none
    (save_parameters of a SymbolBlock); unprefixed names are sorted by the symbol's auxiliary
    states.
    """
    aux_names = set(sym.list_auxiliary_states())
    arg_params, aux_params = {}, {}
    for key, value in loaded.items():
        if key.startswith("arg:"):
            arg_params[key[4:]] = value
        elif key.startswith("aux:"):
            aux_params[key[4:]] = value
        elif key in aux_names:
            aux_params[key] = value
        else:
            arg_params[key] = value
    if not arg_params and not aux_params:
        raise ConversionError("%s holds no parameters" % source)
    return arg_params, aux_params


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(outputs):
    """Writes several files so that each appears complete or not at all.

    ``outputs`` is a list of ``(final_path, writer)``; ``writer(tmp_path)`` writes the content.
    All contents go to temporary names in the target folders first; only when every write
    succeeded are they renamed (``os.replace``) to their final names. On any error the
    temporary files are removed and ConversionError names the folder.
    """
    temps = []
    try:
        for path, writer in outputs:
            folder = os.path.dirname(os.path.abspath(path))
            try:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                           suffix=".tmp")
            except OSError as err:
                raise ConversionError("cannot write to %s: %s; choose another folder with "
                                      "--output-dir (output_dir=)" % (folder, err.strerror or err))
            os.close(fd)
            temps.append((tmp, path))
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual file mode
            try:
                writer(tmp)
            except (OSError, mx.base.MXNetError) as err:
                raise ConversionError("writing %s failed: %s" % (path, err))
        for tmp, path in temps:
            os.replace(tmp, path)
        temps = []
    finally:
        for tmp, _ in temps:
            try:
                os.remove(tmp)
            except OSError:
                pass


def data_input_names(graph, arg_names):
    """(data inputs, label inputs): free variables of the graph that are not parameters."""
    nodes = graph["nodes"]
    labels = set()
    for node in nodes:
        if node["op"] in LOSS_OPS and len(node["inputs"]) > 1:
            labels.add(nodes[node["inputs"][1][0]]["name"])
    data = [n for n in arg_names if n not in labels]
    return data, [n for n in arg_names if n in labels]


_SPATIAL_CANDIDATES = (28, 32, 224, 64, 96, 112, 128, 160, 192, 256, 299, 16, 8)


def guess_data_shape(sym, graph, arg_params, aux_params, batch=1):
    """Guesses the shape of the single data input from the parameters, or returns None.

    The first layer's weight fixes the channel count (or the input width of a dense first
    layer); the spatial size is the first of 28, 32, 224, ... for which MXNet's shape inference
    reproduces every parameter shape of the file.
    """
    free = [a for a in sym.list_arguments() if a not in arg_params]
    data, _ = data_input_names(graph, free)
    if len(data) != 1:
        return None
    name = data[0]
    nodes = graph["nodes"]
    index = next(i for i, n in enumerate(nodes) if n["op"] == "null" and n["name"] == name)
    first = next((n for n in nodes if n["inputs"] and n["inputs"][0][0] == index), None)
    if first is None or len(first["inputs"]) < 2:
        return None
    weight = nodes[first["inputs"][1][0]]["name"]
    if weight not in arg_params:
        return None
    wshape = arg_params[weight].shape
    attrs = node_attrs(first)
    if first["op"] in ("Convolution", "QConvolution") and len(wshape) == 4:
        channels = wshape[1] * parse_int(attrs.get("num_group"), 1)
        candidates = [(batch, channels, s, s) for s in _SPATIAL_CANDIDATES]
    elif first["op"] in ("FullyConnected", "QFullyConnected") and len(wshape) == 2:
        candidates = [(batch, wshape[1])]
    else:
        return None
    known = {k: v.shape for k, v in arg_params.items()}
    known_aux = {k: v.shape for k, v in aux_params.items()}
    for shape in candidates:
        if shape_consistent(sym, {name: shape}, known, known_aux):
            return shape
    return None


def shape_consistent(sym, data_shapes, arg_shapes, aux_shapes):
    """True when shape inference with these inputs reproduces every given parameter shape."""
    args = sym.list_arguments()
    given = dict(data_shapes)
    given.update({k: v for k, v in arg_shapes.items() if k in args})
    given.update({k: v for k, v in aux_shapes.items() if k in sym.list_auxiliary_states()})
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # MXNet prints the arguments on failure
            inferred_args, _, inferred_aux = sym.infer_shape(**given)
    except mx.base.MXNetError:
        return False
    if inferred_args is None:
        return False
    for name, shape in zip(args, inferred_args):
        if name in arg_shapes and tuple(shape) != tuple(arg_shapes[name]):
            return False
    for name, shape in zip(sym.list_auxiliary_states(), inferred_aux):
        if name in aux_shapes and tuple(shape) != tuple(aux_shapes[name]):
            return False
    return True
