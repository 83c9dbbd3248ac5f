"""ReActNet-A (Liu et al., ECCV 2020, https://arxiv.org/abs/2003.03488): a MobileNet-V1-shaped
binary network with parameter-free shortcuts around every binary convolution, RSign (learnable
thresholds) and RPReLU (learnable shifts) activations."""
from mxnet.gluon import HybridBlock, nn

from ..gluon.blocks import LearnableBias, RPReLU
from .common import bconv, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["ReActBlock", "ReActNet", "reactnet_spec"]


class ReActBlock(HybridBlock):
    """ReActNet-A's block: a binary 3x3 and a binary 1x1 convolution, each with a shortcut.

    ``y = RPReLU(BN(bconv3x3(RSign(x))) + pool(x))``; then ``z = RPReLU(BN(bconv1x1(RSign(y))) +
    y)`` when the width stays, else two 1x1 convolutions of ``in_channels`` outputs whose results
    (each plus ``y``) are concatenated, doubling the width. ``pool`` is a 2x2 average pooling
    when the block has stride 2. Each RSign is a :class:`~bmxnet.gluon.blocks.LearnableBias`
    feeding the convolution's 1-bit input quantizer (``approx_sign``); weights are
    ``magnitude_aware_sign``.
    """

    def __init__(self, in_channels, channels, stride=1, norm_layer=nn.BatchNorm,
                 norm_kwargs=None, input_quantizer="approx_sign",
                 kernel_quantizer="magnitude_aware_sign"):
        super().__init__()
        if channels not in (in_channels, 2 * in_channels):
            raise ValueError("ReActBlock: channels must be in_channels or twice it, got %d -> %d"
                             % (in_channels, channels))
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
        self._stride = stride
        self._double = channels != in_channels
        with self.name_scope():
            self.rsign1 = LearnableBias(in_channels, prefix="rsign1_")
            self.conv3x3 = bconv(in_channels, 3, stride, 1, in_channels, **q)
            self.bn1 = norm(norm_layer, norm_kwargs)
            self.pool = nn.AvgPool2D(2, 2) if stride == 2 else None
            self.rprelu1 = RPReLU(in_channels, prefix="rprelu1_")
            self.rsign2 = LearnableBias(in_channels, prefix="rsign2_")
            n = 2 if self._double else 1
            self.pw = nn.HybridSequential(prefix="")
            self.pw_bn = nn.HybridSequential(prefix="")
            for _ in range(n):
                self.pw.add(bconv(in_channels, 1, 1, 0, in_channels, **q))
                self.pw_bn.add(norm(norm_layer, norm_kwargs))
            self.rprelu2 = RPReLU(channels, prefix="rprelu2_")

    def hybrid_forward(self, F, x):
        out = self.bn1(self.conv3x3(self.rsign1(x)))
        if self.pool is not None:
            x = self.pool(x)
        y = self.rprelu1(out + x)
        s = self.rsign2(y)
        outs = [bn(conv(s)) + y for conv, bn in zip(self.pw, self.pw_bn)]
        z = outs[0] if len(outs) == 1 else F.concat(*outs, dim=1)
        return self.rprelu2(z)


# stem width followed by each block's output width (MobileNet V1's layout)
reactnet_spec = {"a": [32, 64, 128, 128, 256, 256] + [512] * 6 + [1024] * 2}


class ReActNet(HybridBlock):
    """ReActNet.

    Parameters
    ----------
    channels : list of int
        Stem width, then every block's output width; a block whose width changes (except to
        the first 64) has stride 2.
    classes : int
    first_stride : int, default 2
        Stride of the float 3x3 stem convolution (1 for 32x32 CIFAR inputs).
    input_quantizer, kernel_quantizer, norm_layer, norm_kwargs : as in the other models
    """

    def __init__(self, channels, classes=1000, first_stride=2, input_quantizer="approx_sign",
                 kernel_quantizer="magnitude_aware_sign", norm_layer=nn.BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.Conv2D(channels[0], 3, first_stride, 1, use_bias=False,
                                        in_channels=3), norm(**nk))
            for i in range(1, len(channels)):
                cin, cout = channels[i - 1], channels[i]
                stride = 2 if cin != cout and cout != 64 else 1
                self.features.add(ReActBlock(cin, cout, stride, input_quantizer=input_quantizer,
                                             kernel_quantizer=kernel_quantizer, **nk))
            self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


@register_model("reactnet_a")
def reactnet_a(*, pretrained=False, ctx=None, root=None, **kwargs):
    """ReActNet-A for 224x224 ImageNet (:class:`ReActNet` with ``reactnet_spec['a']``)."""
    check_pretrained("reactnet_a", pretrained)
    return ReActNet(reactnet_spec["a"], **kwargs)


@register_model("reactnet_a_cifar")
def reactnet_a_cifar(*, pretrained=False, ctx=None, root=None, **kwargs):
    """ReActNet-A for 32x32 CIFAR: stride-1 stem, 10 classes."""
    check_pretrained("reactnet_a_cifar", pretrained)
    kwargs.setdefault("classes", 10)
    kwargs.setdefault("first_stride", 1)
    return ReActNet(reactnet_spec["a"], **kwargs)


__all__ += ["reactnet_a", "reactnet_a_cifar"]
