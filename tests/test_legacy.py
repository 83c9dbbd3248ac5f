"""BMXNet v1 compatibility: bmxnet.legacy and model_converter --from-bmxnet on the real files.

The reference here is independent of bmxnet: it parses the .params bytes itself, decodes the
words with shifts, and runs the network in numpy, all from the facts in
``shared/bmxnet_legacy/README.md``.

Input images: scikit-learn's 8x8 digits scaled to [0, 1], resized to 20x20 with bilinear
interpolation in align-corners mode (the corner pixels of the 8x8 and 20x20 grids coincide; the
mode of MXNet's BilinearResize2D), and centred in a 28x28 frame of zeros.
"""
import json
import os
import struct

import mxnet as mx
import numpy as np
import pytest

import bmxnet.legacy as legacy
from bmxnet import converter
from bmxnet.converter import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEGACY = os.path.normpath(os.path.join(ROOT, "..", "shared", "bmxnet_legacy"))
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(LEGACY, "binarized_mnist_64bit-0001.params")),
    reason="BMXNet v1 test files not found in %s (they are not part of the repository)" % LEGACY)


def _prefix(bits):
    return os.path.join(LEGACY, "binarized_mnist_%dbit" % bits)


# ------------------------------------------------------------------------------------------
# Independent reference
# ------------------------------------------------------------------------------------------
def _read_params(path):
    """Parses an MXNet 0.9 .params file (NDArray list format, pre-magic arrays) byte by byte."""
    raw = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, raw, pos)
        pos += struct.calcsize(fmt)
        return values

    magic, _ = take("<QQ")
    assert magic == 0x112
    (count,) = take("<Q")
    arrays = []
    for _ in range(count):
        (ndim,) = take("<I")
        shape = take("<%dI" % ndim)
        _, _, type_flag = take("<iii")  # device type, device id, dtype
        dtype = np.dtype({0: "<f4", 1: "<f8"}[type_flag])
        size = int(np.prod(shape))
        arrays.append(np.frombuffer(raw, dtype, size, pos).reshape(shape))
        pos += size * dtype.itemsize
    (count,) = take("<Q")
    names = []
    for _ in range(count):
        (length,) = take("<Q")
        names.append(raw[pos:pos + length].decode())
        pos += length
    assert pos == len(raw)
    return {name.split(":", 1)[1]: array for name, array in zip(names, arrays)}


def _word_bits(stored):
    """(n_words, bits) 0/1 array: bit j of each word, LSB first, from the stored float bytes."""
    utype = {4: np.uint32, 8: np.uint64}[stored.dtype.itemsize]
    words = stored.view(utype)
    shifts = np.arange(8 * stored.dtype.itemsize, dtype=utype)
    return ((words[:, None] >> shifts) & utype(1)).astype(np.int8)


def _decode_reference(p):
    """+-1 weights from the README: conv words run over (out, in, kh, kw); dense words hold
    ``bits`` consecutive inputs of one output, stored in (in/bits, num_hidden) order."""
    conv = np.where(_word_bits(p["qconvolution0_weight"]).reshape(-1) == 1, 1.0, -1.0)
    conv = conv.reshape(64, 64, 5, 5)
    bits = _word_bits(p["qfullyconnected0_weight"])
    bits = bits.reshape(-1, 1000, bits.shape[-1])  # (in/bits, num_hidden, bits)
    dense = np.where(bits == 1, 1.0, -1.0).transpose(1, 0, 2).reshape(1000, -1)
    return conv.astype(np.float32), dense.astype(np.float32)


def _batchnorm(x, p, name, shape):
    """MXNet's inference BatchNorm with the defaults of the json (eps=1e-3, fix_gamma)."""
    mean = p[name + "_moving_mean"].astype(np.float64).reshape(shape)
    var = p[name + "_moving_var"].astype(np.float64).reshape(shape)
    return (x - mean) / np.sqrt(var + 1e-3) + p[name + "_beta"].astype(np.float64).reshape(shape)


def _sign(x):
    return np.where(x >= 0, np.float32(1), np.float32(-1))


def _binary_conv_count(s, w):
    """Match count (K + dot) / 2 of +-1 inputs (N, 64, 12, 12) with +-1 weights, no padding."""
    n = s.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(s, (5, 5), axis=(2, 3))  # N C 8 8 5 5
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * 64, 1600)
    dot = (cols @ w.reshape(64, -1).T).reshape(n, 8, 8, 64).transpose(0, 3, 1, 2)
    return dot.astype(np.float64)  # integers, exact in float32


def _reference_forward(x, p):
    """Logits of the count reading and the +-1 dot reading, and the intermediate values."""
    wc, wf = _decode_reference(p)
    n = x.shape[0]
    win = np.lib.stride_tricks.sliding_window_view(x[:, 0].astype(np.float64), (5, 5),
                                                   axis=(1, 2))
    y = win.reshape(n * 576, 25) @ p["convolution0_weight"].astype(np.float64).reshape(64, 25).T
    # NHWC; max-pool commutes with the per-channel bias and with tanh (both monotonic)
    y = y.reshape(n, 12, 2, 12, 2, 64).max(axis=(2, 4)) + p["convolution0_bias"]
    h = _batchnorm(np.tanh(y).transpose(0, 3, 1, 2), p, "batchnorm0", (1, -1, 1, 1))
    dot = _binary_conv_count(_sign(h), wc)
    out = {}
    for reading, k_conv, k_fc, scale in (("count", 1600, 1024, 0.5), ("dot", 0, 0, 1.0)):
        c = (dot + k_conv) * scale
        h2 = _batchnorm(c, p, "batchnorm1", (1, -1, 1, 1))
        h2 = h2.reshape(n, 64, 4, 2, 4, 2).max(axis=(3, 5)).reshape(n, -1)
        d2 = (_sign(h2) @ wf.T).astype(np.float64)
        h3 = np.tanh(_batchnorm((d2 + k_fc) * scale, p, "batchnorm2", (1, -1)))
        out[reading] = h3 @ p["fullyconnected0_weight"].astype(np.float64).T + \
            p["fullyconnected0_bias"]
    return out


def _resize_align_corners(images, size):
    """Bilinear resize of (N, n, n) images to (N, size, size), align-corners mode."""
    n = images.shape[-1]
    c = np.arange(size) * (n - 1) / (size - 1)
    i0 = np.minimum(np.floor(c).astype(int), n - 2)
    f = c - i0
    rows = images[:, i0, :] * (1 - f)[None, :, None] + images[:, i0 + 1, :] * f[None, :, None]
    return rows[:, :, i0] * (1 - f) + rows[:, :, i0 + 1] * f


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = np.zeros((len(d.images), 1, 28, 28), np.float32)
    x[:, 0, 4:24, 4:24] = _resize_align_corners(d.images.astype(np.float64) / 16.0, 20)
    return x, d.target


@pytest.fixture(scope="module")
def raw64():
    return _read_params(_prefix(64) + "-0001.params")


@pytest.fixture(scope="module")
def model64():
    return legacy.load(_prefix(64), 1)


@pytest.fixture(scope="module")
def reference(digits, raw64):
    return _reference_forward(digits[0], raw64)


OUR_NODES = ["softmax", "fullyconnected0", "batchnorm0", "qconvolution0_count", "flatten0",
             "qfullyconnected0_count"]


@pytest.fixture(scope="module")
def ours(digits, model64):
    """Our network's outputs on all digits: {node: array}."""
    block = model64.block(OUR_NODES)
    block.hybridize(static_alloc=True, static_shape=True)
    outs = [[o.asnumpy() for o in block(mx.nd.array(digits[0][s:s + 600]))]
            for s in range(0, len(digits[0]), 600)]
    return {name: np.concatenate([o[i] for o in outs]) for i, name in enumerate(OUR_NODES)}


# ------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------
def test_both_word_sizes_decode_to_identical_weights(raw64):
    raw32 = _read_params(_prefix(32) + "-0001.params")
    assert raw32["qconvolution0_weight"].dtype == np.float32 and \
        raw64["qconvolution0_weight"].dtype == np.float64
    # words that are NaN as floats: only a byte reinterpretation keeps them
    assert np.isnan(raw32["qconvolution0_weight"]).any()
    ref32, ref64 = _decode_reference(raw32), _decode_reference(raw64)
    for a, b in zip(ref32, ref64):
        np.testing.assert_array_equal(a, b)
    m32 = legacy.read(_prefix(32) + "-symbol.json", _prefix(32) + "-0001.params")
    m64 = legacy.read(_prefix(64) + "-symbol.json", _prefix(64) + "-0001.params")
    assert (m32.word_bits, m64.word_bits) == (32, 64)
    for name, ref in (("qconvolution0_weight", ref64[0]), ("qfullyconnected0_weight", ref64[1])):
        np.testing.assert_array_equal(m32.float_arg_params[name].asnumpy(), ref)
        np.testing.assert_array_equal(m64.float_arg_params[name].asnumpy(), ref)
        np.testing.assert_array_equal(m32.arg_params[name].asnumpy(),
                                      m64.arg_params[name].asnumpy())
    assert m64.arg_params["qconvolution0_weight"].dtype == np.int64
    np.testing.assert_array_equal(m64.arg_params["qconvolution0_weight"].asnumpy(),
                                  converter.pack_conv_weights(ref64[0]))
    np.testing.assert_array_equal(m64.arg_params["qfullyconnected0_weight"].asnumpy(),
                                  converter.pack_dense_weights(ref64[1]))


def test_rebuilt_graph_uses_count_scale_and_plus_one_padding(model64):
    nodes = {n["name"]: n for n in json.loads(model64.symbol.tojson())["nodes"]}
    conv = nodes["qconvolution0"]["attrs"]
    assert conv["pad_value"] == "1" and conv["binarized_weights_only"] == "True"
    assert nodes["qconvolution0_plus_k"]["op"] == "_plus_scalar"
    assert float(nodes["qconvolution0_plus_k"]["attrs"]["scalar"]) == 1600
    assert float(nodes["qfullyconnected0_plus_k"]["attrs"]["scalar"]) == 1024
    assert float(nodes["qfullyconnected0_count"]["attrs"]["scalar"]) == 0.5
    assert nodes["qactivation0"]["attrs"]["backward_only"] == "True"
    assert model64.data_names == ["data"] and model64.data_shape == (1, 1, 28, 28)


# ------------------------------------------------------------------------------------------
# Predictions against the numpy reference
# ------------------------------------------------------------------------------------------
def test_binary_layers_compute_the_match_count_exactly(model64, raw64, ours):
    """Given the same float inputs, our binary layers give exactly the numpy match counts."""
    wc, wf = _decode_reference(raw64)
    want = (_binary_conv_count(_sign(ours["batchnorm0"]), wc) + 1600) / 2
    np.testing.assert_array_equal(ours["qconvolution0_count"], want)
    want = ((_sign(ours["flatten0"]) @ wf.T).astype(np.float64) + 1024) / 2
    np.testing.assert_array_equal(ours["qfullyconnected0_count"], want)


def test_predictions_match_the_numpy_reference(digits, reference, ours):
    ref = reference["count"]
    np.testing.assert_array_equal(ours["fullyconnected0"].argmax(1), ref.argmax(1))
    np.testing.assert_array_equal(ours["softmax"].argmax(1), ref.argmax(1))
    # Logits agree to float32 rounding, except for the rare digit where a BatchNorm output lies
    # within rounding of 0, so float32 (ours) and float64 (numpy) binarize it differently and
    # one match count changes by 1. Such a digit is off by a small amount, not a different
    # network.
    diff = np.abs(ours["fullyconnected0"] - ref).max(axis=1)
    assert np.mean(diff <= 1e-3) >= 0.99, np.sort(diff)[-30:]  # 7 of 1797 here
    assert np.median(diff) <= 1e-4
    np.testing.assert_allclose(ours["softmax"].sum(1), 1, rtol=1e-5)


def test_accuracy_with_count_and_dot_readings(digits, reference, ours):
    labels = digits[1]
    count = np.mean(reference["count"].argmax(1) == labels)
    dot = np.mean(reference["dot"].argmax(1) == labels)
    assert 0.52 <= count <= 0.62, count  # README: about 57 %
    assert dot <= 0.16, dot  # chance level: 10 classes
    assert np.mean(ours["softmax"].argmax(1) == labels) == count


def test_32bit_model_computes_the_same(digits, ours):
    model32 = legacy.load(_prefix(32), 1)
    got = model32.net(mx.nd.array(digits[0][:300])).asnumpy()
    np.testing.assert_array_equal(got, ours["softmax"][:300])


# ------------------------------------------------------------------------------------------
# model_converter --from-bmxnet
# ------------------------------------------------------------------------------------------
def _run_symbol(prefix, x):
    """Runs migrated files with Module and with SymbolBlock.imports(json, ['data'], params), as
    the README shows: the loss head was written as softmax, so there is no label input."""
    sym, args, aux = mx.model.load_checkpoint(prefix, 1)
    assert sym.list_arguments()[0] == "data" and "softmax_label" not in sym.list_arguments()
    mod = mx.mod.Module(sym, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", x.shape)], for_training=False)
    mod.set_params(args, aux)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    got = mod.get_outputs()[0].asnumpy()
    block = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"], prefix + "-0001.params")
    np.testing.assert_array_equal(block(mx.nd.array(x)).asnumpy(), got)
    return got, args


def test_converted_legacy_files_give_the_same_predictions(digits, ours, tmp_path, capsys):
    rc = cli.main(["--from-bmxnet", _prefix(64) + "-0001.params", "--output-dir",
                   str(tmp_path), "--verify", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "repack" in out and "max |difference| of the outputs = 0" in out
    assert sorted(os.listdir(tmp_path)) == ["binarized_mnist_64bit-0001.params",
                                            "binarized_mnist_64bit-symbol.json"]
    got, args = _run_symbol(str(tmp_path / "binarized_mnist_64bit"), digits[0])
    assert args["qconvolution0_weight"].dtype == np.int64
    np.testing.assert_array_equal(got, ours["softmax"])
    # already in our format: converting it again is refused, with or without --from-bmxnet
    with pytest.raises(converter.AlreadyBinarizedError):
        converter.convert_checkpoint(str(tmp_path / "binarized_mnist_64bit-0001.params"),
                                     dry_run=True)
    with pytest.raises(legacy.LegacyFormatError, match="not a BMXNet v1 model"):
        converter.convert_checkpoint(str(tmp_path / "binarized_mnist_64bit-0001.params"),
                                     dry_run=True, from_bmxnet=True)


def test_default_output_would_overwrite_input(tmp_path, capsys):
    for suffix in ("-symbol.json", "-0001.params"):
        with open(_prefix(32) + suffix, "rb") as f:
            (tmp_path / ("binarized_m" + suffix)).write_bytes(f.read())
    rc = cli.main(["--from-bmxnet", str(tmp_path / "binarized_m-0001.params")])
    err = capsys.readouterr().err
    assert rc == 1 and "overwrite" in err and "--output-dir" in err


def _legacy_copy(tmp_path, edit_graph=None, edit_params=None, prefix="m"):
    with open(_prefix(64) + "-symbol.json") as f:
        graph = json.load(f)
    params = mx.nd.load(_prefix(64) + "-0001.params")
    if edit_graph:
        edit_graph(graph)
    if edit_params:
        edit_params(params)
    (tmp_path / (prefix + "-symbol.json")).write_text(json.dumps(graph))
    mx.nd.save(str(tmp_path / (prefix + "-0001.params")), params)
    return str(tmp_path / prefix)


def _drop_last_word(name):
    def edit(params):
        w = params["arg:" + name].asnumpy()
        params["arg:" + name] = mx.nd.array(w[:-1], dtype=w.dtype)
    return edit


@pytest.mark.parametrize("layer", ["qconvolution0", "qfullyconnected0"])
def test_wrong_word_count_names_the_layer(tmp_path, capsys, layer):
    prefix = _legacy_copy(tmp_path, edit_params=_drop_last_word(layer + "_weight"))
    with pytest.raises(legacy.LegacyFormatError, match="layer '%s'.*words" % layer):
        legacy.load(prefix, 1)
    out = tmp_path / "out"
    rc = cli.main(["--from-bmxnet", prefix + "-0001.params", "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and layer in err
    assert not out.exists() or os.listdir(out) == []


def test_unmappable_layer_names_the_layer(tmp_path):
    def edit(graph):
        for node in graph["nodes"]:
            if node["name"] == "activation1":
                node["op"] = "UpSampling"
    prefix = _legacy_copy(tmp_path, edit_graph=edit)
    with pytest.raises(legacy.LegacyFormatError, match="'activation1' has type 'UpSampling'"):
        legacy.load(prefix, 1)

    def kbit(graph):
        for node in graph["nodes"]:
            if node["name"] == "qconvolution0":
                node["attr"]["act_bit"] = "2"
    prefix = _legacy_copy(tmp_path, edit_graph=kbit, prefix="k")
    with pytest.raises(legacy.LegacyFormatError, match="'qconvolution0'.*act_bit=2"):
        legacy.load(prefix, 1)


def test_unconverted_bmxnet_checkpoint_keeps_float_weights(digits, raw64, ours, tmp_path):
    """A BMXNet training checkpoint: float weights, no binarized_weights_only."""
    rng = np.random.RandomState(7)
    wc, wf = _decode_reference(raw64)

    def edit_graph(graph):
        for node in graph["nodes"]:
            node.get("attr", {}).pop("binarized_weights_only", None)

    def edit_params(params):
        for name, signs in (("qconvolution0_weight", wc), ("qfullyconnected0_weight", wf)):
            magnitude = rng.uniform(0.01, 1.0, size=signs.shape).astype(np.float32)
            params["arg:" + name] = mx.nd.array(signs * magnitude)

    prefix = _legacy_copy(tmp_path, edit_graph, edit_params, prefix="float_mnist")
    model = legacy.load(prefix, 1)
    assert [layer["packed"] for layer in model.layers] == [False, False]
    assert model.arg_params["qconvolution0_weight"].dtype == np.float32
    x = digits[0][:200]
    np.testing.assert_array_equal(model.net(mx.nd.array(x)).asnumpy(), ours["softmax"][:200])
    report = converter.convert_checkpoint(prefix + "-0001.params", from_bmxnet=True,
                                          output_dir=str(tmp_path / "out"), verify=1)
    assert [layer.action for layer in report.layers] == ["packed", "packed"]
    assert report.ratio == 32.0
    got, args = _run_symbol(str(tmp_path / "out" / "binarized_float_mnist"), x)
    assert args["qfullyconnected0_weight"].dtype == np.int64
    np.testing.assert_array_equal(got, ours["softmax"][:200])
