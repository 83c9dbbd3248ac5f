"""ONNX export (bmxnet ops -> standard ONNX ops) and import (ONNX BNNs -> packed bmxnet files).

Tolerances
----------
* 1-bit layers against onnxruntime with graph optimizations off (``ORT_DISABLE_ALL``): exact.
  Both sides compute an integer ±1 dot product (exact in float32) and then round ``* alpha`` and
  ``+ b`` once each, in that order.
* Networks with float layers (BatchNorm, float convs, k-bit layers): MXNet and onnxruntime sum
  and round in different orders, so values agree to a few float32 ulps. ``_close`` allows 1e-5 of
  the output's largest magnitude (about 100 ulps), and a sign that flipped on a value within an
  ulp of 0 would show as a much larger error, so the tolerance also checks that no flip happened.
* onnxruntime with its default optimizations folds the scale ``Mul`` into the Conv weights (no
  longer an exact integer sum): the same 1e-5 relative tolerance, and argmax equality.
* MXNet -> ONNX -> MXNet (import) uses the same MXNet operators as the original: exact where
  the graph is the same, a few ulps where ONNX's operator differs (Tanh vs Activation).
"""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn
from onnx import TensorProto, helper, numpy_helper

import bmxnet
import bmxnet.onnx
from bmxnet.converter import convert_model
from bmxnet.gluon import QActivation, QConv2D, QDense
from bmxnet.model_zoo import get_model
from bmxnet.onnx import OnnxImportError, export_model, import_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ort.set_default_logger_severity(3)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _ort(path, x, exact=True):
    """Runs an ONNX file in onnxruntime; exact=True turns graph optimizations off."""
    opts = ort.SessionOptions()
    if exact:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _close(got, want, rel=1e-5):
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * max(1.0, np.abs(want).max()))


def _build(net, shape, rng, init=None):
    # Fixed weights whatever ran before: in a deep binary network a float layer's output that lies
    # within rounding of 0 takes different signs in MXNet and onnxruntime for some weight draws, and
    # the flip then changes everything after it (a real property of BNNs, not an export error).
    mx.random.seed(7)
    net.initialize(init or mx.init.Xavier(magnitude=2))
    net(mx.nd.zeros(shape))
    for name, p in net.collect_params().items():  # non-trivial BatchNorm statistics
        if name.endswith(("gamma", "running_var")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape)))
        elif name.endswith(("beta", "running_mean")):
            p.set_data(mx.nd.array(rng.uniform(-0.3, 0.3, p.shape)))
        elif name.endswith("bias"):
            p.set_data(mx.nd.array(rng.uniform(-0.5, 0.5, p.shape)))
    net.hybridize()
    return net


def _load_block(prefix, inputs=("data",), epoch=0):
    return gluon.SymbolBlock.imports("%s-symbol.json" % prefix, list(inputs),
                                     "%s-%04d.params" % (prefix, epoch))


def _ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def _standard_only(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert "Sign" not in _ops(path)  # sign(0) = +1 is written as Where(x >= 0, 1, -1)


# ------------------------------------------------------------------------------------------------
# export: single layers
# ------------------------------------------------------------------------------------------------
def test_translators_are_registered_with_mxnet():
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    for op in ("QConvolution", "QFullyConnected", "QActivation"):
        assert op in MXNetGraph.registry_[bmxnet.onnx.export.OPSET]


def test_mxnet_export_model_entry_point(tmp_path, rng):
    """MXNet's own mx.onnx.export_model works once bmxnet.onnx is imported."""
    data = mx.sym.var("data")
    y = mx.sym.QConvolution(data, num_filter=4, kernel=(3, 3), pad=(1, 1), name="qc")
    y = mx.sym.QFullyConnected(mx.sym.QActivation(y), num_hidden=3, name="qf")
    params = {"qc_weight": mx.nd.array(rng.randn(4, 2, 3, 3)), "qc_bias": mx.nd.array(rng.randn(4)),
              "qf_weight": mx.nd.array(rng.randn(3, 4 * 25)), "qf_bias": mx.nd.array(rng.randn(3))}
    path = str(tmp_path / "m.onnx")
    mx.onnx.export_model(y, params, in_shapes=[(2, 2, 5, 5)], in_types=[np.float32],
                         onnx_file_path=path)
    onnx.checker.check_model(path)
    x = rng.randn(2, 2, 5, 5).astype(np.float32)
    want = mx.sym.Group([y]).eval(data=mx.nd.array(x), **params)[0].asnumpy()
    np.testing.assert_array_equal(_ort(path, x), want)


CONV_LAYERS = [  # (QConv2D kwargs, input shape)
    (dict(channels=6, kernel_size=3, padding=1), (2, 5, 9, 7)),
    (dict(channels=4, kernel_size=3, padding=1, strides=2, use_bias=False, scaling=True),
     (1, 70, 8, 8)),
    (dict(channels=8, kernel_size=(3, 2), padding=(2, 0), strides=(2, 1), dilation=(2, 1),
          groups=2, scaling=True), (3, 6, 11, 10)),
    (dict(channels=8, kernel_size=1, scaling=True), (2, 130, 5, 5)),
]


@pytest.mark.parametrize("pad_value", [0, 1, -1])
@pytest.mark.parametrize("layer,shape", CONV_LAYERS)
def test_binary_conv_export_is_exact(tmp_path, rng, layer, shape, pad_value):
    net = _build(QConv2D(pad_value=pad_value, **layer), shape, rng)
    x = rng.randn(*shape).astype(np.float32)
    x[0, 0, 0, :3] = 0.0  # sign(0) = +1 must survive the export
    path = export_model(net, None, shape, tmp_path / "c.onnx")
    _standard_only(path)
    np.testing.assert_array_equal(_ort(path, x), net(mx.nd.array(x)).asnumpy())
    model = onnx.load(path)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert set(np.unique(inits[conv.input[1]])) <= {-1.0, 1.0}  # ±1 weight initializer
    pads = next(a.ints for a in conv.attribute if a.name == "pads")
    if pad_value and np.any(layer.get("padding", 0)):
        pad = next(n for n in model.graph.node if n.op_type == "Pad")  # explicit ±1 border
        assert float(inits[pad.input[2]]) == pad_value and list(pads) == [0, 0, 0, 0]
    else:
        assert "Pad" not in _ops(path)


@pytest.mark.parametrize("flatten", [True, False])
@pytest.mark.parametrize("scaling", [False, True])
def test_binary_dense_export_is_exact(tmp_path, rng, flatten, scaling):
    shape = (3, 4, 5, 7) if flatten else (3, 4, 70)
    net = _build(QDense(9, flatten=flatten, scaling=scaling), shape, rng)
    x = rng.randn(*shape).astype(np.float32)
    path = export_model(net, None, shape, tmp_path / "d.onnx")
    _standard_only(path)
    assert ("Gemm" if flatten else "MatMul") in _ops(path)
    np.testing.assert_array_equal(_ort(path, x), net(mx.nd.array(x)).asnumpy())


def test_sign_of_zero_is_plus_one(tmp_path):
    net = _build(QActivation(), (1, 5), np.random.RandomState(0))
    x = np.array([[-2.0, -0.0, 0.0, 1e-30, 3.0]], np.float32)
    path = export_model(net, None, x.shape, tmp_path / "a.onnx")
    np.testing.assert_array_equal(_ort(path, x), [[-1, 1, 1, 1, 1]])


@pytest.mark.parametrize("act_bit,weight_bit", [(2, 4), (4, 2), (8, 8), (32, 3), (3, 32),
                                                (1, 4), (4, 1)])
def test_kbit_layers_export(tmp_path, rng, act_bit, weight_bit):
    shape = (2, 6, 8, 8)
    net = nn.HybridSequential()
    net.add(QConv2D(8, 3, padding=1, act_bit=act_bit, weight_bit=weight_bit, scaling=True),
            QActivation(act_bit=act_bit),
            QConv2D(6, 3, padding=1, groups=2, pad_value=1 if act_bit == 1 else 0,
                    act_bit=act_bit, weight_bit=weight_bit),
            QDense(5, act_bit=act_bit, weight_bit=weight_bit), QActivation(backward_only=True))
    net = _build(net, shape, rng)
    x = rng.uniform(-0.5, 1.5, shape).astype(np.float32)
    path = export_model(net, None, shape, tmp_path / "k.onnx")
    _standard_only(path)
    if 1 < act_bit < 32:
        assert "Round" in _ops(path)
    want = net(mx.nd.array(x)).asnumpy()
    _close(_ort(path, x), want)
    # back into MXNet: the quantizer patterns become QActivation, the layers float ones
    sym, _, _, report = import_model(path, str(tmp_path / "k"))
    assert not report["binary_layers"] and len(report["float_layers"]) == 3
    if 1 < act_bit < 32:
        acts = [n for n in json.loads(sym.tojson())["nodes"] if n["op"] == "QActivation"]
        assert {n["attrs"]["act_bit"] for n in acts} == {str(act_bit)}
    _close(_load_block(str(tmp_path / "k"))(mx.nd.array(x)).asnumpy(), want)


# ------------------------------------------------------------------------------------------------
# export: converted (packed) models
# ------------------------------------------------------------------------------------------------
def _small_mixed_net():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(70, 3, in_channels=3), nn.BatchNorm(),
            QConv2D(8, 3, padding=1, scaling=True, pad_value=1), nn.BatchNorm(),
            QConv2D(6, 3, padding=1, groups=2, use_bias=False, pad_value=-1), nn.BatchNorm(),
            QConv2D(6, 3, padding=1, act_bit=2, weight_bit=2), nn.Flatten(),
            QDense(7, scaling=True), QDense(5, use_bias=False, flatten=False))
    return net


def test_converted_model_exports(tmp_path, rng):
    shape = (2, 3, 9, 9)
    net = _build(_small_mixed_net(), shape, rng)
    x = rng.randn(*shape).astype(np.float32)
    want = net(mx.nd.array(x)).asnumpy()
    prefix = str(tmp_path / "net")
    net.export(prefix)
    sym, args, aux = mx.model.load_checkpoint(prefix, 0)
    csym, cargs, caux, report = convert_model(sym, args, aux)
    assert len(report.packed_layers) == 4
    mx.model.save_checkpoint(prefix + "_bin", 1, csym, cargs, caux)
    plain = export_model(prefix + "-symbol.json", prefix + "-0000.params", shape,
                         tmp_path / "plain.onnx")
    packed = export_model(prefix + "_bin-symbol.json", prefix + "_bin-0001.params", shape,
                          tmp_path / "packed.onnx")
    _standard_only(packed)
    assert _ops(plain) == _ops(packed)
    got = _ort(packed, x)
    _close(got, want)
    np.testing.assert_array_equal(got, _ort(plain, x))
    inits = {t.name: t for t in onnx.load(packed).graph.initializer}
    assert all(t.data_type == TensorProto.FLOAT for n, t in inits.items() if "weight" in n)


# ------------------------------------------------------------------------------------------------
# round trips of whole networks
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,binary,floats", [("binary_resnet18_cifar", 19, 2),
                                                ("birealnet18_cifar", 16, 5)])
def test_zoo_network_round_trip(tmp_path, rng, name, binary, floats):
    shape = (2, 3, 32, 32)
    net = _build(get_model(name), shape, rng)
    x = rng.randn(*shape).astype(np.float32)
    want = net(mx.nd.array(x)).asnumpy()
    path = export_model(net, None, shape, tmp_path / "net.onnx")
    _standard_only(path)
    exact = _ort(path, x)
    _close(exact, want)
    default = _ort(path, x, exact=False)
    _close(default, want)
    assert (default.argmax(1) == want.argmax(1)).all()

    _, _, _, report = import_model(path, str(tmp_path / "binarized"))
    assert len(report["binary_layers"]) == binary and len(report["float_layers"]) == floats
    assert len(report["converter"].packed_layers) == binary
    assert not report["plain_sign_layers"]
    back = _load_block(str(tmp_path / "binarized"))(mx.nd.array(x)).asnumpy()
    np.testing.assert_array_equal(back, want)  # same MXNet operators, packed weights
    _close(back, exact)


def _digits_28x28():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((3, 3)))  # 8x8 -> 24x24
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))[:, None].astype(np.float32)  # 28x28
    return train_test_split(images, digits.target.astype(np.float32), test_size=0.2,
                            random_state=0, stratify=digits.target)


def test_binary_lenet_on_digits(tmp_path):
    """Train briefly, export with the CLI, argmax identical in onnxruntime; import back."""
    mx.random.seed(0)
    xtr, xte, ytr, yte = _digits_28x28()
    net = get_model("binary_lenet", channels=(32, 32), hidden=256)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 2e-3})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    order = np.random.RandomState(0).permutation(len(xtr))
    for _ in range(3):
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            with autograd.record():
                loss = loss_fn(net(mx.nd.array(xtr[idx])), mx.nd.array(ytr[idx]))
            loss.backward()
            trainer.step(len(idx))
    want = net(mx.nd.array(xte)).asnumpy()
    accuracy = (want.argmax(1) == yte).mean()
    assert accuracy > 0.8, accuracy
    prefix = str(tmp_path / "lenet")
    net.export(prefix, epoch=1)

    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    onnx_path = str(tmp_path / "lenet.onnx")
    cmd = [sys.executable, "-m", "bmxnet.onnx", "export", prefix + "-symbol.json",
           prefix + "-0001.params", "--input-shape", "%d,1,28,28" % len(xte), "-o", onnx_path]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    _standard_only(onnx_path)
    for exact in (True, False):
        got = _ort(onnx_path, xte, exact=exact)
        np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
        _close(got, want)

    cmd = [sys.executable, "-m", "bmxnet.onnx", "import", onnx_path, "--output-prefix",
           str(tmp_path / "binarized_lenet")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "2 binary layer(s)" in out.stdout
    back = _load_block(str(tmp_path / "binarized_lenet"))(mx.nd.array(xte)).asnumpy()
    np.testing.assert_array_equal(back.argmax(1), want.argmax(1))
    _close(back, _ort(onnx_path, xte))


# ------------------------------------------------------------------------------------------------
# import of ONNX binary networks made elsewhere (built here with onnx.helper)
# ------------------------------------------------------------------------------------------------
def _init(name, value):
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _pm1(rng, *shape):
    return np.where(rng.rand(*shape) < 0.5, -1.0, 1.0).astype(np.float32)


def _bn(nodes, inits, prefix, rng, c, inp, out):
    """Appends an inference BatchNormalization with random statistics."""
    stats = [_init(prefix + "_s", rng.uniform(0.5, 1.5, c)),
             _init(prefix + "_b", rng.uniform(-0.3, 0.3, c)),
             _init(prefix + "_m", rng.uniform(-0.3, 0.3, c)),
             _init(prefix + "_v", rng.uniform(0.5, 1.5, c))]
    inits.extend(stats)
    nodes.append(helper.make_node("BatchNormalization", [inp] + [t.name for t in stats], [out],
                                  name=prefix, epsilon=1e-5))


def _handmade_bnn(rng, sign_op="Sign"):
    """Conv -> BN -> Sign -> Conv(±1) -> Mul(scale) -> BN -> Sign -> Pad(-1) -> Conv(±alpha, /2)
    -> Add(bias) -> BN -> MaxPool -> Sign -> Flatten -> Gemm(±1, C) -> BN -> Relu
    -> Sign -> MatMul(±1) -> Add -> Gemm (float) -> Softmax."""
    nodes, inits = [], []

    def sign(inp, out):
        if sign_op == "Sign":
            nodes.append(helper.make_node("Sign", [inp], [out], name=out))
        else:  # the sign(0) = +1 pattern bmxnet writes
            if not any(t.name == "zero" for t in inits):
                inits.extend([_init("zero", 0.0), _init("one", 1.0), _init("mone", -1.0)])
            nodes.append(helper.make_node("GreaterOrEqual", [inp, "zero"], [out + "_ge"]))
            nodes.append(helper.make_node("Where", [out + "_ge", "one", "mone"], [out], name=out))

    inits.append(_init("w0", rng.randn(16, 3, 3, 3) * 0.5))
    nodes.append(helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv0", pads=[1, 1, 1, 1]))
    _bn(nodes, inits, "bn0", rng, 16, "c0", "b0")
    sign("b0", "s1")
    inits += [_init("w1", _pm1(rng, 16, 16, 3, 3)),
              _init("scale1", rng.uniform(0.1, 1, (1, 16, 1, 1)))]
    nodes.append(helper.make_node("Conv", ["s1", "w1"], ["c1"], name="bconv1", pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Mul", ["c1", "scale1"], ["m1"], name="scale1"))
    _bn(nodes, inits, "bn1", rng, 16, "m1", "b1")
    sign("b1", "s2")
    inits.append(numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"))
    inits.append(_init("padval", -1.0))
    nodes.append(helper.make_node("Pad", ["s2", "pads", "padval"], ["p2"], name="pad2"))
    alpha2 = rng.uniform(0.1, 1, (24, 1, 1, 1)).astype(np.float32)
    inits += [_init("w2", _pm1(rng, 24, 16, 3, 3) * alpha2),
              _init("bias2", rng.randn(1, 24, 1, 1))]
    nodes.append(helper.make_node("Conv", ["p2", "w2"], ["c2"], name="bconv2", strides=[2, 2]))
    nodes.append(helper.make_node("Add", ["c2", "bias2"], ["a2"], name="bias2"))
    _bn(nodes, inits, "bn2", rng, 24, "a2", "b2")
    nodes.append(helper.make_node("MaxPool", ["b2"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]))
    sign("mp", "s3")
    nodes.append(helper.make_node("Flatten", ["s3"], ["f3"], axis=1))
    inits += [_init("w3", _pm1(rng, 32, 24 * 4 * 4)), _init("c3", rng.randn(32))]
    nodes.append(helper.make_node("Gemm", ["f3", "w3", "c3"], ["g3"], name="bdense3", transB=1))
    _bn(nodes, inits, "bn3", rng, 32, "g3", "b3")
    nodes.append(helper.make_node("Relu", ["b3"], ["r3"]))
    inits.append(_init("shift", -0.5))
    nodes.append(helper.make_node("Add", ["r3", "shift"], ["r3s"]))
    sign("r3s", "s4")
    inits += [_init("w4", _pm1(rng, 32, 20)), _init("b4", rng.randn(20))]
    nodes.append(helper.make_node("MatMul", ["s4", "w4"], ["mm4"], name="bdense4"))
    nodes.append(helper.make_node("Add", ["mm4", "b4"], ["a4"], name="bias4"))
    inits += [_init("w5", rng.randn(20, 10) * 0.3), _init("b5", rng.randn(10))]
    nodes.append(helper.make_node("Gemm", ["a4", "w5", "b5"], ["g5"], name="dense5"))
    nodes.append(helper.make_node("Softmax", ["g5"], ["y"], axis=1))
    graph = helper.make_graph(nodes, "bnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             [2, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 10])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("sign_op", ["Sign", "Where"])
def test_handmade_onnx_bnn_imports(tmp_path, rng, sign_op):
    model = _handmade_bnn(rng, sign_op)
    path = str(tmp_path / "bnn.onnx")
    onnx.save(model, path)
    sym, args, aux, report = import_model(path, str(tmp_path / "binarized_bnn"))
    layers = {l["node"]: l for l in report["binary_layers"]}
    assert sorted(layers) == ["bconv1", "bconv2", "bdense3", "bdense4"]
    assert layers["bconv1"]["scaling_mode"] == "forward"  # the Mul after the Conv
    assert layers["bconv2"]["scaling_mode"] == "forward"  # alpha folded into the weights
    assert layers["bconv2"]["pad_value"] == -1
    assert [l["node"] for l in report["float_layers"]] == ["conv0", "dense5"]
    assert len(report["plain_sign_layers"]) == (4 if sign_op == "Sign" else 0)
    ops = {n["op"] for n in json.loads(sym.tojson())["nodes"]}
    assert {"QConvolution", "QFullyConnected"} <= ops and "sign" not in ops
    assert all(a.dtype == np.int64 for n, a in args.items()
               if n.startswith(("bconv", "bdense")) and n.endswith("_weight"))
    x = rng.randn(2, 3, 16, 16).astype(np.float32)
    want = _ort(path, x)
    assert report["inputs"] == {"x": (2, 3, 16, 16)}
    got = _load_block(str(tmp_path / "binarized_bnn"), ["x"])(mx.nd.array(x)).asnumpy()
    _close(got, want)


def test_plain_sign_zero_gap(tmp_path):
    """Documented: ONNX Sign(0) = 0, the imported binary layer counts an exact 0 as +1."""
    w = np.ones((1, 1, 1, 2), np.float32)
    graph = helper.make_graph(
        [helper.make_node("Sign", ["x"], ["s"]), helper.make_node("Conv", ["s", "w"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 1, 2])], [_init("w", w)])
    path = str(tmp_path / "s.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    _, _, _, report = import_model(path, str(tmp_path / "b"))
    assert report["plain_sign_layers"]
    block = _load_block(str(tmp_path / "b"), ["x"])
    x = np.array([[[[-2.0, 3.0, 0.5]]]], np.float32)
    np.testing.assert_array_equal(block(mx.nd.array(x)).asnumpy(), _ort(path, x))
    x[0, 0, 0, 2] = 0.0  # ONNX: -1 + 1, 1 + 0; bmxnet: -1 + 1, 1 + 1
    np.testing.assert_array_equal(_ort(path, x), [[[[0.0, 1.0]]]])
    np.testing.assert_array_equal(block(mx.nd.array(x)).asnumpy(), [[[[0.0, 2.0]]]])


def test_sign_fed_conv_with_real_weights_is_a_float_conv(tmp_path, rng):
    graph = helper.make_graph(
        [helper.make_node("Sign", ["x"], ["s"]),
         helper.make_node("Conv", ["s", "w"], ["y"], pads=[1, 1, 1, 1])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 6, 6])],
        [_init("w", rng.randn(5, 4, 3, 3))])
    path = str(tmp_path / "f.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    sym, _, _, report = import_model(path, str(tmp_path / "f"))
    assert not report["binary_layers"] and report["float_layers"][0]["type"] == "Convolution"
    assert "converter" not in report
    x = rng.randn(1, 4, 6, 6).astype(np.float32)
    x[0, 0, :2] = 0.0  # mx.sym.sign(0) = 0 like ONNX: no gap for float layers
    _close(_load_block(str(tmp_path / "f"), ["x"])(mx.nd.array(x)).asnumpy(), _ort(path, x))


# ------------------------------------------------------------------------------------------------
# malformed input
# ------------------------------------------------------------------------------------------------
def _assert_nothing_written(prefix):
    folder = os.path.dirname(prefix)
    assert not [f for f in os.listdir(folder) if f.startswith(os.path.basename(prefix))]


def test_random_bytes_are_refused(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(np.random.RandomState(0).bytes(4096))
    with pytest.raises(OnnxImportError, match="junk.onnx: not an ONNX model"):
        import_model(str(path), str(tmp_path / "out"))
    _assert_nothing_written(str(tmp_path / "out"))


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.9])
def test_truncated_file_is_refused(tmp_path, rng, keep):
    good = tmp_path / "good.onnx"
    onnx.save(_handmade_bnn(rng), str(good))
    data = good.read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(OnnxImportError, match="bad.onnx: (not an ONNX model|invalid ONNX|the file "
                                              "is empty)"):
        import_model(str(bad), str(tmp_path / "out"))
    _assert_nothing_written(str(tmp_path / "out"))


def test_unsupported_operator_is_named(tmp_path, rng):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="act"),
         helper.make_node("Erf", ["r"], ["y"], name="my_erf")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = str(tmp_path / "u.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(OnnxImportError, match=r"node 'my_erf' \(Erf\): unsupported operator"):
        import_model(path, str(tmp_path / "out"))
    _assert_nothing_written(str(tmp_path / "out"))


def test_cli_reports_errors(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    out = subprocess.run([sys.executable, "-m", "bmxnet.onnx", "import", str(junk),
                          "--output-prefix", str(tmp_path / "o")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and "junk.onnx" in out.stderr and "Traceback" not in out.stderr
