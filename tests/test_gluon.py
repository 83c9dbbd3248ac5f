"""Gluon layers: hybridize, export/import, symbol json, training, and bad-input errors."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import bmxnet
from bmxnet.gluon import QActivation, QConv2D, QDense

import reference as ref


def _small_net(scaling=False):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1), nn.BatchNorm(), QActivation(),
            QConv2D(12, 3, padding=1, strides=2, use_bias=False, scaling=scaling),
            nn.BatchNorm(), QConv2D(10, 1, groups=2, act_bit=2, weight_bit=4),
            nn.Flatten(), QDense(16, act_bit=1, weight_bit=1), nn.BatchNorm(), nn.Dense(3))
    return net


def test_gluon_layers_match_float_parents_at_32_bits(rng):
    """With 32-bit inputs and weights the Q-layers compute what nn.Conv2D / nn.Dense compute."""
    x = mx.nd.array(rng.randn(2, 6, 9, 9))
    q = QConv2D(4, 3, padding=1, strides=2, groups=2, act_bit=32, weight_bit=32)
    f = nn.Conv2D(4, 3, padding=1, strides=2, groups=2)
    for layer in (q, f):
        layer.initialize(mx.init.Constant(0.1))
        layer(x)
    f.weight.set_data(mx.nd.array(rng.randn(*f.weight.shape)))
    q.weight.set_data(f.weight.data())
    np.testing.assert_allclose(q(x).asnumpy(), f(x).asnumpy(), rtol=1e-4, atol=1e-4)
    qd, fd = QDense(5, act_bit=32, weight_bit=32), nn.Dense(5)
    for layer in (qd, fd):
        layer.initialize()
        layer(x)
    qd.weight.set_data(fd.weight.data())
    np.testing.assert_allclose(qd(x).asnumpy(), fd(x).asnumpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("static", [False, True])
def test_hybridized_equals_imperative(rng, static):
    net = _small_net(scaling=True)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(rng.randn(3, 2, 8, 8))
    want = net(x).asnumpy()
    net.hybridize(static_alloc=static, static_shape=static)
    np.testing.assert_array_equal(net(x).asnumpy(), want)
    np.testing.assert_array_equal(net(x).asnumpy(), want)


def test_export_and_symbolblock_import(rng, tmp_path):
    net = _small_net()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    x = mx.nd.array(rng.randn(2, 2, 8, 8))
    want = net(x).asnumpy()
    prefix = str(tmp_path / "small")
    net.export(prefix, epoch=1)
    ops = {n["op"] for n in __import__("json").load(open(prefix + "-symbol.json"))["nodes"]}
    assert {"QConvolution", "QFullyConnected", "QActivation"} <= ops
    loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0001.params")
    np.testing.assert_array_equal(loaded(x).asnumpy(), want)


def test_symbol_json_round_trip(rng):
    data = mx.sym.var("data")
    sym = mx.sym.QConvolution(data, num_filter=5, kernel=(3, 3), pad=(1, 1), act_bit=1,
                              weight_bit=1, name="qc")
    sym = mx.sym.QFullyConnected(mx.sym.QActivation(sym, act_bit=2), num_hidden=4, name="qf",
                                 act_bit=2, weight_bit=2)
    sym2 = mx.sym.load_json(sym.tojson())
    assert sym2.tojson() == sym.tojson()
    args = {"data": mx.nd.array(rng.randn(2, 3, 6, 6)),
            "qc_weight": mx.nd.array(rng.randn(5, 3, 3, 3)), "qc_bias": mx.nd.zeros(5),
            "qf_weight": mx.nd.array(rng.randn(4, 180)), "qf_bias": mx.nd.zeros(4)}
    out1 = sym.bind(mx.cpu(), args).forward()[0].asnumpy()
    out2 = sym2.bind(mx.cpu(), args).forward()[0].asnumpy()
    np.testing.assert_array_equal(out1, out2)
    mod = mx.mod.Module(sym2, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", (2, 3, 6, 6))], for_training=False)
    mod.set_params({k: v for k, v in args.items() if k != "data"}, {})
    mod.forward(mx.io.DataBatch([args["data"]]), is_train=False)
    np.testing.assert_array_equal(mod.get_outputs()[0].asnumpy(), out1)


def test_training_lowers_the_loss(rng):
    mx.random.seed(0)
    X = rng.randn(64, 2, 8, 8).astype(np.float32)
    y = (X[:, 0].mean(axis=(1, 2)) > 0).astype(np.float32) + (X[:, 1, :4].mean(axis=(1, 2)) > 0)
    net = _small_net()
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": 0.01})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    Xn, yn = mx.nd.array(X), mx.nd.array(y)
    losses = []
    for _ in range(40):
        with autograd.record():
            loss = loss_fn(net(Xn), yn).mean()
        loss.backward()
        trainer.step(1)
        losses.append(loss.asscalar())
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses


@pytest.mark.parametrize("kwargs,shape,needle", [
    (dict(act_bit=0), (1, 4, 5, 5), "act_bit"),
    (dict(act_bit=33), (1, 4, 5, 5), "act_bit"),
    (dict(weight_bit=0), (1, 4, 5, 5), "weight_bit"),
    (dict(), (4, 5, 5), "4-D"),
    (dict(num_group=3), (1, 4, 5, 5), "num_group"),
    (dict(scaling_mode="backward"), (1, 4, 5, 5), "'none' and 'forward'"),
    (dict(pad_value=2), (1, 4, 5, 5), "pad_value"),
    (dict(kernel=(9, 9)), (1, 4, 5, 5), "kernel"),
    (dict(bogus=1), (1, 4, 5, 5), "unknown parameter 'bogus'"),
])
def test_qconvolution_bad_input(kwargs, shape, needle):
    params = dict(num_filter=6, kernel=(3, 3), no_bias=True)
    params.update(kwargs)
    with pytest.raises(mx.base.MXNetError, match=needle):
        x = mx.sym.var("data")
        sym = mx.sym.QConvolution(x, **params)
        sym.infer_shape(data=shape)


def test_bad_input_keeps_process_usable():
    with pytest.raises(mx.base.MXNetError, match="act_bit"):
        mx.nd.QActivation(mx.nd.ones((2,)), act_bit=0).wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="weight"):
        mx.nd.QFullyConnected(mx.nd.ones((2, 3)), mx.nd.ones((4, 5)), num_hidden=4,
                              no_bias=True).wait_to_read()
    np.testing.assert_array_equal(mx.nd.QActivation(mx.nd.array([-2.0, 0.0])).asnumpy(), [-1, 1])


def test_gluon_rejects_bad_arguments():
    with pytest.raises(ValueError, match="act_bit"):
        QConv2D(4, 3, act_bit=0)
    with pytest.raises(ValueError, match="scaling"):
        QDense(4, scaling="sometimes")
    with pytest.raises(ValueError, match="pad_value"):
        QConv2D(4, 3, pad_value=2)


def test_import_is_quiet_and_idempotent():
    code = "import mxnet, bmxnet, importlib; importlib.reload(bmxnet); import bmxnet.gluon"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(bmxnet.__file__)))
    assert out.stdout == "" and out.stderr == "", (out.stdout, out.stderr)


def test_nd_out_is_written_and_never_printed(rng, monkeypatch):
    # ``out=`` is no attribute: the wrappers once turned it into text, formatting every value of
    # the array on every call (~1 ms for 50k floats, more than the layer itself).
    x, w = rng.randn(1, 8, 5, 5).astype(np.float32), rng.randn(4, 8, 3, 3).astype(np.float32)
    out = mx.nd.zeros((1, 4, 5, 5))

    def refuse(self):
        raise AssertionError("an NDArray was printed")
    monkeypatch.setattr(mx.nd.NDArray, "__str__", refuse)
    monkeypatch.setattr(mx.nd.NDArray, "__repr__", refuse)
    got = mx.nd.QConvolution(mx.nd.array(x), weight=mx.nd.array(w), num_filter=4, kernel=(3, 3),
                             pad=(1, 1), no_bias=True, out=out)
    assert got is out
    want = ref.conv2d(np.where(x >= 0, 1.0, -1.0), np.where(w >= 0, 1.0, -1.0), stride=(1, 1),
                      pad=(1, 1), dilate=(1, 1), groups=1)
    np.testing.assert_array_equal(out.asnumpy(), want)


def test_symbol_creates_parameter_variables_and_nd_takes_keywords(rng):
    data = mx.sym.var("data")
    net = mx.sym.QConvolution(data, num_filter=64, kernel=(3, 3), pad=(1, 1), act_bit=1,
                              weight_bit=1)
    args = net.list_arguments()
    assert args[0] == "data" and args[1].endswith("_weight") and args[2].endswith("_bias")
    assert net.infer_shape(data=(1, 3, 8, 8))[0][1] == (64, 3, 3, 3)
    fc = mx.sym.QFullyConnected(data, num_hidden=4, no_bias=True, name="fc")
    assert fc.list_arguments() == ["data", "fc_weight"]
    x, w = mx.nd.array(rng.randn(2, 6)), mx.nd.array(rng.randn(3, 6))
    np.testing.assert_array_equal(
        mx.nd.QFullyConnected(x, weight=w, num_hidden=3, no_bias=True).asnumpy(),
        mx.nd.QFullyConnected(x, w, num_hidden=3, no_bias=True).asnumpy())
    with pytest.raises(TypeError, match="weight"):
        mx.nd.QFullyConnected(x, num_hidden=3, no_bias=True)
