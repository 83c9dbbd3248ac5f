"""BinaryNet (Courbariaux/Hubara et al., 2016), the CIFAR-10 network of the Bop paper."""
from mxnet.gluon import HybridBlock, nn

from .common import bconv, bdense, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["BinaryNet", "binarynet"]


class BinaryNet(HybridBlock):
    """``(2x128C3)-MP2-(2x256C3)-MP2-(2x512C3)-MP2-(2x1024FC)-10FC``, BN after every layer.

    Every weight is binary; every input is binarized except the image going into the first
    convolution (``act_bit=32, weight_bit=1``). BatchNorm layers have no scale (``scale=False``),
    as in the Bop paper's implementation; the classifier ends in a BatchNorm too.

    Parameters
    ----------
    classes : int, default 10
    filters : int, default 128
    dense_units : int, default 1024
    input_quantizer, kernel_quantizer : default 'ste_sign'
    norm_layer, norm_kwargs : gluoncv's normalization arguments (scale=False is added)
    """

    def __init__(self, classes=10, filters=128, dense_units=1024, input_quantizer="ste_sign",
                 kernel_quantizer="ste_sign", norm_layer=nn.BatchNorm, norm_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)

        def bn():
            return norm(norm_layer, norm_kwargs, scale=False)
        with self.name_scope():
            f = self.features = nn.HybridSequential(prefix="")
            f.add(bconv(filters, 3, 1, 1, 3, input_quantizer=None,
                        kernel_quantizer=kernel_quantizer), bn(),
                  bconv(filters, 3, 1, 1, filters, **q), nn.MaxPool2D(2, 2), bn(),
                  bconv(2 * filters, 3, 1, 1, filters, **q), bn(),
                  bconv(2 * filters, 3, 1, 1, 2 * filters, **q), nn.MaxPool2D(2, 2), bn(),
                  bconv(4 * filters, 3, 1, 1, 2 * filters, **q), bn(),
                  bconv(4 * filters, 3, 1, 1, 4 * filters, **q), nn.MaxPool2D(2, 2), bn(),
                  nn.Flatten(),
                  bdense(dense_units, **q), bn(),
                  bdense(dense_units, dense_units, **q), bn())
            self.output = nn.HybridSequential(prefix="")
            self.output.add(bdense(classes, dense_units, **q), bn())

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


@register_model("binarynet", "binarynet_cifar")
def binarynet(*, pretrained=False, ctx=None, root=None, **kwargs):
    """BinaryNet for 32x32 CIFAR-10 (:class:`BinaryNet`), the network Bop was evaluated on."""
    check_pretrained("binarynet", pretrained)
    return BinaryNet(**kwargs)
