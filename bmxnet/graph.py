"""MXNet model files in Python: the symbol json graph and the ``.params`` file, read safely.

The model converter (:mod:`bmxnet.converter`) and the BMXNet v1 loader (:mod:`bmxnet.legacy`)
read, check and write MXNet models through this module, so each check is written once:

* :func:`read_params_file` / :func:`params_index` — a bounds-checked reader of MXNet's NDArray
  file format; a file is checked completely (magic numbers, counts, ndim, dims, dtype, sizes
  against the file length, names) *before* MXNet parses it, because MXNet's own reader trusts
  the header (an ndim of ``0xFFFFFFFF`` crashes the process);
* :func:`validate_graph` — the json graph: node and entry indices, output indices, heads,
  arg_nodes, attribute types, unique variable names, topological order (hence no cycles);
  all iterative, so deep graphs need no recursion;
* :class:`Graph` — a validated graph with its consumer map, and :class:`QLayer`, the parsed
  attributes of a QConvolution / QFullyConnected node;
* :func:`atomic_write` — several files that appear complete or not at all;
* shape and type checks for one data shape (:func:`shape_mismatches`, :func:`guess_data_shape`,
  :func:`check_runs`), and :func:`inference_symbol` (loss heads replaced by their forward
  computation, so files load with ``SymbolBlock.imports(json, ['data'], params)``).

Every failure raises :class:`ConversionError` (or the ``error`` class a caller passes) with one
message naming the file or layer and the fix.
"""
import collections
import contextlib
import ctypes
import io
import json
import os
import re
import struct
import tempfile

import mxnet as mx
import numpy as np

__all__ = ["ConversionError", "AlreadyBinarizedError", "DTYPE_IDS", "LOSS_OPS", "Q_OPS",
           "V1_HINT", "node_attrs", "flag", "parse_int", "parse_tuple", "is_bmxnet_v1",
           "params_index", "read_params_file", "split_params",
           "validate_graph", "Graph", "QLayer", "parse_json", "load_symbol_json",
           "load_symbol_file", "atomic_write", "error_line", "data_input_names", "guess_data_shape",
           "shape_mismatches", "type_mismatches", "check_runs",
           "loss_forward", "inference_symbol", "symbol_from_graph", "ArrayInfo",
           "resolve_data_shape"]

# mshadow type ids, as written in a variable's __dtype__ attribute and in .params files.
DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2,
             np.dtype(np.uint8): 3, np.dtype(np.int32): 4, np.dtype(np.int8): 5,
             np.dtype(np.int64): 6, np.dtype(np.bool_): 7}
_DTYPES = {v: k for k, v in DTYPE_IDS.items()}

# Output layers whose second input is a label (not a parameter).
LOSS_OPS = ("SoftmaxOutput", "LinearRegressionOutput", "LogisticRegressionOutput",
            "MAERegressionOutput", "SVMOutput")
Q_OPS = ("QConvolution", "QFullyConnected")

V1_HINT = "BMXNet v1 file: use --from-bmxnet or bmxnet.legacy.load"


class ConversionError(Exception):
    """A model or file cannot be converted; the message names the file or layer and the fix."""


class AlreadyBinarizedError(ConversionError):
    """The model's 1-bit layers hold packed weights already (``binarized_weights_only=True``)."""


# ------------------------------------------------------------------------------------------
# Attribute strings
# ------------------------------------------------------------------------------------------
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


def is_bmxnet_v1(graph):
    """True when ``graph`` (a parsed symbol json dict) was written by BMXNet v1.

    BMXNet v1 was a fork of MXNet 0.9-0.11: its files use QConvolution / QFullyConnected /
    QActivation and were written by an MXNet before 1.0 (``mxnet_version`` < 10000, or node
    attributes under the pre-1.0 keys ``attr`` / ``param``). This project's files come from
    MXNet 1.9 and load as they are.
    """
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        return False
    nodes = [n for n in graph["nodes"] if isinstance(n, dict)]
    if not any(n.get("op") in ("QConvolution", "QFullyConnected", "QActivation") for n in nodes):
        return False
    version = graph.get("attrs", {}).get("mxnet_version") \
        if isinstance(graph.get("attrs"), dict) else None
    if isinstance(version, list) and len(version) == 2 and isinstance(version[1], int):
        return version[1] < 10000
    return any("attr" in n or "param" in n for n in nodes)


# ------------------------------------------------------------------------------------------
# .params files: a bounds-checked reader of MXNet's NDArray list format
# ------------------------------------------------------------------------------------------
# Layout (MXNet 1.9.1, src/ndarray/ndarray.cc, NDArray::Save / Load; little endian):
#   uint64 0x112 (list magic), uint64 reserved
#   uint64 n_arrays, then per array one of
#     V2/V3: uint32 magic 0xF993fac9/0xF993faca, int32 storage type, shape, context, dtype, data
#     V1:    uint32 magic 0xF993fac8,                                shape, context, dtype, data
#     older: uint32 ndim, uint32 dims[ndim],                                context, dtype, data
#   where shape = int32 ndim, int64 dims[ndim]; context = int32 device type, int32 device id;
#   dtype = int32 mshadow type flag; data = prod(dims) * itemsize bytes
#   uint64 n_names (0 or n_arrays), then per name uint64 length + bytes
_LIST_MAGIC = 0x112
_V1_MAGIC, _V2_MAGIC, _V3_MAGIC = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_MAX_NDIM = 32
_DEVICE_TYPES = (1, 2, 3, 5)  # cpu, gpu, cpu_pinned, cpu_shared
_MIN_ARRAY_BYTES = 20  # the smallest array: pre-1.0 ndim 1, one dim, context, dtype, no data


class ArrayInfo:
    """One array of a .params file: name, shape, dtype, and where its data lies in the file."""

    def __init__(self, name, shape, dtype, offset):
        self.name, self.shape, self.dtype, self.offset = name, shape, dtype, offset

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=object)) * self.dtype.itemsize


class _Reader:
    def __init__(self, f, size, source):
        self.f, self.size, self.source, self.pos = f, size, source, 0

    def fail(self, what):
        raise ConversionError(
            "cannot read %s: %s (at byte %d of %d); the file is truncated or corrupted, or not "
            "an MXNet .params file — re-export the checkpoint"
            % (self.source, what, self.pos, self.size))

    def take(self, fmt, what):
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            self.fail("it ends inside %s" % what)
        data = self.f.read(n)
        if len(data) != n:
            self.fail("it ends inside %s" % what)
        self.pos += n
        return struct.unpack(fmt, data)

    def skip(self, n, what):
        if n > self.size - self.pos:
            self.fail("%s needs %d bytes, but only %d are left" % (what, n, self.size - self.pos))
        self.f.seek(n, os.SEEK_CUR)
        self.pos += n


def _read_shape(r, magic, k):
    what = "the shape of array %d" % k
    if magic in (_V1_MAGIC, _V2_MAGIC, _V3_MAGIC):
        (ndim,) = r.take("<i", what)
        dim_fmt = "q"
    else:  # pre-1.0 files: the first word is the ndim itself, dims are uint32
        ndim, dim_fmt = magic, "I"
    if not 1 <= ndim <= _MAX_NDIM:
        r.fail("array %d has ndim %d (expected 1 to %d)" % (k, ndim, _MAX_NDIM))
    shape = r.take("<%d%s" % (ndim, dim_fmt), what)
    if any(d < 0 for d in shape):
        r.fail("array %d has a negative dimension in its shape %s" % (k, shape))
    return tuple(int(d) for d in shape)


def _read_array(r, k):
    (magic,) = r.take("<I", "the header of array %d" % k)
    if magic == _V3_MAGIC:
        r.fail("array %d was saved with numpy shape semantics (mx.np / npx.set_np); save the "
               "parameters with the mx.nd API" % k)
    if magic == _V2_MAGIC:
        (stype,) = r.take("<i", "the header of array %d" % k)
        if stype in (1, 2):
            r.fail("array %d is sparse (%s); the converter reads dense parameters only — save "
                   "them with .tostype('default')" % (k, "row_sparse" if stype == 1 else "csr"))
        if stype != 0:
            r.fail("array %d has the unknown storage type %d" % (k, stype))
    shape = _read_shape(r, magic, k)
    dev_type, _ = r.take("<ii", "the context of array %d" % k)
    if dev_type not in _DEVICE_TYPES:
        r.fail("array %d has the unknown device type %d" % (k, dev_type))
    (type_flag,) = r.take("<i", "the dtype of array %d" % k)
    if type_flag not in _DTYPES:
        r.fail("array %d has the unknown dtype id %d" % (k, type_flag))
    info = ArrayInfo(None, shape, _DTYPES[type_flag], r.pos)
    r.skip(info.nbytes, "the data of array %d (shape %s, %s)" % (k, shape, info.dtype.name))
    return info


def _index(f, size, source):
    r = _Reader(f, size, source)
    magic, _ = r.take("<QQ", "the file header")
    if magic != _LIST_MAGIC:
        r.fail("it does not start with MXNet's NDArray list magic number 0x112")
    (count,) = r.take("<Q", "the array count")
    if count * _MIN_ARRAY_BYTES > r.size - r.pos:
        r.fail("it claims %d arrays, but only %d bytes follow (an array header alone takes %d)"
               % (count, r.size - r.pos, _MIN_ARRAY_BYTES))
    arrays = [_read_array(r, k) for k in range(count)]
    (n_names,) = r.take("<Q", "the name count")
    if n_names not in (0, count):
        r.fail("it holds %d arrays but %d names" % (count, n_names))
    seen = set()
    for k in range(n_names):
        (length,) = r.take("<Q", "the length of name %d" % k)
        if length > r.size - r.pos:
            r.fail("name %d is %d bytes long, but only %d are left" % (k, length, r.size - r.pos))
        raw = f.read(length)
        r.pos += length
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            r.fail("name %d is not utf-8 text" % k)
        if name in seen:
            r.fail("the name '%s' appears twice" % name)
        seen.add(name)
        arrays[k].name = name
    if r.pos != r.size:
        r.fail("%d unexpected bytes follow the last name" % (r.size - r.pos))
    return arrays


def params_index(source):
    """The arrays of a .params file (path or bytes), checked, without reading their data.

    Returns
    -------
    list of ArrayInfo
        ``name`` (None in a file of unnamed arrays), ``shape``, ``dtype``, ``offset`` and
        ``nbytes`` of the data in the file.

    Raises
    ------
    ConversionError
        Anything MXNet's reader would trip over: wrong magic numbers, counts, ndim outside
        1..32, negative dims, unknown dtype / device / storage type, sizes beyond the end of the
        file, bad or duplicate names, trailing bytes.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _index(io.BytesIO(data), len(data), "the .params data")
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            return _index(f, os.fstat(f.fileno()).st_size, path)
    except OSError as err:
        raise ConversionError("cannot read %s: %s" % (path, err.strerror or err))


def read_params_file(path):
    """The raw {name: NDArray} dict of a .params file (names keep their arg:/aux: prefix),
    checked with :func:`params_index` before MXNet reads it."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConversionError("params file %s not found" % path)
    arrays = params_index(path)
    if not arrays:
        raise ConversionError("%s holds no parameters; pass the PREFIX-EPOCH.params written by "
                              "HybridBlock.export or Module.save_checkpoint" % path)
    if arrays[0].name is None:
        raise ConversionError("%s holds an unnamed list of arrays, not named parameters; save "
                              "it with HybridBlock.export or Module.save_checkpoint" % path)
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:
        raise ConversionError("cannot read %s: MXNet could not parse it (%s); re-export the "
                              "checkpoint" % (path, error_line(err)))
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


# ------------------------------------------------------------------------------------------
# The json graph
# ------------------------------------------------------------------------------------------
def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _entry_ok(entry, limit):
    return isinstance(entry, list) and len(entry) in (2, 3) and all(_is_int(v) for v in entry) \
        and 0 <= entry[0] < limit and entry[1] >= 0 and (len(entry) == 2 or entry[2] >= 0)


_UNSAFE_KEY = re.compile(r'["\\\x00-\x1f]')


def validate_graph(graph, source, error=ConversionError):
    """Raises ``error`` unless ``graph`` is a well-formed MXNet symbol json dict.

    Checks what MXNet's json loader trusts: every node is an object with string ``op`` and
    ``name``, string attributes, and inputs ``[node, output(, version)]`` that name an earlier
    node (the file is in topological order, so there is no cycle); ``heads`` and ``arg_nodes``
    are in range; variables have no inputs and unique names; no control-flow subgraphs.
    Output indices beyond 0 are checked against the operator once MXNet has parsed the nodes
    (:func:`load_symbol_json`).
    """
    hint = ("%s is not an MXNet symbol file (expected a json object with 'nodes', 'arg_nodes' "
            "and 'heads', as written by Symbol.save or HybridBlock.export)" % source)
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) \
            or not graph["nodes"] or not isinstance(graph.get("heads"), list) \
            or not isinstance(graph.get("arg_nodes"), list):
        raise error(hint)
    nodes = graph["nodes"]
    names = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("op"), str) \
                or not isinstance(node.get("name"), str) \
                or not isinstance(node.get("inputs", []), list):
            raise error("%s: node %d is malformed (%s)" % (hint, i, str(node)[:80]))
        label = "node %d ('%s')" % (i, node["name"])
        for key in ("param", "attr", "attrs"):
            value = node.get(key)
            if value is not None and (not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                raise error("%s: %s has %r attributes that are not strings" % (hint, label, key))
            bad = [k for k in value or {} if _UNSAFE_KEY.search(k)]
            if bad:
                # MXNet writes attribute names into its json without escaping them
                raise error("%s: %s has an attribute name with a quote, backslash or control "
                            "character (%r); rename it" % (hint, label, bad[0]))
        if node.get("subgraphs"):
            raise error("%s has control-flow subgraphs (%s); bmxnet reads plain graphs only"
                        % (source, label))
        for key in ("inputs", "control_deps"):
            for entry in node.get(key) or []:
                target = entry if key == "control_deps" else (entry[0] if isinstance(
                    entry, list) and entry else None)
                ok = _is_int(target) and 0 <= target < i and \
                    (key == "control_deps" or _entry_ok(entry, i))
                if not ok:
                    raise error("%s: %s has a bad %s entry %r (each must name an earlier node)"
                                % (hint, label, key, entry))
        if node["op"] == "null":
            if node.get("inputs"):
                raise error("%s: variable %s has inputs" % (hint, label))
            if node["name"] in names:
                raise error("%s has two variables named '%s' (nodes %d and %d); every weight "
                            "and input needs its own name" % (source, node["name"],
                                                             names[node["name"]], i))
            names[node["name"]] = i
        for entry in node.get("inputs", []):
            if nodes[entry[0]]["op"] == "null" and entry[1] != 0:
                raise error("%s: %s reads output %d of variable '%s', which has one output"
                            % (hint, label, entry[1], nodes[entry[0]]["name"]))
    if not graph["heads"]:
        raise error("%s: it has no outputs ('heads' is empty)" % hint)
    for head in graph["heads"]:
        if not _entry_ok(head, len(nodes)) or (nodes[head[0]]["op"] == "null" and head[1]):
            raise error("%s: 'heads' names %r, which is not an output of one of its %d nodes"
                        % (hint, head, len(nodes)))
    for k in graph["arg_nodes"]:
        if not _is_int(k) or not 0 <= k < len(nodes) or nodes[k]["op"] != "null":
            raise error("%s: 'arg_nodes' lists %r, which is not a variable node" % (hint, k))
    attrs = graph.get("attrs")
    if attrs is not None:
        version = attrs.get("mxnet_version") if isinstance(attrs, dict) else None
        if not isinstance(attrs, dict) or (version is not None and not (
                isinstance(version, list) and len(version) == 2 and version[0] == "int"
                and _is_int(version[1]))):
            raise error("%s: its 'attrs' are malformed (expected {\"mxnet_version\": [\"int\", "
                        "N]})" % hint)


def _referenced_outputs(graph):
    """{node index: largest output index referenced} for op nodes referenced beyond output 0."""
    nodes, top = graph["nodes"], {}
    entries = [e for n in nodes for e in n.get("inputs", [])] + list(graph["heads"])
    for e in entries:
        if e[1] > 0 and nodes[e[0]]["op"] != "null":
            top[e[0]] = max(top.get(e[0], 0), e[1])
    return top


_SIGNATURES = collections.OrderedDict()  # (op, attributes, inputs) -> (inputs, outputs), LRU
_SIGNATURES_KEPT = 1024


def _signature(node, error, source):
    """(inputs, visible outputs) of ``node``'s operator with its attributes, from MXNet itself.

    The operator is composed with as many fresh variables as the node has inputs: MXNet refuses
    too many and adds variables for missing ones, which are then counted. (MXNet's json loader
    trusts the input count: a BatchNorm node without inputs crashes ``list_auxiliary_states``.)
    Answers are kept for the last distinct signatures (a network repeats a few layer kinds).
    """
    attrs = {k: v for k, v in node_attrs(node).items() if not k.startswith("__")}
    n = len(node.get("inputs", []))
    key = (node["op"], tuple(sorted(attrs.items())), n)
    cache = _SIGNATURES
    if key in cache:
        cache.move_to_end(key)
    else:
        label = "node '%s' (%s)" % (node["name"], node["op"])
        keys = sorted(attrs)
        try:
            op = ctypes.c_void_p()
            mx.base.check_call(mx.base._LIB.NNGetOpHandle(mx.base.c_str(node["op"]),
                                                          ctypes.byref(op)))
            handle = mx.base.SymbolHandle()
            mx.base.check_call(mx.base._LIB.MXSymbolCreateAtomicSymbol(
                op, mx.base.mx_uint(len(keys)), mx.base.c_str_array(keys),
                mx.base.c_str_array([attrs[k] for k in keys]), ctypes.byref(handle)))
            sym = mx.sym.Symbol(handle)
            sym._compose(*[mx.sym.var("__bmxnet_in%d" % k) for k in range(n)],
                         name="__bmxnet_probe")
            takes = len(sym.list_arguments()) + len(sym.list_auxiliary_states())
            cache[key] = (takes, len(sym.list_outputs()))
            if len(cache) > _SIGNATURES_KEPT:
                cache.popitem(last=False)
        except mx.base.MXNetError as err:
            detail = error_line(err)
            if "is not registered" in str(err):
                detail += " (run `import bmxnet` before loading, and check the operator's name)"
            raise error("MXNet cannot load the symbol in %s: %s: %s" % (source, label, detail))
    return cache[key]


def check_operators(graph, source, error=ConversionError):
    """Raises ``error`` unless every operator node has the inputs its operator takes and every
    output that is used exists (MXNet's json loader trusts both)."""
    nodes = graph["nodes"]
    top = _referenced_outputs(graph)
    for index, node in enumerate(nodes):
        if node["op"] == "null":
            continue
        takes, outputs = _signature(node, error, source)
        have = len(node.get("inputs", []))
        if have != takes:
            raise error("%s is not a valid MXNet symbol file: node %d ('%s', %s) has %d input(s), "
                        "but the operator with these attributes takes %d"
                        % (source, index, node["name"], node["op"], have, takes))
        if top.get(index, 0) >= outputs:
            raise error("%s is not a valid MXNet symbol file: output %d of node %d ('%s', %s) "
                        "is used, but it has %d output(s)" % (source, top[index], index,
                                                              node["name"], node["op"], outputs))


def error_line(err):
    """What an error says, in one line: the last line of an MXNetError (its first lines may be
    a C++ traceback), without the ``[0] /path/source.cc[38]: `` prefix of errors raised inside an
    operator library; the first line of any other error."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    if isinstance(err, mx.base.MXNetError):
        return re.sub(r"^\[\d+\] \S+\[\d+\]: ", "", lines[-1])
    return lines[0]


def parse_json(text, source, error=ConversionError):
    """json.loads with one clear error (also for nesting too deep for Python's parser)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as err:
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        raise error("%s is not valid json (%s); pass the PREFIX-symbol.json written by "
                    "HybridBlock.export or Module.save_checkpoint" % (source, reason))


def symbol_from_graph(graph, source="the graph", error=ConversionError):
    """``mx.sym.load_json`` of a validated graph dict, with the shape hints of
    :func:`bmxnet.shape_inference.add_shape_hints` (so that no Q-operator input reaches MXNet's
    shape inference with an unknown ndim)."""
    from .shape_inference import add_shape_hints  # here: shape_inference imports this module
    graph = dict(graph)
    graph.pop("node_row_ptr", None)  # recomputed by MXNet
    try:
        return mx.sym.load_json(json.dumps(add_shape_hints(graph)))
    except mx.base.MXNetError as err:
        detail = error_line(err)
        if "is not registered" in str(err):
            detail += " (run `import bmxnet` before loading, and check the operator's name)"
        raise error("MXNet cannot load the symbol in %s: %s" % (source, detail))


def load_symbol_json(text, source, error=ConversionError):
    """(symbol, graph dict) from json text; ``source`` names the file in messages.

    The graph is validated (:func:`validate_graph`) before MXNet sees it; BMXNet v1 files are
    refused with :data:`V1_HINT`; the symbol carries shape hints (:func:`symbol_from_graph`).
    """
    graph = parse_json(text, source, error)
    validate_graph(graph, source, error)
    if is_bmxnet_v1(graph):
        raise error("%s is a %s" % (source, V1_HINT))
    check_operators(graph, source, error)
    return symbol_from_graph(graph, source, error), graph


def load_symbol_file(path, error=ConversionError):
    """(symbol, graph dict) of a symbol json file."""
    if not os.path.isfile(path):
        raise error("symbol file %s not found; the converter reads PREFIX-symbol.json next to "
                    "PREFIX-EPOCH.params (export both with HybridBlock.export, or name the "
                    "symbol file with --symbol)" % path)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise error("%s is not an MXNet symbol file (not utf-8 text)" % path)
    except OSError as err:
        raise error("cannot read %s: %s" % (path, err.strerror or err))
    return load_symbol_json(text, path, error)


class Graph:
    """A validated symbol json graph with its consumer map.

    Attributes
    ----------
    data : dict
        The json dict (``nodes``, ``arg_nodes``, ``heads`` …), shared, not copied.
    nodes : list of dict
    consumers : dict
        ``{node index: [(consumer index, input position), ...]}``.
    """

    def __init__(self, data, source="the graph", error=ConversionError):
        validate_graph(data, source, error)
        self.data, self.nodes, self.source, self.error = data, data["nodes"], source, error
        self.consumers = {}
        for i, node in enumerate(self.nodes):
            for pos, entry in enumerate(node.get("inputs", [])):
                self.consumers.setdefault(entry[0], []).append((i, pos))

    @classmethod
    def of_symbol(cls, sym, source="the model"):
        return cls(json.loads(sym.tojson()), source)

    def input_node(self, i, pos):
        """The node feeding input ``pos`` of node ``i``."""
        return self.nodes[self.nodes[i]["inputs"][pos][0]]

    def qlayers(self):
        """:class:`QLayer` records of the QConvolution / QFullyConnected nodes, in order."""
        return [QLayer(self, i) for i, n in enumerate(self.nodes) if n["op"] in Q_OPS]


class QLayer:
    """The parsed attributes of one QConvolution / QFullyConnected node.

    Attributes: ``index``, ``name``, ``op``, ``conv`` (bool), ``attrs`` (the strings),
    ``act_bit``, ``weight_bit``, ``packed`` (``binarized_weights_only``), ``no_bias``,
    ``scaling_mode``, ``num_out`` (num_filter / num_hidden), ``kernel``, ``stride``, ``pad``,
    ``dilate``, ``num_group`` (convolution; None for dense), ``flatten`` (dense),
    ``in_channels`` / ``in_units`` (None when the node does not say), ``weight_index`` (the
    node feeding the weight input, or None when there is none).

    Raises ``graph.error`` naming the layer when an attribute is unreadable or out of range
    (sizes < 1, pad < 0, num_filter not a multiple of num_group).
    """

    def __init__(self, graph, index):
        node = graph.nodes[index]
        self.index, self.name, self.op = index, node["name"], node["op"]
        self.conv = self.op == "QConvolution"
        self.attrs = attrs = node_attrs(node)
        err = graph.error
        try:
            self.act_bit = parse_int(attrs.get("act_bit"), 1)
            self.weight_bit = parse_int(attrs.get("weight_bit"), 1)
            self.packed = flag(attrs.get("binarized_weights_only"))
            self.no_bias = flag(attrs.get("no_bias"))
            self.scaling_mode = attrs.get("scaling_mode", "none").strip().strip("'\"")
            key = "num_filter" if self.conv else "num_hidden"
            self.num_out = parse_int(attrs.get(key), None)
            if self.num_out is None:
                raise ValueError("%s is missing" % key)
            self.in_channels = parse_int(attrs.get("in_channels"), None)
            self.in_units = parse_int(attrs.get("in_units"), None)
            if self.conv:
                self.kernel = parse_tuple(attrs.get("kernel"), 2, None)
                if None in self.kernel:
                    raise ValueError("kernel is missing")
                self.stride = parse_tuple(attrs.get("stride"), 2, 1)
                self.pad = parse_tuple(attrs.get("pad"), 2, 0)
                self.dilate = parse_tuple(attrs.get("dilate"), 2, 1)
                self.num_group = parse_int(attrs.get("num_group"), 1)
                self.flatten = None
            else:
                self.kernel = self.stride = self.pad = self.dilate = self.num_group = None
                self.flatten = flag(attrs.get("flatten"), True)
        except (TypeError, ValueError) as e:
            raise err("layer '%s' (%s) has an unreadable attribute: %s" % (self.name, self.op, e))
        problems = []
        if self.num_out < 1:
            problems.append("%s=%d" % ("num_filter" if self.conv else "num_hidden", self.num_out))
        if self.conv:
            for key in ("kernel", "stride", "dilate"):
                if min(getattr(self, key)) < 1:
                    problems.append("%s=%s" % (key, getattr(self, key)))
            if min(self.pad) < 0:
                problems.append("pad=%s" % (self.pad,))
            if self.num_group < 1 or self.num_out % self.num_group:
                problems.append("num_group=%d with num_filter=%d (num_filter must be a multiple "
                                "of num_group)" % (self.num_group, self.num_out))
        for key in ("in_channels", "in_units"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                problems.append("%s=%d" % (key, getattr(self, key)))
        if problems:
            raise err("layer '%s' (%s) has impossible attributes: %s"
                      % (self.name, self.op, ", ".join(problems)))
        inputs = node.get("inputs", [])
        self.weight_index = inputs[1][0] if len(inputs) > 1 else None

    def input_size(self, weight_shape):
        """``('in_channels', C)`` or ``('in_units', n)`` of a float weight shape.

        A packed weight ``(O, kh, kw, ceil((C/g)/64))`` fits many channel counts, so every
        packed node carries its input size as an attribute and the operator refuses data of
        another size: C = (C/g) * num_group for a convolution weight (O, C/g, kh, kw); the
        input features of a dense weight (O, in_units).
        """
        if self.conv:
            return "in_channels", int(weight_shape[1]) * self.num_group
        return "in_units", int(weight_shape[1])


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------
def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(outputs, error=ConversionError, fix="write to a folder you can write to"):
    """Writes several files so that each appears complete or not at all.

    ``outputs`` is a list of ``(final_path, writer)``; ``writer(tmp_path)`` writes the content.
    All contents go to temporary names in the target folders first; only when every write
    succeeded are they renamed (``os.replace``) to their final names, with the usual file mode
    (0666 minus the umask). On any error the temporary files are removed and ``error`` names
    the file or folder; ``fix`` is what the caller's user can do about a folder that cannot be
    written (the converter names its ``--output-dir``).
    """
    temps = []
    try:
        for path, writer in outputs:
            folder = os.path.dirname(os.path.abspath(path))
            try:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                           suffix=".tmp")
            except OSError as err:
                raise error("cannot write to %s: %s; %s" % (folder, err.strerror or err, fix))
            os.close(fd)
            temps.append((tmp, path))
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; use the usual file mode
            try:
                writer(tmp)
            except (OSError, mx.base.MXNetError) as err:
                raise error("writing %s failed: %s" % (path, err))
        for tmp, path in temps:
            os.replace(tmp, path)
        temps = []
    finally:
        for tmp, _ in temps:
            try:
                os.remove(tmp)
            except OSError:
                pass


# ------------------------------------------------------------------------------------------
# Shapes, types and a test run for one data shape
# ------------------------------------------------------------------------------------------
def data_input_names(graph, arg_names):
    """(data inputs, label inputs): free variables of the graph that are not parameters."""
    nodes = graph["nodes"]
    labels = set()
    for node in nodes:
        if node["op"] in LOSS_OPS and len(node.get("inputs", [])) > 1:
            labels.add(nodes[node["inputs"][1][0]]["name"])
    data = [n for n in arg_names if n not in labels]
    return data, [n for n in arg_names if n in labels]


def _quiet_infer(fn, **shapes):
    with contextlib.redirect_stdout(io.StringIO()):  # MXNet prints the arguments on failure
        return fn(**shapes)


def shape_mismatches(sym, data_shapes, arg_shapes, aux_shapes):
    """Parameters whose given shape differs from what shape inference gives for ``data_shapes``.

    Returns a list of ``(name, inferred, given)``; ``[(None, message, None)]`` when inference
    itself fails (the message is MXNet's last line).
    """
    args, auxs = sym.list_arguments(), sym.list_auxiliary_states()
    try:
        inferred_args, _, inferred_aux = _quiet_infer(sym.infer_shape_partial, **dict(data_shapes))
    except mx.base.MXNetError as err:
        return [(None, error_line(err), None)]
    if inferred_args is None:
        return [(None, "shape inference gave no result", None)]
    out = []
    for names, inferred, given in ((args, inferred_args, arg_shapes),
                                   (auxs, inferred_aux, aux_shapes)):
        for name, shape in zip(names, inferred):
            if name in given and tuple(shape) and tuple(shape) != tuple(given[name]):
                out.append((name, tuple(shape), tuple(given[name])))
    if not out:  # every parameter fits: the full inference must succeed too
        given = dict(data_shapes)
        given.update({k: v for k, v in arg_shapes.items() if k in args})
        given.update({k: v for k, v in aux_shapes.items() if k in auxs})
        try:
            _quiet_infer(sym.infer_shape, **given)
        except mx.base.MXNetError as err:
            return [(None, error_line(err), None)]
    return out


def type_mismatches(sym, data_types, arg_types, aux_types):
    """Parameters whose dtype differs from what type inference gives (list of
    ``(name, inferred, given)`` with numpy dtypes; ``[(None, message, None)]`` on failure)."""
    try:
        inferred_args, _, inferred_aux = sym.infer_type_partial(**dict(data_types))
    except mx.base.MXNetError as err:
        return [(None, error_line(err), None)]
    out = []
    for names, inferred, given in ((sym.list_arguments(), inferred_args, arg_types),
                                   (sym.list_auxiliary_states(), inferred_aux, aux_types)):
        for name, dtype in zip(names, inferred or []):
            if name in given and dtype is not None and np.dtype(dtype) != np.dtype(given[name]):
                out.append((name, np.dtype(dtype), np.dtype(given[name])))
    return out


_SPATIAL_CANDIDATES = (28, 32, 224, 64, 96, 112, 128, 160, 192, 256, 299, 16, 8)


def _first_layer_candidates(graph, name, arg_params, batch):
    nodes = graph["nodes"]
    index = next((i for i, n in enumerate(nodes) if n["op"] == "null" and n["name"] == name),
                 None)
    first = next((n for n in nodes if n.get("inputs") and n["inputs"][0][0] == index), None)
    if index is None or first is None or len(first["inputs"]) < 2:
        return []
    weight = nodes[first["inputs"][1][0]]["name"]
    if weight not in arg_params:
        return []
    wshape = tuple(arg_params[weight].shape)
    try:
        groups = parse_int(node_attrs(first).get("num_group"), 1)
    except ValueError:
        return []
    if first["op"] in ("Convolution", "QConvolution") and len(wshape) == 4:
        return [(batch, wshape[1] * groups, s, s) for s in _SPATIAL_CANDIDATES]
    if first["op"] in ("FullyConnected", "QFullyConnected") and len(wshape) == 2:
        return [(batch, wshape[1])]
    return []


def guess_data_shape(sym, graph, arg_params, aux_params, batch=1):
    """Guesses the shape of the single data input from the parameters.

    The first layer's weight fixes the channel count (or the input width of a dense first
    layer); the spatial size is the first of 28, 32, 224, ... for which MXNet's shape inference
    reproduces every parameter shape of the file.

    Returns
    -------
    (shape, None) or (None, reason)
        ``reason`` says why no shape fits (for the message that asks for ``--data-shape``).
    """
    free = [a for a in sym.list_arguments() if a not in arg_params]
    data, _ = data_input_names(graph, free)
    if len(data) != 1:
        return None, "the model has %d data inputs (%s), not one" % (len(data), ", ".join(data))
    candidates = _first_layer_candidates(graph, data[0], arg_params, batch)
    if not candidates:
        return None, "its first layer does not tell the input's channel count"
    known = {k: v.shape for k, v in arg_params.items()}
    known_aux = {k: v.shape for k, v in aux_params.items()}
    best = None
    for shape in candidates:
        bad = shape_mismatches(sym, {data[0]: shape}, known, known_aux)
        if not bad:
            return shape, None
        if best is None or (bad[0][0] is not None and
                            (best[1][0][0] is None or len(bad) < len(best[1]))):
            best = (shape, bad)
    name, inferred, given = best[1][0]
    if name is None:
        return None, "no usual input size fits its weights (for %s: %s)" % (best[0], inferred)
    return None, ("no usual input size fits its weights (for %s, '%s'%s should have shape %s "
                  "but has %s)" % (best[0], name, _user(graph, name), inferred, given))


def _user(graph, name):
    """' (layer X, Op)' for the node that reads variable ``name``, or ''."""
    nodes = graph["nodes"]
    for node in nodes:
        for entry in node.get("inputs", []):
            if nodes[entry[0]]["op"] == "null" and nodes[entry[0]]["name"] == name:
                return " of layer '%s' (%s)" % (node["name"], node["op"])
    return ""


def resolve_data_shape(sym, arg_params, aux_params, data_shape, source, error=ConversionError):
    """The single data input of a model and the input shape to check it with.

    ``data_shape`` is the user's (``--data-shape``) or None: then it is worked out from the
    weights (:func:`guess_data_shape`), and when that fails ``error`` asks for
    ``--data-shape``. Either way every parameter must fit the graph for that shape; otherwise
    ``error`` names the parameter, its layer and both shapes.

    Returns
    -------
    (data name, shape tuple, label names)
    """
    graph = json.loads(sym.tojson())
    free = [a for a in sym.list_arguments() if a not in arg_params]
    data, labels = data_input_names(graph, free)
    if len(data) != 1:
        raise error("%s: bmxnet checks models with exactly one data input before writing "
                    "them, this one has %s" % (source, ", ".join(data) or "none"))
    if data_shape is None:
        data_shape, reason = guess_data_shape(sym, graph, arg_params, aux_params)
        if data_shape is None:
            raise error("cannot work out the input shape of '%s' in %s (%s); pass it with "
                        "--data-shape (data_shape=), batch first, e.g. --data-shape 1,3,224,224"
                        % (data[0], source, reason))
    try:
        data_shape = tuple(int(d) for d in data_shape)
    except (TypeError, ValueError):
        raise error("the input shape must be a tuple of integers, got %r" % (data_shape,))
    if not data_shape or min(data_shape) < 1:
        raise error("the input shape must have sizes >= 1, got %s" % (data_shape,))
    bad = shape_mismatches(sym, {data[0]: data_shape},
                           {k: tuple(v.shape) for k, v in arg_params.items()},
                           {k: tuple(v.shape) for k, v in aux_params.items()})
    if bad:
        name, inferred, given = bad[0]
        if name is None:
            raise error("%s does not fit input shape %s: %s; pass the right one with "
                        "--data-shape" % (source, data_shape, inferred))
        raise error("the parameters in %s do not fit the graph for input shape %s: "
                    "'%s'%s should have shape %s but has %s (the file does not belong to this "
                    "symbol, or the input shape is wrong: pass it with --data-shape)"
                    % (source, data_shape, name, _user(graph, name), inferred, given))
    return data[0], data_shape, labels


def check_runs(sym, arg_params, aux_params, data_name, data_shape, source, label_names=(),
               error=ConversionError):
    """Binds ``sym`` with these parameters for ``data_shape`` and runs one forward pass of
    zeros; raises ``error`` naming the parameter or MXNet's reason when it cannot."""
    data_shape = tuple(int(d) for d in data_shape)
    arg_shapes = {k: tuple(v.shape) for k, v in arg_params.items()}
    aux_shapes = {k: tuple(v.shape) for k, v in aux_params.items()}
    for name, inferred, given in shape_mismatches(sym, {data_name: data_shape}, arg_shapes,
                                                  aux_shapes):
        if name is None:
            raise error("%s does not fit input shape %s: %s" % (source, data_shape, inferred))
        raise error("%s does not fit input shape %s: the graph needs '%s' of shape %s, the "
                    "parameters hold %s (pass the right input shape with --data-shape, or the "
                    "parameters that belong to this symbol)" % (source, data_shape, name,
                                                                 inferred, given))
    types = {k: np.dtype(v.dtype) for k, v in arg_params.items()}
    aux_types = {k: np.dtype(v.dtype) for k, v in aux_params.items()}
    for name, inferred, given in type_mismatches(sym, {data_name: np.float32}, types, aux_types):
        if name is None:
            raise error("%s: type inference fails: %s" % (source, inferred))
        raise error("%s: the graph needs '%s' as %s, the parameters hold %s" % (
            source, name, inferred.name, given.name))
    shapes, _, _ = _quiet_infer(sym.infer_shape_partial, **{data_name: data_shape})
    args = {}
    for name, shape in zip(sym.list_arguments(), shapes):
        if name in arg_params:
            args[name] = arg_params[name]
        elif name == data_name:
            args[name] = mx.nd.zeros(data_shape)
        elif name in label_names and shape and 0 not in shape:
            args[name] = mx.nd.zeros(shape)
        else:
            raise error("%s: the input '%s' has no value (it is neither the data input nor a "
                        "stored parameter)" % (source, name))
    aux = {k: aux_params[k] for k in sym.list_auxiliary_states() if k in aux_params}
    try:
        ex = sym.bind(mx.cpu(), args=args, aux_states=aux, grad_req="null")
        for out in ex.forward(is_train=False):
            out.wait_to_read()
    except mx.base.MXNetError as err:
        raise error("%s does not run for input shape %s: %s" % (source, data_shape,
                                                                error_line(err)))


# ------------------------------------------------------------------------------------------
# Loss heads
# ------------------------------------------------------------------------------------------
def loss_forward(op, attrs, x, name):
    """The inference computation of an output layer (what its forward pass returns)."""
    if op == "SoftmaxOutput":  # softmax(axis=...) gives SoftmaxOutput's forward bit for bit
        if flag(attrs.get("multi_output")):
            return mx.sym.softmax(x, axis=1, name=name)
        if flag(attrs.get("preserve_shape")):
            return mx.sym.softmax(x, axis=-1, name=name)
        flat = mx.sym.softmax(mx.sym.Flatten(x, name=name + "_flatten"), axis=1,
                              name=name + "_softmax")
        return mx.sym.reshape_like(flat, x, name=name)
    if op == "LogisticRegressionOutput":
        return mx.sym.sigmoid(x, name=name)
    return mx.sym.identity(x, name=name)


def inference_symbol(graph, source="the model", error=ConversionError):
    """The graph with each loss head (SoftmaxOutput …, used by nothing else) replaced by its
    forward computation, so that the label input disappears.

    Returns
    -------
    (symbol, replaced)
        ``replaced`` lists ``(node name, op, label name)`` per rewritten head; when it is empty
        the symbol is the graph as it is.
    """
    g = Graph(graph, source, error)
    nodes, heads = g.nodes, graph["heads"]
    replaced, new_heads, rewritten = [], [], set()
    for k, head in enumerate(heads):
        node = nodes[head[0]]
        if node["op"] in LOSS_OPS and head[0] not in g.consumers and node["inputs"] \
                and heads.count(head) == 1:
            label = nodes[node["inputs"][1][0]]["name"] if len(node["inputs"]) > 1 else None
            replaced.append((node["name"], node["op"], label))
            new_heads.append(list(node["inputs"][0]))
            rewritten.add(k)
        else:
            new_heads.append(list(head))
    if not replaced:
        return symbol_from_graph(graph, source, error), []
    body = symbol_from_graph(dict(graph, heads=new_heads), source, error)
    outs = []
    for k, head in enumerate(heads):
        out = body[k] if len(heads) > 1 else body
        if k in rewritten:
            node = nodes[head[0]]
            out = loss_forward(node["op"], node_attrs(node), out, node["name"])
        outs.append(out)
    return (outs[0] if len(outs) == 1 else mx.sym.Group(outs)), replaced
