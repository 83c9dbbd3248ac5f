"""Structure-aware mutators: edit the fields the readers parse, not just random bytes.

libFuzzer's byte mutations rarely keep a json, a .params header or an ONNX protobuf valid, so
most mutated inputs die in the first parser and never reach the code behind it. Each mutator
here parses the input, changes one field to a hostile value (0, -1, 2^32 + 2, a wrong dtype, a
dangling node reference, an unknown operator …) and writes it back; when the input does not
parse, or by chance, it falls back to libFuzzer's own mutation (``atheris.Mutate``). All
choices come from ``random.Random(seed)``: a run with a fixed ``-seed`` is reproducible.
"""
import json
import os
import random
import struct

import atheris

from seeds import pack_pair, unpack_pair

INTERESTING_INTS = [0, 1, -1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 255, 256, 2 ** 15, 2 ** 16,
                    2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 2, 2 ** 63 - 1,
                    -2 ** 31, -2 ** 63]
INTERESTING_STRS = ["0", "1", "-1", "2", "4294967298", "2147483648", "-2147483648",
                    "9223372036854775808", "(0, 0)", "(3, 3)", "(1,)", "(2, 2, 2)", "()",
                    "[3,3]", "(-1, -1)", "(4294967297, 1)", "True", "False", "true", "None",
                    "", " ", "forward", "none", "nan", "inf", "1e309", "-0", "3L", "(1, 1",
                    "ste", "approx_sign", "swish_sign", "float16", "int32", "NCHW", "NHWC",
                    "max", "avg", "tanh", "relu", "sigmoid", "[[1, 2]]", "(1, 2, 3, 4)"]
ATTR_KEYS = ["kernel", "stride", "pad", "dilate", "num_filter", "num_group", "num_hidden",
             "no_bias", "flatten", "act_bit", "weight_bit", "binarized_weights_only",
             "scaling_mode", "pad_value", "grad_cancel", "act_grad", "swish_beta",
             "backward_only", "layout", "eps", "fix_gamma", "use_global_stats", "axis",
             "act_type", "pool_type", "global_pool", "__shape__", "__dtype__", "__init__",
             "in_channels", "multi_output", "preserve_shape", "normalization", "momentum"]
OPS = ["null", "QConvolution", "QFullyConnected", "QActivation", "Convolution",
       "FullyConnected", "BatchNorm", "Activation", "Pooling", "Flatten", "SoftmaxOutput",
       "LinearRegressionOutput", "softmax", "elemwise_add", "Concat", "Reshape", "Dropout",
       "LeakyRelu", "_copy", "sign", "NoSuchOp", "_contrib_quantize", "BlockGrad"]


def _pick_int(rng):
    return rng.choice(INTERESTING_INTS) if rng.random() < 0.8 else rng.randint(-100, 100)


# ------------------------------------------------------------------------------------- json
def mutate_graph(graph, rng):
    """Changes one thing in an MXNet symbol json dict (in place)."""
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(nodes, list) or not nodes:
        return False
    i = rng.randrange(len(nodes))
    node = nodes[i]
    if not isinstance(node, dict):
        return False
    attr_key = next((k for k in ("attrs", "attr", "param") if isinstance(node.get(k), dict)),
                    "attrs")
    attrs = node.setdefault(attr_key, {}) if isinstance(node.get(attr_key, {}), dict) else {}
    choice = rng.randrange(12)
    if choice <= 2 and attrs:  # a hostile value for an existing attribute
        attrs[rng.choice(sorted(attrs))] = rng.choice(INTERESTING_STRS)
    elif choice <= 4:  # a new (or overwritten) attribute
        key = rng.choice(ATTR_KEYS)
        if key == "__shape__":
            value = "(%s)" % ", ".join(str(_pick_int(rng)) for _ in range(rng.randint(0, 5)))
        elif key == "__dtype__":
            value = str(rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 12, -1, 99]))
        else:
            value = rng.choice(INTERESTING_STRS)
        attrs[key] = value
    elif choice == 5 and attrs:
        del attrs[rng.choice(sorted(attrs))]
    elif choice == 6:  # another operator
        node["op"] = rng.choice(OPS)
    elif choice == 7 and node.get("inputs"):  # rewire one input
        entry = rng.choice(node["inputs"])
        if isinstance(entry, list) and entry:
            field = rng.randrange(len(entry))
            entry[field] = rng.randrange(max(1, len(nodes) + 1)) if field == 0 and \
                rng.random() < 0.7 else _pick_int(rng)
    elif choice == 8:  # drop or duplicate an input
        inputs = node.get("inputs")
        if isinstance(inputs, list) and inputs:
            if rng.random() < 0.5:
                inputs.pop(rng.randrange(len(inputs)))
            else:
                inputs.append(list(rng.choice(inputs)) if isinstance(inputs[0], list)
                              else inputs[0])
    elif choice == 9:  # heads / arg_nodes
        key = rng.choice(["heads", "arg_nodes"])
        value = graph.get(key)
        if isinstance(value, list) and value:
            if key == "heads" and isinstance(value[0], list) and value[0]:
                value[0][rng.randrange(len(value[0]))] = rng.choice(
                    [len(nodes), len(nodes) - 1, 0, 1, 2, -1, 2 ** 32])
            else:
                value[rng.randrange(len(value))] = rng.randrange(len(nodes) + 2)
        elif rng.random() < 0.1:
            graph.pop(key, None)
    elif choice == 10:  # rename: duplicate names, empty names, label-like names
        other = rng.choice(nodes)
        node["name"] = rng.choice([other.get("name", "") if isinstance(other, dict) else "",
                                   "", "data", "softmax_label", "x" * 300, "arg:w", "a b"])
    else:  # remove or duplicate a whole node (indices after it now point elsewhere)
        if rng.random() < 0.5 and len(nodes) > 1:
            nodes.pop(i)
        else:
            nodes.insert(i, json.loads(json.dumps(node)))
    return True


def mutate_json_bytes(data, max_size, rng):
    try:
        graph = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    for _ in range(1 + (rng.random() < 0.3)):
        if not mutate_graph(graph, rng):
            return None
    out = json.dumps(graph, separators=(",", ":")).encode()
    return out if len(out) <= max_size else None


# ----------------------------------------------------------------------------------- params
_ITEMSIZE = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}


def parse_params(data):
    """The fields of an mx.nd.save file: (arrays, names) with arrays as dicts, or None."""
    try:
        magic, reserved, count = struct.unpack_from("<QQQ", data, 0)
        if magic != 0x112 or count > 64:
            return None
        off, arrays = 24, []
        for _ in range(count):
            amagic, stype, ndim = struct.unpack_from("<Iii", data, off)
            off += 12
            if stype != 0 or not 0 <= ndim <= 8:
                return None
            dims = list(struct.unpack_from("<%dq" % ndim, data, off))
            off += 8 * ndim
            dev_type, dev_id, dtype = struct.unpack_from("<iii", data, off)
            off += 12
            size = _ITEMSIZE.get(dtype)
            n = 1
            for d in dims:
                n *= d
            if size is None or n < 0 or n * size > len(data):
                return None
            payload = bytes(data[off:off + n * size])
            off += n * size
            arrays.append({"magic": amagic, "stype": stype, "dims": dims, "dev": (dev_type, dev_id),
                           "dtype": dtype, "data": payload})
        (nnames,) = struct.unpack_from("<Q", data, off)
        off += 8
        names = []
        for _ in range(min(nnames, 64)):
            (ln,) = struct.unpack_from("<Q", data, off)
            off += 8
            names.append(bytes(data[off:off + ln]))
            off += ln
        return {"reserved": reserved, "count": count, "arrays": arrays, "names": names}
    except struct.error:
        return None


def write_params(p):
    out = [struct.pack("<QQQ", 0x112, p["reserved"], p["count"])]
    for a in p["arrays"]:
        out.append(struct.pack("<Iii", a["magic"], a["stype"], a.get("ndim", len(a["dims"]))))
        out.append(b"".join(struct.pack("<q", d) for d in a["dims"]))
        out.append(struct.pack("<iii", a["dev"][0], a["dev"][1], a["dtype"]))
        out.append(a["data"])
    out.append(struct.pack("<Q", p.get("nnames", len(p["names"]))))
    for name in p["names"]:
        out.append(struct.pack("<Q", len(name)) + name)
    return b"".join(out)


def _u32(rng):
    return rng.choice([0, 1, 2, 3, 8, 9, 64, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xF993FAC9,
                       0xF993FACA, 0xF993FAC8])


def mutate_params_bytes(data, max_size, rng):
    p = parse_params(data)
    if p is None or not p["arrays"]:
        return None
    a = rng.choice(p["arrays"])
    choice = rng.randrange(11)
    if choice == 0:  # the ndim field (0xFFFFFFFF: finding 4 of issue 10)
        a["ndim"] = _u32(rng) - (2 ** 32 if rng.random() < 0.5 else 0)
        a["ndim"] = a["ndim"] if -2 ** 31 <= a["ndim"] < 2 ** 31 else -1
    elif choice == 1 and a["dims"]:  # one dimension, data left as it is
        a["dims"][rng.randrange(len(a["dims"]))] = _pick_int(rng)
    elif choice == 2:  # reshape consistently (same element count, another ndim)
        n = 1
        for d in a["dims"]:
            n *= d
        a["dims"] = rng.choice([[n], [1, n], [n, 1, 1, 1], [], [0]])
        if not a["dims"]:
            a["data"] = b""
    elif choice == 3:  # another dtype (data reinterpreted, size maybe wrong)
        a["dtype"] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 12, -1, 99])
        if rng.random() < 0.5 and a["dtype"] in _ITEMSIZE:
            n = len(a["data"]) // 4
            a["data"] = (a["data"] * 2)[:n * _ITEMSIZE[a["dtype"]]]
    elif choice == 4:  # the storage type / magic / context
        field = rng.choice(["stype", "magic", "dev"])
        a[field] = (rng.randint(-1, 3) if field == "stype" else _u32(rng) if field == "magic"
                    else (rng.choice([1, 2, 3, 5, 0, -1]), rng.choice([0, 1, -1])))
    elif choice == 5 and a["data"]:  # special float values in the data
        vals = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1e38, -1e38, 1e-45]
        n = len(a["data"]) // 4
        raw = bytearray(a["data"])
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(max(n, 1))
            raw[4 * k:4 * k + 4] = struct.pack("<f", rng.choice(vals))
        a["data"] = bytes(raw[:len(a["data"])])
    elif choice == 6:  # counts
        if rng.random() < 0.5:
            p["count"] = rng.choice([0, len(p["arrays"]) + 1, 2 ** 32, 2 ** 63, 2 ** 64 - 1])
        else:
            p["nnames"] = rng.choice([0, len(p["names"]) - 1, len(p["names"]) + 1, 2 ** 62])
    elif choice == 7 and p["names"]:  # names: prefixes, duplicates, missing, renamed
        k = rng.randrange(len(p["names"]))
        name = p["names"][k]
        p["names"][k] = rng.choice([name.replace(b"arg:", b"aux:"), name.replace(b"aux:", b"arg:"),
                                    name.split(b":", 1)[-1], rng.choice(p["names"]), b"",
                                    b"arg:", name + b"_x", name[:-1]])
    elif choice == 8 and len(p["arrays"]) > 1:  # drop one array (and its name)
        k = rng.randrange(len(p["arrays"]))
        p["arrays"].pop(k)
        p["count"] = len(p["arrays"])
        if k < len(p["names"]):
            p["names"].pop(k)
    elif choice == 9:  # truncate the data of one array
        a["data"] = a["data"][:rng.randrange(len(a["data"]) + 1)]
    else:  # the reserved header field
        p["reserved"] = rng.choice([1, 2 ** 64 - 1])
    out = write_params(p)
    return out if len(out) <= max_size else None


# --------------------------------------------------------------------------------------- onnx
ONNX_OPS = ["Conv", "Gemm", "MatMul", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid",
            "Tanh", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool",
            "GlobalMaxPool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Concat",
            "Add", "Sub", "Mul", "Div", "Pad", "Clip", "Identity", "Dropout", "Constant", "Sign",
            "Where", "GreaterOrEqual", "Less", "Round", "ConvTranspose", "Loop", "If", "Split"]
ONNX_ATTRS = ["strides", "pads", "kernel_shape", "dilations", "group", "axis", "axes", "perm",
              "transA", "transB", "alpha", "beta", "epsilon", "auto_pad", "mode", "ceil_mode",
              "count_include_pad", "allowzero", "value", "storage_order", "keepdims"]


def mutate_onnx_bytes(data, max_size, rng):
    import onnx
    from onnx import helper
    try:
        model = onnx.ModelProto.FromString(bytes(data))
    except Exception:
        return None
    graph = model.graph
    nodes = graph.node
    choice = rng.randrange(12)
    if choice <= 3 and nodes:  # an attribute value
        node = rng.choice(nodes)
        if node.attribute and rng.random() < 0.7:
            attr = rng.choice(node.attribute)
        else:
            name = rng.choice(ONNX_ATTRS)
            node.attribute.extend([helper.make_attribute(name, [1, 1])])
            attr = node.attribute[-1]
        if attr.ints or attr.type == onnx.AttributeProto.INTS:
            values = list(attr.ints) or [1]
            k = rng.randrange(len(values))
            values[k] = _pick_int(rng) if abs(_pick_int(rng)) < 2 ** 63 else 0
            if rng.random() < 0.2:
                values = values[:rng.randrange(len(values) + 1)] + [rng.choice([0, -1, 2])] * \
                    rng.randint(0, 3)
            del attr.ints[:]
            attr.ints.extend(max(-2 ** 63, min(2 ** 63 - 1, v)) for v in values)
        elif attr.type == onnx.AttributeProto.INT:
            attr.i = max(-2 ** 63, min(2 ** 63 - 1, _pick_int(rng)))
        elif attr.type == onnx.AttributeProto.FLOAT:
            attr.f = rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e-30, 1e30])
        elif attr.type == onnx.AttributeProto.STRING:
            attr.s = rng.choice([b"SAME_UPPER", b"SAME_LOWER", b"VALID", b"NOTSET", b"reflect",
                                 b"edge", b"constant", b""])
        else:
            attr.type = rng.choice([1, 2, 3, 6, 7])
    elif choice == 4 and nodes:
        rng.choice(nodes).op_type = rng.choice(ONNX_OPS)
    elif choice == 5 and nodes:  # rewire an input or output name
        node = rng.choice(nodes)
        names = [n for nd in nodes for n in list(nd.input) + list(nd.output)] + \
            [i.name for i in graph.initializer] + [i.name for i in graph.input] + ["", "nosuch"]
        field = node.input if (node.input and rng.random() < 0.7) else node.output
        if len(field):
            field[rng.randrange(len(field))] = rng.choice(names)
        elif rng.random() < 0.5:
            node.input.append(rng.choice(names))
    elif choice == 6 and graph.initializer:  # an initializer's dims / values / type
        init = rng.choice(graph.initializer)
        sub = rng.randrange(4)
        if sub == 0 and init.dims:
            init.dims[rng.randrange(len(init.dims))] = rng.choice([0, 1, 2, 3, -1, 2 ** 31, 64])
        elif sub == 1:
            init.data_type = rng.choice([1, 2, 3, 6, 7, 9, 10, 11, 16, 0, 99])
        elif sub == 2 and init.raw_data:
            raw = bytearray(init.raw_data)
            k = rng.randrange(max(1, len(raw) // 4))
            raw[4 * k:4 * k + 4] = struct.pack("<f", rng.choice(
                [0.0, float("nan"), float("inf"), 1.0, -1.0, 0.5, -2.0]))
            init.raw_data = bytes(raw[:len(init.raw_data)])
        else:
            dims = list(init.dims)
            del init.dims[:]
            init.dims.extend(dims[:-1] if dims and rng.random() < 0.5 else dims + [1])
    elif choice == 7:  # the input's shape
        for vi in list(graph.input)[:1]:
            dims = vi.type.tensor_type.shape.dim
            if dims:
                d = rng.choice(dims)
                if rng.random() < 0.2:
                    d.dim_param = "N"
                else:
                    d.dim_value = rng.choice([0, 1, 2, 3, 7, 2 ** 31, 2 ** 40])
            vi.type.tensor_type.elem_type = rng.choice([1, 1, 1, 10, 11, 7, 0])
    elif choice == 8 and len(nodes) > 1:  # remove a node, or move it
        k = rng.randrange(len(nodes))
        node = onnx.NodeProto()
        node.CopyFrom(nodes[k])
        del nodes[k]
        if rng.random() < 0.5:
            nodes.insert(rng.randrange(len(nodes) + 1), node)
    elif choice == 9 and nodes:  # duplicate a node
        node = onnx.NodeProto()
        node.CopyFrom(rng.choice(nodes))
        nodes.append(node)
    elif choice == 10:  # opset / ir version
        if model.opset_import and rng.random() < 0.7:
            model.opset_import[0].version = rng.choice([1, 6, 7, 9, 11, 13, 17, 18, 21, 99])
        else:
            model.ir_version = rng.choice([1, 3, 7, 8, 9, 10, 99])
    else:  # graph outputs
        if graph.output and rng.random() < 0.5:
            graph.output[0].name = rng.choice([n for nd in nodes for n in nd.output] + ["x", ""])
        elif graph.output:
            graph.output.extend([graph.output[0]])
    try:
        out = model.SerializeToString()
    except Exception:
        return None
    return out if len(out) <= max_size else None


# ---------------------------------------------------------------------------------- dispatch
# Share of mutations that are structure-aware (the rest are libFuzzer's byte mutations).
# Structure-aware mutants stay valid and reach the deep, slow code (shape inference, binding);
# byte mutants are mostly refused by the first parser, in microseconds. ``make fuzz`` lowers
# the share to reach its execution count; a hunt for findings raises it.
STRUCTURED = float(os.environ.get("BMXNET_FUZZ_STRUCTURED", "0.75"))


def _with_fallback(structured):
    def mutate(data, max_size, seed):
        rng = random.Random(seed)
        if rng.random() < STRUCTURED:
            try:
                out = structured(data, max_size, rng)
            except Exception:  # a field the writer cannot encode: mutate the bytes instead
                out = None
            if out is not None:
                return out
        return atheris.Mutate(data, max_size)
    return mutate


mutate_json = _with_fallback(mutate_json_bytes)
mutate_params = _with_fallback(mutate_params_bytes)
mutate_onnx = _with_fallback(mutate_onnx_bytes)


def mutate_pair(data, max_size, seed):
    """Mutates the json or the params half of a ``convert`` input, each structure-aware."""
    rng = random.Random(seed)
    js, pb = unpack_pair(data)
    budget = max(16, max_size - len(js) - 8)
    new = None
    part_json = rng.random() < 0.5
    try:
        if rng.random() < STRUCTURED:
            new = mutate_json_bytes(js, max_size, rng) if part_json else \
                mutate_params_bytes(pb, budget, rng)
    except Exception:
        new = None
    if part_json:
        js = new if new is not None else atheris.Mutate(js, max(len(js) * 2, 64))
    else:
        pb = new if new is not None else atheris.Mutate(pb, max(min(budget, len(pb) * 2), 64))
    out = pack_pair(js, pb)
    return out if len(out) <= max_size else atheris.Mutate(data, max_size)
