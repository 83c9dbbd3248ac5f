"""The model zoo: every entry builds and has the right output shape; parameter and 1-bit counts
match each paper's architecture; registry behaviour. Shapes and counts are inferred symbolically
(fast, nothing allocated); a few cheap models also run a real forward pass."""
import mxnet as mx
import numpy as np
import pytest

from bmxnet import model_zoo
from bmxnet.gluon import QConv2D, QDense
from bmxnet.summary import summary

IMAGENET = (1, 3, 224, 224)
CIFAR = (1, 3, 32, 32)


def _input(name):
    if "lenet" in name:
        return (1, 1, 28, 28)
    if "cifar" in name or name.startswith("binarynet"):
        return CIFAR
    return IMAGENET


@pytest.mark.parametrize("name", model_zoo.get_model_list())
def test_every_model_builds_with_the_right_output_shape(name):
    net = model_zoo.get_model(name)
    out = net(mx.sym.var("data"))
    _, out_shapes, _ = out.infer_shape(data=_input(name))
    classes = 1000 if _input(name) == IMAGENET else 10
    assert out_shapes == [(1, classes)]
    net2 = model_zoo.get_model(name.upper(), classes=7)
    assert net2(mx.sym.var("data")).infer_shape(data=_input(name))[1] == [(1, 7)]
    layers = [b for b in _walk(net) if isinstance(b, (QConv2D, QDense))]
    assert layers and all(b.kernel_precision == 1 for b in layers)


def _walk(b):
    yield b
    for c in b._children.values():
        yield from _walk(c)


def _counts(name, **kw):
    s = summary(model_zoo.get_model(name, **kw), _input(name), print_fn=None)
    return s.totals


def test_binary_lenet_counts():
    t = _counts("binary_lenet")
    assert t["params_1bit"] == 64 * 64 * 25 + 64 * 4 * 4 * 1000
    assert t["params_32bit"] == (25 * 64 + 64) + (1000 * 10 + 10) + 4 * (64 + 64 + 1000)


def _resnet_binary(blocks, widths=(64, 128, 256, 512)):
    """3x3 convolutions of the basic blocks plus the binary 1x1 downsample convolutions."""
    n, cin = 0, 64
    for b, c in zip(blocks, widths):
        n += (cin * c + (2 * b - 1) * c * c) * 9
        if cin != c:
            n += cin * c
        cin = c
    return n


def test_binary_resnet18_counts_hand_computed():
    """BMXNet's binary ResNet-18: every stage convolution binary, 7x7 stem and classifier float.
    Stage 1: 4 x 64*64*9; stage 2: 64*128*9 + 3 x 128*128*9 + 64*128 (1x1) ..."""
    t = _counts("binary_resnet18")
    binary = (4 * 64 * 64 * 9) + (64 * 128 * 9 + 3 * 128 * 128 * 9 + 64 * 128) + \
        (128 * 256 * 9 + 3 * 256 * 256 * 9 + 128 * 256) + \
        (256 * 512 * 9 + 3 * 512 * 512 * 9 + 256 * 512)
    assert binary == 11157504 == _resnet_binary([2, 2, 2, 2])
    assert t["params_1bit"] == binary
    bn = 4 * (64 + 2 * 2 * (64 + 128 + 256 + 512) + 128 + 256 + 512)
    assert t["params_32bit"] == 3 * 64 * 49 + bn + 512 * 1000 + 1000
    # the float ResNet-18 has 11.69M parameters: the same network
    assert abs(t["params"] - 11.69e6) < 0.01e6


def test_binary_resnet34_and_cifar_variants():
    assert _counts("binary_resnet34")["params_1bit"] == _resnet_binary([3, 4, 6, 3])
    t = _counts("binary_resnet18_cifar")
    assert t["params_1bit"] == _resnet_binary([2, 2, 2, 2])
    assert t["params_32bit"] == 3 * 64 * 9 + 4 * (64 + 4 * 960 + 896) + 512 * 10 + 10


def _bireal_binary(blocks, widths=(64, 128, 256, 512)):
    n, cin = 0, 64
    for b, c in zip(blocks, widths):
        n += (cin * c + (b - 1) * c * c) * 9
        cin = c
    return n


def test_birealnet18_counts_hand_computed():
    """16 binary 3x3 convolutions (one per shortcut); real 1x1 downsample convolutions."""
    t = _counts("birealnet18")
    assert t["params_1bit"] == 10985472 == _bireal_binary([4, 4, 4, 4])
    assert t["params_32bit"] == 713640
    assert t["binary_macs"] == 1676279808  # Bi-Real Net's 1.68e9 BOPs


def test_birealnet34_stem_and_cifar():
    assert _counts("birealnet34")["params_1bit"] == _bireal_binary([6, 8, 12, 6])
    stem = _counts("birealnet18_stem")
    plain = _counts("birealnet18")
    assert stem["params_1bit"] == plain["params_1bit"]
    assert stem["binary_macs"] == plain["binary_macs"]
    assert stem["float_macs"] < plain["float_macs"] - 50e6  # the 7x7 stem costs 118M MACs
    assert _counts("birealnet18_cifar")["params_1bit"] == _bireal_binary([4, 4, 4, 4])


def test_binarynet_counts():
    """(2x128C3)-MP2-(2x256C3)-MP2-(2x512C3)-MP2-(2x1024FC)-10FC, all weights binary."""
    t = _counts("binarynet")
    convs = 3 * 128 + 128 * 128 + 128 * 256 + 256 * 256 + 256 * 512 + 512 * 512
    dense = 512 * 4 * 4 * 1024 + 1024 * 1024 + 1024 * 10
    assert t["params_1bit"] == convs * 9 + dense == 14022016
    bn_channels = 2 * 128 + 2 * 256 + 2 * 512 + 2 * 1024 + 10
    assert t["params_32bit"] == 4 * bn_channels
    assert t["binary_macs"] > 0.99 * (t["binary_macs"] + t["float_macs"]) - 3 * 128 * 9 * 1024


def test_xnornet_counts_match_larq_zoo():
    """larq zoo's XNOR-Net has 62,396,768 parameters with 3 per BatchNorm channel (no scale);
    Gluon's BatchNorm(scale=False) still holds a (fixed) gamma, one more per channel."""
    t = _counts("xnornet")
    binary = 96 * 256 * 25 + 256 * 384 * 9 + 384 * 384 * 9 + 384 * 256 * 9 + \
        256 * 4096 * 36 + 4096 * 4096
    assert t["params_1bit"] == binary
    bn_channels = 96 + 96 + 256 + 384 + 384 + 256 + 4096 + 4096
    assert t["params"] - bn_channels == 62396768


def test_binary_alexnet_counts_match_larq_zoo():
    t = _counts("binary_alexnet")
    bn_channels = 64 + 192 + 384 + 384 + 256 + 4096 + 4096 + 1000
    assert t["params"] - bn_channels == 61859192
    assert t["params_32bit"] == 4 * bn_channels


def test_reactnet_a_counts():
    widths = model_zoo.reactnet.reactnet_spec["a"]
    binary = sum(cin * cin * 9 + cin * cout for cin, cout in zip(widths, widths[1:]))
    t = _counts("reactnet_a")
    assert t["params_1bit"] == binary
    # per block: two RSign shifts 2*cin, BN after the 3x3 4*cin, RPReLU 3*cin (shift, slope,
    # shift), BN(s) after the 1x1(s) 4*cout, RPReLU 3*cout
    real = sum(9 * cin + 7 * cout for cin, cout in zip(widths, widths[1:]))
    assert t["params_32bit"] == 3 * 32 * 9 + 4 * 32 + real + 1024 * 1000 + 1000
    assert abs(t["params"] - 29.3e6) < 0.1e6  # ReActNet-A: 29.3M parameters


@pytest.mark.parametrize("name,shape", [("binary_lenet", (2, 1, 28, 28)),
                                        ("birealnet18", IMAGENET),
                                        ("binary_resnet18_cifar", CIFAR),
                                        ("reactnet_a_cifar", CIFAR)])
def test_forward(name, shape):
    net = model_zoo.get_model(name)
    net.initialize(mx.init.Xavier())
    net.hybridize()
    out = net(mx.nd.array(np.random.RandomState(0).rand(*shape)))
    assert out.shape == (shape[0], 1000 if shape == IMAGENET else 10)
    assert np.isfinite(out.asnumpy()).all()


def test_registry_errors():
    with pytest.raises(ValueError) as e:
        model_zoo.get_model("birealnet19")
    assert "birealnet19" in str(e.value) and "birealnet18" in str(e.value)
    assert "reactnet_a" in str(e.value)
    with pytest.raises(ValueError, match="no pretrained weights"):
        model_zoo.get_model("birealnet18", pretrained=True)
    with pytest.raises(ValueError, match="registered twice"):
        model_zoo.register_model("lenet")(lambda **kw: None)
    names = model_zoo.get_model_list()
    assert names == sorted(names) and all(n == n.lower() for n in names)


def test_quantizer_and_norm_overrides():
    net = model_zoo.get_model("birealnet18_cifar", input_quantizer="ste_sign",
                              norm_kwargs={"momentum": 0.8})
    convs = [b for b in _walk(net) if isinstance(b, QConv2D)]
    assert convs[0].quant_kwargs["act_grad"] == "ste"
    assert convs[0].quant_kwargs["scaling_mode"] == "forward"
    bns = [b for b in _walk(net) if isinstance(b, mx.gluon.nn.BatchNorm)]
    assert all(b._kwargs["momentum"] == 0.8 for b in bns)
    doc = model_zoo.get_model.__module__ and model_zoo.birealnet.birealnet34.__doc__
    assert "Bi-Real Net-34" in doc and "[6, 8, 12, 6]" in doc
