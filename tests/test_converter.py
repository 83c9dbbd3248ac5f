"""model_converter: packing layout, bit-exact conversion, loading APIs, sizes and bad input."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon
from mxnet.gluon import nn

from bmxnet import converter
from bmxnet.converter import cli
from bmxnet.gluon import QActivation, QConv2D, QDense

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "model_converter", "model_converter.py")
# SymbolBlock.imports warns that it cannot type 'data' before the first call; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


# ------------------------------------------------------------------------------------------
# Packing against a bit-by-bit reference written here
# ------------------------------------------------------------------------------------------
def _ref_pack_run(values):
    """One run of floats -> list of int64 words, one bit at a time (bit 1 = value >= 0)."""
    words = []
    for start in range(0, len(values), 64):
        word = 0
        for j, v in enumerate(values[start:start + 64]):
            if v >= 0:
                word |= 1 << j
        words.append(np.array(word, np.uint64).view(np.int64).item())
    return words


def _ref_pack_conv(w):
    O, C, kh, kw = w.shape
    out = np.zeros((O, kh, kw, (C + 63) // 64), np.int64)
    for o in range(O):
        for i in range(kh):
            for j in range(kw):
                out[o, i, j] = _ref_pack_run([float(w[o, c, i, j]) for c in range(C)])
    return out


def _ref_pack_dense(w):
    return np.array([_ref_pack_run([float(v) for v in row]) for row in w], np.int64)


@pytest.mark.parametrize("channels", [1, 63, 64, 65, 130])
def test_pack_conv_matches_bitwise_reference(rng, channels):
    w = rng.randn(3, channels, 3, 2).astype(np.float32)
    w[0, 0, 0, 0] = 0.0    # sign(0) = +1
    w[1, -1, 1, 1] = -0.0  # -0.0 >= 0 too
    got = converter.pack_conv_weights(w)
    assert got.dtype == np.int64 and got.shape == (3, 3, 2, (channels + 63) // 64)
    np.testing.assert_array_equal(got, _ref_pack_conv(w))
    # unused high bits of the last word are zero
    used = channels - 64 * (got.shape[-1] - 1)
    if used < 64:
        assert not (got[..., -1].view(np.uint64) >> np.uint64(used)).any()
    np.testing.assert_array_equal(converter.unpack_conv_weights(got, channels),
                                  np.where(w >= 0, 1, -1).astype(np.float32))


@pytest.mark.parametrize("units", [1, 63, 64, 65, 130])
def test_pack_dense_matches_bitwise_reference(rng, units):
    w = rng.randn(4, units).astype(np.float32)
    w[:, 0] = 0.0
    got = converter.pack_dense_weights(w)
    assert got.dtype == np.int64 and got.shape == (4, (units + 63) // 64)
    np.testing.assert_array_equal(got, _ref_pack_dense(w))
    np.testing.assert_array_equal(converter.unpack_dense_weights(got, units),
                                  np.where(w >= 0, 1, -1).astype(np.float32))


def test_all_positive_word_is_minus_one_as_int64():
    """64 set bits are the uint64 pattern 0xFFFF...; stored in int64 that reads -1."""
    np.testing.assert_array_equal(converter.pack_dense_weights(np.ones((1, 64))), [[-1]])
    np.testing.assert_array_equal(converter.pack_dense_weights(np.ones((1, 65))), [[-1, 1]])


def test_unpack_rejects_bits_beyond_the_run():
    words = np.array([[3]], np.int64)  # bits 0 and 1 set
    with pytest.raises(ValueError, match="beyond element 1"):
        converter.unpack_dense_weights(words, 1)


@pytest.mark.parametrize("channels", [1, 63, 64, 65, 130])
def test_packed_weights_drive_the_operators_bit_exactly(rng, channels):
    """Our packed layout is the one the operators read: same output as their float path."""
    w = rng.randn(5, channels, 3, 3).astype(np.float32)
    x = rng.randn(2, channels, 6, 5).astype(np.float32)
    kw = dict(num_filter=5, kernel=(3, 3), pad=(1, 1), no_bias=True, scaling_mode="forward")
    want = mx.nd.QConvolution(mx.nd.array(x), mx.nd.array(w), **kw).asnumpy()
    got = mx.nd.QConvolution(mx.nd.array(x), mx.nd.array(converter.pack_conv_weights(w),
                                                         dtype=np.int64),
                             mx.nd.array(converter.channel_scale(w)),
                             binarized_weights_only=True, in_channels=channels, **kw).asnumpy()
    np.testing.assert_array_equal(got, want)
    wd = rng.randn(7, channels * 3).astype(np.float32)
    xd = rng.randn(3, channels * 3).astype(np.float32)
    want = mx.nd.QFullyConnected(mx.nd.array(xd), mx.nd.array(wd), num_hidden=7,
                                 no_bias=True).asnumpy()
    got = mx.nd.QFullyConnected(mx.nd.array(xd), mx.nd.array(converter.pack_dense_weights(wd),
                                                             dtype=np.int64),
                                num_hidden=7, no_bias=True, binarized_weights_only=True,
                                in_units=channels * 3)
    np.testing.assert_array_equal(got.asnumpy(), want)


def test_channel_scale_formula(rng):
    w = rng.randn(6, 5, 3, 3).astype(np.float32)
    flat = np.abs(w.reshape(6, -1)).astype(np.float64)
    want = (np.cumsum(flat, axis=1)[:, -1] / flat.shape[1]).astype(np.float32)
    np.testing.assert_array_equal(converter.channel_scale(w), want)


# ------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------
def _randomize_batchnorm(net, rng):
    """Non-trivial BatchNorm statistics so every layer matters."""
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.randn(*p.shape) * 0.5))
        elif name.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))


def _lenet(scaling=False):
    """Binary LeNet (BMXNet recipe): float first conv and last dense, 1-bit middle layers."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, 5), nn.Activation("tanh"), nn.MaxPool2D(2), nn.BatchNorm(),
            QActivation(backward_only=True),
            QConv2D(64, 5, use_bias=False, scaling=scaling), nn.BatchNorm(), nn.MaxPool2D(2),
            nn.Flatten(), QDense(256, use_bias=not scaling, scaling=scaling), nn.BatchNorm(),
            nn.Activation("tanh"), nn.Dense(10))
    return net


def _export(net, rng, tmp_path, prefix, shape):
    net.initialize(mx.init.Xavier(), force_reinit=True)
    x = mx.nd.array(rng.randn(*shape))
    net(x)
    _randomize_batchnorm(net, rng)
    net.hybridize()
    want = net(x).asnumpy()
    path = str(tmp_path / prefix)
    net.export(path, epoch=1)
    return x, want, path + "-0001.params"


def _outputs_three_ways(out_dir, prefix, x):
    """Runs the binarized files with mx.sym.load+bind, mx.mod.Module and SymbolBlock.imports."""
    sym_file = os.path.join(out_dir, "binarized_%s-symbol.json" % prefix)
    params_file = os.path.join(out_dir, "binarized_%s-0001.params" % prefix)
    results = {}
    sym = mx.sym.load(sym_file)
    saved = mx.nd.load(params_file)
    args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
    aux = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
    ex = sym.bind(mx.cpu(), args=dict(args, data=x), aux_states=aux, grad_req="null")
    results["bind"] = ex.forward(is_train=False)[0].asnumpy()
    mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[("data", x.shape)], for_training=False)
    mod.set_params(args, aux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    results["module"] = mod.get_outputs()[0].asnumpy()
    block = gluon.SymbolBlock.imports(sym_file, ["data"], params_file)
    results["symbolblock"] = block(x).asnumpy()
    block.hybridize(static_alloc=True, static_shape=True)
    results["symbolblock static"] = block(x).asnumpy()
    return results, saved


def test_lenet_conversion_is_exact_with_all_loading_apis(rng, tmp_path):
    x, want, params = _export(_lenet(), rng, tmp_path, "lenet", (3, 1, 28, 28))
    out = tmp_path / "out"
    report = converter.convert_checkpoint(params, output_dir=str(out), verify=2)
    assert report.verify["max_abs_diff"] == 0 and report.verify["argmax_equal"]
    assert set(report.verify["layers"]) == {layer.name for layer in report.packed_layers}
    assert all(v == 0 for v in report.verify["layers"].values())
    results, saved = _outputs_three_ways(str(out), "lenet", x)
    for api, got in results.items():
        np.testing.assert_array_equal(got, want, err_msg=api)
    # packed weights are int64 in the file, in the layout of pack_*_weights
    orig = mx.nd.load(params)
    qconv = [k for k in orig if "qconv" in k][0]
    qdense = [k for k in orig if "qdense" in k and k.endswith("weight")][0]
    assert saved[qconv].dtype == np.int64 and saved[qconv].shape == (64, 5, 5, 1)
    np.testing.assert_array_equal(saved[qconv].asnumpy(),
                                  converter.pack_conv_weights(orig[qconv].asnumpy()))
    assert saved[qdense].dtype == np.int64 and saved[qdense].shape == (256, 1024 // 64)
    # everything else is copied unchanged
    for key, value in orig.items():
        if key not in (qconv, qdense):
            assert saved[key].dtype == value.dtype
            np.testing.assert_array_equal(saved[key].asnumpy(), value.asnumpy(), err_msg=key)
    # exactly 32x for the 1-bit weights (64 input channels, 1024 input units)
    assert report.ratio == 32.0
    for layer in report.packed_layers:
        assert layer.weight_bits == 32 * layer.packed_bits
    assert report.binary_bits_before == (64 * 64 * 25 + 256 * 1024) * 32
    sizes = report.files["sizes"]
    assert sizes[report.files["params_out"]] == os.path.getsize(report.files["params_out"])
    assert sizes[report.files["params_out"]] < sizes[params] / 10
    text = report.format()
    assert "compression 32.00x" in text and "max |difference| of the outputs = 0" in text


def test_ratio_is_reported_honestly_below_64_channels(rng):
    data = mx.sym.var("data")
    sym = mx.sym.QConvolution(data, num_filter=4, kernel=(3, 3), no_bias=True, name="q")
    args = {"q_weight": mx.nd.array(rng.randn(4, 8, 3, 3))}
    _, new_args, _, report = converter.convert_model(sym, args, {})
    assert new_args["q_weight"].shape == (4, 3, 3, 1)
    assert report.ratio == 32.0 * 8 / 64  # 8 channels padded to one 64-bit word
    assert "below 32x" in report.format()


def _basic_block(channels, stride, in_channels):
    body = nn.HybridSequential()
    body.add(nn.BatchNorm(), QConv2D(channels, 3, strides=stride, padding=1, use_bias=False,
                                     in_channels=in_channels),
             nn.BatchNorm(), QConv2D(channels, 3, padding=1, use_bias=False,
                                     in_channels=channels))
    down = None
    if stride != 1 or in_channels != channels:
        down = nn.HybridSequential()
        down.add(nn.AvgPool2D(stride), nn.Conv2D(channels, 1, use_bias=False,
                                                 in_channels=in_channels), nn.BatchNorm())
    return body, down


class _Residual(nn.HybridBlock):
    def __init__(self, channels, stride, in_channels, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body, self.down = _basic_block(channels, stride, in_channels)

    def hybrid_forward(self, F, x):
        return self.body(x) + (x if self.down is None else self.down(x))


def _binary_resnet18(classes=10):
    """ResNet-18 for 32x32 inputs: float stem and classifier, 1-bit 3x3 convolutions."""
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, 3, padding=1, use_bias=False), nn.BatchNorm())
    in_channels = 64
    for stage, channels in enumerate((64, 128, 256, 512)):
        for unit in range(2):
            net.add(_Residual(channels, 2 if unit == 0 and stage > 0 else 1, in_channels))
            in_channels = channels
    net.add(nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Dense(classes))
    return net


def test_binary_resnet18_round_trip(rng, tmp_path):
    x, want, params = _export(_binary_resnet18(), rng, tmp_path, "resnet18", (2, 3, 32, 32))
    assert np.isfinite(want).all()
    report = converter.convert_checkpoint(params, output_dir=str(tmp_path), verify=1,
                                          data_shape=(2, 3, 32, 32))
    assert len(report.packed_layers) == 16 and report.ratio == 32.0
    assert report.verify["max_abs_diff"] == 0
    prefix = str(tmp_path / "binarized_resnet18")
    block = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0001.params")
    got = block(x).asnumpy()
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got.argmax(1), want.argmax(1))
    assert os.path.getsize(prefix + "-0001.params") < os.path.getsize(params) / 15


def test_parameters_are_matched_through_the_graph_not_by_name(rng):
    """conv1's weight is packed; conv10 (float) and conv11 (k-bit) keep theirs untouched."""
    data = mx.sym.var("data")
    y = mx.sym.Convolution(data, num_filter=8, kernel=(3, 3), pad=(1, 1), name="conv10")
    y = mx.sym.QConvolution(y, num_filter=6, kernel=(3, 3), pad=(1, 1), name="conv1")
    y = mx.sym.QConvolution(y, num_filter=4, kernel=(1, 1), act_bit=2, weight_bit=2,
                            name="conv11")
    args = {"conv10_weight": rng.randn(8, 3, 3, 3), "conv10_bias": rng.randn(8),
            "conv1_weight": rng.randn(6, 8, 3, 3), "conv1_bias": rng.randn(6),
            "conv11_weight": rng.randn(4, 6, 1, 1), "conv11_bias": rng.randn(4)}
    args = {k: mx.nd.array(v) for k, v in args.items()}
    sym2, args2, _, report = converter.convert_model(y, args, {})
    assert [(layer.name, layer.action) for layer in report.layers] == \
        [("conv1", "packed"), ("conv11", "copied")]
    np.testing.assert_array_equal(args2["conv1_weight"].asnumpy(),
                                  converter.pack_conv_weights(args["conv1_weight"].asnumpy()))
    for name in ("conv10_weight", "conv10_bias", "conv11_weight", "conv1_bias"):
        assert args2[name].dtype == np.float32
        np.testing.assert_array_equal(args2[name].asnumpy(), args[name].asnumpy())
    nodes = {n["name"]: n for n in json.loads(sym2.tojson())["nodes"]}
    assert nodes["conv1"]["attrs"]["binarized_weights_only"] == "True"
    assert "binarized_weights_only" not in nodes["conv11"]["attrs"]
    x = mx.nd.array(rng.randn(2, 3, 7, 7))
    want = y.bind(mx.cpu(), dict(args, data=x)).forward()[0].asnumpy()
    got = sym2.bind(mx.cpu(), dict(args2, data=x)).forward()[0].asnumpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("no_bias", [True, False])
def test_scaling_forward_layers_get_a_weight_scale_input(rng, no_bias):
    data = mx.sym.var("data")
    y = mx.sym.QConvolution(data, num_filter=6, kernel=(3, 3), pad=(1, 1), no_bias=no_bias,
                            scaling_mode="forward", name="qc")
    y = mx.sym.QFullyConnected(y, num_hidden=5, no_bias=no_bias, scaling_mode="forward",
                               name="qf")
    args = {"qc_weight": rng.randn(6, 70, 3, 3), "qf_weight": rng.randn(5, 6 * 5 * 4)}
    if not no_bias:
        args.update(qc_bias=rng.randn(6), qf_bias=rng.randn(5))
    args = {k: mx.nd.array(v) for k, v in args.items()}
    sym2, args2, _, report = converter.convert_model(y, args, {})
    assert [layer.scale for layer in report.layers] == ["qc_weight_scale", "qf_weight_scale"]
    for layer, w in (("qc", "qc_weight"), ("qf", "qf_weight")):
        flat = np.abs(args[w].asnumpy().reshape(args[w].shape[0], -1)).astype(np.float64)
        want = (np.cumsum(flat, axis=1)[:, -1] / flat.shape[1]).astype(np.float32)
        np.testing.assert_array_equal(args2[layer + "_weight_scale"].asnumpy(), want)
    expected_inputs = ["data", "qc_weight"] + ([] if no_bias else ["qc_bias"]) + \
        ["qc_weight_scale", "qf_weight"] + ([] if no_bias else ["qf_bias"]) + ["qf_weight_scale"]
    assert sym2.list_arguments() == expected_inputs
    x = mx.nd.array(rng.randn(3, 70, 5, 4))
    want = y.bind(mx.cpu(), dict(args, data=x)).forward()[0].asnumpy()
    got = sym2.bind(mx.cpu(), dict(args2, data=x)).forward()[0].asnumpy()
    np.testing.assert_array_equal(got, want)


def test_scaled_lenet_files_load_with_symbolblock(rng, tmp_path):
    x, want, params = _export(_lenet(scaling=True), rng, tmp_path, "scaled", (2, 1, 28, 28))
    report = converter.convert_checkpoint(params, verify=1)
    assert sum(layer.scale is not None for layer in report.layers) == 2
    results, _ = _outputs_three_ways(str(tmp_path), "scaled", x)
    for api, got in results.items():
        np.testing.assert_array_equal(got, want, err_msg=api)


def test_kbit_layers_are_copied_unchanged(rng):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), QConv2D(8, 3, act_bit=2, weight_bit=4), QConv2D(8, 1),
            QDense(6, act_bit=1, weight_bit=32), QDense(3, act_bit=32, weight_bit=1))
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(rng.randn(2, 3, 9, 9))
    want = net(x).asnumpy()
    net.hybridize()
    net(x)
    sym = net._cached_graph[1]
    params = {k: v.data() for k, v in net.collect_params().items()}
    sym2, args2, _, report = converter.convert_model(sym, params, {})
    actions = [(layer.op, layer.action) for layer in report.layers]
    assert actions == [("QConvolution", "copied"), ("QConvolution", "packed"),
                       ("QFullyConnected", "copied"), ("QFullyConnected", "copied")]
    assert "act_bit=2, weight_bit=4" in report.layers[0].reason
    for name, value in params.items():
        if name != report.layers[1].weight:
            assert args2[name].dtype == np.float32
            np.testing.assert_array_equal(args2[name].asnumpy(), value.asnumpy())
    got = sym2.bind(mx.cpu(), dict(args2, data=x)).forward()[0].asnumpy()
    np.testing.assert_array_equal(got, want)


def test_convert_model_accepts_numpy_params_and_keeps_aux(rng):
    data = mx.sym.var("data")
    y = mx.sym.BatchNorm(mx.sym.QFullyConnected(data, num_hidden=3, name="fc"), name="bn")
    args = {"fc_weight": rng.randn(3, 10).astype(np.float32),
            "fc_bias": np.zeros(3, np.float32), "bn_gamma": np.ones(3, np.float32),
            "bn_beta": np.zeros(3, np.float32)}
    aux = {"bn_moving_mean": np.zeros(3, np.float32), "bn_moving_var": np.ones(3, np.float32)}
    sym2, args2, aux2, report = converter.convert_model(y, args, aux)
    assert isinstance(sym2, mx.sym.Symbol) and args2["fc_weight"].dtype == np.int64
    assert set(aux2) == set(aux) and isinstance(report, converter.ConversionReport)
    assert report.to_dict()["ratio"] == 32.0 * 10 / 64


# ------------------------------------------------------------------------------------------
# Bad input: one clear error, exit code 1, no file left behind
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    """A small binary net exported once: (folder, params path, loaded params dict)."""
    folder = tmp_path_factory.mktemp("ckpt")
    net = nn.HybridSequential(prefix="small_")  # names independent of other tests
    with net.name_scope():
        net.add(nn.Conv2D(8, 3, padding=1), nn.BatchNorm(), QConv2D(16, 3, padding=1,
                                                                    use_bias=False),
                nn.Flatten(), QDense(10), nn.Dense(3))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    net(mx.nd.ones((1, 3, 8, 8)))
    net.export(str(folder / "small"), epoch=1)
    path = str(folder / "small-0001.params")
    return str(folder), path, mx.nd.load(path)


def _copy_checkpoint(src_folder, dst, prefix="m", params_bytes=None, params=None,
                     symbol_text=None):
    dst.mkdir(exist_ok=True)
    if symbol_text is None:
        with open(os.path.join(src_folder, "small-symbol.json")) as f:
            symbol_text = f.read()
    if symbol_text is not False:
        (dst / ("%s-symbol.json" % prefix)).write_text(symbol_text)
    path = dst / ("%s-0001.params" % prefix)
    if params is not None:
        mx.nd.save(str(path), params)
    else:
        if params_bytes is None:
            with open(os.path.join(src_folder, "small-0001.params"), "rb") as f:
                params_bytes = f.read()
        path.write_bytes(params_bytes)
    return str(path)


def _run_cli(args, capsys):
    rc = cli.main(args)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else None


def _bad_cases(src, tmp_path, loaded):
    raw = open(os.path.join(src, "small-0001.params"), "rb").read()
    missing = {k: v for k, v in loaded.items() if k != "arg:small_qconv0_weight"}
    wrong = dict(loaded)
    wrong["arg:small_qconv0_weight"] = mx.nd.ones((12, 8, 3, 3))
    corrupted = b"\x00" * 16 + raw[16:]
    return {
        "missing symbol": (_copy_checkpoint(src, tmp_path / "a", symbol_text=False),
                           "m-symbol.json not found"),
        "truncated params": (_copy_checkpoint(src, tmp_path / "b",
                                              params_bytes=raw[:len(raw) // 2]),
                             "truncated or corrupted"),
        "corrupted params": (_copy_checkpoint(src, tmp_path / "c", params_bytes=corrupted),
                             "truncated or corrupted"),
        "garbage params": (_copy_checkpoint(src, tmp_path / "d", params_bytes=os.urandom(300)),
                           "truncated or corrupted"),
        "json not a symbol": (_copy_checkpoint(src, tmp_path / "e", symbol_text='{"hello": 1}'),
                              "not an MXNet symbol file"),
        "not json": (_copy_checkpoint(src, tmp_path / "f", symbol_text="conv1 -> conv2"),
                     "not valid json"),
        "missing weight": (_copy_checkpoint(src, tmp_path / "g", params=missing),
                           "lacks the parameter 'small_qconv0_weight'"),
        "shape mismatch": (_copy_checkpoint(src, tmp_path / "h", params=wrong),
                           "shape mismatch in layer 'small_qconv0_fwd'"),
    }


def test_bad_inputs_give_one_error_and_no_files(small_checkpoint, tmp_path, capsys):
    src, _, loaded = small_checkpoint
    for case, (path, message) in _bad_cases(src, tmp_path, loaded).items():
        folder = os.path.dirname(path)
        before = _listing(folder)
        rc, out, err = _run_cli([path], capsys)
        assert rc == 1, case
        assert err.startswith("error: ") and err.count("\n") == 1, (case, err)
        assert message in err, (case, err)
        assert "Traceback" not in err and out == ""
        assert _listing(folder) == before, case  # no output, no temp file


def test_error_messages_name_the_file(small_checkpoint, tmp_path):
    src, _, loaded = small_checkpoint
    cases = _bad_cases(src, tmp_path, loaded)
    with pytest.raises(converter.ConversionError) as err:
        converter.convert_checkpoint(cases["truncated params"][0])
    assert cases["truncated params"][0] in str(err.value)
    with pytest.raises(converter.ConversionError, match="small_qconv0_fwd.*pass the .params file"):
        converter.convert_checkpoint(cases["missing weight"][0])


def test_already_binarized_input_is_refused(small_checkpoint, tmp_path, capsys):
    src, path, _ = small_checkpoint
    converter.convert_checkpoint(path, output_dir=str(tmp_path))
    before = _listing(str(tmp_path))
    rc, _, err = _run_cli([str(tmp_path / "binarized_small-0001.params")], capsys)
    assert rc == 1 and "already binarized" in err and "convert the original" in err
    assert _listing(str(tmp_path)) == before  # no binarized_binarized_small-*
    with pytest.raises(converter.AlreadyBinarizedError):
        sym, args, aux = mx.model.load_checkpoint(str(tmp_path / "binarized_small"), 1)
        converter.convert_model(sym, args, aux)


def test_unwritable_output_is_an_error(small_checkpoint, tmp_path, capsys):
    _, path, _ = small_checkpoint
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for target in (a_file, a_file / "sub"):
        rc, _, err = _run_cli([path, "--output-dir", str(target)], capsys)
        assert rc == 1 and err.startswith("error: ") and str(tmp_path) in err
    assert _listing(str(tmp_path)) == ["file.txt"]


def test_a_failed_write_leaves_nothing(small_checkpoint, tmp_path, monkeypatch):
    """The symbol is written first; if the params write fails, neither file appears."""
    _, path, _ = small_checkpoint

    def failing_save(fname, data):
        with open(fname, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(mx.nd, "save", failing_save)
    with pytest.raises(converter.ConversionError, match="disk full"):
        converter.convert_checkpoint(path, output_dir=str(tmp_path / "out"))
    assert _listing(str(tmp_path / "out")) == []


def test_verification_catches_a_wrong_packing(small_checkpoint, tmp_path, monkeypatch):
    _, path, _ = small_checkpoint
    real = converter.convert.packing.pack_conv_weights

    def off_by_one_bit(w):
        p = real(w)
        p.flat[0] ^= 1
        return p

    monkeypatch.setattr(converter.convert.packing, "pack_conv_weights", off_by_one_bit)
    with pytest.raises(converter.ConversionError, match="verification failed"):
        converter.convert_checkpoint(path, output_dir=str(tmp_path / "v"), verify=2)
    assert _listing(str(tmp_path / "v")) is None


# ------------------------------------------------------------------------------------------
# The command line, in a subprocess
# ------------------------------------------------------------------------------------------
def _script(*args):
    env = dict(os.environ, MXNET_SUBGRAPH_VERBOSE="0")
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_dry_run_and_convert(small_checkpoint, tmp_path):
    _, path, _ = small_checkpoint
    out = tmp_path / "out"
    res = _script(path, "--dry-run", "--verify", "1", "--output-dir", str(out))
    assert res.returncode == 0, res.stderr
    assert "small_qconv0_fwd" in res.stdout and "dry run: nothing written" in res.stdout
    assert "max |difference| of the outputs = 0" in res.stdout
    assert not out.exists()
    res = _script(path, "--output-dir", str(out), "--verify", "1")
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ["binarized_small-0001.params",
                                       "binarized_small-symbol.json"]
    assert "compression" in res.stdout and "wrote" in res.stdout


def test_cli_error_exit_code(tmp_path):
    res = _script(str(tmp_path / "nothing-0001.params"))
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    res = _script(str(tmp_path / "x.params"), "--verify", "-3")
    assert res.returncode == 2  # argparse usage error
