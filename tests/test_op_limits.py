"""Hostile sizes, shapes and attribute strings for QConvolution / QFullyConnected / QActivation.

Every case runs in a child interpreter under glibc's heap checker (tests/subproc.py): before the
fixes of issue 10 several of them killed the process (SIGSEGV, "malloc(): invalid size",
"terminate called without an active exception") or returned numbers for weights of another layer.
Each must now end in one MXNetError naming the problem, or in the right answer.

The reproducers of the issue run one per child (expect_error); the longer sweeps run many cases in
one child, each caught and reported on its own line, so that a crash still fails only that test
and its output shows the last case that ran.
"""
import json

import pytest

from subproc import describe, expect_error, expect_ok, run_snippet

# Independent packer for the tests (numpy only): bit j of word w is element 64*w + j of a run,
# 1 for >= 0; the unused high bits of the last word are 0 (operators/kernels/bmx_kernels.h).
PACK = """
def pack_runs(signs_last_axis):
    a = np.asarray(signs_last_axis, np.float32)
    n = a.shape[-1]
    words = (n + 63) // 64
    bits = np.zeros(a.shape[:-1] + (words * 64,), np.uint8)
    bits[..., :n] = a >= 0
    return np.packbits(bits, axis=-1, bitorder='little').view('<u8').view(np.int64)

def pack_conv(w):   # (O, C/g, kh, kw) -> (O, kh, kw, words)
    return pack_runs(np.transpose(w, (0, 2, 3, 1)))

I64 = lambda a: mx.nd.array(a, dtype='int64')
"""


def _expect(code, *fragments):
    return expect_error(PACK + code, "MXNetError", *fragments, malloc_check=True)


# ---------------------------------------------------------------------------------------------
# The reproducers of issue 10 (finding 2 and 3), one child each.
# ---------------------------------------------------------------------------------------------
ISSUE_CASES = {
    # num_hidden >= 2^32 was cast to unsigned in shape inference but not in forward
    "fc_num_hidden_2_32": (
        "mx.nd.QFullyConnected(mx.nd.ones((2, 10)), mx.nd.ones((2, 10)), mx.nd.zeros((2,)),"
        " num_hidden=2**32 + 2, act_bit=2, weight_bit=2).wait_to_read()",
        ("num_hidden", "4294967298", "2147483647")),
    "fc_packed_num_hidden_2_32": (
        "mx.nd.QFullyConnected(mx.nd.ones((2, 10)), I64(np.zeros((2, 1))), num_hidden=2**32 + 2,"
        " no_bias=True, binarized_weights_only=True, in_units=10).wait_to_read()",
        ("num_hidden", "2147483647")),
    "conv_packed_num_filter_2_32": (
        "mx.nd.QConvolution(mx.nd.ones((1, 3, 5, 5)), I64(np.zeros((2, 3, 3, 1))),"
        " num_filter=2**32 + 2, kernel=(3, 3), no_bias=True, binarized_weights_only=True,"
        " in_channels=3).wait_to_read()",
        ("num_filter", "2147483647")),
    # zero-sized weight dimensions read as "unknown" and reached the kernels
    "conv_weight_zero_dim": (
        "mx.nd.QConvolution(mx.nd.ones((1, 3, 5, 5)), mx.nd.array(np.zeros((4, 0, 3, 3))),"
        " num_filter=4, kernel=(3, 3), no_bias=True).wait_to_read()",
        ("weight has shape (4, 0, 3, 3)", "(4, 3, 3, 3) is needed")),
    "fc_weight_zero_dim": (
        "mx.nd.QFullyConnected(mx.nd.ones((2, 3)), mx.nd.array(np.zeros((4, 0))), num_hidden=4,"
        " no_bias=True).wait_to_read()",
        ("weight has shape (4, 0)", "(4, 3) is needed")),
    "conv_packed_weight_zero_dim": (
        "mx.nd.QConvolution(mx.nd.ones((1, 3, 5, 5)), I64(np.zeros((4, 3, 3, 0))), num_filter=4,"
        " kernel=(3, 3), no_bias=True, binarized_weights_only=True, in_channels=3).wait_to_read()",
        ("weight has shape (4, 3, 3, 0)", "(4, 3, 3, 1) is needed")),
    # packed weights that fit the wrong layer: the converter records in_channels = 8 for
    # float weights (8, 4, 3, 3) under num_group=2; data with 4 channels must be refused
    "conv_packed_other_layer": (
        "w = np.random.RandomState(0).randn(8, 4, 3, 3).astype(np.float32)\n"
        "mx.nd.QConvolution(mx.nd.ones((1, 4, 6, 6)), I64(pack_conv(w)), num_filter=8,"
        " kernel=(3, 3), num_group=2, no_bias=True, binarized_weights_only=True,"
        " in_channels=8).wait_to_read()",
        ("in_channels' = 8", "(1, 4, 6, 6) has 4 channels")),
    "conv_packed_needs_in_channels": (
        "w = np.random.RandomState(0).randn(8, 4, 3, 3).astype(np.float32)\n"
        "mx.nd.QConvolution(mx.nd.ones((1, 4, 6, 6)), I64(pack_conv(w)), num_filter=8,"
        " kernel=(3, 3), num_group=2, no_bias=True, binarized_weights_only=True).wait_to_read()",
        ("binarized_weights_only=True needs in_channels=<C>", "re-convert the model with "
         "model_converter")),
    "fc_packed_needs_in_units": (
        "mx.nd.QFullyConnected(mx.nd.ones((2, 10)), I64(np.zeros((4, 1))), num_hidden=4,"
        " no_bias=True, binarized_weights_only=True).wait_to_read()",
        ("binarized_weights_only=True needs in_units=<n>", "re-convert the model with "
         "model_converter")),
}


@pytest.mark.parametrize("name", sorted(ISSUE_CASES))
def test_issue_reproducer(name):
    code, fragments = ISSUE_CASES[name]
    _expect(code, *fragments)


# ---------------------------------------------------------------------------------------------
# Sweeps: many cases per child.
# ---------------------------------------------------------------------------------------------
RUNNER = """
import json
def case(name, f):
    print(json.dumps({"start": name}), flush=True)
    try:
        r = f()
        r.wait_to_read()
        out = {"name": name, "ok": list(r.shape)}
    except mx.base.MXNetError as e:
        out = {"name": name, "error": str(e).strip().splitlines()[-1]}
    print(json.dumps(out), flush=True)
"""


def _sweep(setup, cases):
    """Runs `cases` {name: (expression, fragments)} in one child; each expression must raise an
    MXNetError whose last line holds every fragment (fragments None: must succeed)."""
    lines = [PACK, RUNNER, setup]
    for name, (expr, _) in cases.items():
        lines.append("case(%r, lambda: %s)" % (name, expr))
    proc = run_snippet("\n".join(lines), malloc_check=True)
    assert proc.returncode == 0, describe(proc)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if "name" in rec:
                results[rec["name"]] = rec
    for name, (_, fragments) in cases.items():
        rec = results[name]
        if fragments is None:
            assert "ok" in rec, (name, rec)
            continue
        assert "error" in rec, (name, rec)
        for fragment in fragments:
            assert fragment in rec["error"], (name, fragment, rec["error"])
    return results


CONV_SETUP = """
x = mx.nd.ones((1, 3, 8, 8))
w = mx.nd.ones((4, 3, 3, 3))
def conv(x=x, w=w, **kw):
    a = dict(num_filter=4, kernel=(3, 3), no_bias=True)
    a.update(kw)
    return mx.nd.QConvolution(x, w, **a)
"""

RANGE = "2147483647"


def test_conv_size_attributes():
    _sweep(CONV_SETUP, {
        "num_filter 0": ("conv(num_filter=0)", ["num_filter", RANGE]),
        "num_filter -5": ("conv(num_filter=-5)", ["num_filter", RANGE]),
        "num_filter 2^31": ("conv(num_filter=2**31)", ["num_filter", RANGE]),
        "num_filter 2^64": ("conv(num_filter=2**64)", ["num_filter", "expected an integer"]),
        "weight too large": ("conv(num_filter=2**30)", ["weight (1073741824, 3, 3, 3) is too large"]),
        "num_group 0": ("conv(num_group=0)", ["num_group", RANGE]),
        "num_group 2^31": ("conv(num_group=2**31)", ["num_group", RANGE]),
        "num_group not dividing filters": ("conv(num_group=3)", ["divisible by num_group = 3"]),
        "num_group not dividing channels": ("conv(num_group=2)", ["input channels (3)",
                                                                  "num_group = 2"]),
        "kernel 0": ("conv(kernel=(0, 3))", ["kernel", RANGE]),
        "kernel 2^31": ("conv(kernel=(2**31, 1))", ["kernel", RANGE]),
        "kernel larger than input": ("conv(kernel=(9, 9), w=mx.nd.ones((4, 3, 9, 9)))",
                                     ["larger than the padded input"]),
        "stride 0": ("conv(stride=(0, 1))", ["stride", RANGE]),
        "stride -1": ("conv(stride=(-1, 1))", ["stride", RANGE]),
        "dilate 0": ("conv(dilate=(1, 0))", ["dilate", RANGE]),
        "dilate 2^31 - 1": ("conv(dilate=(2**31 - 1, 1))", ["larger than the padded input"]),
        "dilate 2^31": ("conv(dilate=(2**31, 1))", ["dilate", RANGE]),
        "pad -1": ("conv(pad=(-1, 0))", ["pad", RANGE]),
        "pad 2^31": ("conv(pad=(0, 2**31))", ["pad", RANGE]),
        # the output of the float path would have more than 2^31 - 1 elements
        "pad 2^31 - 1": ("conv(pad=(2**31 - 1, 0), act_bit=2)", ["output", "is too large"]),
        "pad 2^30 both": ("conv(pad=2**30, act_bit=2)", ["output", "is too large"]),
        # a small output from a padded input the packed kernel cannot lay out
        "pad huge stride huge": ("conv(pad=2**30, stride=2**31 - 1)",
                                 ["padded input of one image", "too large"]),
        "in_channels 0": ("conv(in_channels=0)", ["in_channels", RANGE]),
        "in_channels not dividing": ("conv(in_channels=5, num_group=2)",
                                     ["in_channels' = 5", "divisible by num_group = 2"]),
        "in_channels wrong": ("conv(in_channels=4)", ["in_channels' = 4", "has 3 channels"]),
    })


def test_conv_data_of_every_ndim():
    cases = {"data %dd" % n: ("conv(x=mx.nd.ones(%r))" % ((1, 3, 8, 8, 2, 2)[:n],),
                              ["4-D (batch, channel, height, width)"])
             for n in (1, 2, 3, 5, 6)}
    cases["data 4d"] = ("conv(x=mx.nd.ones((1, 3, 8, 8)))", None)
    _sweep(CONV_SETUP, cases)


FC_SETUP = """
x = mx.nd.ones((2, 10))
w = mx.nd.ones((5, 10))
def fc(x=x, w=w, **kw):
    a = dict(num_hidden=5, no_bias=True)
    a.update(kw)
    return mx.nd.QFullyConnected(x, w, **a)
"""


def test_fc_size_attributes():
    _sweep(FC_SETUP, {
        "num_hidden 0": ("fc(num_hidden=0)", ["num_hidden", RANGE]),
        "num_hidden -1": ("fc(num_hidden=-1)", ["num_hidden", RANGE]),
        "num_hidden 2^31": ("fc(num_hidden=2**31)", ["num_hidden", RANGE]),
        "num_hidden 2^64": ("fc(num_hidden=2**64)", ["num_hidden", "expected an integer"]),
        "weight too large": ("fc(num_hidden=2**31 - 1, act_bit=2)",
                             ["weight (2147483647, 10) is too large"]),
        "output too large": ("fc(w=I64(np.zeros((2**20, 1))), num_hidden=2**20,"
                             " binarized_weights_only=True, in_units=10,"
                             " x=mx.nd.ones((2**12, 10)))", ["output", "is too large"]),
        "in_units 0": ("fc(in_units=0)", ["in_units", RANGE]),
        "in_units wrong": ("fc(in_units=11)", ["in_units' = 11", "has 10 input features"]),
        "in_units wrong, no flatten": ("fc(x=mx.nd.ones((2, 3, 10)), flatten=False, in_units=30)",
                                       ["in_units' = 30", "has 10 input features"]),
        "in_units right": ("fc(in_units=10)", None),
        # as FullyConnected: (n,) with flatten=True is n rows of one feature
        "1-D data with flatten": ("fc(x=mx.nd.ones((10,)))",
                                  ["weight has shape (5, 10)", "(5, 1) is needed"]),
        "1-D data without flatten": ("fc(x=mx.nd.ones((10,)), flatten=False)", None),
        "bias of another size": ("mx.nd.QFullyConnected(x, w, mx.nd.ones((4,)), num_hidden=5)",
                                 ["bias has shape (4,)", "(5,) is needed"]),
        "bias of size 0": ("mx.nd.QFullyConnected(x, w, mx.nd.array(np.zeros((0,))),"
                           " num_hidden=5)", ["bias has shape (0,)"]),
        "packed weight_scale of another size": (
            "mx.nd.QFullyConnected(x, I64(np.zeros((5, 1))), mx.nd.ones((3,)), no_bias=True,"
            " num_hidden=5, binarized_weights_only=True, in_units=10, scaling_mode='forward')",
            ["weight_scale has shape (3,)"]),
    })


def test_hostile_attribute_strings():
    cases = {}
    for i, k in enumerate(["(3, 3", "((3,3))", "", "()", "(3,3,3)", "abc", "(3 3)", "[3, 3)", "(",
                           ")", "(None, 3)", "(1e3, 3)", "(9223372036854775808, 3)",
                           "(-9223372036854775808, 3)"]):
        cases["kernel %d %r" % (i, k)] = ("conv(kernel=%r)" % k, ["parameter 'kernel'"])
    for k in ["[3,3]", "3", " ( 3 , 3 ) ", "(3L, 3L)"]:
        cases["kernel ok %r" % k] = ("conv(kernel=%r)" % k, None)
    for key, vals in {"num_filter": ["1.5", "", "True", "4.0", "0x4"],
                      "act_bit": ["1.0", "True", "nan", ""],
                      "grad_cancel": ["nan", "inf", "1e400", "abc"],
                      "pad_value": ["1.0", "2"]}.items():
        for v in vals:
            cases["%s %r" % (key, v)] = ("conv(%s=%r)" % (key, v), ["parameter '%s'" % key])
    for v in ["yes", "2"]:
        cases["no_bias %r" % v] = ("mx.nd.QConvolution(x, w, mx.nd.ones((4,)), num_filter=4,"
                                   " kernel=(3, 3), no_bias=%r)" % v, ["parameter 'no_bias'"])
    cases["unknown attribute"] = ("conv(bogus=1)", ["unknown parameter 'bogus'"])
    cases["layout"] = ("conv(layout='NHWC')", ["only 'NCHW'"])
    _sweep(CONV_SETUP, cases)


def test_qactivation_hostile():
    _sweep("x = mx.nd.ones((2, 10))", {
        "act_bit 1.5": ("mx.nd.QActivation(x, act_bit='1.5')", ["parameter 'act_bit'"]),
        "act_bit 0": ("mx.nd.QActivation(x, act_bit=0)", ["act_bit", "[1, 32]"]),
        "act_bit 99": ("mx.nd.QActivation(x, act_bit=99)", ["act_bit", "[1, 32]"]),
        "weight_bit": ("mx.nd.QActivation(x, weight_bit=1)", ["unknown parameter 'weight_bit'"]),
        "swish_beta nan": ("mx.nd.QActivation(x, act_grad='swish_sign', swish_beta='nan')",
                           ["swish_beta"]),
        # under legacy shapes a zero batch arrives as an unknown dimension, which QActivation
        # used to pass on as a dimension of 4294967295
        "zero batch, legacy shapes": ("mx.nd.QActivation(mx.nd.array(np.zeros((0, 3))))",
                                      ["data has the shape (?, 3)", "not fully known"]),
        "5-D": ("mx.nd.QActivation(mx.nd.ones((1, 1, 1, 2, 2)))", None),
    })


def test_zero_batch_legacy_shapes_refused():
    """Under MXNet's default (legacy) shapes a 0 reads as unknown: a zero batch is refused with a
    message that says how to run it, as MXNet's FullyConnected/Convolution refuse it there."""
    _sweep(FC_SETUP + CONV_SETUP, {
        "fc": ("fc(x=mx.nd.array(np.zeros((0, 10))))", ["(?, 10)", "set_np_shape(True)"]),
        "conv": ("conv(x=mx.nd.array(np.zeros((0, 3, 8, 8))))",
                 ["(?, 3, 8, 8)", "set_np_shape(True)"]),
    })


def test_zero_dims_other_than_batch_refused():
    """With np shapes a 0 is a real size: zero channels, planes or features must not reach a
    kernel."""
    _sweep("mx.util.set_np_shape(True)\n" + FC_SETUP + CONV_SETUP, {
        "conv zero channels": ("conv(x=mx.nd.array(np.zeros((1, 0, 8, 8))),"
                               " w=mx.nd.array(np.zeros((4, 0, 3, 3))))",
                               ["(1, 0, 8, 8)", "channels, height and width must be >= 1"]),
        "conv zero height": ("conv(x=mx.nd.array(np.zeros((1, 3, 0, 8))))",
                             ["channels, height and width must be >= 1"]),
        "fc zero features": ("fc(x=mx.nd.array(np.zeros((2, 0))),"
                             " w=mx.nd.array(np.zeros((5, 0))))",
                             ["(2, 0)", "input features", "must all be >= 1"]),
        "fc zero features packed": ("fc(x=mx.nd.array(np.zeros((2, 0))),"
                                    " w=I64(np.zeros((5, 0))), binarized_weights_only=True,"
                                    " in_units=1)", ["must all be >= 1"]),
    })


def test_zero_batch_np_shapes_gives_empty_output():
    """With np shapes MXNet's FullyConnected and Convolution map a zero batch to an empty output;
    the Q-operators do the same on every path (float, k-bit, packed), and backward gives zero
    weight and bias gradients."""
    expect_ok(PACK + """
mx.util.set_np_shape(True)
x2, x4 = mx.nd.array(np.zeros((0, 10))), mx.nd.array(np.zeros((0, 3, 8, 8)))
w2, w4 = mx.nd.ones((5, 10)), mx.nd.ones((4, 3, 3, 3))
want2, want4 = (0, 5), (0, 4, 6, 6)
for bits in (1, 2, 32):
    y = mx.nd.QFullyConnected(x2, w2, num_hidden=5, no_bias=True, act_bit=bits)
    assert y.asnumpy().shape == want2, y.shape
    y = mx.nd.QConvolution(x4, w4, num_filter=4, kernel=(3, 3), no_bias=True, act_bit=bits)
    assert y.asnumpy().shape == want4, y.shape
y = mx.nd.QFullyConnected(x2, I64(pack_runs(np.ones((5, 10)))), num_hidden=5, no_bias=True,
                          binarized_weights_only=True, in_units=10)
assert y.asnumpy().shape == want2
y = mx.nd.QConvolution(x4, I64(pack_conv(np.ones((4, 3, 3, 3)))), num_filter=4, kernel=(3, 3),
                       no_bias=True, binarized_weights_only=True, in_channels=3)
assert y.asnumpy().shape == want4
assert mx.nd.QActivation(x2).asnumpy().shape == (0, 10)
for op, x, w, kw in (("QFullyConnected", x2, w2, dict(num_hidden=5)),
                     ("QConvolution", x4, w4, dict(num_filter=4, kernel=(3, 3), act_bit=2))):
    args = [x, w, mx.nd.ones((w.shape[0],))]
    for a in args:
        a.attach_grad()
    for a in args[1:]:
        a.grad[:] = 7  # must be overwritten with zeros
    with mx.autograd.record():
        y = getattr(mx.nd, op)(*args, **kw)
    y.backward(mx.nd.zeros(y.shape))
    assert args[0].grad.shape == x.shape
    assert (args[1].grad.asnumpy() == 0).all() and (args[2].grad.asnumpy() == 0).all(), op
# MXNet's own layers, last: after them a backward through the same process fails inside MXNet
# ("Check failed: delay_alloc").
assert mx.nd.FullyConnected(x2, w2, num_hidden=5, no_bias=True).shape == want2
assert mx.nd.Convolution(x4, w4, num_filter=4, kernel=(3, 3), no_bias=True).shape == want4
print("ok")
""", malloc_check=True)


def test_packed_weights_of_a_wider_layer_refused():
    """Packed words hold up to 64 inputs each, so weights packed for 4 input channels per group
    also fit a layer with 2: the bits past the layer's inputs must be 0, or the weights belong to
    another layer."""
    _sweep("""
rng = np.random.RandomState(0)
w8 = pack_conv(rng.randn(8, 4, 3, 3))     # 4 input channels per group
d = pack_runs(rng.randn(5, 40))           # 40 input features
d[0, 0] |= 1 << 45                        # a bit past them
""", {
        "conv, 2 groups of 2 channels": (
            "mx.nd.QConvolution(mx.nd.ones((1, 4, 6, 6)), I64(w8), num_filter=8, kernel=(3, 3),"
            " num_group=2, no_bias=True, binarized_weights_only=True, in_channels=4)",
            ["made for a layer with more inputs", "2 input channels per group"]),
        "conv, 1 group of 4 channels": (
            "mx.nd.QConvolution(mx.nd.ones((1, 4, 6, 6)), I64(w8), num_filter=8, kernel=(3, 3),"
            " no_bias=True, binarized_weights_only=True, in_channels=4)", None),
        "fc, bit 45 set": (
            "mx.nd.QFullyConnected(mx.nd.ones((2, 40)), I64(d), num_hidden=5, no_bias=True,"
            " binarized_weights_only=True, in_units=40)",
            ["made for a layer with more inputs", "40 in_units"]),
    })
