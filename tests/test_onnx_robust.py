"""ONNX robustness (issue 10, findings 5 and 6): malformed models end in OnnxImportError naming the
node and the fix, never in a crash or another exception; export of BatchNorm(fix_gamma) and
SoftmaxOutput against MXNet's own output; registration after a plain ``import bmxnet``; file modes.

Hostile models are built here (building a protobuf runs no inference) and imported in a child
interpreter (tests/subproc.py), several per child, so that a crash fails one test.
"""
import copy
import json
import os
import stat
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import bmxnet.onnx
from bmxnet.onnx import OnnxImportError, export_model, import_bytes, import_model
from subproc import ROOT, describe, expect_ok, run_snippet

ort.set_default_logger_severity(3)


def _run_ort(path, feeds):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0], [i.name for i in sess.get_inputs()]


# ------------------------------------------------------------------------------------------------
# hostile models, derived from one small valid model
# ------------------------------------------------------------------------------------------------
def _base():
    """x (1, 2, 5, 5) -> Conv 3x3 pad 1 -> Relu -> MaxPool 2 -> Flatten -> Gemm -> y (1, 4)."""
    rng = np.random.RandomState(0)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1],
                              kernel_shape=[3, 3], strides=[1, 1], dilations=[1, 1], group=1),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[1, 1]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="gemm", transB=1)]
    inits = [numpy_helper.from_array(rng.randn(3, 2, 3, 3).astype(np.float32), "w"),
             numpy_helper.from_array(rng.randn(4, 48).astype(np.float32), "g")]
    graph = helper.make_graph(nodes, "base",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _node(m, name):
    return next(n for n in m.graph.node if n.name == name)


def _set_attr(m, node, name, value):
    n = _node(m, node)
    for i, a in enumerate(n.attribute):
        if a.name == name:
            del n.attribute[i]
            break
    if value is not None:
        n.attribute.append(helper.make_attribute(name, value))


def _init(m, name):
    return next(t for t in m.graph.initializer if t.name == name)


def _input_dims(m, dims):
    shape = m.graph.input[0].type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        shape.dim.add().dim_value = d


def _swap_first_nodes(m):
    a, b = copy.deepcopy(m.graph.node[0]), copy.deepcopy(m.graph.node[1])
    m.graph.node[0].CopyFrom(b)
    m.graph.node[1].CopyFrom(a)


def _set_input(m, node, i, name):
    _node(m, node).input[i] = name


def _raw(m, name, data):
    _init(m, name).raw_data = data


def _huge(m):
    t = _init(m, "g")
    del t.dims[:]
    t.dims.extend([2 ** 20, 2 ** 20])


def _string_init(m):
    m.graph.initializer.append(helper.make_tensor("s", TensorProto.STRING, [1], [b"a"]))
    _set_input(m, "gemm", 1, "s")


def _external(m):
    t = _init(m, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"


def _concat_ranks(m):
    m.graph.node.insert(4, helper.make_node("Concat", ["f", "p"], ["cc"], name="cat", axis=1))


def _unsqueeze(m):
    m.graph.initializer.append(numpy_helper.from_array(np.array([7], np.int64), "ax"))
    m.graph.node.insert(2, helper.make_node("Unsqueeze", ["r", "ax"], ["u"], name="unsq"))


def _pad_count(m):
    m.graph.initializer.append(numpy_helper.from_array(np.array([1, 1], np.int64), "pp"))
    m.graph.node.insert(2, helper.make_node("Pad", ["r", "pp"], ["pd"], name="pad"))


def _weight_channels(m):
    t = _init(m, "w")
    t.CopyFrom(numpy_helper.from_array(np.ones((3, 5, 3, 3), np.float32), "w"))


def _reshape(m):
    m.graph.initializer.append(numpy_helper.from_array(np.array([7, 5], np.int64), "shp"))
    m.graph.node.insert(4, helper.make_node("Reshape", ["f", "shp"], ["rs"], name="reshape"))
    _set_input(m, "gemm", 0, "rs")


def _binary_conv_bias(m):
    """Sign -> Conv(±1 weights) with a bias of 2 values for 3 filters (once silently dropped)."""
    m.graph.node.insert(0, helper.make_node("Sign", ["x"], ["sx"], name="sign"))
    _set_input(m, "conv", 0, "sx")
    _init(m, "w").CopyFrom(numpy_helper.from_array(np.ones((3, 2, 3, 3), np.float32), "w"))
    m.graph.initializer.append(numpy_helper.from_array(np.ones(2, np.float32), "b"))
    _node(m, "conv").input.append("b")


def _weight(m, name, shape, sign=False):
    _init(m, name).CopyFrom(numpy_helper.from_array(np.ones(shape, np.float32), name))
    if sign:
        m.graph.node.insert(0, helper.make_node("Sign", ["x"], ["sx"], name="sign"))
        _set_input(m, "conv", 0, "sx")


def _int_operand(m):
    m.graph.initializer.append(numpy_helper.from_array(np.ones(4, np.int64), "k"))
    m.graph.node.append(helper.make_node("Add", ["y", "k"], ["z"], name="add"))
    m.graph.output[0].name = "z"


def _const_outer_product(m):
    """Two constants of 2^16 elements whose folded product would have 2^32 (16 GiB)."""
    m.graph.initializer.append(numpy_helper.from_array(np.ones((1, 65536), np.float32), "ca"))
    m.graph.initializer.append(numpy_helper.from_array(np.ones((65536, 1), np.float32), "cb"))
    m.graph.node.append(helper.make_node("Mul", ["ca", "cb"], ["cc"], name="outer"))
    m.graph.node.append(helper.make_node("Add", ["y", "cc"], ["z"], name="add"))
    m.graph.output[0].name = "z"


CASES = {  # name: (mutation, fragments of the message)
    # attributes (onnx's shape inference trusts them: strides 0 is SIGFPE)
    "conv_strides_zero": (lambda m: _set_attr(m, "conv", "strides", [0, 0]),
                          ["node 'conv' (Conv): attribute strides=[0, 0] is invalid", ">= 1"]),
    "conv_dilations_zero": (lambda m: _set_attr(m, "conv", "dilations", [0, 1]),
                            ["node 'conv' (Conv): attribute dilations=[0, 1]"]),
    "conv_group_zero": (lambda m: _set_attr(m, "conv", "group", 0),
                        ["node 'conv' (Conv): attribute group=0"]),
    "conv_pads_negative": (lambda m: _set_attr(m, "conv", "pads", [-1, 0, 0, 0]),
                           ["attribute pads=[-1, 0, 0, 0]"]),
    "conv_kernel_float": (lambda m: _set_attr(m, "conv", "kernel_shape", 3.0),
                          ["attribute kernel_shape must be a list of ints"]),
    "conv_auto_pad": (lambda m: _set_attr(m, "conv", "auto_pad", "BOGUS"),
                      ["attribute auto_pad=BOGUS", "SAME_UPPER"]),
    "pool_strides_zero": (lambda m: _set_attr(m, "pool", "strides", [0, 0]),
                          ["node 'pool' (MaxPool): attribute strides=[0, 0]"]),
    "pool_kernel_zero": (lambda m: _set_attr(m, "pool", "kernel_shape", [0, 2]),
                         ["node 'pool' (MaxPool): attribute kernel_shape=[0, 2]"]),
    "pool_no_kernel": (lambda m: _set_attr(m, "pool", "kernel_shape", None),
                       ["node 'pool' (MaxPool): the required attribute kernel_shape"]),
    "flatten_axis": (lambda m: _set_attr(m, "flat", "axis", 9),
                     ["node 'flat' (Flatten): axis=9 does not fit a rank-4 input"]),
    "gemm_trans": (lambda m: _set_attr(m, "gemm", "transA", 2),
                   ["node 'gemm' (Gemm): attribute transA=2"]),
    # graph
    "dangling_input": (lambda m: _set_input(m, "relu", 0, "nosuch"),
                       ["node 'relu' (Relu): input 'nosuch' is not produced", "dangling"]),
    "cycle": (_swap_first_nodes, ["node 'relu' (Relu): input 'c' is produced by a later node",
                                  "cycle"]),
    "self_loop": (lambda m: _set_input(m, "relu", 0, "r"), ["input 'r'", "cycle"]),
    "duplicate_output": (lambda m: _node(m, "pool").output.__setitem__(0, "c"),
                         ["node 'pool' (MaxPool): output 'c' is already defined"]),
    "missing_initializer": (lambda m: m.graph.initializer.remove(_init(m, "w")),
                            ["node 'conv' (Conv): input 'w' is not produced"]),
    "duplicate_initializer": (lambda m: m.graph.initializer.append(copy.deepcopy(_init(m, "w"))),
                              ["initializer name 'w' is used twice"]),
    "unknown_graph_output": (lambda m: setattr(m.graph.output[0], "name", "zzz"),
                             ["graph output 'zzz' is not produced"]),
    "input_count": (lambda m: _node(m, "relu").input.append("x"),
                    ["node 'relu' (Relu) has 2 inputs; Relu takes 1 to 1"]),
    "opset": (lambda m: setattr(m.opset_import[0], "version", 99),
              ["opset version 99 is not supported"]),
    "unsupported": (lambda m: setattr(_node(m, "relu"), "op_type", "Erf"),
                    ["node 'relu' (Erf): unsupported operator type 'Erf'"]),
    "domain": (lambda m: setattr(_node(m, "relu"), "domain", "com.example"),
               ["node 'relu' (Relu): operators of domain 'com.example'"]),
    # tensors
    "truncated_initializer": (lambda m: _raw(m, "w", _init(m, "w").raw_data[:200]),
                              ["initializer 'w' holds 200 bytes", "need 216", "re-export"]),
    "huge_initializer": (_huge, ["initializer 'g' has 1099511627776 elements"]),
    "negative_dims": (lambda m: _init(m, "w").dims.__setitem__(0, -3),
                      ["initializer 'w' has invalid dimensions [-3, 2, 3, 3]"]),
    "string_initializer": (_string_init, ["initializer 's' has data type STRING"]),
    "external_data": (_external, ["initializer 'w' keeps its data in an external file",
                                  "save_as_external_data=False"]),
    "empty_conv_weight": (lambda m: _weight(m, "w", (3, 0, 3, 3)),  # once imported silently
                          ["node 'conv' (Conv): the constant that becomes 'conv_weight' has the "
                           "empty shape (3, 0, 3, 3)"]),
    "empty_binary_weight": (lambda m: _weight(m, "w", (0, 2, 3, 3), sign=True),
                            ["node 'conv' (Conv): the constant", "empty shape (0, 2, 3, 3)"]),
    "empty_gemm_weight": (lambda m: _weight(m, "g", (4, 0)),
                          ["node 'gemm' (Gemm): the constant", "empty shape (4, 0)"]),
    "int_operand": (_int_operand, ["node 'add' (Add): the constant 'k' is int64",
                                   "needs float operands"]),
    "const_outer_product": (_const_outer_product,
                            ["node 'outer' (Mul): the constants of shapes (1, 65536) and "
                             "(65536, 1) broadcast to (65536, 65536), more than 2147483648"]),
    "int_input": (lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type",
                                    TensorProto.INT64),
                  ["input 'x' is INT64; only float32 inputs"]),
    "zero_dim_input": (lambda m: _input_dims(m, [1, 0, 5, 5]),
                       ["input 'x' has dimensions [1, 0, 5, 5]; each must be >= 1"]),
    # ranks (onnx's shape inference indexes attributes by the input's rank)
    "conv_2d_input": (lambda m: _input_dims(m, [2, 5]),
                      ["node 'conv' (Conv): input 'x' has rank 2; Conv needs 4-D (NCHW) data"]),
    "conv_3d_weight": (lambda m: _init(m, "w").CopyFrom(numpy_helper.from_array(
        np.ones((3, 2, 9), np.float32), "w")),
                       ["node 'conv' (Conv): input 'w' has rank 3; Conv needs 4-D weights"]),
    "concat_ranks": (_concat_ranks, ["node 'cat' (Concat): the inputs have different ranks"]),
    "unsqueeze_axes": (_unsqueeze, ["node 'unsq' (Unsqueeze): axes [7] do not fit"]),
    "pad_count": (_pad_count, ["node 'pad' (Pad): 2 pads do not fit a rank-4 input"]),
    # consistent for onnx, refused by MXNet's shape inference
    "weight_channels": (_weight_channels, ["does not pass MXNet's shape inference"]),
    "reshape_size": (_reshape, ["does not pass MXNet's shape inference",
                                "Error in operator gemm"]),
    "binary_conv_bias": (_binary_conv_bias, ["node 'conv' (Conv): the bias of shape (2,) does "
                                             "not match the 3 output channels"]),
}

GROUPS = {  # one child interpreter per group
    "attributes": [k for k in CASES if k.startswith(("conv_", "pool_", "flatten", "gemm"))
                   and k not in ("conv_2d_input", "conv_3d_weight")],
    "graph": ["dangling_input", "cycle", "self_loop", "duplicate_output", "missing_initializer",
              "duplicate_initializer", "unknown_graph_output", "input_count", "opset",
              "unsupported", "domain"],
    "tensors": ["truncated_initializer", "huge_initializer", "negative_dims", "string_initializer",
                "external_data", "int_input", "zero_dim_input", "empty_conv_weight",
                "empty_binary_weight", "empty_gemm_weight", "int_operand", "const_outer_product"],
    "ranks": ["conv_2d_input", "conv_3d_weight", "concat_ranks", "unsqueeze_axes", "pad_count",
              "weight_channels", "reshape_size", "binary_conv_bias"],
}


def test_groups_cover_every_case():
    assert sorted(k for g in GROUPS.values() for k in g) == sorted(CASES)


IMPORT_ALL = """
import json
import bmxnet.onnx
results = {{}}
for name, path in {paths!r}.items():
    try:
        bmxnet.onnx.import_model(path, {prefix!r})
        results[name] = "imported"
    except bmxnet.onnx.OnnxImportError as err:
        results[name] = "OnnxImportError: " + str(err)
    except Exception as err:
        results[name] = "%s: %s" % (type(err).__name__, err)
print("RESULTS=" + json.dumps(results))
"""


def _import_in_child(models, tmp_path, **kwargs):
    paths = {}
    for name, data in models.items():
        paths[name] = str(tmp_path / (name + ".onnx"))
        with open(paths[name], "wb") as f:
            f.write(data)
    proc = run_snippet(IMPORT_ALL.format(paths=paths, prefix=str(tmp_path / "out")), **kwargs)
    assert proc.returncode == 0, describe(proc)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULTS="))
    return json.loads(line[len("RESULTS="):])


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_malformed_models_raise_onnx_import_error(tmp_path, group):
    """(under glibc's heap checker: an overrun in onnx or MXNet aborts the child)"""
    models = {}
    for name in GROUPS[group]:
        model = _base()
        CASES[name][0](model)
        models[name] = model.SerializeToString()
    results = _import_in_child(models, tmp_path, malloc_check=True)
    for name in GROUPS[group]:
        got = results[name]
        assert got.startswith("OnnxImportError: "), (name, got)
        assert (tmp_path / (name + ".onnx")).name in got, (name, got)  # names the file
        for fragment in CASES[name][1]:
            assert fragment in got, (name, fragment, got)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("out")]  # nothing written


def test_base_model_imports_and_matches_onnxruntime(tmp_path):
    """The model the hostile cases derive from is valid: the failures above are the mutations'."""
    path = tmp_path / "base.onnx"
    onnx.save(_base(), str(path))
    sym, args, aux, _ = import_model(str(path))
    x = np.random.RandomState(1).randn(1, 2, 5, 5).astype(np.float32)
    want, _ = _run_ort(path, {"x": x})
    got = sym.eval(x=mx.nd.array(x), **args, **aux)[0].asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


FUZZ = """
import copy, random
import numpy as np
import onnx
from onnx import helper, numpy_helper
import bmxnet.onnx
sys.path.insert(0, {tests!r})
from test_onnx_robust import _base
from test_onnx import _handmade_bnn
bases = [_base(), _handmade_bnn(np.random.RandomState(0)),
         _handmade_bnn(np.random.RandomState(1), "Where")]
NAMES = ["strides", "pads", "dilations", "kernel_shape", "group", "axis", "perm", "axes",
         "transA", "transB", "alpha", "epsilon", "auto_pad", "ceil_mode", "mode"]
VALUES = [0, -1, 1, 2, 3, 2 ** 31, [0, 0], [1, 1], [0, 1, 2, 3], [-1, 1, 1, 1], [2, 2, 2],
          [5], 0.0, float("nan"), 1e30, b"VALID", b"SAME_LOWER", b"x"]
outcomes = {{}}
for seed in range({count}):
    r = random.Random(seed)
    m = copy.deepcopy(bases[seed % len(bases)])
    g = m.graph
    for _ in range(r.randrange(1, 4)):
        n = g.node[r.randrange(len(g.node))]
        k = r.randrange(6)
        if k < 3:
            name = r.choice(NAMES + [a.name for a in n.attribute])
            keep = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            n.attribute.extend(keep)
            n.attribute.append(helper.make_attribute(name, r.choice(VALUES)))
        elif k == 3:
            dims = g.input[0].type.tensor_type.shape.dim
            dims[r.randrange(len(dims))].dim_value = r.choice([1, 2, 7])
        elif k == 4 and len(g.node) > 1:
            del g.node[r.randrange(len(g.node))]
        else:
            t = g.initializer[r.randrange(len(g.initializer))]
            a = numpy_helper.to_array(t).copy()
            if a.size:
                values = [0, -1, 2, float("nan")] if a.dtype.kind == "f" else [0, -1, 2, 9]
                a.flat[r.randrange(a.size)] = r.choice(values)
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    data = m.SerializeToString()
    if r.random() < 0.1:
        data = data[:r.randrange(len(data))]
    try:
        bmxnet.onnx.import_bytes(data, convert=r.random() < 0.5)
        outcome = "imported"
    except bmxnet.onnx.OnnxImportError:
        outcome = "OnnxImportError"
    except Exception as err:
        outcome = "%s: %s (seed %d)" % (type(err).__name__, err, seed)
    outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(outcomes)
assert set(outcomes) <= {{"imported", "OnnxImportError"}}, outcomes
"""


def test_seeded_mutations_end_in_onnx_import_error_or_a_model():
    """A short seeded fuzz pass (the long one is the atheris harness), under glibc's heap
    checker: attribute values, input dimensions, dropped nodes, initializer values and
    truncated bytes."""
    out = expect_ok(FUZZ.format(tests=os.path.dirname(os.path.abspath(__file__)), count=300),
                    timeout=600, malloc_check=True)
    assert "imported" in out and "OnnxImportError" in out  # both outcomes were reached


def test_import_bytes_is_import_model_without_a_file(tmp_path):
    data = _base().SerializeToString()
    (tmp_path / "m.onnx").write_bytes(data)
    a = import_bytes(data)
    b = import_model(str(tmp_path / "m.onnx"))
    assert a[0].tojson() == b[0].tojson() and sorted(a[1]) == sorted(b[1])
    with pytest.raises(OnnxImportError, match="<bytes>: the file is empty"):
        import_bytes(b"")
    with pytest.raises(OnnxImportError, match="model.onnx: not an ONNX model"):
        import_bytes(b"\x08\x07garbage", source="model.onnx")


def test_long_sign_chain_does_not_recurse(tmp_path):
    """Lazy sign patterns are materialised as they are met: 3000 chained Signs import."""
    nodes = [helper.make_node("Sign", ["x" if i == 0 else "s%d" % (i - 1)], ["s%d" % i])
             for i in range(3000)]
    nodes.append(helper.make_node("Relu", ["s2999"], ["y"]))
    graph = helper.make_graph(nodes, "chain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    path = tmp_path / "chain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    sym, args, aux, _ = import_model(str(path))
    x = np.array([[-2, 0, 3], [1, -1, 0.5]], np.float32)
    want, _ = _run_ort(path, {"x": x})
    np.testing.assert_array_equal(sym.eval(x=mx.nd.array(x))[0].asnumpy(), want)


def test_negative_levels_are_not_a_quantizer(tmp_path):
    """Div(Round(Mul(Clip(x, 0, 1), -1)), -1) is no k-bit pattern (2^k - 1 > 0), so its Round is
    refused like any Round outside the pattern (the matcher once raised OverflowError here)."""
    lev = numpy_helper.from_array(np.array(-1.0, np.float32), "lev")
    lo = numpy_helper.from_array(np.array(0.0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(1.0, np.float32), "hi")
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"]),
             helper.make_node("Mul", ["c", "lev"], ["m"]),
             helper.make_node("Round", ["m"], ["r"]),
             helper.make_node("Div", ["r", "lev"], ["y"])]
    graph = helper.make_graph(nodes, "d",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                              [lev, lo, hi])
    path = tmp_path / "d.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(OnnxImportError, match=r"node 'r' \(Round\): Round is supported only"):
        import_model(str(path))


# ------------------------------------------------------------------------------------------------
# export: MXNet's own layers that mx2onnx gets wrong
# ------------------------------------------------------------------------------------------------
def _conv_bn(fix_gamma):
    data = mx.sym.var("data")
    y = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), name="conv")
    kwargs = {} if fix_gamma is None else {"fix_gamma": fix_gamma}
    return mx.sym.BatchNorm(y, name="bn", **kwargs)


def _params(sym, data_shape, rng, skip=("data", "softmax_label")):
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    args = {n: mx.nd.array(rng.uniform(-3, 3, s)) for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in skip}
    aux = {n: mx.nd.array(rng.uniform(0.5, 2, s))
           for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def _mxnet_forward(sym, x, args, aux, **extra):
    """MXNet's own inference output (Module-style executor, is_train=False)."""
    feeds = dict(args, data=mx.nd.array(x), **extra)
    ex = sym.bind(mx.cpu(), feeds, aux_states=aux, grad_req="null")
    return ex.forward(is_train=False)[0].asnumpy()


@pytest.mark.parametrize("fix_gamma", [None, True, False])
def test_batchnorm_fix_gamma_export_matches_mxnet(tmp_path, rng, fix_gamma):
    """Conv -> BatchNorm with gamma != 1 stored: MXNet ignores gamma under fix_gamma (the
    default); the ONNX file must too."""
    sym = _conv_bn(fix_gamma)
    shape = (2, 3, 7, 7)
    args, aux = _params(sym, shape, rng)
    assert np.abs(args["bn_gamma"].asnumpy() - 1).max() > 0.5
    x = rng.randn(*shape).astype(np.float32)
    want = _mxnet_forward(sym, x, args, aux)
    path = str(tmp_path / "bn.onnx")
    mx.onnx.export_model(sym, dict(args, **aux), in_shapes=[shape], in_types=[np.float32],
                         onnx_file_path=path)
    got, _ = _run_ort(path, {"data": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    # the formula, independently: gamma is 1 unless fix_gamma=False
    conv = mx.nd.Convolution(mx.nd.array(x), args["conv_weight"], args["conv_bias"],
                             num_filter=4, kernel=(3, 3)).asnumpy()
    gamma = args["bn_gamma"].asnumpy() if fix_gamma is False else np.ones(4, np.float32)
    mean, var = aux["bn_moving_mean"].asnumpy(), aux["bn_moving_var"].asnumpy()
    ref = (conv - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) \
        * gamma[:, None, None] + args["bn_beta"].asnumpy()[:, None, None]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("kwargs,shape", [({}, (3, 12)), ({"multi_output": True}, (2, 3, 4, 4)),
                                          ({"preserve_shape": True}, (2, 3, 5))])
def test_softmax_output_exports_as_softmax(tmp_path, rng, kwargs, shape):
    """A graph ending in SoftmaxOutput (Module checkpoints): exported as its inference output,
    the label input dropped, by mx.onnx.export_model and by bmxnet.onnx.export_model."""
    data = mx.sym.var("data")
    y = mx.sym.Convolution(data, num_filter=3, kernel=(1, 1), name="conv") if len(shape) == 4 \
        else mx.sym.FullyConnected(data, num_hidden=shape[-1], flatten=len(shape) == 2, name="fc")
    sym = mx.sym.SoftmaxOutput(y, name="softmax", **kwargs)
    args, aux = _params(sym, shape, rng)
    x = rng.randn(*shape).astype(np.float32)
    label_shape = sym.infer_shape(data=shape)[0][sym.list_arguments().index("softmax_label")]
    want = _mxnet_forward(sym, x, args, aux, softmax_label=mx.nd.zeros(label_shape))
    # the reference: numpy softmax over MXNet's axis
    logits = _mxnet_forward(y, x, args, aux)
    axis = -1 if kwargs.get("preserve_shape") else 1
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(want, e / e.sum(axis=axis, keepdims=True), rtol=1e-5, atol=1e-6)
    path = str(tmp_path / "so.onnx")
    mx.onnx.export_model(sym, dict(args, **aux), in_shapes=[shape], in_types=[np.float32],
                         onnx_file_path=path)
    got, inputs = _run_ort(path, {"data": x})
    assert inputs == ["data"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    path = export_model(sym, (args, aux), shape, tmp_path / "so2.onnx")
    got, inputs = _run_ort(path, {"data": x})
    assert inputs == ["data"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_softmax_output_of_4d_data_is_refused_with_the_fix(tmp_path, rng):
    """MXNet's own kernels disagree there (oneDNN: last axis; reference: flattened)."""
    sym = mx.sym.SoftmaxOutput(mx.sym.Convolution(mx.sym.var("data"), num_filter=3,
                                                  kernel=(1, 1), name="conv"), name="softmax")
    args, aux = _params(sym, (2, 3, 4, 4), rng)
    with pytest.raises(bmxnet.onnx.OnnxExportError,
                       match="softmax: SoftmaxOutput of 4-D data .* flatten the data first"):
        export_model(sym, (args, aux), (2, 3, 4, 4), tmp_path / "so.onnx")
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------------------
# registration and files
# ------------------------------------------------------------------------------------------------
def test_register_translators_is_idempotent():
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    before = {op: MXNetGraph.registry_[bmxnet.onnx.OPSET][op]
              for op in ("QConvolution", "QFullyConnected", "QActivation", "SoftmaxOutput",
                         "BatchNorm")}
    assert bmxnet.onnx.register_translators() == []
    assert all(MXNetGraph.registry_[bmxnet.onnx.OPSET][op] is f for op, f in before.items())
    assert not any("SoftmaxOutput" in ops or "BatchNorm" in ops
                   for v, ops in MXNetGraph.registry_.items() if v != bmxnet.onnx.OPSET)


def test_registration_is_light_and_needs_no_onnx_package():
    """Importing bmxnet.onnx loads neither the translators' module nor the importer, and works
    when the onnx package is missing (export is then unavailable, as in MXNet)."""
    code = ("import sys\n"
            "sys.modules['onnx'] = None  # as if onnx were not installed\n"
            "import mxnet, bmxnet, bmxnet.onnx\n"
            "assert bmxnet.onnx.register_translators() == []\n"
            "assert issubclass(bmxnet.onnx.OnnxImportError, bmxnet.onnx.OnnxError)\n"
            "assert not {'bmxnet.onnx.export', 'bmxnet.onnx.importer'} & set(sys.modules)\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "ok" in proc.stdout, describe(proc)


def test_plain_import_bmxnet_exports_q_operators(tmp_path):
    """After `import bmxnet` alone (no bmxnet.onnx), mx.onnx.export_model handles Q-layers."""
    path = str(tmp_path / "q.onnx")
    out = expect_ok("""
        data = mx.sym.var("data")
        y = mx.sym.QConvolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name="qc")
        y = mx.sym.QFullyConnected(mx.sym.QActivation(y), num_hidden=3, name="qf")
        rng = np.random.RandomState(0)
        params = {{"qc_weight": mx.nd.array(rng.randn(4, 2, 3, 3)),
                  "qc_bias": mx.nd.array(rng.randn(4)),
                  "qf_weight": mx.nd.array(rng.randn(3, 100)),
                  "qf_bias": mx.nd.array(rng.randn(3))}}
        mx.onnx.export_model(y, params, in_shapes=[(2, 2, 5, 5)], in_types=[np.float32],
                             onnx_file_path={path!r})
        x = rng.randn(2, 2, 5, 5).astype(np.float32)
        want = mx.sym.Group([y]).eval(data=mx.nd.array(x), **params)[0].asnumpy()
        np.save({want!r}, want)
        np.save({xin!r}, x)
        print("exported")
        """.format(path=path, want=str(tmp_path / "want.npy"), xin=str(tmp_path / "x.npy")))
    assert "exported" in out
    got, _ = _run_ort(path, {"data": np.load(str(tmp_path / "x.npy"))})
    np.testing.assert_array_equal(got, np.load(str(tmp_path / "want.npy")))


def test_files_get_the_usual_mode(tmp_path, rng):
    """export_model and import_model write 0666 & ~umask (0644 under umask 022), not 0600."""
    old = os.umask(0o022)
    try:
        sym = _conv_bn(None)
        args, aux = _params(sym, (1, 3, 5, 5), rng)
        onnx_path = export_model(sym, (args, aux), (1, 3, 5, 5), tmp_path / "m.onnx")
        _, _, _, report = import_model(onnx_path, str(tmp_path / "imported"))
        files = [onnx_path] + report["files"]
    finally:
        os.umask(old)
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o644, (f, oct(os.stat(f).st_mode))
    assert sorted(os.listdir(tmp_path)) == ["imported-0000.params", "imported-symbol.json",
                                            "m.onnx"]  # no temporary files left


def test_unwritable_destinations_raise_the_area_error(tmp_path, rng):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    sym = _conv_bn(None)
    args, aux = _params(sym, (1, 3, 5, 5), rng)
    with pytest.raises(bmxnet.onnx.OnnxExportError, match="cannot write to .*a_file"):
        export_model(sym, (args, aux), (1, 3, 5, 5), blocker / "m.onnx")
    path = export_model(sym, (args, aux), (1, 3, 5, 5), tmp_path / "m.onnx")
    with pytest.raises(OnnxImportError, match="cannot create the folder .*a_file"):
        import_model(path, str(blocker / "sub" / "out"))
    assert sorted(os.listdir(tmp_path)) == ["a_file", "m.onnx"]


# ------------------------------------------------------------------------------------------------
# packed layers: the input size they were packed for, and shape hints
# ------------------------------------------------------------------------------------------------
def _binary_model(rng):
    """Sign -> Conv(±1, 2 groups, C = 6) -> Sign -> Flatten -> Gemm(±1, 8*4*4 = 128 inputs)."""
    pm1 = lambda *s: np.where(rng.rand(*s) < 0.5, -1.0, 1.0).astype(np.float32)  # noqa: E731
    nodes = [helper.make_node("Sign", ["x"], ["s0"]),
             helper.make_node("Conv", ["s0", "w"], ["c"], name="bconv", group=2),
             helper.make_node("Sign", ["c"], ["s1"]),
             helper.make_node("Flatten", ["s1"], ["f"], axis=1),
             helper.make_node("Gemm", ["f", "g"], ["y"], name="bdense", transB=1)]
    inits = [numpy_helper.from_array(pm1(8, 3, 3, 3), "w"),
             numpy_helper.from_array(pm1(5, 8 * 4 * 4), "g")]
    graph = helper.make_graph(nodes, "b",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 5])],
                              inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_packed_layers_carry_their_input_size_and_shape_hints(tmp_path, rng):
    model = _binary_model(rng)
    path = tmp_path / "b.onnx"
    onnx.save(model, str(path))
    sym, args, aux, report = import_model(str(path), str(tmp_path / "bin"))
    assert len(report["converter"].packed_layers) == 2
    graph = json.loads(sym.tojson())
    nodes = graph["nodes"]
    layers = {n["op"]: n for n in nodes if n["op"] in ("QConvolution", "QFullyConnected")}
    # C of the conv's data (total, not per group) and the dense layer's flattened input size
    assert layers["QConvolution"]["attrs"]["in_channels"] == "6"
    assert layers["QFullyConnected"]["attrs"]["in_units"] == str(8 * 4 * 4)
    for layer in layers.values():
        assert layer["attrs"]["binarized_weights_only"] == "True"
        for src in layer["inputs"][1:]:
            assert "__shape__" in nodes[src[0]].get("attrs", {}), nodes[src[0]]["name"]
    with open(str(tmp_path / "bin-symbol.json")) as f:
        saved = json.load(f)
    assert saved["nodes"] == nodes
    x = rng.randn(2, 6, 6, 6).astype(np.float32)
    want, _ = _run_ort(path, {"x": x})
    block = mx.gluon.SymbolBlock.imports(str(tmp_path / "bin-symbol.json"), ["x"],
                                         str(tmp_path / "bin-0000.params"))
    np.testing.assert_allclose(block(mx.nd.array(x)).asnumpy(), want, rtol=1e-5, atol=1e-5)
