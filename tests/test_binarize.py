"""binarize(net): Conv2D/Dense -> QConv2D/QDense with the same configuration and Parameters."""
import json

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

import bmxnet
from bmxnet.binarize import binarize
from bmxnet.gluon import QConv2D, QDense
from bmxnet.summary import summary


class _Net(nn.HybridBlock):
    def __init__(self):
        super().__init__(prefix="toy_")
        with self.name_scope():
            self.body = nn.HybridSequential()
            self.body.add(nn.Conv2D(8, 3, padding=1), nn.BatchNorm(),
                          nn.Conv2D(8, 3, strides=2, padding=2, dilation=2, groups=2,
                                    use_bias=False),
                          nn.BatchNorm(), nn.Flatten(), nn.Dense(16, activation="tanh"))
            self.head = nn.Dense(5)

    def hybrid_forward(self, F, x):
        return self.head(self.body(x))


def test_full_precision_quantizers_keep_the_outputs(rng):
    net = _Net()
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(rng.randn(2, 3, 9, 9))
    want = net(x).asnumpy()
    names = sorted(net.collect_params().keys())
    binarize(net, skip_first=False, skip_last=False, input_quantizer=None,
             kernel_quantizer=None)
    assert sorted(net.collect_params().keys()) == names
    assert all(isinstance(b, (QConv2D, QDense)) for b in (net.body[0], net.body[2], net.body[5],
                                                          net.head))
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-5, atol=1e-5)


def test_configuration_and_parameters_are_kept(rng):
    net = _Net()
    net.initialize()
    x = mx.nd.array(rng.randn(2, 3, 9, 9))
    net(x)
    old_conv, old_dense = net.body[2], net.body[5]
    w = old_conv.weight
    binarize(net)
    conv, dense = net.body[2], net.body[5]
    assert isinstance(net.body[0], nn.Conv2D) and not isinstance(net.body[0], QConv2D)
    assert type(net.head) is nn.Dense  # skip_last
    assert isinstance(conv, QConv2D) and isinstance(dense, QDense)
    assert conv.weight is w and w.precision == 1
    for key in ("kernel", "stride", "pad", "dilate", "num_filter", "num_group", "no_bias"):
        assert conv._kwargs[key] == old_conv._kwargs[key], key
    assert dense.act._act_type == "tanh" and dense._units == 16 and dense.bias is not None
    net.hybridize()
    assert net(x).shape == (2, 5)
    ops = [n["op"] for n in json.loads(net(mx.sym.var("data")).tojson())["nodes"]]
    assert ops.count("QConvolution") == 1 and ops.count("QFullyConnected") == 1


def test_gluoncv_resnet18_v1():
    gluoncv = pytest.importorskip("gluoncv")
    net = gluoncv.model_zoo.get_model("resnet18_v1", pretrained=False)
    names = sorted(net.collect_params().keys())
    binarize(net)
    assert sorted(net.collect_params().keys()) == names
    assert type(net.features[0]) is nn.Conv2D and type(net.output) is nn.Dense
    t = summary(net, (1, 3, 224, 224), print_fn=None).totals
    # 16 3x3 convolutions + 3 1x1 downsample convolutions: bmxnet's binary_resnet18
    assert t["params_1bit"] == 11157504
    net.initialize()
    net.hybridize()
    assert net(mx.nd.ones((1, 3, 64, 64))).shape == (1, 1000)


def test_errors():
    with pytest.raises(ValueError, match="no Conv2D or Dense"):
        binarize(nn.HybridSequential())
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, layout="NHWC"), nn.Conv2D(4, 3, layout="NHWC"))
    with pytest.raises(ValueError, match="NHWC"):
        binarize(net, skip_first=False)
    assert bmxnet.quantizers.get("ste_sign") is not None
