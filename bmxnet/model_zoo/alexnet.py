"""AlexNet-like binary networks: XNOR-Net (Rastegari et al., 2016) and binary AlexNet (Hubara et
al., 2016)."""
from mxnet.gluon import HybridBlock, nn

from .common import bconv, bdense, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["XNORNet", "BinaryAlexNet", "xnornet", "binary_alexnet"]


class XNORNet(HybridBlock):
    """XNOR-Net: AlexNet with binary inputs and scaled binary weights in every layer but the
    first convolution and the classifier.

    ``conv11x11/4(96) float -> BN -> ReLU -> maxpool3/2 -> BN -> xconv5x5(256) -> maxpool3/2 ->
    BN -> xconv3x3(384) -> BN -> xconv3x3(384) -> BN -> xconv3x3(256) -> maxpool3/2 -> BN ->
    xconv6x6(4096) -> BN -> xconv1x1(4096) -> BN -> ReLU -> dense(classes) float``, where xconv
    binarizes its input (``ste_sign``) and scales sign(W) by mean|W| per output channel
    (``magnitude_aware_sign``, the XNOR-Net weight scale). 224x224 inputs.
    """

    def __init__(self, classes=1000, input_quantizer="ste_sign",
                 kernel_quantizer="magnitude_aware_sign", norm_layer=nn.BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)

        def bn():
            return norm(norm_layer, norm_kwargs, scale=False)
        with self.name_scope():
            f = self.features = nn.HybridSequential(prefix="")
            f.add(nn.Conv2D(96, 11, 4, 4, use_bias=False, in_channels=3), bn(),
                  nn.Activation("relu"), nn.MaxPool2D(3, 2), bn(),
                  bconv(256, 5, 1, 2, 96, **q), nn.MaxPool2D(3, 2), bn(),
                  bconv(384, 3, 1, 1, 256, **q), bn(),
                  bconv(384, 3, 1, 1, 384, **q), bn(),
                  bconv(256, 3, 1, 1, 384, **q), nn.MaxPool2D(3, 2), bn(),
                  bconv(4096, 6, 1, 0, 256, **q), bn(),
                  bconv(4096, 1, 1, 0, 4096, **q), bn(),
                  nn.Activation("relu"), nn.Flatten())
            self.output = nn.Dense(classes, use_bias=False, in_units=4096)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


class BinaryAlexNet(HybridBlock):
    """Binary AlexNet (Hubara et al., "Binarized Neural Networks"): every weight binary, every
    input but the image binarized, BatchNorm (no scale) after each layer.

    ``bconv11x11/4(64) -> maxpool3/2 -> BN -> bconv5x5(192) -> maxpool3/2 -> BN -> bconv3x3(384)
    -> BN -> bconv3x3(384) -> BN -> bconv3x3(256) -> maxpool3/2 -> BN -> bdense(4096) -> BN ->
    bdense(4096) -> BN -> bdense(classes) -> BN``. 224x224 inputs.
    """

    def __init__(self, classes=1000, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                 norm_layer=nn.BatchNorm, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)

        def bn():
            return norm(norm_layer, norm_kwargs, scale=False)
        with self.name_scope():
            f = self.features = nn.HybridSequential(prefix="")
            f.add(bconv(64, 11, 4, 4, 3, input_quantizer=None, kernel_quantizer=kernel_quantizer),
                  nn.MaxPool2D(3, 2), bn(),
                  bconv(192, 5, 1, 2, 64, **q), nn.MaxPool2D(3, 2), bn(),
                  bconv(384, 3, 1, 1, 192, **q), bn(),
                  bconv(384, 3, 1, 1, 384, **q), bn(),
                  bconv(256, 3, 1, 1, 384, **q), nn.MaxPool2D(3, 2), bn(),
                  nn.Flatten(),
                  bdense(4096, **q), bn(),
                  bdense(4096, 4096, **q), bn())
            self.output = nn.HybridSequential(prefix="")
            self.output.add(bdense(classes, 4096, **q), bn())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


@register_model("xnornet")
def xnornet(*, pretrained=False, ctx=None, root=None, **kwargs):
    """XNOR-Net (:class:`XNORNet`) for 224x224 ImageNet."""
    check_pretrained("xnornet", pretrained)
    return XNORNet(**kwargs)


@register_model("binary_alexnet")
def binary_alexnet(*, pretrained=False, ctx=None, root=None, **kwargs):
    """Binary AlexNet (:class:`BinaryAlexNet`) for 224x224 ImageNet."""
    check_pretrained("binary_alexnet", pretrained)
    return BinaryAlexNet(**kwargs)
