"""Seed inputs for the fuzz targets, made at run time from small valid models (nothing downloaded).

Every seed is a valid input of its target: the fuzzer starts from files that get deep into the
readers and mutates them. The models are tiny on purpose (a few hundred parameters) so that one
execution stays cheap.

* ``tiny_models()``: (name, symbol json text, params bytes) of small bmxnet checkpoints: a
  binary MLP, a binary LeNet-like conv net (both with float ±1-bit layers to pack), the same conv
  net converted already (packed int64 words), a k-bit layer, a graph with ``scaling_mode``.
* ``legacy_model()``: a BMXNet v1-style pair (0.9.x json with ``"attr"``, float32 words holding
  packed bits), the same layout as ``../shared/bmxnet_legacy`` at 1/1000 of the size.
* ``onnx_models()``: (name, ModelProto bytes) of small ONNX networks: the sign pattern + ±1 Conv
  and Gemm that import as binary layers, the k-bit activation pattern, BatchNormalization,
  pooling, Pad, Reshape, Concat …
* ``write_seeds(target, folder)``: the seed files of one target.

The pair encoding of the ``convert`` target (json and params in one input) is in
:func:`pack_pair` / :func:`unpack_pair`.
"""
import json
import os
import struct
import tempfile

import numpy as np

LEGACY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                          "shared", "bmxnet_legacy")

PAIR_MAGIC = b"BXF1"


def pack_pair(json_text, params_bytes):
    """One fuzz input from a (symbol json, params) pair: magic, json length, json, params."""
    raw = json_text.encode("utf-8") if isinstance(json_text, str) else bytes(json_text)
    return PAIR_MAGIC + struct.pack("<I", len(raw)) + raw + bytes(params_bytes)


def unpack_pair(data):
    """(json bytes, params bytes) of a pair input; any byte string splits somewhere."""
    data = bytes(data)
    if data[:4] == PAIR_MAGIC and len(data) >= 8:
        (n,) = struct.unpack("<I", data[4:8])
        body = data[8:]
        n = min(n, len(body))
        return body[:n], body[n:]
    # Not in the pair format (a raw mutation): first half json, second half params.
    half = len(data) // 2
    return data[:half], data[half:]


def _params_bytes(arrays):
    """The bytes of mx.nd.save(arrays) (dict of name -> numpy array)."""
    import mxnet as mx
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "p.params")
        mx.nd.save(path, {k: mx.nd.array(v, dtype=v.dtype) for k, v in arrays.items()})
        with open(path, "rb") as f:
            return f.read()


def _checkpoint(sym, shapes, rng, extra=None):
    """(json, params bytes) of a symbol with random parameters for the given data shapes."""
    arg_shapes, _, aux_shapes = sym.infer_shape(**shapes)
    arrays = {}
    for name, shape in zip(sym.list_arguments(), arg_shapes):
        if name in shapes or name.endswith("label"):
            continue
        arrays["arg:" + name] = rng.uniform(-1, 1, shape).astype(np.float32)
    for name, shape in zip(sym.list_auxiliary_states(), aux_shapes):
        value = rng.uniform(0.5, 1.5, shape) if name.endswith("var") else rng.uniform(-1, 1, shape)
        arrays["aux:" + name] = value.astype(np.float32)
    arrays.update(extra or {})
    return sym.tojson(), _params_bytes(arrays)


def _var(name, shape):
    import mxnet as mx
    return mx.sym.var(name, shape=shape)  # a known shape: MXNet never infers a Q-op input's ndim


def tiny_models():
    """(name, json text, params bytes) of small valid bmxnet checkpoints.

    Every parameter variable is declared with its shape (``__shape__``), so that building the
    seeds never depends on the shape inference the fuzz targets are testing.
    """
    import mxnet as mx
    import bmxnet  # noqa: F401  (registers QConvolution & co.)
    rng = np.random.RandomState(0)
    out = []
    d = mx.sym.var("data")

    def qfc(x, name, n_in, n, bias=True, **kw):
        ins = [x, _var(name + "_weight", (n, n_in))]
        if bias:
            ins.append(_var(name + "_bias", (n,)))
        return mx.sym.QFullyConnected(*ins, num_hidden=n, no_bias=not bias, name=name, **kw)

    def qconv(x, name, c, o, k, bias=True, **kw):
        ins = [x, _var(name + "_weight", (o, c, k, k))]
        if bias:
            ins.append(_var(name + "_bias", (o,)))
        return mx.sym.QConvolution(*ins, num_filter=o, kernel=(k, k), no_bias=not bias,
                                   name=name, **kw)

    def bn(x, name, c):
        return mx.sym.BatchNorm(x, _var(name + "_gamma", (c,)), _var(name + "_beta", (c,)),
                                _var(name + "_moving_mean", (c,)),
                                _var(name + "_moving_var", (c,)), name=name)

    def fc(x, name, n_in, n):
        return mx.sym.FullyConnected(x, _var(name + "_weight", (n, n_in)),
                                     _var(name + "_bias", (n,)), num_hidden=n, name=name)

    # Binary MLP: QFullyConnected (1-bit) -> BatchNorm -> FullyConnected -> SoftmaxOutput.
    x = qfc(d, "qfc0", 16, 8, act_bit=1, weight_bit=1)  # first layer: the data shape is guessed
    x = fc(bn(x, "bn0", 8), "fc1", 8, 3)
    mlp = mx.sym.SoftmaxOutput(x, name="softmax")
    out.append(("mlp",) + _checkpoint(mlp, {"data": (1, 16)}, rng))

    # Binary conv net: Conv -> BN -> QActivation -> QConvolution -> BN -> Pool -> Flatten ->
    # QFullyConnected -> FullyConnected -> SoftmaxOutput.
    x = mx.sym.Convolution(d, _var("conv0_weight", (4, 1, 3, 3)), _var("conv0_bias", (4,)),
                           num_filter=4, kernel=(3, 3), pad=(1, 1), name="conv0")
    x = mx.sym.QActivation(bn(x, "bn0", 4), act_bit=1, name="qact0")
    x = qconv(x, "qconv1", 4, 4, 3, bias=False, pad=(1, 1), act_bit=1, weight_bit=1)
    x = mx.sym.Pooling(bn(x, "bn1", 4), kernel=(2, 2), stride=(2, 2), pool_type="max",
                       name="pool1")
    x = qfc(mx.sym.Flatten(x), "qfc2", 64, 6, act_bit=1, weight_bit=1)
    conv = mx.sym.SoftmaxOutput(fc(x, "fc3", 6, 2), name="softmax")
    # 8x8: one of the sizes bmxnet.graph.guess_data_shape tries, so accepted mutants get run.
    conv_json, conv_params = _checkpoint(conv, {"data": (1, 1, 8, 8)}, rng)
    out.append(("conv", conv_json, conv_params))

    # The same network after conversion (packed words, binarized_weights_only=True).
    from bmxnet.converter import convert_model
    sym = mx.sym.load_json(conv_json)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.params")
        with open(path, "wb") as f:
            f.write(conv_params)
        params = mx.nd.load(path)
    args = {k[4:]: v for k, v in params.items() if k.startswith("arg:")}
    aux = {k[4:]: v for k, v in params.items() if k.startswith("aux:")}
    try:
        new_sym, new_args, new_aux, _ = convert_model(sym, args, aux)
        arrays = {"arg:" + k: v.asnumpy() for k, v in new_args.items()}
        arrays.update({"aux:" + k: v.asnumpy() for k, v in new_aux.items()})
        out.append(("conv_packed", new_sym.tojson(), _params_bytes(arrays)))
    except Exception:  # the converter is a fuzz subject; a broken one still leaves other seeds
        pass

    # k-bit layers (copied unchanged by the converter) and scaling_mode='forward'.
    x = qconv(d, "qconv0", 2, 2, 2, act_bit=2, weight_bit=2)
    x = qconv(x, "qconv1", 2, 2, 2, act_bit=1, weight_bit=1, scaling_mode="forward")
    x = qfc(mx.sym.Flatten(x), "qfc2", 72, 2, bias=False, act_bit=1, weight_bit=1,
            scaling_mode="forward")
    kbit = mx.sym.SoftmaxOutput(x, name="softmax")
    out.append(("kbit_scaled",) + _checkpoint(kbit, {"data": (1, 2, 8, 8)}, rng))
    return out


def _legacy_node(op, name, inputs=(), attr=None):
    node = {"op": op, "name": name, "inputs": [[i, 0, 0] for i in inputs]}
    if attr:
        node["attr"] = dict(attr)
    return node


def legacy_model():
    """(json text, params bytes) of a tiny BMXNet v1 model (see ../shared/bmxnet_legacy/README).

    data (1, 1, 8, 8) -> Convolution 1x1x32 (+bias) -> tanh -> max-pool 2 -> BatchNorm ->
    QActivation(backward_only) -> QConvolution 1x1x8 (packed: 8 words of 32 bits) -> BatchNorm ->
    max-pool 2 -> Flatten (32) -> QActivation -> QFullyConnected 4 (packed: (1, 4) words) ->
    BatchNorm -> tanh -> FullyConnected 2 -> SoftmaxOutput.
    """
    rng = np.random.RandomState(1)
    nodes, arg_nodes = [], []

    def add(op, name, inputs=(), attr=None):
        nodes.append(_legacy_node(op, name, inputs, attr))
        if op == "null":
            arg_nodes.append(len(nodes) - 1)
        return len(nodes) - 1

    def bn(x, name):
        ids = [add("null", name + s) for s in ("_gamma", "_beta", "_moving_mean", "_moving_var")]
        nodes.append({"op": "BatchNorm", "name": name,
                      "inputs": [[x, 0, 0]] + [[i, 0, 0] for i in ids[:2]]
                      + [[i, 0, 1] for i in ids[2:]]})
        return len(nodes) - 1

    conv_attr = {"kernel": "(1, 1)", "num_filter": "32"}
    data = add("null", "data")
    w0, b0 = add("null", "convolution0_weight", attr=conv_attr), \
        add("null", "convolution0_bias", attr=conv_attr)
    x = add("Convolution", "convolution0", [data, w0, b0], conv_attr)
    x = add("Activation", "activation0", [x], {"act_type": "tanh"})
    pool = {"kernel": "(2, 2)", "pool_type": "max", "stride": "(2, 2)"}
    x = add("Pooling", "pooling0", [x], pool)
    x = bn(x, "batchnorm0")
    x = add("QActivation", "qactivation0", [x], {"act_bit": "1", "backward_only": "True"})
    qattr = {"act_bit": "1", "kernel": "(1, 1)", "num_filter": "8"}
    wq = add("null", "qconvolution0_weight", attr=qattr)
    x = add("QConvolution", "qconvolution0", [x, wq], dict(qattr, binarized_weights_only="True"))
    x = bn(x, "batchnorm1")
    x = add("Pooling", "pooling1", [x], pool)
    x = add("Flatten", "flatten0", [x])
    x = add("QActivation", "qactivation1", [x], {"act_bit": "1", "backward_only": "True"})
    fattr = {"act_bit": "1", "num_hidden": "4"}
    wf = add("null", "qfullyconnected0_weight", attr=fattr)
    x = add("QFullyConnected", "qfullyconnected0", [x, wf],
            dict(fattr, binarized_weights_only="True"))
    x = bn(x, "batchnorm2")
    x = add("Activation", "activation1", [x], {"act_type": "tanh"})
    fc = {"num_hidden": "2"}
    w1, b1 = add("null", "fullyconnected0_weight", attr=fc), add("null", "fullyconnected0_bias",
                                                                   attr=fc)
    x = add("FullyConnected", "fullyconnected0", [x, w1, b1], fc)
    label = add("null", "softmax_label")
    x = add("SoftmaxOutput", "softmax", [x, label])
    graph = {"nodes": nodes, "arg_nodes": arg_nodes,
             "node_row_ptr": list(range(len(nodes) + 1)), "heads": [[x, 0, 0]],
             "attrs": {"mxnet_version": ["int", 903]}}

    def words(n):  # n random 32-bit words stored as float32 (reinterpreted bytes)
        return rng.randint(0, 2 ** 32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)

    f32 = lambda *s: rng.uniform(-1, 1, s).astype(np.float32)  # noqa: E731
    arrays = {"arg:convolution0_weight": f32(32, 1, 1, 1), "arg:convolution0_bias": f32(32),
              "arg:qconvolution0_weight": words(8), "arg:qfullyconnected0_weight": words(4),
              "arg:fullyconnected0_weight": f32(2, 4), "arg:fullyconnected0_bias": f32(2)}
    for name, c in (("batchnorm0", 32), ("batchnorm1", 8), ("batchnorm2", 4)):
        arrays["arg:%s_gamma" % name] = f32(c)
        arrays["arg:%s_beta" % name] = f32(c)
        arrays["aux:%s_moving_mean" % name] = f32(c)
        arrays["aux:%s_moving_var" % name] = np.abs(f32(c)) + 0.5
    return json.dumps(graph), _params_bytes(arrays)


def _onnx_sign_pattern(h, x, out):
    """bmxnet.onnx.export's sign(0)=+1 pattern: Where(GreaterOrEqual(x, 0), 1, -1)."""
    return [h.make_node("GreaterOrEqual", [x, "zero"], [out + "_ge"]),
            h.make_node("Where", [out + "_ge", "one", "minus_one"], [out])]


def onnx_models():
    """(name, serialized ModelProto) of small ONNX networks the importer understands."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as h
    from onnx import numpy_helper as nh
    rng = np.random.RandomState(2)
    out = []

    def pm1(*shape):
        return np.where(rng.rand(*shape) < 0.5, -1.0, 1.0).astype(np.float32)

    def model(name, nodes, inits, in_shape, out_shape, opset=13):
        graph = h.make_graph(
            nodes, name, [h.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
            [h.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
            initializer=[nh.from_array(v, k) for k, v in inits.items()])
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)],
                         producer_name="bmxnet-fuzz-seeds")
        m.ir_version = 8
        onnx.checker.check_model(m)
        out.append((name, m.SerializeToString()))

    consts = {"zero": np.array(0, np.float32), "one": np.array(1, np.float32),
              "minus_one": np.array(-1, np.float32)}

    # Binary conv: sign pattern -> Conv(±1, pads 1) -> Mul(alpha) -> Add(b) -> Relu.
    nodes = _onnx_sign_pattern(h, "x", "s") + [
        h.make_node("Conv", ["s", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                    strides=[1, 1]),
        h.make_node("Mul", ["c", "alpha"], ["m"]),
        h.make_node("Add", ["m", "beta"], ["a"]),
        h.make_node("Relu", ["a"], ["y"])]
    inits = dict(consts, w=pm1(4, 2, 3, 3),
                 alpha=rng.uniform(0.1, 1, (1, 4, 1, 1)).astype(np.float32),
                 beta=rng.uniform(-1, 1, (1, 4, 1, 1)).astype(np.float32))
    model("binary_conv", nodes, inits, [1, 2, 5, 5], [1, 4, 5, 5])

    # Plain Sign -> Pad(+1) -> Conv -> BatchNormalization -> MaxPool -> Flatten -> Sign -> Gemm.
    nodes = [h.make_node("Sign", ["x"], ["s"]),
             h.make_node("Pad", ["s", "pads", "one"], ["p"], mode="constant"),
             h.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
             h.make_node("BatchNormalization", ["c", "g", "b", "mu", "var"], ["n"],
                         epsilon=1e-5),
             h.make_node("MaxPool", ["n"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
             h.make_node("Flatten", ["mp"], ["f"], axis=1),
             h.make_node("Sign", ["f"], ["fs"]),
             h.make_node("Gemm", ["fs", "wd", "bd"], ["y"], transB=1)]
    inits = dict(consts, pads=np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), w=pm1(3, 1, 3, 3),
                 g=np.ones(3, np.float32), b=np.zeros(3, np.float32),
                 mu=np.zeros(3, np.float32), var=np.ones(3, np.float32),
                 wd=pm1(2, 12), bd=np.zeros(2, np.float32))
    model("sign_pad_conv_bn_gemm", nodes, inits, [1, 1, 4, 4], [1, 2])

    # k-bit activation pattern -> MatMul with float weights -> Softmax.
    nodes = [h.make_node("Clip", ["x", "zero", "one"], ["cl"]),
             h.make_node("Mul", ["cl", "levels"], ["ml"]),
             h.make_node("Round", ["ml"], ["r"]),
             h.make_node("Div", ["r", "levels"], ["q"]),
             h.make_node("MatMul", ["q", "wm"], ["mm"]),
             h.make_node("Softmax", ["mm"], ["y"], axis=1)]
    inits = dict(consts, levels=np.array(3, np.float32),
                 wm=rng.uniform(-1, 1, (6, 3)).astype(np.float32))
    model("kbit_matmul", nodes, inits, [1, 6], [1, 3])

    # Reshape / Transpose / Concat / AveragePool / GlobalAveragePool.
    nodes = [h.make_node("AveragePool", ["x"], ["ap"], kernel_shape=[2, 2]),
             h.make_node("GlobalAveragePool", ["x"], ["gp"]),
             h.make_node("Reshape", ["ap", "shape"], ["r"]),
             h.make_node("Reshape", ["gp", "shape"], ["r2"]),
             h.make_node("Concat", ["r", "r2"], ["cc"], axis=1),
             h.make_node("Transpose", ["cc"], ["y"], perm=[1, 0])]
    inits = {"shape": np.array([1, -1], np.int64)}
    model("reshape_concat", nodes, inits, [1, 2, 3, 3], [10, 1])
    return out


def write_seeds(target, folder):
    """Writes the seed files of ``target`` into ``folder``; returns how many."""
    os.makedirs(folder, exist_ok=True)
    seeds = []
    if target in ("params", "symbol_json", "convert"):
        models = tiny_models()
        legacy_json, legacy_params = legacy_model()
        if target == "params":
            seeds = [p for _, _, p in models] + [legacy_params]
        elif target == "symbol_json":
            seeds = [j.encode() for _, j, _ in models] + [legacy_json.encode()]
            real = os.path.join(LEGACY_DIR, "binarized_mnist_32bit-symbol.json")
            if os.path.isfile(real):  # 3 KB: the real thing, read from ../shared, not copied
                with open(real, "rb") as f:
                    seeds.append(f.read())
        else:
            seeds = [pack_pair(j, p) for _, j, p in models]
    elif target == "onnx":
        seeds = [m for _, m in onnx_models()]
    elif target == "attrs":
        seeds = [b"kernel=(3, 3)\nnum_filter=4\nact_bit=1\n",
                 b"num_hidden=10\nweight_bit=2\nscaling_mode=forward\ngrad_cancel=1.5\n",
                 b"act_grad=swish_sign\nswish_beta=5\npad_value=-1\nbinarized_weights_only=True\n"]
    else:
        raise ValueError("unknown target %r" % target)
    for i, data in enumerate(seeds):
        with open(os.path.join(folder, "seed-%02d" % i), "wb") as f:
            f.write(data)
    return len(seeds)
