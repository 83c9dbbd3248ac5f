"""bmxnet.runtime (mobile/runtime through its Cython binding) against MXNet on the same files.

Every model is built from the zoo with random weights and random BatchNorm statistics (so that
every layer matters), exported, converted with ``model_converter`` and then run twice on the
same binarized files: in MXNet (``gluon.SymbolBlock``) and in the runtime. MXNet is the oracle.

Tolerances:
* binary layers' outputs are compared exactly: a QConvolution's output is an integer match
  count times a scale, computed from signs both engines read from the same file, so any
  difference is a bug. The layer is cut out of the converted graph with its parameters and fed
  the same float input, whose signs both engines take.
* final outputs: ``|runtime - mxnet| <= 2e-5 * max|mxnet| + 1e-6``. Float layers (first
  convolution, 1x1 downsample, dense, BatchNorm) sum in another order than oneDNN does, and
  BatchNorm is folded; float32 keeps about 7 digits, and the differences seen are at most
  5e-7 of the output range (40x below the bound). A sign that flips in a binary layer changes
  match counts by 2, orders of magnitude above float rounding, and is meant to fail the bound:
  it would mean the fused thresholds are not MXNet's formula.
* argmax: identical on all 360 digits test images for the ``make demo`` model, on the migrated
  BMXNet v1 model and on the ONNX-imported model.
"""
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import warnings

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

import bmxnet.runtime as runtime
from bmxnet import converter, model_zoo
from subproc import describe, run_snippet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "smd_hpi_examples", "binary_mnist")
LEGACY = os.path.normpath(os.path.join(ROOT, "..", "shared", "bmxnet_legacy"))
# every value bmx_options_set_kernel_path takes (runtime.h)
KERNEL_PATHS = ("auto", "reference", "scalar", "avx2", "avx512", "neon")
HEADER = os.path.join(ROOT, "mobile", "runtime", "include", "bmxnet", "runtime.h")

# (zoo name, input shape): 224x224 where one layer shape of ImageNet matters (Bi-Real's
# 7x7/2 stem and max-pool, STEM's concat, AlexNet's 11x11/4), the 32x32 variants elsewhere.
ZOO = [
    ("binary_lenet", (1, 1, 28, 28)),
    ("binary_resnet18_cifar", (1, 3, 32, 32)),
    ("birealnet18", (1, 3, 224, 224)),
    ("birealnet18_stem", (1, 3, 224, 224)),
    ("binarynet_cifar", (1, 3, 32, 32)),
    ("xnornet", (1, 3, 224, 224)),
    ("binary_alexnet", (1, 3, 224, 224)),
    ("reactnet_a_cifar", (1, 3, 32, 32)),
]


def _close(got, want):
    """The float bound of the module docstring."""
    assert got.shape == want.shape, (got.shape, want.shape)
    bound = 2e-5 * float(np.abs(want).max()) + 1e-6
    diff = float(np.abs(got - want).max())
    assert diff <= bound, "max |runtime - mxnet| = %g > %g" % (diff, bound)


def _randomize_batchnorm(net, rng):
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.randn(*p.shape) * 0.5))
        elif name.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))


def _mxnet(symbol_file, params_file, inputs):
    """Outputs of the files in MXNet: {input name: array} -> list of arrays."""
    names = list(inputs)
    with warnings.catch_warnings():
        # MXNet warns that the inputs' type is not known before the first call; it is float32.
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = gluon.SymbolBlock.imports(symbol_file, names, params_file)
    outs = block(*[mx.nd.array(inputs[n]) for n in names])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return [o.asnumpy() for o in outs]


def _converted(name, shape, folder, seed=0):
    """(binarized symbol file, binarized params file) of zoo model ``name``, random weights."""
    rng = np.random.RandomState(seed)
    mx.random.seed(seed)
    net = model_zoo.get_model(name)
    net.initialize(mx.init.Xavier())
    net(mx.nd.array(rng.randn(*shape)))
    _randomize_batchnorm(net, rng)
    net.hybridize()
    net(mx.nd.array(rng.randn(*shape)))
    prefix = os.path.join(str(folder), name)
    net.export(prefix, epoch=0)
    report = converter.convert_checkpoint(prefix + "-0000.params", data_shape=shape)
    return report.files["symbol_out"], report.files["params_out"]


def _binary_layer_alone(symbol_file, params_file, layer, data_shape, folder):
    """One QConvolution of a converted graph, cut out: a json whose input 'data' feeds the layer
    directly, with a params file holding exactly the layer's parameters (same values).
    Returns (symbol file, params file, the layer's input shape in the full graph)."""
    cut_sym = mx.sym.load(symbol_file).get_internals()[layer + "_output"]
    cut = json.loads(cut_sym.tojson())
    nodes = cut["nodes"]
    qconv = nodes[-1]
    assert qconv["op"] == "QConvolution" and qconv["name"] == layer
    new_nodes = [{"op": "null", "name": "data", "inputs": []}]
    inputs = [[0, 0, 0]]
    for entry in qconv["inputs"][1:]:  # weight (and bias): variables
        assert nodes[entry[0]]["op"] == "null"
        inputs.append([len(new_nodes), 0, 0])
        new_nodes.append(nodes[entry[0]])
    new_nodes.append(dict(qconv, inputs=inputs))
    graph = {"nodes": new_nodes, "arg_nodes": list(range(len(new_nodes) - 1)),
             "node_row_ptr": list(range(len(new_nodes) + 1)),
             "heads": [[len(new_nodes) - 1, 0, 0]], "attrs": cut.get("attrs", {})}
    out_symbol = os.path.join(str(folder), "%s-symbol.json" % layer)
    with open(out_symbol, "w") as f:
        json.dump(graph, f)
    saved = mx.nd.load(params_file)
    keep = {"arg:" + n["name"] for n in new_nodes[1:-1]}
    out_params = os.path.join(str(folder), "%s-0000.params" % layer)
    mx.nd.save(out_params, {k: v for k, v in saved.items() if k in keep})
    _, in_shapes, _ = cut_sym.get_children()[0].infer_shape(data=data_shape)
    return out_symbol, out_params, tuple(in_shapes[0])


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    return {name: _converted(name, shape, folder) for name, shape in ZOO}


# ------------------------------------------------------------------------------------------
# The zoo: final outputs and binary layers
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape", ZOO, ids=[n for n, _ in ZOO])
def test_zoo_model_matches_mxnet(zoo_files, name, shape):
    symbol_file, params_file = zoo_files[name]
    x = np.random.RandomState(1).randn(*shape).astype(np.float32)
    (want,) = _mxnet(symbol_file, params_file, {"data": x})
    model = runtime.Model(symbol_file, params_file, input_shapes={"data": shape})
    assert model.input_names == ("data",) and model.input_shapes == (shape,)
    assert model.output_shapes == (want.shape,)
    got = model.run(x)
    assert got.dtype == np.float32
    _close(got, want)


@pytest.mark.parametrize("name,which", [("binary_lenet", 0), ("binary_resnet18_cifar", 0),
                                        ("binary_resnet18_cifar", -1), ("birealnet18", 5),
                                        ("binarynet_cifar", 0), ("binarynet_cifar", 1),
                                        ("xnornet", 2), ("binary_alexnet", 0),
                                        ("reactnet_a_cifar", -1)])
def test_binary_layer_outputs_are_identical(zoo_files, tmp_path, name, which):
    """A binary QConvolution alone (``which``: its index among the model's QConvolution nodes
    with 1-bit inputs; the others multiply float inputs by +-1 weights in float), fed
    the same float input in both engines: its output must be bit for bit MXNet's."""
    symbol_file, params_file = zoo_files[name]
    layers = [n["name"] for n in json.load(open(symbol_file))["nodes"]
              if n["op"] == "QConvolution" and n["attrs"]["act_bit"] == "1"]
    sym, params, in_shape = _binary_layer_alone(symbol_file, params_file, layers[which],
                                                dict(ZOO)[name], tmp_path)
    x = np.random.RandomState(2).randn(*in_shape).astype(np.float32)
    (want,) = _mxnet(sym, params, {"data": x})
    ran = []
    for path in KERNEL_PATHS:
        try:
            model = runtime.Model(sym, params, input_shapes={"data": in_shape},
                                  kernel_path=path)
        except runtime.RuntimeModelError as err:  # not built here, or not on this CPU
            assert err.status == "BMX_ERROR_UNSUPPORTED" and path in err.message, err
            continue
        np.testing.assert_array_equal(model.run(x), want, err_msg="kernel_path=%s" % path)
        ran.append(path)
    assert {"auto", "reference", "scalar"} <= set(ran), ran


# ------------------------------------------------------------------------------------------
# The make demo model on the 360 digits test images
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """The ``make demo`` model, trained for one epoch (accuracy ~0.9), converted."""
    sys.path.insert(0, EXAMPLE)
    import binary_mnist
    folder = str(tmp_path_factory.mktemp("demo"))
    trained = binary_mnist.main(["--epochs", "1", "--out-dir", folder, "--no-progress"])
    report = converter.convert_checkpoint(trained["params_file"], data_shape=(1, 1, 28, 28))
    return report.files["symbol_out"], report.files["params_out"], trained


def test_demo_model_argmax_on_all_digits(demo_model):
    symbol_file, params_file, trained = demo_model
    x, y = trained["x_test"], trained["y_test"]
    assert len(x) == 360
    (want,) = _mxnet(symbol_file, params_file, {"data": x})
    single = runtime.Model(symbol_file, params_file, input_shapes={"data": (1, 1, 28, 28)})
    got = np.concatenate([single.run(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    _close(got, want)
    assert (got.argmax(1) == y).mean() == trained["test_accuracy"]
    # all images in one batch, on two threads: the same predictions
    batched = runtime.Model(symbol_file, params_file, input_shapes={"data": x.shape},
                            num_threads=2)
    np.testing.assert_array_equal(batched.run(x).argmax(1), want.argmax(1))


# ------------------------------------------------------------------------------------------
# Migrated BMXNet v1 model and an ONNX-imported one
# ------------------------------------------------------------------------------------------
@pytest.mark.skipif(not os.path.isfile(os.path.join(LEGACY, "binarized_mnist_64bit-0001.params")),
                    reason="BMXNet v1 test files not found in %s" % LEGACY)
def test_migrated_bmxnet_v1_model(tmp_path, demo_model):
    report = converter.convert_checkpoint(
        os.path.join(LEGACY, "binarized_mnist_64bit-0001.params"), from_bmxnet=True,
        output_dir=str(tmp_path), data_shape=(1, 1, 28, 28))
    symbol_file, params_file = report.files["symbol_out"], report.files["params_out"]
    x = demo_model[2]["x_test"]
    (want,) = _mxnet(symbol_file, params_file, {"data": x})
    model = runtime.Model(symbol_file, params_file, input_shapes={"data": x.shape})
    got = model.run(x)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    _close(got, want)


def test_onnx_imported_model(tmp_path):
    pytest.importorskip("onnx")
    import onnx
    from test_onnx import _handmade_bnn
    from bmxnet.onnx import import_model
    path = str(tmp_path / "bnn.onnx")
    onnx.save(_handmade_bnn(np.random.RandomState(3)), path)
    prefix = str(tmp_path / "binarized_bnn")
    import_model(path, prefix)
    symbol_file, params_file = prefix + "-symbol.json", prefix + "-0000.params"
    x = np.random.RandomState(4).randn(2, 3, 16, 16).astype(np.float32)
    (want,) = _mxnet(symbol_file, params_file, {"x": x})
    model = runtime.Model(symbol_file, params_file, input_shapes={"x": x.shape})
    assert model.input_names == ("x",)
    got = model.run(x)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    _close(got, want)


# ------------------------------------------------------------------------------------------
# The binding itself
# ------------------------------------------------------------------------------------------
def test_version_is_the_headers():
    text = open(HEADER).read()
    parts = [text.split("#define BMX_VERSION_%s " % p)[1].split()[0]
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert runtime.version() == ".".join(parts)


def test_from_buffers_plan_and_signature(zoo_files):
    symbol_file, params_file = zoo_files["binary_lenet"]
    x = np.random.RandomState(5).randn(1, 1, 28, 28).astype(np.float32)
    from_files = runtime.Model(symbol_file, params_file, input_shapes={"data": x.shape})
    with open(symbol_file) as f:
        text = f.read()
    with open(params_file, "rb") as f:
        raw = f.read()
    from_memory = runtime.Model.from_buffers(text, raw, input_shapes={"data": x.shape})
    np.testing.assert_array_equal(from_memory.run(x), from_files.run(x))
    assert from_memory.output_names == from_files.output_names
    assert from_files.arena_bytes > 0
    plan = from_files.describe()
    assert "QConvolution" in plan or "qconv" in plan.lower(), plan
    assert str(from_files.arena_bytes) in plan, plan
    assert "arena_bytes=%d" % from_files.arena_bytes in repr(from_files)


def test_extension_runs_without_mxnet(zoo_files, tmp_path):
    """The extension module alone (loaded by its file, as an app would ship it; ``import
    bmxnet`` would load MXNet) runs a model in a process that never imports MXNet."""
    symbol_file, params_file = zoo_files["binary_lenet"]
    x = np.random.RandomState(8).randn(1, 1, 28, 28).astype(np.float32)
    want = runtime.Model(symbol_file, params_file, input_shapes={"data": x.shape}).run(x)
    np.save(str(tmp_path / "x.npy"), x)
    code = textwrap.dedent("""
        import importlib.util, sys
        import numpy as np
        spec = importlib.util.spec_from_file_location("_runtime", %r)
        rt = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(rt)
        model = rt.Model(%r, %r, input_shapes={"data": (1, 1, 28, 28)})
        np.save(%r, model.run(np.load(%r)))
        assert "mxnet" not in sys.modules and "bmxnet" not in sys.modules, "MXNet was imported"
    """) % (runtime._runtime.__file__, symbol_file, params_file, str(tmp_path / "y.npy"),
            str(tmp_path / "x.npy"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, describe(proc)
    np.testing.assert_array_equal(np.load(str(tmp_path / "y.npy")), want)


def test_wrong_inputs_are_python_errors(zoo_files):
    symbol_file, params_file = zoo_files["binary_lenet"]
    model = runtime.Model(symbol_file, params_file, input_shapes={"data": (1, 1, 28, 28)})
    with pytest.raises(ValueError, match=r"compiled for \(1, 1, 28, 28\)"):
        model.run(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(ValueError, match="missing"):
        model.run(image=np.zeros((1, 1, 28, 28)))
    for shape in ("1x1x28x28", (1, 1, 28.0, 28)):
        with pytest.raises(TypeError, match="tuple of ints"):
            runtime.Model(symbol_file, params_file, input_shapes={"data": shape})
    with pytest.raises(TypeError, match="dict"):
        runtime.Model(symbol_file, params_file, input_shapes=[(1, 1, 28, 28)])
    with pytest.raises(TypeError, match="num_threads must be an int"):
        runtime.Model(symbol_file, params_file, input_shapes={"data": (1, 1, 28, 28)},
                      num_threads="2")
    with pytest.raises(TypeError, match="loaded already"):
        model.__init__(symbol_file, params_file, input_shapes={"data": (1, 1, 28, 28)})
    # float64 and non-contiguous inputs are converted, not refused
    x = np.random.RandomState(6).randn(1, 1, 28, 56)[:, :, :, ::2]
    np.testing.assert_array_equal(model.run(x), model.run(x.astype(np.float32).copy()))


def test_errors_name_the_status(zoo_files, tmp_path):
    symbol_file, params_file = zoo_files["binary_lenet"]
    with pytest.raises(runtime.RuntimeModelError) as err:
        runtime.Model(str(tmp_path / "missing.json"), params_file,
                      input_shapes={"data": (1, 1, 28, 28)})
    assert err.value.status == "BMX_ERROR_IO" and "missing.json" in err.value.message
    with pytest.raises(runtime.RuntimeModelError) as err:
        runtime.Model(symbol_file, params_file, input_shapes={"data": (1, 1, 28, 28)},
                      kernel_path="sparc")
    assert err.value.status in ("BMX_ERROR_INVALID_ARGUMENT", "BMX_ERROR_UNSUPPORTED")
    assert "sparc" in err.value.message


def test_threads_share_a_model(zoo_files):
    """Eight Python threads on one Model (one predictor behind a lock) get the answers a
    single thread gets."""
    symbol_file, params_file = zoo_files["binary_resnet18_cifar"]
    model = runtime.Model(symbol_file, params_file, input_shapes={"data": (1, 3, 32, 32)},
                          num_threads=2)
    xs = np.random.RandomState(7).randn(8, 1, 3, 32, 32).astype(np.float32)
    want = [model.run(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(3):
            got[i] = model.run(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------------------------------------------------
# Hostile files: an exception with a status, never a crash (in a child process)
# ------------------------------------------------------------------------------------------
def _hostile_files(symbol_file, params_file, folder):
    """{case: (symbol file, params file, input shape)} of damaged copies of the LeNet files."""
    graph = json.load(open(symbol_file))
    raw = open(params_file, "rb").read()
    cases = {}

    def write(case, graph_=None, raw_=None, shape=(1, 1, 28, 28)):
        sym_out = os.path.join(folder, case + "-symbol.json")
        par_out = os.path.join(folder, case + "-0000.params")
        with open(sym_out, "w") as f:
            json.dump(graph if graph_ is None else graph_, f)
        with open(par_out, "wb") as f:
            f.write(raw if raw_ is None else raw_)
        cases[case] = (sym_out, par_out, shape)

    for keep in (0, 8, 24, len(raw) // 2, len(raw) - 1):
        write("truncated_params_%d" % keep, raw_=raw[:keep])
    write("trailing_garbage", raw_=raw + b"\x00" * 7)
    last = len(graph["nodes"]) - 1
    for case, index in (("input_out_of_range", 10 ** 6), ("input_negative", -1),
                        ("input_forward", last), ("input_self", None)):
        g = json.loads(json.dumps(graph))
        ops = [i for i, n in enumerate(g["nodes"]) if n["op"] != "null"]
        victim = ops[len(ops) // 2]
        g["nodes"][victim]["inputs"][0][0] = victim if index is None else index
        write(case, graph_=g)
    g = json.loads(json.dumps(graph))
    g["heads"] = [[10 ** 6, 0, 0]]
    write("head_out_of_range", graph_=g)
    write("not_json", graph_={"nodes": 5})
    # the first array (a float weight): magic, storage type, ndim, int64 dims, device type and
    # id, dtype flag. Its dtype flag patched to an unknown code, then to int32 (a valid file whose
    # float weight has the wrong type)
    first = 24  # after the list magic, a reserved word and the array count (3 x uint64)
    assert struct.unpack_from("<I", raw, first)[0] == 0xF993FAC9  # NDArray V2 record
    ndim = struct.unpack_from("<I", raw, first + 8)[0]
    dtype_at = first + 8 + 4 + 8 * ndim + 8
    for case, code in (("dtype_unknown", 99), ("dtype_int32", 4)):
        write(case, raw_=raw[:dtype_at] + struct.pack("<i", code) + raw[dtype_at + 4:])
    huge = raw[:first + 12] + struct.pack("<q", 2 ** 40) + raw[first + 20:]
    write("huge_array_shape", raw_=huge)
    negative = raw[:first + 12] + struct.pack("<q", -5) + raw[first + 20:]
    write("negative_array_shape", raw_=negative)
    write("huge_input_shape", shape=(1, 1, 2 ** 31, 2 ** 31))
    write("negative_input_shape", shape=(1, 1, -28, 28))
    write("wrong_input_rank", shape=(1, 28, 28))
    g = json.loads(json.dumps(graph))
    g["nodes"][[n["op"] for n in g["nodes"]].index("Pooling")]["op"] = "LRN"
    write("unsupported_operator", graph_=g)
    return cases


def test_hostile_files_raise_runtime_model_error(zoo_files, tmp_path):
    symbol_file, params_file = zoo_files["binary_lenet"]
    cases = _hostile_files(symbol_file, params_file, str(tmp_path))
    code = """
        import bmxnet.runtime as rt
        cases = %r
        for case, (sym, params, shape) in sorted(cases.items()):
            print(case, end=' ', flush=True)
            try:
                rt.Model(sym, params, input_shapes={'data': shape}).run(np.zeros(shape, 'f4'))
                print('ACCEPTED', flush=True)
            except rt.RuntimeModelError as e:
                print(e.status, repr(e.message), flush=True)
                with open(sym, 'rb') as f, open(params, 'rb') as g:
                    try:
                        rt.Model.from_buffers(f.read(), g.read(), input_shapes={'data': shape})
                        print('  buffers ACCEPTED', flush=True)
                    except rt.RuntimeModelError as e2:
                        print('  buffers', e2.status, flush=True)
    """ % (cases,)
    proc = run_snippet(code, malloc_check=True)
    assert proc.returncode == 0, describe(proc)
    results = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
                   if not line.startswith(" "))
    assert sorted(results) == sorted(cases), describe(proc)
    accepted = [case for case, line in results.items() if "ACCEPTED" in line]
    assert not accepted and "ACCEPTED" not in proc.stdout, describe(proc)
    for case, line in results.items():
        status = line.split()[0]
        message = line.split(" ", 1)[1]
        assert status.startswith("BMX_ERROR_") and len(message) > 10, (case, line)
        if case.startswith(("truncated", "input_", "head_", "not_json", "dtype_unknown",
                            "huge_array", "negative_array", "trailing")):
            assert status == "BMX_ERROR_FORMAT", (case, line)
    assert "LRN" in results["unsupported_operator"]
    assert results["unsupported_operator"].startswith("BMX_ERROR_UNSUPPORTED")


def test_data_shape_from_the_json_hint(zoo_files, tmp_path):
    """Without input_shapes the data shape comes from the data variable's ``__shape__``; a hint
    with a negative dimension is a damaged file (BMX_ERROR_FORMAT naming it), not "no shape"."""
    symbol_file, params_file = zoo_files["binary_lenet"]
    graph = json.load(open(symbol_file))
    data = next(n for n in graph["nodes"] if n["op"] == "null" and n["name"] == "data")
    outputs = {}
    for case, hint in (("hinted", "(1, 1, 28, 28)"), ("negative", "(1, 1, -28, 28)")):
        data.setdefault("attrs", {})["__shape__"] = hint
        path = str(tmp_path / (case + "-symbol.json"))
        with open(path, "w") as f:
            json.dump(graph, f)
        try:
            outputs[case] = runtime.Model(path, params_file).input_shapes
        except runtime.RuntimeModelError as err:
            outputs[case] = (err.status, err.message)
    assert outputs["hinted"] == ((1, 1, 28, 28),)
    status, message = outputs["negative"]
    assert status == "BMX_ERROR_FORMAT" and "negative" in message and "'data'" in message
