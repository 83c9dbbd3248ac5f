"""Helpers shared by the model files."""
from mxnet.gluon import nn

from ..gluon.layers import QConv2D, QDense

__all__ = ["check_pretrained", "bconv", "bdense", "norm"]


def check_pretrained(name, pretrained):
    """bmxnet ships no pretrained weights: a clear error instead of a download."""
    if pretrained:
        raise ValueError(
            "no pretrained weights are available for %r: bmxnet downloads nothing. Train it "
            "(`bmxnet train %s ...`) and load the result with net.load_parameters(path), or "
            "import an exported model with gluon.SymbolBlock.imports" % (name, name))


def bconv(channels, kernel_size, strides=1, padding=0, in_channels=0, *,
          input_quantizer="ste_sign", kernel_quantizer="ste_sign", **kwargs):
    """A bias-free QConv2D (a BatchNorm always follows in the zoo's models)."""
    return QConv2D(channels, kernel_size, strides=strides, padding=padding,
                   in_channels=in_channels, use_bias=False, input_quantizer=input_quantizer,
                   kernel_quantizer=kernel_quantizer, **kwargs)


def bdense(units, in_units=0, *, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
           use_bias=False, **kwargs):
    """A QDense, bias-free by default."""
    return QDense(units, in_units=in_units, use_bias=use_bias, input_quantizer=input_quantizer,
                  kernel_quantizer=kernel_quantizer, **kwargs)


def norm(norm_layer=nn.BatchNorm, norm_kwargs=None, **extra):
    """norm_layer(**norm_kwargs, **extra), gluoncv's convention."""
    kw = dict(norm_kwargs or {})
    kw.update(extra)
    return norm_layer(**kw)
