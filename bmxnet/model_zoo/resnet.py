"""Binary ResNet-18/34 as trained with BMXNet: every 3x3 and 1x1 convolution of the residual
stages is binary; the first convolution and the classifier stay full precision."""
from mxnet.gluon import HybridBlock, nn

from .common import bconv, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["BinaryBasicBlock", "BinaryResNet", "resnet_spec", "get_binary_resnet"]


class BinaryBasicBlock(HybridBlock):
    """ResNet's basic block with binary convolutions (BMXNet's ResNet "V1").

    ``out = BN(bconv3x3(BN(bconv3x3(x)))) + shortcut(x)``, shortcut = ``BN(bconv1x1(x))`` when the
    shape changes, else identity. There is no ReLU inside: the sign in front of each binary
    convolution is the non-linearity.
    """

    def __init__(self, channels, stride, downsample=False, in_channels=0, norm_layer=nn.BatchNorm,
                 norm_kwargs=None, **q):
        super().__init__()
        with self.name_scope():
            self.body = nn.HybridSequential(prefix="")
            self.body.add(bconv(channels, 3, stride, 1, in_channels, **q),
                          norm(norm_layer, norm_kwargs),
                          bconv(channels, 3, 1, 1, channels, **q),
                          norm(norm_layer, norm_kwargs))
            self.downsample = None
            if downsample:
                self.downsample = nn.HybridSequential(prefix="")
                self.downsample.add(bconv(channels, 1, stride, 0, in_channels, **q),
                                    norm(norm_layer, norm_kwargs))

    def hybrid_forward(self, F, x):
        residual = self.downsample(x) if self.downsample is not None else x
        return self.body(x) + residual


class BinaryResNet(HybridBlock):
    """Binary ResNet.

    Parameters
    ----------
    layers : list of int
        Blocks per stage.
    channels : list of int
        Stem width then the width of each stage.
    classes : int
    thumbnail : bool
        CIFAR stem (3x3 conv, stride 1, no max pooling) instead of ImageNet's 7x7/2 + maxpool.
    input_quantizer, kernel_quantizer : quantizer identifiers, default 'ste_sign'
    norm_layer, norm_kwargs : gluoncv's normalization arguments
    """

    def __init__(self, layers, channels, classes=1000, thumbnail=False,
                 input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                 norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
        nk = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            if thumbnail:
                self.features.add(nn.Conv2D(channels[0], 3, 1, 1, use_bias=False, in_channels=3),
                                  norm(**nk))
            else:
                self.features.add(nn.Conv2D(channels[0], 7, 2, 3, use_bias=False, in_channels=3),
                                  norm(**nk), nn.Activation("relu"), nn.MaxPool2D(3, 2, 1))
            for i, num in enumerate(layers):
                stride = 1 if i == 0 else 2
                stage = nn.HybridSequential(prefix="stage%d_" % (i + 1))
                with stage.name_scope():
                    cin, cout = channels[i], channels[i + 1]
                    stage.add(BinaryBasicBlock(cout, stride, cout != cin or stride != 1, cin,
                                               **nk, **q))
                    for _ in range(num - 1):
                        stage.add(BinaryBasicBlock(cout, 1, False, cout, **nk, **q))
                self.features.add(stage)
            self.features.add(nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Flatten())
            self.output = nn.Dense(classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# depth -> (blocks per stage, channels)
resnet_spec = {18: ([2, 2, 2, 2], [64, 64, 128, 256, 512]),
               34: ([3, 4, 6, 3], [64, 64, 128, 256, 512])}


def get_binary_resnet(num_layers, *, dataset="imagenet", pretrained=False, ctx=None, root=None,
                      **kwargs):
    """Binary ResNet of ``num_layers`` (18 or 34) for ``dataset`` 'imagenet' (224x224, 1000
    classes) or 'cifar' (32x32, 10 classes, thumbnail stem)."""
    if num_layers not in resnet_spec:
        raise ValueError("binary ResNet depth must be one of %s, got %r"
                         % (sorted(resnet_spec), num_layers))
    name = "binary_resnet%d%s" % (num_layers, "_cifar" if dataset == "cifar" else "")
    check_pretrained(name, pretrained)
    layers, channels = resnet_spec[num_layers]
    if dataset == "cifar":
        kwargs.setdefault("classes", 10)
        kwargs.setdefault("thumbnail", True)
    return BinaryResNet(layers, channels, **kwargs)


def _make(depth, dataset):
    def constructor(**kwargs):
        return get_binary_resnet(depth, dataset=dataset, **kwargs)
    size = "224x224 ImageNet" if dataset == "imagenet" else "32x32 CIFAR"
    constructor.__name__ = "binary_resnet%d%s" % (depth, "_cifar" if dataset == "cifar" else "")
    constructor.__doc__ = (
        "Binary ResNet-%d for %s inputs (BMXNet): %s blocks per stage, all stage convolutions "
        "1-bit, float stem and classifier. Keyword arguments go to :class:`BinaryResNet`."
        % (depth, size, resnet_spec[depth][0]))
    return register_model(constructor.__name__)(constructor)


for _depth in resnet_spec:
    for _dataset in ("imagenet", "cifar"):
        _fn = _make(_depth, _dataset)
        globals()[_fn.__name__] = _fn
        __all__.append(_fn.__name__)
