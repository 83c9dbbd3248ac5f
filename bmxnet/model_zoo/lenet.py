"""Binary LeNet, BMXNet's MNIST network."""
from mxnet.gluon import HybridBlock, nn

from .common import bconv, bdense, check_pretrained, norm
from .model_zoo import register_model

__all__ = ["BinaryLeNet", "binary_lenet"]


class BinaryLeNet(HybridBlock):
    r"""Binary LeNet as in BMXNet's MNIST example.

    ``conv5x5(c1) float -> tanh -> maxpool2 -> BN -> conv5x5(c2) 1-bit -> BN -> tanh -> maxpool2
    -> flatten -> dense(hidden) 1-bit -> BN -> tanh -> dense(classes) float``.

    The first convolution and the classifier are full precision; the binary layers take
    ``sign`` of their input (``input_quantizer``) and of their weights (``kernel_quantizer``).
    With the defaults on 28x28 MNIST the binary layers hold 64*64*25 + 1024*1000 weights.

    Parameters
    ----------
    classes : int, default 10
    channels : (int, int), default (64, 64)
    hidden : int, default 1000
    padding : int, default 0
        Padding of both 5x5 convolutions; 2 keeps small inputs (8x8 digits) large enough.
    in_channels : int, default 1
    input_quantizer, kernel_quantizer : quantizer identifiers, default 'ste_sign'
    norm_layer, norm_kwargs : gluoncv's normalization arguments
    """

    def __init__(self, classes=10, channels=(64, 64), hidden=1000, padding=0, in_channels=1,
                 input_quantizer="ste_sign", kernel_quantizer="ste_sign", norm_layer=nn.BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        q = dict(input_quantizer=input_quantizer, kernel_quantizer=kernel_quantizer)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(
                nn.Conv2D(channels[0], 5, padding=padding, in_channels=in_channels),
                nn.Activation("tanh"), nn.MaxPool2D(2, 2), norm(norm_layer, norm_kwargs),
                bconv(channels[1], 5, padding=padding, in_channels=channels[0], **q),
                norm(norm_layer, norm_kwargs), nn.Activation("tanh"), nn.MaxPool2D(2, 2),
                nn.Flatten(),
                bdense(hidden, **q), norm(norm_layer, norm_kwargs), nn.Activation("tanh"))
            self.output = nn.Dense(classes, in_units=hidden)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


@register_model("binary_lenet", "lenet")
def binary_lenet(*, pretrained=False, ctx=None, root=None, **kwargs):
    """Binary LeNet (:class:`BinaryLeNet`) for 28x28 MNIST; ``padding=2`` for 8x8 digits."""
    check_pretrained("binary_lenet", pretrained)
    return BinaryLeNet(**kwargs)
