"""Hostile files for the converter and the legacy loader (issue 10, findings 3, 4 and 6).

Every reproducer runs in a child interpreter (``tests/subproc.py``): a crash fails one test, not
pytest. Malformed .params files are written here byte by byte from MXNet's NDArray file layout
(an independent writer), never by the reader under test.
"""
import json
import os
import struct
import sys

import mxnet as mx
import numpy as np
import pytest

from subproc import describe, expect_ok, run_snippet

from bmxnet import graph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "model_converter", "model_converter.py")
LEGACY = os.path.normpath(os.path.join(ROOT, "..", "shared", "bmxnet_legacy"))
HAVE_LEGACY = os.path.isfile(os.path.join(LEGACY, "binarized_mnist_64bit-0001.params"))
needs_legacy = pytest.mark.skipif(not HAVE_LEGACY, reason="BMXNet v1 files not in %s" % LEGACY)
V1_HINT = "BMXNet v1 file: use --from-bmxnet or bmxnet.legacy.load"


# ------------------------------------------------------------------------------------------
# An independent writer of MXNet's NDArray list format (src/ndarray/ndarray.cc, 1.9.1)
# ------------------------------------------------------------------------------------------
V2, V3 = 0xF993FAC9, 0xF993FACA


def _array(values, *, dtype_id=0, magic=V2, ndim=None, shape=None, dev_type=1, stype=0,
           data=None):
    """One saved array: header fields may be overridden to make it hostile."""
    values = np.asarray(values)
    shape = values.shape if shape is None else shape
    ndim = len(shape) if ndim is None else ndim
    head = struct.pack("<I", magic)
    if magic in (V2, V3):
        head += struct.pack("<i", stype) + struct.pack("<I", ndim & 0xFFFFFFFF)
        head += b"".join(struct.pack("<q", d) for d in shape)
    else:  # pre-1.0: the first word is ndim, dims are uint32
        head = struct.pack("<I", ndim) + b"".join(struct.pack("<I", d) for d in shape)
    head += struct.pack("<ii", dev_type, 0) + struct.pack("<i", dtype_id)
    return head + (values.tobytes() if data is None else data)


def _file(arrays, names, *, magic=0x112, n_arrays=None, n_names=None, tail=b""):
    out = struct.pack("<QQ", magic, 0)
    out += struct.pack("<Q", len(arrays) if n_arrays is None else n_arrays) + b"".join(arrays)
    out += struct.pack("<Q", len(names) if n_names is None else n_names)
    for name in names:
        raw = name if isinstance(name, bytes) else name.encode()
        out += struct.pack("<Q", len(raw)) + raw
    return out + tail


def test_reader_matches_the_layout_written_by_hand_and_by_mxnet(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, -8], np.int64)
    raw = _file([_array(a), _array(b, dtype_id=6)], ["arg:a", "aux:b"])
    index = graph.params_index(raw)
    assert [(i.name, i.shape, i.dtype) for i in index] == \
        [("arg:a", (2, 3), np.dtype(np.float32)), ("aux:b", (2,), np.dtype(np.int64))]
    # offsets: 16 header + 8 count; array a: 4 magic + 4 stype + 4 ndim + 16 dims + 8 ctx + 4
    first = 16 + 8 + 4 + 4 + 4 + 16 + 8 + 4
    assert index[0].offset == first and index[0].nbytes == 24
    np.testing.assert_array_equal(np.frombuffer(raw, np.float32, 6, first).reshape(2, 3), a)
    # MXNet writes the same bytes
    path = str(tmp_path / "m.params")
    mx.nd.save(path, {"arg:a": mx.nd.array(a), "aux:b": mx.nd.array(b, dtype=np.int64)})
    assert open(path, "rb").read() == raw
    loaded = graph.read_params_file(path)
    np.testing.assert_array_equal(loaded["aux:b"].asnumpy(), b)


@needs_legacy
def test_reader_reads_pre_1_0_files():
    """The BMXNet v1 files use the pre-magic layout (uint32 ndim and dims)."""
    index = graph.params_index(os.path.join(LEGACY, "binarized_mnist_32bit-0001.params"))
    shapes = {i.name: (i.shape, i.dtype) for i in index}
    assert shapes["arg:qconvolution0_weight"] == ((64 * 64 * 25 // 32,), np.dtype(np.float32))
    assert shapes["arg:convolution0_weight"] == ((64, 1, 5, 5), np.dtype(np.float32))


_GOOD = _array(np.ones((2, 3), np.float32))
HOSTILE_PARAMS = {
    # finding 4: ndim 0xFFFFFFFF segfaulted model_converter inside mx.nd.load
    "ndim ffffffff": (_file([_array(np.ones(3, np.float32), ndim=0xFFFFFFFF, shape=())],
                            ["arg:w"]), "ndim -1"),
    "ndim huge": (_file([_array(np.ones(3, np.float32), ndim=0x7FFFFFF0, shape=())],
                        ["arg:w"]), "ndim 2147483632"),
    "pre-1.0 ndim huge": (_file([_array(np.ones(3, np.float32), magic=0, ndim=0xF0000000,
                                        shape=())], ["arg:w"]), "ndim 4026531840"),
    "ndim 0": (_file([_array(np.ones(3, np.float32), ndim=0, shape=())], ["arg:w"]), "ndim 0"),
    "negative dim": (_file([_array(np.ones(3, np.float32), shape=(-3,))], ["arg:w"]),
                     "negative dimension"),
    "size beyond the file": (_file([_array(np.ones(3, np.float32), shape=(1 << 40,))],
                                   ["arg:w"]), "the data of array 0"),
    "unknown dtype": (_file([_array(np.ones(3, np.float32), dtype_id=99)], ["arg:w"]),
                      "dtype id 99"),
    "unknown device": (_file([_array(np.ones(3, np.float32), dev_type=77)], ["arg:w"]),
                       "device type 77"),
    "sparse": (_file([_array(np.ones(3, np.float32), stype=1)], ["arg:w"]), "sparse"),
    "bad list magic": (_file([_GOOD], ["arg:w"], magic=0x113), "magic number"),
    "array count huge": (_file([_GOOD], ["arg:w"], n_arrays=1 << 62),
                         "it claims 4611686018427387904 arrays"),
    "name count differs": (_file([_GOOD], ["arg:w", "arg:v"]), "1 arrays but 2 names"),
    "name length huge": (_file([_GOOD], ["arg:w"])[:-13] + struct.pack("<Q", 1 << 60) + b"arg:w",
                         "name 0 is 1152921504606846976 bytes"),
    "name not utf-8": (_file([_GOOD], [b"arg:\xff\xfe"]), "not utf-8"),
    "duplicate names": (_file([_GOOD, _GOOD], ["arg:w", "arg:w"]), "appears twice"),
    "trailing bytes": (_file([_GOOD], ["arg:w"], tail=b"junk"), "4 unexpected bytes"),
    "truncated": (_file([_GOOD], ["arg:w"])[:70],
                  "the data of array 0 (shape (2, 3), float32) needs 24 bytes"),
    "V3 numpy semantics": (_file([_array(np.ones(3, np.float32), magic=V3)], ["arg:w"]),
                           "numpy shape semantics"),
}


def test_hostile_params_files_give_one_error_in_the_converter(tmp_path):
    """Each file goes to convert_checkpoint (in one child); each gives a ConversionError naming
    the problem, none reaches MXNet's reader."""
    folder = tmp_path / "cases"
    folder.mkdir()
    sym = mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc")
    for k, (raw, _) in enumerate(HOSTILE_PARAMS.values()):
        (folder / ("c%d-0001.params" % k)).write_bytes(raw)
        (folder / ("c%d-symbol.json" % k)).write_text(sym.tojson())
    out = expect_ok("""
        from bmxnet import converter
        for k in range(%d):
            try:
                converter.convert_checkpoint(%r + "/c%%d-0001.params" %% k, dry_run=True)
                print("CASE", k, "accepted")
            except converter.ConversionError as err:
                print("CASE", k, "ConversionError", str(err).replace("\\n", " "))
    """ % (len(HOSTILE_PARAMS), str(folder)))
    lines = {int(ln.split()[1]): ln for ln in out.splitlines() if ln.startswith("CASE")}
    for k, (case, (_, fragment)) in enumerate(HOSTILE_PARAMS.items()):
        assert "ConversionError" in lines[k], (case, lines[k])
        assert fragment in lines[k], (case, fragment, lines[k])
        assert "c%d-0001.params" % k in lines[k], (case, lines[k])


def test_ndim_ffffffff_with_the_command_line_tool(tmp_path):
    """The reproducer of finding 4, as the user ran it."""
    raw, _ = HOSTILE_PARAMS["ndim ffffffff"]
    (tmp_path / "m-0001.params").write_bytes(raw)
    (tmp_path / "m-symbol.json").write_text(
        mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2, name="fc").tojson())
    proc = _cli(str(tmp_path / "m-0001.params"))
    assert proc.returncode == 1, describe(proc)
    assert proc.stderr.startswith("error: cannot read") and "unexpected" not in proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["m-0001.params", "m-symbol.json"]


def _cli(*args):
    import subprocess
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True,
                          env=env, timeout=300)


# ------------------------------------------------------------------------------------------
# Hostile symbol json
# ------------------------------------------------------------------------------------------
def _model(tmp_path, prefix="m", edit=None, params=None):
    """A small float+binary MLP checkpoint (Module style, SoftmaxOutput head); ``edit(graph)``
    changes the json before it is written."""
    data = mx.sym.var("data")
    y = mx.sym.FullyConnected(data, num_hidden=8, name="fc0")
    y = mx.sym.QFullyConnected(y, num_hidden=6, name="qfc")
    y = mx.sym.BatchNorm(y, name="bn")
    y = mx.sym.FullyConnected(y, num_hidden=3, name="fc1")
    y = mx.sym.SoftmaxOutput(y, name="softmax")
    rng = np.random.RandomState(3)
    if params is None:
        params = {"arg:fc0_weight": rng.randn(8, 5), "arg:fc0_bias": rng.randn(8),
                  "arg:qfc_weight": rng.randn(6, 8), "arg:qfc_bias": rng.randn(6),
                  "arg:bn_gamma": rng.rand(6) + 0.5, "arg:bn_beta": rng.randn(6),
                  "aux:bn_moving_mean": rng.randn(6), "aux:bn_moving_var": rng.rand(6) + 0.5,
                  "arg:fc1_weight": rng.randn(3, 6), "arg:fc1_bias": rng.randn(3)}
        params = {k: mx.nd.array(v) for k, v in params.items()}
    g = json.loads(y.tojson())
    if edit:
        edit(g)
    (tmp_path / (prefix + "-symbol.json")).write_text(json.dumps(g))
    path = str(tmp_path / (prefix + "-0001.params"))
    mx.nd.save(path, params)
    return path


def _node(g, name):
    return next(n for n in g["nodes"] if n["name"] == name)


def _index(g, name):
    return next(i for i, n in enumerate(g["nodes"]) if n["name"] == name)


def _set_heads(value):
    def edit(g):
        g["heads"] = value(g)
    return edit


HOSTILE_JSON = {
    # finding 4: heads naming an output the node does not have; the written model segfaulted
    "head output 5": (_set_heads(lambda g: [[len(g["nodes"]) - 1, 5, 0]]), "output 5 of node"),
    "head node out of range": (_set_heads(lambda g: [[len(g["nodes"]) + 3, 0, 0]]),
                               "'heads' names"),
    "heads empty": (_set_heads(lambda g: []), "'heads' is empty"),
    "head output 1 of a variable": (_set_heads(lambda g: [[0, 1, 0]]), "'heads' names [0, 1, 0]"),
    "input output index": (lambda g: _node(g, "bn")["inputs"][0].__setitem__(1, 4),
                           "output 4 of node"),
    "input from a later node (cycle)": (
        lambda g: _node(g, "qfc")["inputs"][0].__setitem__(0, _index(g, "fc1")),
        "bad inputs entry"),
    "negative input": (lambda g: _node(g, "qfc")["inputs"][0].__setitem__(0, -1),
                       "bad inputs entry"),
    "arg_nodes not a variable": (lambda g: g["arg_nodes"].append(_index(g, "qfc")),
                                 "'arg_nodes' lists"),
    "attribute not a string": (lambda g: _node(g, "qfc")["attrs"].__setitem__("num_hidden", 6),
                               "not strings"),
    "duplicate weight names": (lambda g: _node(g, "fc1_weight").__setitem__("name",
                                                                           "fc0_weight"),
                               "two variables named 'fc0_weight'"),
    "variable with inputs": (lambda g: _node(g, "fc1_bias").__setitem__("inputs", [[0, 0, 0]]),
                             "has inputs"),
    "num_hidden 0": (lambda g: _node(g, "qfc")["attrs"].__setitem__("num_hidden", "0"),
                     "num_hidden"),
}


def test_hostile_symbol_files_give_one_error(tmp_path):
    paths = []
    for k, (edit, _) in enumerate(HOSTILE_JSON.values()):
        paths.append(_model(tmp_path, "j%d" % k, edit))
    # json nested deeper than Python's parser allows (RecursionError before)
    paths.append(_model(tmp_path, "deep"))
    (tmp_path / "deep-symbol.json").write_text("[" * 200000 + "]" * 200000)
    out = expect_ok("""
        from bmxnet import converter
        for k, path in enumerate(%r):
            try:
                converter.convert_checkpoint(path, dry_run=True)
                print("CASE", k, "accepted")
            except converter.ConversionError as err:
                print("CASE", k, "ConversionError", str(err).replace("\\n", " "))
    """ % paths)
    lines = {int(ln.split()[1]): ln for ln in out.splitlines() if ln.startswith("CASE")}
    fragments = [f for _, f in HOSTILE_JSON.values()] + ["nested too deeply"]
    names = list(HOSTILE_JSON) + ["deep nesting"]
    for k, (case, fragment) in enumerate(zip(names, fragments)):
        assert "ConversionError" in lines[k] and fragment in lines[k], (case, lines[k])


def test_head_naming_a_missing_output_is_refused_by_the_cli(tmp_path):
    path = _model(tmp_path, edit=_set_heads(lambda g: [[len(g["nodes"]) - 1, 5, 0]]))
    proc = _cli(path, "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1 and "output 5 of node" in proc.stderr, describe(proc)
    assert not (tmp_path / "out").exists()


def test_a_deep_graph_converts_without_recursion(tmp_path):
    """3000 chained layers: validation, conversion and the run check are iterative."""
    y = mx.sym.var("data")
    for k in range(3000):
        y = mx.sym.relu(y, name="r%d" % k)
    y = mx.sym.QFullyConnected(y, num_hidden=4, name="q")
    (tmp_path / "d-symbol.json").write_text(y.tojson())
    mx.nd.save(str(tmp_path / "d-0001.params"), {"arg:q_weight": mx.nd.ones((4, 6)),
                                                 "arg:q_bias": mx.nd.zeros(4)})
    out = expect_ok("""
        import sys
        sys.setrecursionlimit(400)
        from bmxnet import converter
        r = converter.convert_checkpoint(%r, output_dir=%r, data_shape=(1, 6))
        print("SHAPE", r.data_shape)
    """ % (str(tmp_path / "d-0001.params"), str(tmp_path / "out")))
    assert "SHAPE (1, 6)" in out


# ------------------------------------------------------------------------------------------
# The rule: nothing is written that does not run for the data shape used
# ------------------------------------------------------------------------------------------
def test_converted_module_checkpoint_loads_with_symbolblock_imports(tmp_path):
    """Finding 6: the SoftmaxOutput head is written as softmax without softmax_label, so the
    README's SymbolBlock.imports(json, ['data'], params) works; outputs equal numpy's."""
    path = _model(tmp_path)
    out = expect_ok("""
        from bmxnet import converter
        r = converter.convert_checkpoint(%r, output_dir=%r)
        print(r.format())
        p = %r + "/binarized_m"
        net = mx.gluon.SymbolBlock.imports(p + "-symbol.json", ["data"], p + "-0001.params")
        x = np.linspace(-1, 1, 10).reshape(2, 5).astype(np.float32)
        np.save(%r, net(mx.nd.array(x)).asnumpy())
        sym = mx.sym.load(p + "-symbol.json")
        print("ARGS", sym.list_arguments())
    """ % (path, str(tmp_path / "out"), str(tmp_path / "out"), str(tmp_path / "y.npy")),
        malloc_check=True)
    assert "loss head 'softmax' (SoftmaxOutput) written as its inference output; its label " \
        "input 'softmax_label' is dropped" in out
    assert "softmax_label" not in out.split("ARGS")[1]
    p = {k.split(":")[1]: v.asnumpy().astype(np.float64) for k, v in
         mx.nd.load(str(tmp_path / "m-0001.params")).items()}
    x = np.linspace(-1, 1, 10).reshape(2, 5)
    h = x @ p["fc0_weight"].T + p["fc0_bias"]
    sign = np.where(h >= 0, 1.0, -1.0)
    h = sign @ np.where(p["qfc_weight"] >= 0, 1.0, -1.0).T + p["qfc_bias"]
    h = (h - p["bn_moving_mean"]) / np.sqrt(p["bn_moving_var"] + 1e-3) + p["bn_beta"]  # fix_gamma
    h = h @ p["fc1_weight"].T + p["fc1_bias"]
    want = np.exp(h - h.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    np.testing.assert_allclose(np.load(str(tmp_path / "y.npy")), want, rtol=1e-4, atol=1e-6)


INCONSISTENT = {  # (node, attribute, value): clean errors from MXNet, the operator or the run
    "stride 0": ("c", "stride", "(0, 0)"), "negative pad": ("c", "pad", "(-1, -1)"),
    "num_group 3 of 8 filters": ("c", "num_group", "3"), "3-d stride": ("c", "stride", "(1, 1, 1)"),
    "binary stride 0": ("q", "stride", "(0, 0)"), "binary num_group 3": ("q", "num_group", "3"),
    "binary stride 2^32 + 1": ("q", "stride", "(4294967297, 1)"),
}


def test_inconsistent_layer_attributes_write_nothing(tmp_path):
    """Jsons that MXNet loads but that cannot bind (or run) are refused before writing; the
    negative pad passes shape inference and fails only when the model runs."""
    y = mx.sym.Convolution(mx.sym.var("data"), num_filter=8, kernel=(3, 3), name="c")
    y = mx.sym.QConvolution(y, num_filter=4, kernel=(3, 3), no_bias=True, name="q")
    params = {"arg:c_weight": mx.nd.ones((8, 3, 3, 3)), "arg:c_bias": mx.nd.zeros(8),
              "arg:q_weight": mx.nd.ones((4, 8, 3, 3))}
    paths = []
    for k, (node, key, value) in enumerate(INCONSISTENT.values()):
        g = json.loads(y.tojson())
        _node(g, node)["attrs"][key] = value
        (tmp_path / ("i%d-symbol.json" % k)).write_text(json.dumps(g))
        mx.nd.save(str(tmp_path / ("i%d-0001.params" % k)), params)
        paths.append(str(tmp_path / ("i%d-0001.params" % k)))
    out = expect_ok("""
        from bmxnet import converter
        for k, path in enumerate(%r):
            try:
                converter.convert_checkpoint(path, output_dir=%r)
                print("CASE", k, "accepted")
            except converter.ConversionError as err:
                print("CASE", k, "ConversionError", str(err).replace("\\n", " "))
    """ % (paths, str(tmp_path / "out")))
    lines = [ln for ln in out.splitlines() if ln.startswith("CASE")]
    assert len(lines) == len(INCONSISTENT)
    for case, line in zip(INCONSISTENT, lines):
        assert "ConversionError" in line, (case, line)
    assert "does not run for input shape" in lines[1], lines[1]
    assert not (tmp_path / "out").exists() or os.listdir(str(tmp_path / "out")) == []


def test_int32_moving_variance_is_refused(tmp_path):
    path = _model(tmp_path)
    params = mx.nd.load(path)
    params["aux:bn_moving_var"] = mx.nd.array([1, 2, 1, 2, 1, 2], dtype=np.int32)
    mx.nd.save(path, params)
    proc = run_snippet("""
        from bmxnet import converter
        converter.convert_checkpoint(%r, output_dir=%r)
    """ % (path, str(tmp_path / "out")))
    assert proc.returncode == 1 and "ConversionError" in proc.stderr, describe(proc)
    assert "bn_moving_var" in proc.stderr and "int32" in proc.stderr, describe(proc)
    assert not (tmp_path / "out").exists()


def test_a_model_whose_input_shape_cannot_be_worked_out_needs_data_shape(tmp_path):
    """First layer a Pooling: no shape is guessed, the converter asks for --data-shape; with it
    the written files run."""
    y = mx.sym.Pooling(mx.sym.var("data"), kernel=(2, 2), stride=(2, 2), pool_type="max")
    y = mx.sym.QConvolution(y, num_filter=4, kernel=(3, 3), no_bias=True, name="qc")
    (tmp_path / "p-symbol.json").write_text(y.tojson())
    path = str(tmp_path / "p-0001.params")
    mx.nd.save(path, {"arg:qc_weight": mx.nd.array(np.random.RandomState(0).randn(4, 3, 3, 3))})
    proc = _cli(path, "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1 and "--data-shape" in proc.stderr, describe(proc)
    assert not (tmp_path / "out").exists()
    proc = _cli(path, "--output-dir", str(tmp_path / "out"), "--data-shape", "2,3,10,10")
    assert proc.returncode == 0, describe(proc)
    assert "runs for input shape (2, 3, 10, 10)" in proc.stdout
    expect_ok("""
        p = %r + "/binarized_p"
        net = mx.gluon.SymbolBlock.imports(p + "-symbol.json", ["data"], p + "-0001.params")
        assert net(mx.nd.ones((2, 3, 10, 10))).shape == (2, 4, 3, 3)
    """ % str(tmp_path / "out"))


def test_data_shape_that_does_not_fit_names_the_layer(tmp_path):
    """Finding 3 on the converter side: the weight (4, 8, 3, 3) with num_group=2 is for 16
    input channels; data with 8 channels is refused, naming the layer and both shapes."""
    y = mx.sym.QConvolution(mx.sym.var("data"), num_filter=4, kernel=(3, 3), num_group=2,
                            no_bias=True, name="qc")
    (tmp_path / "g-symbol.json").write_text(y.tojson())
    path = str(tmp_path / "g-0001.params")
    w = np.random.RandomState(0).randn(4, 8, 3, 3)
    mx.nd.save(path, {"arg:qc_weight": mx.nd.array(w)})
    proc = _cli(path, "--dry-run", "--data-shape", "1,8,6,6")
    assert proc.returncode == 1, describe(proc)
    assert "'qc_weight' of layer 'qc' (QConvolution) should have shape (4, 4, 3, 3) but has " \
        "(4, 8, 3, 3)" in proc.stderr, describe(proc)
    # without --data-shape, the weights say 16 channels: written as in_channels on the node
    proc = _cli(path, "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, describe(proc)
    nodes = json.load(open(str(tmp_path / "out" / "binarized_g-symbol.json")))["nodes"]
    assert _node({"nodes": nodes}, "qc")["attrs"]["in_channels"] == "16"


def test_an_in_channels_attribute_that_contradicts_the_weight_is_refused(rng):
    y = mx.sym.QConvolution(mx.sym.var("data"), num_filter=4, kernel=(3, 3), num_group=2,
                            no_bias=True, in_channels=12, name="qc")
    from bmxnet import converter
    with pytest.raises(converter.ConversionError, match="says in_channels=12, but weight 'qc_"
                                                        "weight' of shape .4, 8, 3, 3. is for "
                                                        "in_channels=16"):
        converter.convert_model(y, {"qc_weight": rng.randn(4, 8, 3, 3)}, {})


def test_packed_nodes_carry_their_input_size(rng):
    from bmxnet import converter
    y = mx.sym.QConvolution(mx.sym.var("data"), num_filter=6, kernel=(3, 3), num_group=3,
                            no_bias=True, name="qc")
    y = mx.sym.QFullyConnected(y, num_hidden=5, name="qf")
    args = {"qc_weight": rng.randn(6, 70, 3, 3), "qf_weight": rng.randn(5, 6 * 2 * 2),
            "qf_bias": rng.randn(5)}
    args = {k: v.astype(np.float32) for k, v in args.items()}
    sym, new_args, _, _ = converter.convert_model(y, args, {})
    nodes = {n["name"]: n for n in json.loads(sym.tojson())["nodes"]}
    assert nodes["qc"]["attrs"]["in_channels"] == str(70 * 3)
    assert nodes["qf"]["attrs"]["in_units"] == "24"
    x = mx.nd.array(rng.randn(2, 210, 4, 4))
    want = y.bind(mx.cpu(), dict({k: mx.nd.array(v) for k, v in args.items()}, data=x))
    got = sym.bind(mx.cpu(), dict(new_args, data=x))
    np.testing.assert_array_equal(got.forward()[0].asnumpy(), want.forward()[0].asnumpy())


def test_impossible_group_count_is_refused(rng):
    from bmxnet import converter
    g = json.loads(mx.sym.QConvolution(mx.sym.var("data"), num_filter=6, kernel=(3, 3),
                                       no_bias=True, name="qc").tojson())
    g["nodes"][-1]["attrs"]["num_group"] = "4"
    proc = run_snippet("""
        import json
        from bmxnet import converter
        sym = mx.sym.load_json(%r)
        converter.convert_model(sym, {"qc_weight": mx.nd.ones((6, 2, 3, 3))}, {})
    """ % json.dumps(g))
    assert proc.returncode == 1, describe(proc)
    assert ("num_group=4 with num_filter=6" in proc.stderr or "num_group" in proc.stderr), \
        describe(proc)


# ------------------------------------------------------------------------------------------
# BMXNet v1 files
# ------------------------------------------------------------------------------------------
def _legacy_copy(tmp_path, edit_graph=None, edit_params=None, prefix="m"):
    with open(os.path.join(LEGACY, "binarized_mnist_64bit-symbol.json")) as f:
        g = json.load(f)
    params = mx.nd.load(os.path.join(LEGACY, "binarized_mnist_64bit-0001.params"))
    if edit_graph:
        edit_graph(g)
    if edit_params:
        edit_params(params)
    (tmp_path / (prefix + "-symbol.json")).write_text(json.dumps(g))
    mx.nd.save(str(tmp_path / (prefix + "-0001.params")), params)
    return str(tmp_path / prefix)


@needs_legacy
def test_v1_file_without_from_bmxnet_names_the_way(tmp_path):
    proc = _cli(os.path.join(LEGACY, "binarized_mnist_32bit-0001.params"), "--dry-run")
    assert proc.returncode == 1, describe(proc)
    assert V1_HINT in proc.stderr and "already binarized" not in proc.stderr


@needs_legacy
def test_is_bmxnet_v1():
    from bmxnet import legacy
    with open(os.path.join(LEGACY, "binarized_mnist_32bit-symbol.json")) as f:
        assert legacy.is_bmxnet_v1(json.load(f))
    ours = mx.sym.QFullyConnected(mx.sym.var("data"), num_hidden=3, name="q")
    assert not legacy.is_bmxnet_v1(json.loads(ours.tojson()))
    assert not legacy.is_bmxnet_v1(json.loads(mx.sym.relu(mx.sym.var("x")).tojson()))
    assert not legacy.is_bmxnet_v1({"nodes": "garbage"}) and not legacy.is_bmxnet_v1([1])
    unversioned = json.loads(ours.tojson())
    del unversioned["attrs"]
    assert not legacy.is_bmxnet_v1(unversioned)  # modern node keys: not v1
    for node in unversioned["nodes"]:
        node["attr"] = node.pop("attrs", {})
    assert legacy.is_bmxnet_v1(unversioned)  # MXNet 0.x node keys


@needs_legacy
def test_legacy_weights_for_another_channel_count_are_refused(tmp_path):
    """Finding 3 on the legacy side: the packed conv weight holds the words of 32 input channels
    (a whole number, so the word count alone looked fine); the layer receives 64."""
    def half_channels(params):
        w = params["arg:qconvolution0_weight"].asnumpy()
        params["arg:qconvolution0_weight"] = mx.nd.array(w[:w.size // 2], dtype=w.dtype)

    prefix = _legacy_copy(tmp_path, edit_params=half_channels)
    proc = run_snippet("""
        import bmxnet.legacy as legacy
        for shape in (None, (1, 1, 28, 28)):
            try:
                legacy.load(%r, 1, data_shape=shape)
                print("ACCEPTED")
            except legacy.LegacyFormatError as err:
                print("ERROR", str(err))
    """ % prefix)
    assert proc.returncode == 0, describe(proc)
    guessed, given = [ln for ln in proc.stdout.splitlines() if ln.startswith(("ERROR", "ACC"))]
    assert guessed.startswith("ERROR") and "data_shape" in guessed and \
        "qconvolution0_weight" in guessed, guessed
    assert given.startswith("ERROR") and "of layer 'qconvolution0' (QConvolution) should have " \
        "shape (64, 64, 5, 5) but has (64, 32, 5, 5)" in given, given
    proc = _cli("--from-bmxnet", prefix + "-0001.params", "--output-dir",
                str(tmp_path / "out"), "--data-shape", "1,1,28,28")
    assert proc.returncode == 1 and "qconvolution0" in proc.stderr, describe(proc)
    assert not (tmp_path / "out").exists()


@needs_legacy
@pytest.mark.parametrize("attr,value", [("num_filter", "0"), ("kernel", "(0, 5)")])
def test_legacy_zero_sizes_are_refused_without_zero_division(tmp_path, attr, value):
    def edit(g):
        _node(g, "qconvolution0")["attr"][attr] = value
    prefix = _legacy_copy(tmp_path, edit_graph=edit)
    proc = run_snippet("""
        import bmxnet.legacy as legacy
        legacy.load(%r, 1)
    """ % prefix)
    assert proc.returncode == 1 and "LegacyFormatError" in proc.stderr, describe(proc)
    assert "qconvolution0" in proc.stderr and "impossible attributes" in proc.stderr


@needs_legacy
def test_legacy_model_without_a_guessable_shape_asks_for_it(tmp_path):
    """--from-bmxnet used to skip the shape check and write a model that could not run."""
    def pool_first(g):
        conv = _node(g, "convolution0")
        conv["op"], conv["attr"] = "Pooling", {"kernel": "(1, 1)", "pool_type": "max"}
        conv["inputs"] = conv["inputs"][:1]
        g["nodes"] = [n for n in g["nodes"] if n["name"] not in ("convolution0_weight",
                                                                 "convolution0_bias")]
    with open(os.path.join(LEGACY, "binarized_mnist_64bit-symbol.json")) as f:
        g = json.load(f)
    # renumber after removing the two variables (indices 1, 2)
    for node in g["nodes"]:
        for entry in node["inputs"]:
            if entry[0] > 2:
                entry[0] -= 2
    g["heads"] = [[h[0] - 2] + h[1:] for h in g["heads"]]
    g["arg_nodes"] = [a - 2 if a > 2 else a for a in g["arg_nodes"] if a not in (1, 2)]
    g.pop("node_row_ptr")
    pool_first(g)
    params = mx.nd.load(os.path.join(LEGACY, "binarized_mnist_64bit-0001.params"))
    del params["arg:convolution0_weight"], params["arg:convolution0_bias"]
    (tmp_path / "p-symbol.json").write_text(json.dumps(g))
    mx.nd.save(str(tmp_path / "p-0001.params"), params)
    path = str(tmp_path / "p-0001.params")
    proc = _cli("--from-bmxnet", path, "--output-dir", str(tmp_path / "out"))
    assert proc.returncode == 1 and "--data-shape" in proc.stderr, describe(proc)
    assert not (tmp_path / "out").exists()


@needs_legacy
def test_legacy_damaged_graphs_give_one_error(tmp_path):
    """Found by mutating the v1 json: a head naming a stored parameter (AttributeError before),
    a layer without inputs (IndexError before), an output index a layer does not have."""
    def weight_as_head(g):
        g["heads"] = [[_index(g, "qconvolution0_weight"), 0, 0]]

    def no_inputs(g):
        _node(g, "qactivation0")["inputs"] = []

    def output_index(g):
        g["heads"] = [[_index(g, "softmax"), 2, 0]]

    cases = [(weight_as_head, "stored parameter 'qconvolution0_weight'"),
             (no_inputs, "'qactivation0' (QActivation)"),
             (output_index, "output 2 of node 'softmax'")]
    prefixes = [_legacy_copy(tmp_path, edit_graph=edit, prefix="d%d" % k)
                for k, (edit, _) in enumerate(cases)]
    out = expect_ok("""
        import bmxnet.legacy as legacy
        for prefix in %r:
            try:
                legacy.load(prefix, 1)
                print("CASE accepted")
            except legacy.LegacyFormatError as err:
                print("CASE LegacyFormatError", str(err))
    """ % prefixes)
    lines = [ln for ln in out.splitlines() if ln.startswith("CASE")]
    for (_, fragment), line in zip(cases, lines):
        assert "LegacyFormatError" in line and fragment in line, line


@needs_legacy
def test_migrated_v1_files_run_under_the_malloc_checker(tmp_path):
    """legacy.load and the --from-bmxnet output (loaded as the README shows) under glibc's heap
    checker: every Q-layer parameter carries a shape hint, so MXNet's shape inference never
    overruns its buffer (finding 1 on this path)."""
    out = expect_ok("""
        import bmxnet.legacy as legacy
        from bmxnet import converter
        x = mx.nd.ones((2, 1, 28, 28))
        a = legacy.load(%r, 1).net(x).asnumpy()
        converter.convert_checkpoint(%r + "-0001.params", from_bmxnet=True, output_dir=%r)
        p = %r + "/binarized_mnist_64bit"
        net = mx.gluon.SymbolBlock.imports(p + "-symbol.json", ["data"], p + "-0001.params")
        print("EQUAL", np.array_equal(net(x).asnumpy(), a), a.shape)
    """ % ((os.path.join(LEGACY, "binarized_mnist_64bit"),) * 2 + (str(tmp_path),) * 2),
        malloc_check=True)
    assert "EQUAL True (2, 10)" in out
