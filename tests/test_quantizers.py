"""Quantizers: forward and pseudo-gradient of each one against its formula (numpy), standalone and
through QConv2D / QDense / QActivation; their mapping onto the operators; get()."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import bmxnet.quantizers as Q
from bmxnet.gluon import QActivation, QConv2D, QDense

import reference as ref


# ---- numpy formulas (written from the docstrings, independent of bmxnet) --------------------
def np_sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


def d_ste(x, clip=1.0):
    return (np.abs(x) <= clip).astype(np.float32)


def d_approx(x):
    return np.select([(x >= -1) & (x < 0), (x >= 0) & (x < 1)], [2 + 2 * x, 2 - 2 * x], 0.0)


def d_swish(x, b=5.0):
    return b * (2 - b * x * np.tanh(b * x / 2)) / (1 + np.cosh(b * x))


def np_dorefa_act(x, k):
    n = 2.0 ** k - 1
    return np.rint(n * np.clip(x, 0, 1)) / n


def d_dorefa_act(x):
    return ((x >= 0) & (x <= 1)).astype(np.float32)


def mag(w):
    return np.abs(w.reshape(w.shape[0], -1)).mean(axis=1)


def _col(v, like):
    return v.reshape((-1,) + (1,) * (like.ndim - 1))


# identifier -> (forward, gradient) for input quantizers
INPUT_CASES = {
    "ste_sign": (np_sign, d_ste),
    Q.SteSign(0.5): (np_sign, lambda x: d_ste(x, 0.5)),
    "approx_sign": (np_sign, d_approx),
    "swish_sign": (np_sign, d_swish),
    Q.SwishSign(beta=2.0): (np_sign, lambda x: d_swish(x, 2.0)),
    Q.DoReFa(2): (lambda x: np_dorefa_act(x, 2), d_dorefa_act),
    Q.DoReFa(4, clip_value=1.5): (lambda x: np_dorefa_act(x, 4), lambda x: d_ste(x, 1.5)),
    None: (lambda x: x, np.ones_like),
}


@pytest.fixture(params=[False, True], ids=["imperative", "hybridized"])
def hybridize(request):
    return request.param


def _data(rng, shape, scale=1.3):
    x = (rng.randn(*shape) * scale).astype(np.float32)
    x.flat[0] = 0.0  # sign(0) = +1
    return x


@pytest.mark.parametrize("ident", list(INPUT_CASES), ids=repr)
def test_input_quantizer_standalone_and_qactivation(rng, ident, hybridize):
    fwd, grad = INPUT_CASES[ident]
    x = _data(rng, (3, 4, 5))
    dy = rng.randn(*x.shape).astype(np.float32)
    layer = QActivation(quantizer=ident)
    if hybridize:
        layer.hybridize()
    q = Q.get(ident)
    for fn in ([layer] if q is None else [layer, q]):
        xs = mx.nd.array(x)
        xs.attach_grad()
        with autograd.record():
            y = fn(xs)
        y.backward(mx.nd.array(dy))
        np.testing.assert_allclose(y.asnumpy(), fwd(x), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(xs.grad.asnumpy(), dy * grad(x), rtol=1e-5, atol=1e-6)


KERNEL_CASES = {
    "ste_sign": (lambda w: np_sign(w), lambda w: d_ste(w)),
    Q.SteSign(0.7): (lambda w: np_sign(w), lambda w: d_ste(w, 0.7)),
    "magnitude_aware_sign": (lambda w: _col(mag(w), w) * np_sign(w),
                             lambda w: _col(mag(w), w) * d_ste(w)),
    Q.DoReFa(3, mode="weights"): (lambda w: ref.quantize_weight(w, 3), lambda w: d_ste(w)),
    None: (lambda w: w, np.ones_like),
}


@pytest.mark.parametrize("kident", list(KERNEL_CASES), ids=repr)
@pytest.mark.parametrize("iident", ["ste_sign", "approx_sign", Q.DoReFa(2), None], ids=repr)
def test_qdense_forward_backward(rng, iident, kident, hybridize):
    """y = q_in(x) q_k(W)^T; dx = (dy q_k(W)) q_in'(x); dW = (dy^T q_in(x)) q_k'(W)."""
    x = _data(rng, (4, 37))
    w = _data(rng, (6, 37), 0.9)
    dy = rng.randn(4, 6).astype(np.float32)
    fi, gi = INPUT_CASES[iident]
    fk, gk = KERNEL_CASES[kident]
    if kident == Q.SteSign(0.7) and iident in ("ste_sign", Q.DoReFa(2)):
        # one grad_cancel per operator: an input clip of 1 and a kernel clip < 1 cannot share it
        with pytest.raises(ValueError, match="one grad_cancel"):
            QDense(6, input_quantizer=iident, kernel_quantizer=kident)
        return
    layer = QDense(6, use_bias=False, in_units=37, input_quantizer=iident,
                   kernel_quantizer=kident)
    layer.initialize()
    layer.weight.set_data(mx.nd.array(w))
    if hybridize:
        layer.hybridize()
    xs = mx.nd.array(x)
    xs.attach_grad()
    with autograd.record():
        y = layer(xs)
    y.backward(mx.nd.array(dy))
    qx, qw = fi(x), fk(w)
    np.testing.assert_allclose(y.asnumpy(), qx @ qw.T, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(xs.grad.asnumpy(), (dy @ qw) * gi(x), rtol=1e-5, atol=1e-5)
    # the kernel's pseudo-gradient multiplies the gradient of sign(W) (or W) w.r.t. the output
    # (for magnitude_aware_sign gk includes the constant alpha: d(alpha sign W) = alpha * mask)
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), (dy.T @ qx) * gk(w), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("iident,kident", [("ste_sign", "ste_sign"),
                                           ("approx_sign", "magnitude_aware_sign"),
                                           ("swish_sign", "magnitude_aware_sign"),
                                           (Q.SteSign(0.5), "ste_sign"),
                                           (Q.DoReFa(2), Q.DoReFa(3, "weights"))], ids=repr)
def test_qconv2d_forward_backward(rng, iident, kident, hybridize):
    x = _data(rng, (2, 5, 7, 6))
    w = _data(rng, (4, 5, 3, 3), 0.9)
    dy = rng.randn(2, 4, 4, 3).astype(np.float32)
    fi, gi = INPUT_CASES[iident]
    fk, gk = KERNEL_CASES[kident]
    layer = QConv2D(4, 3, strides=2, padding=1, use_bias=False, in_channels=5,
                    input_quantizer=iident, kernel_quantizer=kident)
    layer.initialize()
    layer.weight.set_data(mx.nd.array(w))
    if hybridize:
        layer.hybridize()
    xs = mx.nd.array(x)
    xs.attach_grad()
    with autograd.record():
        y = layer(xs)
    y.backward(mx.nd.array(dy))
    qx, qw = fi(x), fk(w)
    s, p, d = (2, 2), (1, 1), (1, 1)
    want = ref.conv2d(qx, qw, s, p, d, 1)
    np.testing.assert_allclose(y.asnumpy(), want, rtol=1e-5, atol=1e-4)
    dqx, dqw = ref.conv2d_grads(qx, qw, dy, s, p, d, 1)
    np.testing.assert_allclose(xs.grad.asnumpy(), dqx * gi(x), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(layer.weight.grad().asnumpy(), dqw * gk(w), rtol=1e-5,
                               atol=1e-4)


def _op_nodes(layer, shape):
    layer.initialize()
    layer.hybridize()
    layer(mx.nd.ones(shape))
    sym = layer(mx.sym.var("data"))
    return [n for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"]


@pytest.mark.parametrize("iident,kident,attrs", [
    ("ste_sign", "ste_sign", dict(act_bit="1", weight_bit="1", act_grad="ste",
                                  scaling_mode="none", grad_cancel="1.0")),
    ("approx_sign", "magnitude_aware_sign", dict(act_bit="1", weight_bit="1",
                                                 act_grad="approx_sign",
                                                 scaling_mode="forward")),
    (Q.SwishSign(3.0), Q.SteSign(0.5), dict(act_grad="swish_sign", swish_beta="3.0",
                                           grad_cancel="0.5")),
    (Q.DoReFa(4, clip_value=1.0), Q.DoReFa(2, "weights"), dict(act_bit="4", weight_bit="2")),
    (None, "ste_sign", dict(act_bit="32", weight_bit="1")),
])
def test_binary_quantizers_are_one_operator_node(iident, kident, attrs):
    """Built-in quantizers become operator attributes: one QConvolution node, nothing else, so
    the packed xnor path runs and the converter sees a plain QConvolution."""
    nodes = _op_nodes(QConv2D(8, 3, padding=1, input_quantizer=iident, kernel_quantizer=kident),
                      (1, 4, 6, 6))
    assert [n["op"] for n in nodes] == ["QConvolution"]
    for k, v in attrs.items():
        assert nodes[0]["attrs"][k] == v, (k, nodes[0]["attrs"])


def test_different_clip_values_use_a_separate_activation_node(rng):
    nodes = _op_nodes(QDense(3, input_quantizer=Q.SteSign(0.5), kernel_quantizer="ste_sign"),
                      (2, 7))
    assert [n["op"] for n in nodes] == ["QActivation", "QFullyConnected"]
    assert nodes[0]["attrs"]["grad_cancel"] == "0.5"
    assert nodes[1]["attrs"]["grad_cancel"] == "1.0" and nodes[1]["attrs"]["act_bit"] == "1"
    nodes = _op_nodes(QDense(3, input_quantizer=Q.DoReFa(2), kernel_quantizer=None), (2, 7))
    assert [n["op"] for n in nodes] == ["clip", "QFullyConnected"]
    with pytest.raises(ValueError, match="clip_value is >= 1"):
        QConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer=Q.SteSign(0.5))


def test_legacy_arguments_equal_quantizers():
    pairs = [(dict(), dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")),
             (dict(act_grad="approx_sign", scaling=True),
              dict(input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign")),
             (dict(act_bit=32, weight_bit=32), dict(input_quantizer=None, kernel_quantizer=None)),
             (dict(act_bit=4, weight_bit=2, grad_cancel=0.8),
              dict(input_quantizer=Q.DoReFa(4, clip_value=0.8),
                   kernel_quantizer=Q.DoReFa(2, "weights", clip_value=0.8)))]
    for legacy, new in pairs:
        a, b = QConv2D(4, 3, **legacy), QConv2D(4, 3, **new)
        assert a.quant_kwargs == b.quant_kwargs, (legacy, new)
        assert a.kernel_precision == b.kernel_precision == a.weight.precision
    assert QConv2D(4, 3).weight.precision == 1
    assert QDense(4, kernel_quantizer=Q.DoReFa(3, "weights")).weight.precision == 3
    assert QDense(4, kernel_quantizer=None).weight.precision == 32
    assert QDense(4).bias.precision == 32


def test_both_quantizers_none_is_the_float_parent(rng):
    x = mx.nd.array(rng.randn(2, 3, 6, 6))
    q = QConv2D(4, 3, padding=1, input_quantizer=None, kernel_quantizer=None)
    f = mx.gluon.nn.Conv2D(4, 3, padding=1)
    for layer in (q, f):
        layer.initialize()
        layer(x)
    q.weight.set_data(f.weight.data())
    q.bias.set_data(mx.nd.array(rng.randn(4)))
    f.bias.set_data(q.bias.data())
    np.testing.assert_allclose(q(x).asnumpy(), f(x).asnumpy(), rtol=1e-5, atol=1e-5)


def test_custom_callable_quantizer(rng, hybridize):
    x = _data(rng, (2, 9))
    layer = QDense(3, use_bias=False, input_quantizer=lambda v: v.clip(-0.5, 0.5),
                   kernel_quantizer=None)
    layer.initialize()
    if hybridize:
        layer.hybridize()
    y = layer(mx.nd.array(x)).asnumpy()
    w = layer.weight.data().asnumpy()
    np.testing.assert_allclose(y, np.clip(x, -0.5, 0.5) @ w.T, rtol=1e-5, atol=1e-5)
    assert layer.input_precision == 32


def test_magnitude_aware_sign_standalone(rng):
    w = _data(rng, (5, 3, 2, 2), 0.9)
    ws = mx.nd.array(w)
    ws.attach_grad()
    with autograd.record():
        y = Q.magnitude_aware_sign(ws)
    dy = rng.randn(*w.shape).astype(np.float32)
    y.backward(mx.nd.array(dy))
    a = mag(w)[:, None, None, None]
    np.testing.assert_allclose(y.asnumpy(), a * np_sign(w), rtol=1e-6)
    np.testing.assert_allclose(ws.grad.asnumpy(), dy * a * d_ste(w), rtol=1e-5, atol=1e-6)


def test_dorefa_weights_standalone_matches_the_operator(rng):
    w = _data(rng, (4, 6), 0.8)
    ws = mx.nd.array(w)
    ws.attach_grad()
    with autograd.record():
        y = Q.dorefa_quantizer(ws, 2, "weights")
    y.backward(mx.nd.ones(w.shape))
    np.testing.assert_allclose(y.asnumpy(), ref.quantize_weight(w, 2), atol=1e-6)
    np.testing.assert_array_equal(ws.grad.asnumpy(), d_ste(w))


def test_get():
    assert Q.get(None) is None
    assert Q.get("ste_sign") == Q.SteSign() and Q.get("SteSign") == Q.SteSign()
    q = Q.SwishSign(2.0)
    assert Q.get(q) is q
    assert Q.get({"class_name": "SteSign", "config": {"clip_value": 0.5}}) == Q.SteSign(0.5)
    assert Q.get({"class_name": "swish_sign", "beta": 3.0}) == Q.SwishSign(3.0)
    assert Q.get(Q.serialize(Q.DoReFa(3, "weights"))) == Q.DoReFa(3, "weights")

    def fn(x):
        return x
    assert Q.get(fn) is fn
    for bad in ("ste_sgn", {"class_name": "nope"}, 3, {"class_name": "SteSign", "bogus": 1}):
        with pytest.raises(ValueError) as e:
            Q.get(bad)
        assert repr(bad)[:8] in str(e.value)
    with pytest.raises(ValueError, match="ste_sign"):  # lists the valid names
        Q.get("magnitude")


def test_aliases_and_precision():
    assert Q.DoReFaQuantizer is Q.DoReFa and Q.MagnitudeAwareSignQuantizer is Q.MagnitudeAwareSign
    assert Q.get("dorefa_quantizer") == Q.DoReFa() == Q.get("dorefa")
    assert Q.ste_sign.precision == Q.approx_sign.precision == Q.magnitude_aware_sign.precision == 1
    assert Q.DoReFa(5).precision == 5


def test_role_errors():
    with pytest.raises(ValueError, match="kernel quantizer"):
        QConv2D(4, 3, kernel_quantizer="approx_sign")
    with pytest.raises(ValueError, match="input quantizer"):
        QDense(4, input_quantizer="magnitude_aware_sign")
    with pytest.raises(ValueError, match="not both"):
        QConv2D(4, 3, act_bit=2, input_quantizer="ste_sign")
    with pytest.raises(ValueError, match="k_bit"):
        Q.DoReFa(1)
    with pytest.raises(ValueError, match="act_bit=1"):
        QConv2D(4, 3, act_bit=2, act_grad="approx_sign")


@pytest.mark.parametrize("layer_kind", ["conv", "dense"])
def test_grad_req_add_accumulates(rng, layer_kind, hybridize):
    """Custom ops ignore grad_req='add'; the layers route the weight through identity."""
    layer = QConv2D(3, 3, in_channels=2) if layer_kind == "conv" else QDense(3, in_units=8)
    layer.initialize()
    layer.collect_params().setattr("grad_req", "add")
    if hybridize:
        layer.hybridize()
    x = mx.nd.array(rng.randn(2, 2, 4, 4) if layer_kind == "conv" else rng.randn(2, 8))
    grads = []
    for _ in range(3):
        with autograd.record():
            y = layer(x)
        y.backward()
        grads.append(layer.weight.grad().asnumpy().copy())
    np.testing.assert_allclose(grads[2], 3 * grads[0], rtol=1e-5)
    # bias gradient of sum(y): y.size / 3 per step, three steps
    np.testing.assert_allclose(layer.bias.grad().asnumpy(), np.full(3, y.size), rtol=1e-5)


def test_reactnet_blocks(rng, hybridize):
    """RSign: q(x - alpha_c); RPReLU: PReLU_c(x - gamma_c) + zeta_c, all per channel."""
    from bmxnet.gluon.blocks import RPReLU, RSign
    x = _data(rng, (2, 3, 4, 4))
    alpha = np.array([0.3, -0.2, 0.0], np.float32)
    rsign = RSign(3)
    rsign.initialize()
    rsign.shift.bias.set_data(mx.nd.array(-alpha))  # the bias holds -alpha
    if hybridize:
        rsign.hybridize()
    xs = mx.nd.array(x)
    xs.attach_grad()
    dy = rng.randn(*x.shape).astype(np.float32)
    with autograd.record():
        y = rsign(xs)
    y.backward(mx.nd.array(dy))
    z = x - alpha[None, :, None, None]
    np.testing.assert_array_equal(y.asnumpy(), np_sign(z))
    np.testing.assert_allclose(xs.grad.asnumpy(), dy * d_approx(z), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rsign.shift.bias.grad().asnumpy(),  # d/d(-alpha)
                               (dy * d_approx(z)).sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-5)

    gamma, beta, zeta = (rng.randn(3).astype(np.float32) for _ in range(3))
    rp = RPReLU(3)
    rp.initialize()
    rp.shift_in.bias.set_data(mx.nd.array(-gamma))
    rp.prelu.alpha.set_data(mx.nd.array(beta))
    rp.shift_out.bias.set_data(mx.nd.array(zeta))
    if hybridize:
        rp.hybridize()
    c = (lambda v: v[None, :, None, None])
    u = x - c(gamma)
    np.testing.assert_allclose(rp(mx.nd.array(x)).asnumpy(),
                               np.where(u > 0, u, c(beta) * u) + c(zeta), rtol=1e-5, atol=1e-6)
    assert all(getattr(p, "precision", 32) == 32 for p in rp.collect_params().values())
