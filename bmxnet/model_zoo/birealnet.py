"""Bi-Real Net 18/34 (Liu et al., ECCV 2018, https://arxiv.org/abs/1808.00278)."""
from mxnet.gluon import HybridBlock, nn

from .common import bconv, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["BiRealBlock", "BiRealNet", "PeleeStem", "birealnet_spec", "get_birealnet"]


class BiRealBlock(HybridBlock):
    """One binary 3x3 convolution with its own shortcut.

    ``out = BN(bconv3x3(x)) + shortcut(x)``; the shortcut is the identity, or, where the block
    changes resolution or width, ``BN(conv1x1(AvgPool2x2(x)))`` in full precision. The binary
    convolution uses ``approx_sign`` on its input and ``magnitude_aware_sign`` on its weights.
    """

    def __init__(self, channels, stride=1, in_channels=0, norm_layer=nn.BatchNorm,
                 norm_kwargs=None, input_quantizer="approx_sign",
                 kernel_quantizer="magnitude_aware_sign"):
        super().__init__()
        with self.name_scope():
            self.conv = bconv(channels, 3, stride, 1, in_channels,
                              input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
            self.bn = norm(norm_layer, norm_kwargs)
            self.downsample = None
            if stride != 1 or in_channels != channels:
                self.downsample = nn.HybridSequential(prefix="down_")
                with self.downsample.name_scope():
                    if stride != 1:
                        self.downsample.add(nn.AvgPool2D(stride, stride))
                    self.downsample.add(nn.Conv2D(channels, 1, use_bias=False,
                                                  in_channels=in_channels),
                                        norm(norm_layer, norm_kwargs))

    def hybrid_forward(self, F, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.bn(self.conv(x)) + shortcut


class PeleeStem(HybridBlock):
    """The stem module that daBNN puts in front of Bi-Real Net 18 instead of the 7x7 convolution.

    daBNN (Zhang et al., 2019, https://arxiv.org/abs/1908.05858) cites PeleeNet's stem block
    (Wang et al., 2018, https://arxiv.org/abs/1804.06882): ``conv3x3/2 -> [conv1x1 -> conv3x3/2 |
    maxpool2x2/2] -> concat -> conv1x1``, each convolution followed by BN and ReLU. Widths here
    are PeleeNet's, with the last 1x1 giving ``channels`` (64) so the output (64, H/4, W/4) is what
    Bi-Real's 7x7 stem + max pooling gives; it costs about a third of the 7x7 stem's MACs.
    """

    def __init__(self, channels=64, stem_channels=32, norm_layer=nn.BatchNorm, norm_kwargs=None):
        super().__init__()

        def cbr(c, k, s, p, cin):
            blk = nn.HybridSequential(prefix="")
            blk.add(nn.Conv2D(c, k, s, p, use_bias=False, in_channels=cin),
                    norm(norm_layer, norm_kwargs), nn.Activation("relu"))
            return blk
        with self.name_scope():
            self.stem1 = cbr(stem_channels, 3, 2, 1, 3)
            self.branch_a = nn.HybridSequential(prefix="")
            self.branch_a.add(cbr(stem_channels // 2, 1, 1, 0, stem_channels),
                              cbr(stem_channels, 3, 2, 1, stem_channels // 2))
            self.branch_b = nn.MaxPool2D(2, 2)
            self.fuse = cbr(channels, 1, 1, 0, 2 * stem_channels)

    def hybrid_forward(self, F, x):
        x = self.stem1(x)
        return self.fuse(F.concat(self.branch_a(x), self.branch_b(x), dim=1))


class BiRealNet(HybridBlock):
    """Bi-Real Net.

    Parameters
    ----------
    layers : list of int
        Binary convolutions (= Bi-Real blocks) per stage: 4,4,4,4 for 18 layers, 6,8,12,6 for 34.
    channels : list of int
        Stem width, then each stage's width.
    classes : int
    stem : {'imagenet', 'cifar', 'dabnn'}
        7x7/2 conv + BN + 3x3/2 max pooling; 3x3/1 conv + BN; or :class:`PeleeStem`.
    input_quantizer, kernel_quantizer : default 'approx_sign', 'magnitude_aware_sign'
    norm_layer, norm_kwargs : gluoncv's normalization arguments
    """

    def __init__(self, layers, channels, classes=1000, stem="imagenet",
                 input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign",
                 norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            if stem == "imagenet":
                self.features.add(nn.Conv2D(channels[0], 7, 2, 3, use_bias=False, in_channels=3),
                                  norm(**nk), nn.MaxPool2D(3, 2, 1))
            elif stem == "cifar":
                self.features.add(nn.Conv2D(channels[0], 3, 1, 1, use_bias=False, in_channels=3),
                                  norm(**nk))
            elif stem == "dabnn":
                self.features.add(PeleeStem(channels[0], **nk))
            else:
                raise ValueError("stem must be 'imagenet', 'cifar' or 'dabnn', got %r" % (stem,))
            for i, num in enumerate(layers):
                stage = nn.HybridSequential(prefix="stage%d_" % (i + 1))
                with stage.name_scope():
                    cin, cout = channels[i], channels[i + 1]
                    stage.add(BiRealBlock(cout, 1 if i == 0 else 2, cin, **nk, **q))
                    for _ in range(num - 1):
                        stage.add(BiRealBlock(cout, 1, cout, **nk, **q))
                self.features.add(stage)
            self.features.add(nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# depth -> (binary convolutions per stage, channels)
birealnet_spec = {18: ([4, 4, 4, 4], [64, 64, 128, 256, 512]),
                  34: ([6, 8, 12, 6], [64, 64, 128, 256, 512])}

_STEMS = {"imagenet": ("", "224x224 ImageNet inputs (7x7 stem)"),
          "cifar": ("_cifar", "32x32 CIFAR inputs (3x3 stem, 10 classes)"),
          "dabnn": ("_stem", "224x224 ImageNet inputs with daBNN's stem module")}


def get_birealnet(num_layers, *, stem="imagenet", pretrained=False, ctx=None, root=None,
                  **kwargs):
    """Bi-Real Net of ``num_layers`` (18 or 34) with the given ``stem``."""
    if num_layers not in birealnet_spec:
        raise ValueError("Bi-Real Net depth must be one of %s, got %r"
                         % (sorted(birealnet_spec), num_layers))
    check_pretrained("birealnet%d%s" % (num_layers, _STEMS.get(stem, ("",))[0]), pretrained)
    if stem == "cifar":
        kwargs.setdefault("classes", 10)
    layers, channels = birealnet_spec[num_layers]
    return BiRealNet(layers, channels, stem=stem, **kwargs)


def _make(depth, stem):
    suffix, what = _STEMS[stem]

    def constructor(**kwargs):
        return get_birealnet(depth, stem=stem, **kwargs)
    constructor.__name__ = "birealnet%d%s" % (depth, suffix)
    constructor.__doc__ = (
        "Bi-Real Net-%d for %s: %s binary 3x3 convolutions per stage, each with a shortcut; "
        "approx_sign inputs, magnitude-aware weights. Keyword arguments go to :class:`BiRealNet`."
        % (depth, what, birealnet_spec[depth][0]))
    return register_model(constructor.__name__)(constructor)


for _depth, _stem in ((18, "imagenet"), (34, "imagenet"), (18, "cifar"), (34, "cifar"),
                      (18, "dabnn")):
    _fn = _make(_depth, _stem)
    globals()[_fn.__name__] = _fn
    __all__.append(_fn.__name__)
