"""The operators' process-wide layer cache (operators/mxnet/common.h) never gives a stale result.

1-bit QConvolution / QFullyConnected keep packed weights and kernel plans in one cache addressed
by the weights' contents. Every output here is compared with a numpy reference computed from the
weights as they are at that call (never with the operator itself), while the weights change in
every way MXNet allows: in place, by set_data, by an optimizer step, or as a new array at the
address of a freed one; and while shapes and layers interleave. The cache counters show that
unchanged weights are packed once.
"""
import ctypes

import mxnet as mx
import numpy as np
import pytest

import bmxnet
import reference as ref
from bmxnet.gluon import QConv2D, QDense

_LIB = ctypes.CDLL(bmxnet.LIB_PATH)
_LIB.bmxnet_layer_cache_stats.argtypes = [ctypes.POINTER(ctypes.c_int64)]
_LIB.bmxnet_layer_cache_stats.restype = None


def _stats():
    out = (ctypes.c_int64 * 5)()
    _LIB.bmxnet_layer_cache_stats(out)
    return dict(zip(("hits", "packs", "plans", "entries", "bytes"), out))


def _address(a):
    p = ctypes.c_void_p()
    mx.base.check_call(mx.base._LIB.MXNDArrayGetData(a.handle, ctypes.byref(p)))
    return p.value


def _conv_want(x, w, b, pad, scaling=False):
    dot = ref.conv2d(ref.quantize_act(x, 1), ref.quantize_weight(w, 1), (1, 1), (pad, pad),
                     (1, 1), 1)
    y = dot.astype(np.float32)
    if scaling:
        y = y * ref.channel_scale(w)[None, :, None, None]
    return y + b[None, :, None, None] if b is not None else y


def _dense_want(x, w, b, scaling=False):
    y = (ref.quantize_act(x, 1).astype(np.float64) @ ref.quantize_weight(w, 1).T).astype(
        np.float32)
    if scaling:
        y = y * ref.channel_scale(w)[None, :]
    return y + b


def _qconv(x, w, b, pad, scaling=False):
    return mx.nd.QConvolution(x, w, b, num_filter=w.shape[0], kernel=w.shape[2:],
                              pad=(pad, pad), scaling_mode="forward" if scaling else "none")


def _pack_runs(a):
    """Signs along the last axis into int64 words, bit j of word i = element 64*i + j."""
    a = np.asarray(a, np.float32)
    n = a.shape[-1]
    bits = np.zeros(a.shape[:-1] + ((n + 63) // 64 * 64,), np.uint8)
    bits[..., :n] = a >= 0
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").view(np.int64)


@pytest.mark.parametrize("scaling", [False, True])
def test_new_weights_at_a_reused_address(rng, scaling):
    """A freed weight array's memory is handed to the next array at once; the cache must see new
    weights there (MXNet's version counter restarts too, so neither identifies contents). Every
    second array has the signs of the one before and other magnitudes (only the scale differs)."""
    x = rng.randn(2, 70, 6, 6).astype(np.float32)
    b = rng.randn(8).astype(np.float32)
    xs, bs = mx.nd.array(x), mx.nd.array(b)
    addresses = []
    w_prev = None
    for i in range(8):
        if i % 2 and w_prev is not None:
            w_np = (w_prev * rng.uniform(0.5, 2.0, size=w_prev.shape)).astype(np.float32)
        else:
            w_np = rng.randn(8, 70, 3, 3).astype(np.float32)
        w = mx.nd.array(w_np)
        w.wait_to_read()
        addresses.append(_address(w))
        got = _qconv(xs, w, bs, 1, scaling).asnumpy()
        np.testing.assert_array_equal(got, _conv_want(x, w_np, b, 1, scaling))
        del w
        w_prev = w_np
    assert len(set(addresses)) < len(addresses), "no address was reused: the test proves nothing"


def test_dense_and_packed_weights_at_a_reused_address(rng):
    x = rng.randn(3, 130).astype(np.float32)
    b = rng.randn(5).astype(np.float32)
    xs, bs = mx.nd.array(x), mx.nd.array(b)
    for _ in range(4):
        w_np = rng.randn(5, 130).astype(np.float32)
        w = mx.nd.array(w_np)
        got = mx.nd.QFullyConnected(xs, w, bs, num_hidden=5).asnumpy()
        np.testing.assert_array_equal(got, _dense_want(x, w_np, b))
        packed = mx.nd.array(_pack_runs(w_np), dtype="int64")
        got = mx.nd.QFullyConnected(xs, packed, bs, num_hidden=5, binarized_weights_only=True,
                                    in_units=130).asnumpy()
        np.testing.assert_array_equal(got, _dense_want(x, w_np, b))
        cw = rng.randn(4, 70, 3, 3).astype(np.float32)
        cx = rng.randn(1, 70, 5, 5).astype(np.float32)
        cb = np.zeros(4, np.float32)
        cpacked = mx.nd.array(_pack_runs(np.transpose(cw, (0, 2, 3, 1))), dtype="int64")
        got = mx.nd.QConvolution(mx.nd.array(cx), cpacked, mx.nd.array(cb), num_filter=4,
                                 kernel=(3, 3), pad=(1, 1), binarized_weights_only=True,
                                 in_channels=70).asnumpy()
        np.testing.assert_array_equal(got, _conv_want(cx, cw, cb, 1))
        del w, packed, cpacked


def test_weights_changed_in_place(rng):
    """w[:] =, w *= -1 and a sign-preserving w *= 2 on the same array (same address)."""
    x = rng.randn(1, 33, 7, 7).astype(np.float32)
    b = rng.randn(6).astype(np.float32)
    xs, bs = mx.nd.array(x), mx.nd.array(b)
    w_np = rng.randn(6, 33, 3, 3).astype(np.float32)
    w = mx.nd.array(w_np)
    address = _address(w)
    for step in range(4):
        for scaling in (False, True):
            got = _qconv(xs, w, bs, 1, scaling).asnumpy()
            np.testing.assert_array_equal(got, _conv_want(x, w_np, b, 1, scaling))
        if step == 0:
            w_np = rng.randn(6, 33, 3, 3).astype(np.float32)
            w[:] = w_np
        elif step == 1:
            w *= -1
            w_np = -w_np
        else:
            w *= 2
            w_np = w_np * 2
        assert _address(w) == address
    # packed words changed in place
    cw = rng.randn(6, 33, 3, 3).astype(np.float32)
    packed = mx.nd.array(_pack_runs(np.transpose(cw, (0, 2, 3, 1))), dtype="int64")
    for _ in range(2):
        got = mx.nd.QConvolution(xs, packed, bs, num_filter=6, kernel=(3, 3), pad=(1, 1),
                                 binarized_weights_only=True, in_channels=33).asnumpy()
        np.testing.assert_array_equal(got, _conv_want(x, cw, b, 1))
        cw = -cw
        packed[:] = mx.nd.array(_pack_runs(np.transpose(cw, (0, 2, 3, 1))), dtype="int64")


@pytest.mark.parametrize("hybridize", [None, {}, {"static_alloc": True, "static_shape": True}])
def test_gluon_set_data_and_optimizer_steps(rng, hybridize):
    """Inference between training steps and after set_data sees the current latent weights."""
    net = mx.gluon.nn.HybridSequential()
    net.add(QConv2D(8, 3, padding=1, in_channels=40, scaling="forward"),
            QDense(5, in_units=8 * 6 * 6))
    net.initialize(mx.init.Uniform(0.05))
    if hybridize is not None:
        net.hybridize(**hybridize)
    conv, dense = net[0], net[1]
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.002})
    x = rng.randn(2, 40, 6, 6).astype(np.float32)
    xs = mx.nd.array(x)
    direction = mx.nd.array(rng.randn(2, 5))

    def check():
        wc, bc = conv.weight.data().asnumpy(), conv.bias.data().asnumpy()
        wd, bd = dense.weight.data().asnumpy(), dense.bias.data().asnumpy()
        hidden = _conv_want(x, wc, bc, 1, scaling=True)
        want = _dense_want(hidden.reshape(2, -1), wd, bd)
        np.testing.assert_array_equal(net(xs).asnumpy(), want)
        return wc

    before = check()
    entries = _stats()["entries"]
    for _ in range(3):
        with mx.autograd.record():
            loss = (net(xs) * direction).sum()
        loss.backward()
        trainer.step(1)
        after = check()
        assert (np.sign(after) != np.sign(before)).any(), "the step flipped no sign"
        before = after
    # each step's entries replaced the previous step's (made at the same addresses)
    assert _stats()["entries"] <= entries
    conv.weight.set_data(mx.nd.array(rng.randn(8, 40, 3, 3)))
    dense.weight.set_data(mx.nd.array(rng.randn(5, 288)))
    check()


def test_shapes_and_layers_interleaved(rng):
    """One hybridized layer on several input shapes, and two layers, called in turn."""
    a = QConv2D(6, 3, padding=1, in_channels=20)
    c = QConv2D(4, 1, in_channels=20, use_bias=False)
    for layer in (a, c):
        layer.initialize(mx.init.Normal(1.0))
        layer.hybridize()
    shapes = [(1, 20, 5, 5), (3, 20, 9, 4), (1, 20, 5, 5), (2, 20, 1, 1), (3, 20, 9, 4)]
    for shape in shapes * 2:
        x = rng.randn(*shape).astype(np.float32)
        xs = mx.nd.array(x)
        got_a, got_c = a(xs).asnumpy(), c(xs).asnumpy()
        np.testing.assert_array_equal(
            got_a, _conv_want(x, a.weight.data().asnumpy(), a.bias.data().asnumpy(), 1))
        np.testing.assert_array_equal(got_c, _conv_want(x, c.weight.data().asnumpy(), None, 0))


def test_unchanged_weights_are_packed_once(rng):
    """Plain hybridize() (the state is made anew each call) packs and plans once; a change that
    keeps every sign needs no new pack (without scaling); a sign flip does; a temporary copy of
    the weights (grad_req='add' inserts one) finds the same entry."""
    layer = QConv2D(16, 3, padding=1, in_channels=64)
    layer.initialize()
    layer.hybridize()
    xs = mx.nd.array(rng.randn(1, 64, 8, 8))
    layer(xs).wait_to_read()
    s0 = _stats()
    for _ in range(5):
        layer(xs).wait_to_read()
    s1 = _stats()
    assert (s1["packs"], s1["plans"], s1["hits"]) == (s0["packs"], s0["plans"], s0["hits"] + 5)
    w = layer.weight.data()
    w *= 3  # same signs
    layer(xs).wait_to_read()
    assert _stats()["packs"] == s1["packs"]
    w[0, 0, 0, 0] = -w[0, 0, 0, 0]
    y = layer(xs).asnumpy()
    assert _stats()["packs"] == s1["packs"] + 1
    np.testing.assert_array_equal(
        y, _conv_want(xs.asnumpy(), w.asnumpy(), layer.bias.data().asnumpy(), 1))

    copy = QConv2D(16, 3, padding=1, in_channels=64)
    copy.initialize()
    copy.collect_params().setattr("grad_req", "add")
    copy.hybridize()
    copy(xs).wait_to_read()
    s2 = _stats()
    for _ in range(3):
        copy(xs).wait_to_read()
    assert _stats()["packs"] == s2["packs"]


def test_entries_are_bounded(rng):
    xs = mx.nd.array(rng.randn(1, 3))
    for i in range(1100):
        w = mx.nd.array(rng.randn(2, 3))
        mx.nd.QFullyConnected(xs, w, num_hidden=2, no_bias=True).wait_to_read()
    assert _stats()["entries"] <= 1024
