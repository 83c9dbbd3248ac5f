"""QConvolution / QFullyConnected / QActivation against independent numpy references."""
import itertools

import mxnet as mx
import numpy as np
import pytest

import reference as ref

BITS = (1, 2, 4, 8, 32)

# (batch, channels, H, W, num_filter, kernel, stride, pad, dilate, groups, bias)
CONV_CASES = [
    (2, 5, 9, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, True),
    (1, 33, 8, 8, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, False),
    (3, 6, 11, 10, 4, (3, 2), (2, 1), (2, 0), (2, 1), 2, True),
    (2, 70, 5, 5, 8, (1, 1), (1, 1), (0, 0), (1, 1), 1, True),
    (1, 8, 9, 9, 8, (5, 5), (1, 1), (2, 2), (1, 1), 4, False),
]


def _conv(x, w, b, case, **q):
    _, _, _, _, O, k, s, p, d, g, _ = case
    args = [mx.nd.array(x), mx.nd.array(w)] + ([mx.nd.array(b)] if b is not None else [])
    return mx.nd.QConvolution(*args, num_filter=O, kernel=k, stride=s, pad=p, dilate=d,
                              num_group=g, no_bias=b is None, **q)


def _conv_data(rng, case):
    N, C, H, W, O, k, _, _, _, g, bias = case
    x = rng.randn(N, C, H, W).astype(np.float32)
    x[0, 0, 0, :2] = 0.0  # sign(0) must be +1
    w = rng.randn(O, C // g, k[0], k[1]).astype(np.float32)
    b = rng.randn(O).astype(np.float32) if bias else None
    return x, w, b


def _conv_expected(x, w, b, case, act_bit, weight_bit, scaling=False, pad_value=0):
    _, _, _, _, _, _, s, p, d, g, _ = case
    dot = ref.conv2d(ref.quantize_act(x, act_bit), ref.quantize_weight(w, weight_bit), s, p, d, g,
                     pad_fill=pad_value)
    y = dot.astype(np.float32)
    if scaling:
        y = y * ref.channel_scale(w)[None, :, None, None]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("act_bit,weight_bit", list(itertools.product(BITS, BITS)))
def test_qconvolution_forward(rng, case, act_bit, weight_bit):
    x, w, b = _conv_data(rng, case)
    got = _conv(x, w, b, case, act_bit=act_bit, weight_bit=weight_bit).asnumpy()
    want = _conv_expected(x, w, b, case, act_bit, weight_bit)
    if act_bit == 1 and weight_bit == 1:
        np.testing.assert_array_equal(got, want)  # integers: exact
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bits", [1, 4])
def test_qconvolution_scaling_forward(rng, case, bits):
    x, w, b = _conv_data(rng, case)
    got = _conv(x, w, b, case, act_bit=bits, weight_bit=bits, scaling_mode="forward").asnumpy()
    want = _conv_expected(x, w, b, case, bits, bits, scaling=True)
    if bits == 1:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pad_value", [1, -1])
@pytest.mark.parametrize("case", CONV_CASES)
def test_qconvolution_pad_value(rng, case, pad_value):
    x, w, b = _conv_data(rng, case)
    got = _conv(x, w, b, case, pad_value=pad_value).asnumpy()
    np.testing.assert_array_equal(got, _conv_expected(x, w, b, case, 1, 1, pad_value=pad_value))


def test_qconvolution_random_shapes_1bit(rng):
    """A sweep of random awkward shapes for the binary path (exact equality)."""
    for _ in range(40):
        g = int(rng.choice([1, 2, 3]))
        C = g * int(rng.randint(1, 40))
        O = g * int(rng.randint(1, 6))
        k = (int(rng.randint(1, 6)), int(rng.randint(1, 6)))
        d = (int(rng.randint(1, 3)), int(rng.randint(1, 3)))
        p = (int(rng.randint(0, 3)), int(rng.randint(0, 3)))
        s = (int(rng.randint(1, 4)), int(rng.randint(1, 4)))
        H = d[0] * (k[0] - 1) + 1 + int(rng.randint(0, 9))
        W = d[1] * (k[1] - 1) + 1 + int(rng.randint(0, 9))
        case = (int(rng.randint(1, 4)), C, H, W, O, k, s, p, d, g, bool(rng.randint(2)))
        x, w, b = _conv_data(rng, case)
        scaling = bool(rng.randint(2))
        got = _conv(x, w, b, case, scaling_mode="forward" if scaling else "none").asnumpy()
        np.testing.assert_array_equal(got, _conv_expected(x, w, b, case, 1, 1, scaling), str(case))


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("act_bit,weight_bit,scaling", [(1, 1, False), (1, 1, True), (2, 4, False),
                                                        (32, 1, False), (1, 32, True)])
def test_qconvolution_backward(rng, case, act_bit, weight_bit, scaling):
    x, w, b = _conv_data(rng, case)
    x *= 0.8  # some |x| > 1 and some below, so the STE mask matters
    xs, ws = mx.nd.array(x), mx.nd.array(w)
    args = [xs, ws] + ([mx.nd.array(b)] if b is not None else [])
    for a in args:
        a.attach_grad()
    _, _, _, _, O, k, s, p, d, g, _ = case
    with mx.autograd.record():
        y = mx.nd.QConvolution(*args, num_filter=O, kernel=k, stride=s, pad=p, dilate=d,
                               num_group=g, no_bias=b is None, act_bit=act_bit,
                               weight_bit=weight_bit, grad_cancel=1.0,
                               scaling_mode="forward" if scaling else "none")
    dy = rng.randn(*y.shape).astype(np.float32)
    y.backward(mx.nd.array(dy))
    gy = dy * ref.channel_scale(w)[None, :, None, None] if scaling else dy
    dxq, dwq = ref.conv2d_grads(ref.quantize_act(x, act_bit), ref.quantize_weight(w, weight_bit),
                                gy, s, p, d, g)
    want_dx = ref.ste(x, dxq, 1.0) if act_bit < 32 else dxq
    want_dw = ref.ste(w, dwq, 1.0) if weight_bit < 32 else dwq
    np.testing.assert_allclose(args[0].grad.asnumpy(), want_dx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(args[1].grad.asnumpy(), want_dw, rtol=1e-4, atol=1e-3)
    if b is not None:
        np.testing.assert_allclose(args[2].grad.asnumpy(), dy.sum(axis=(0, 2, 3)), rtol=1e-4,
                                   atol=1e-4)
    np.testing.assert_array_equal(ws.asnumpy(), w)  # latent weights are never overwritten


def _fc(x, w, b, num_hidden, **kw):
    args = [mx.nd.array(x), mx.nd.array(w)] + ([mx.nd.array(b)] if b is not None else [])
    return mx.nd.QFullyConnected(*args, num_hidden=num_hidden, no_bias=b is None, **kw)


@pytest.mark.parametrize("act_bit,weight_bit", list(itertools.product(BITS, BITS)))
@pytest.mark.parametrize("shape,num_hidden,bias", [((3, 70), 5, True), ((2, 3, 4, 5), 7, False),
                                                   ((1, 129), 64, True)])
def test_qfullyconnected_forward(rng, act_bit, weight_bit, shape, num_hidden, bias):
    x = rng.randn(*shape).astype(np.float32)
    x.flat[0] = 0.0
    x2 = x.reshape(shape[0], -1)
    w = rng.randn(num_hidden, x2.shape[1]).astype(np.float32)
    b = rng.randn(num_hidden).astype(np.float32) if bias else None
    got = _fc(x, w, b, num_hidden, act_bit=act_bit, weight_bit=weight_bit).asnumpy()
    dot = ref.quantize_act(x2, act_bit).astype(np.float64) @ \
        ref.quantize_weight(w, weight_bit).astype(np.float64).T
    want = dot.astype(np.float32) + (b if b is not None else 0)
    if act_bit == 1 and weight_bit == 1:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_qfullyconnected_no_flatten_and_scaling(rng):
    x = rng.randn(2, 3, 10).astype(np.float32)
    w = rng.randn(4, 10).astype(np.float32)
    got = _fc(x, w, None, 4, flatten=False, scaling_mode="forward").asnumpy()
    dot = (ref.quantize_act(x, 1) @ ref.quantize_weight(w, 1).T).astype(np.float32)
    np.testing.assert_array_equal(got, dot * ref.channel_scale(w))


@pytest.mark.parametrize("act_bit,weight_bit,scaling", [(1, 1, False), (1, 1, True), (4, 2, False),
                                                        (32, 32, False)])
def test_qfullyconnected_backward(rng, act_bit, weight_bit, scaling):
    x = (rng.randn(4, 37) * 0.9).astype(np.float32)
    w = (rng.randn(6, 37) * 0.9).astype(np.float32)
    b = rng.randn(6).astype(np.float32)
    args = [mx.nd.array(a) for a in (x, w, b)]
    for a in args:
        a.attach_grad()
    with mx.autograd.record():
        y = mx.nd.QFullyConnected(*args, num_hidden=6, act_bit=act_bit, weight_bit=weight_bit,
                                  scaling_mode="forward" if scaling else "none", grad_cancel=0.7)
    dy = rng.randn(4, 6).astype(np.float32)
    y.backward(mx.nd.array(dy))
    g = dy * ref.channel_scale(w) if scaling else dy
    dxq = g @ ref.quantize_weight(w, weight_bit)
    dwq = g.T @ ref.quantize_act(x, act_bit)
    np.testing.assert_allclose(args[0].grad.asnumpy(),
                               ref.ste(x, dxq, 0.7) if act_bit < 32 else dxq, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(args[1].grad.asnumpy(),
                               ref.ste(w, dwq, 0.7) if weight_bit < 32 else dwq, rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(args[2].grad.asnumpy(), dy.sum(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act_bit", BITS)
def test_qactivation(rng, act_bit):
    x = (rng.randn(3, 4, 5) * 1.5).astype(np.float32)
    x[0, 0, 0] = 0.0
    xs = mx.nd.array(x)
    xs.attach_grad()
    with mx.autograd.record():
        y = mx.nd.QActivation(xs, act_bit=act_bit, grad_cancel=1.0)
    dy = rng.randn(*x.shape).astype(np.float32)
    y.backward(mx.nd.array(dy))
    np.testing.assert_array_equal(y.asnumpy(), ref.quantize_act(x, act_bit))
    want = ref.ste(x, dy, 1.0) if act_bit < 32 else dy
    np.testing.assert_array_equal(xs.grad.asnumpy(), want)


def test_qactivation_backward_only(rng):
    x = (rng.randn(10) * 2).astype(np.float32)
    xs = mx.nd.array(x)
    xs.attach_grad()
    with mx.autograd.record():
        y = mx.nd.QActivation(xs, backward_only=True, grad_cancel=1.5)
    y.backward(mx.nd.ones((10,)))
    np.testing.assert_array_equal(y.asnumpy(), x)
    np.testing.assert_array_equal(xs.grad.asnumpy(), (np.abs(x) <= 1.5).astype(np.float32))


@pytest.mark.parametrize("mode", ["approx_sign", "swish_sign"])
def test_activation_pseudo_gradients(rng, mode):
    """Bi-Real's approx_sign and SignSwish gradients against their closed forms."""
    x = (rng.randn(200) * 1.2).astype(np.float32)
    if mode == "approx_sign":
        want = np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0)
    else:
        b = 5.0
        want = b * (2 - b * x * np.tanh(b * x / 2)) / (1 + np.cosh(b * x))
    xs = mx.nd.array(x)
    xs.attach_grad()
    with mx.autograd.record():
        y = mx.nd.QActivation(xs, act_grad=mode)
    y.backward(mx.nd.ones(x.shape))
    np.testing.assert_array_equal(y.asnumpy(), ref.quantize_act(x, 1))
    np.testing.assert_allclose(xs.grad.asnumpy(), want, rtol=1e-5, atol=1e-6)
    # the same pseudo-gradient inside QFullyConnected (identity weights: dx = dy * q'(x))
    xs2 = mx.nd.array(x.reshape(1, -1))
    xs2.attach_grad()
    with mx.autograd.record():
        y = mx.nd.QFullyConnected(xs2, mx.nd.array(np.eye(200)), num_hidden=200, no_bias=True,
                                  weight_bit=32, act_grad=mode)
    y.backward(mx.nd.ones((1, 200)))
    np.testing.assert_allclose(xs2.grad.asnumpy()[0], want, rtol=1e-5, atol=1e-6)


def test_act_grad_needs_binary_inputs():
    with pytest.raises(mx.base.MXNetError, match="act_grad"):
        mx.nd.QActivation(mx.nd.ones((2,)), act_bit=2, act_grad="approx_sign").wait_to_read()
    with pytest.raises(mx.base.MXNetError, match="'ste', 'approx_sign' and 'swish_sign'"):
        mx.nd.QActivation(mx.nd.ones((2,)), act_grad="magic").wait_to_read()


def test_float_path_in_chunks_of_images():
    """The float path (k-bit forward, every backward) runs the batch in chunks of images; with a
    tiny im2col budget every image is its own chunk, and results must not change."""
    import os
    import subprocess
    import sys
    code = (
        "import numpy as np, mxnet as mx, bmxnet\n"
        "r = np.random.RandomState(3)\n"
        "x = mx.nd.array(r.randn(5, 6, 7, 7)); w = mx.nd.array(r.randn(4, 3, 3, 3))\n"
        "x.attach_grad(); w.attach_grad()\n"
        "with mx.autograd.record():\n"
        "    y = mx.nd.QConvolution(x, w, num_filter=4, kernel=(3, 3), pad=(1, 1), num_group=2,\n"
        "                           no_bias=True, act_bit=2, weight_bit=1)\n"
        "y.backward(mx.nd.array(r.randn(*y.shape)))\n"
        "np.save('%s', np.concatenate([a.asnumpy().ravel() for a in (y, x.grad, w.grad)]))\n")
    outs = []
    for budget in ("1", "0"):  # 1 float: one image per chunk; 0: the default budget
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "chunks_%s_%d.npy" % (budget,
                                                                                   os.getpid()))
        env = dict(os.environ, BMXNET_IM2COL_FLOATS=budget)
        subprocess.run([sys.executable, "-c", code % path], env=env, check=True)
        outs.append(np.load(path))
        os.remove(path)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


def _pack_runs(a):
    """Independent packer: signs along the last axis into int64 words, bit j of word w is element
    64*w + j (1 for >= 0), unused high bits 0 (the convention of operators/kernels/bmx_kernels.h)."""
    a = np.asarray(a, np.float32)
    n = a.shape[-1]
    words = (n + 63) // 64
    bits = np.zeros(a.shape[:-1] + (words * 64,), np.uint8)
    bits[..., :n] = a >= 0
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").view(np.int64)


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("scaling", [False, True])
def test_qconvolution_packed_weights(rng, case, scaling):
    """binarized_weights_only: packed words (O, kh, kw, ceil(C/g/64)) with in_channels = C give
    the float emulation exactly; weight_scale is an input under scaling_mode='forward'."""
    x, w, b = _conv_data(rng, case)
    _, C, _, _, O, k, s, p, d, g, _ = case
    words = _pack_runs(np.transpose(w, (0, 2, 3, 1)))
    args = [mx.nd.array(x), mx.nd.array(words, dtype="int64")]
    args += [mx.nd.array(b)] if b is not None else []
    args += [mx.nd.array(ref.channel_scale(w))] if scaling else []
    got = mx.nd.QConvolution(*args, num_filter=O, kernel=k, stride=s, pad=p, dilate=d,
                             num_group=g, no_bias=b is None, binarized_weights_only=True,
                             in_channels=C, scaling_mode="forward" if scaling else "none")
    want = _conv_expected(x, w, b, case, 1, 1, scaling=scaling)
    np.testing.assert_array_equal(got.asnumpy(), want)


@pytest.mark.parametrize("shape,num_hidden,flatten", [((3, 70), 5, True), ((2, 3, 4, 5), 7, True),
                                                      ((2, 3, 129), 64, False)])
def test_qfullyconnected_packed_weights(rng, shape, num_hidden, flatten):
    """binarized_weights_only: packed words (num_hidden, ceil(in_units/64)) with in_units = the
    input features after flattening give the float emulation exactly."""
    x = rng.randn(*shape).astype(np.float32)
    x.flat[0] = 0.0
    x2 = x.reshape(shape[0], -1) if flatten else x.reshape(-1, shape[-1])
    w = rng.randn(num_hidden, x2.shape[1]).astype(np.float32)
    b = rng.randn(num_hidden).astype(np.float32)
    got = mx.nd.QFullyConnected(mx.nd.array(x), mx.nd.array(_pack_runs(w), dtype="int64"),
                                mx.nd.array(b), num_hidden=num_hidden, flatten=flatten,
                                binarized_weights_only=True, in_units=x2.shape[1]).asnumpy()
    dot = ref.quantize_act(x2, 1).astype(np.float64) @ ref.quantize_weight(w, 1).T
    want = dot.astype(np.float32) + b
    np.testing.assert_array_equal(got.reshape(want.shape), want)


def test_in_channels_and_in_units_with_float_weights(rng):
    """With float weights in_channels / in_units are optional; given, they change nothing."""
    case = CONV_CASES[2]
    x, w, b = _conv_data(rng, case)
    got = _conv(x, w, b, case, in_channels=case[1]).asnumpy()
    np.testing.assert_array_equal(got, _conv(x, w, b, case).asnumpy())
    np.testing.assert_array_equal(got, _conv_expected(x, w, b, case, 1, 1))
    xf = rng.randn(2, 3, 10).astype(np.float32)
    wf = rng.randn(4, 30).astype(np.float32)
    got = _fc(xf, wf, None, 4, in_units=30).asnumpy()
    want = (ref.quantize_act(xf.reshape(2, 30), 1) @ ref.quantize_weight(wf, 1).T)
    np.testing.assert_array_equal(got, want.astype(np.float32))
