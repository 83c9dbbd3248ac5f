"""Quantized Gluon layers.

``QConv2D`` and ``QDense`` take exactly the arguments of ``gluon.nn.Conv2D`` and
``gluon.nn.Dense`` plus the quantization arguments below, and run the C++ operators
``QConvolution`` / ``QFullyConnected``; ``QActivation`` wraps the ``QActivation`` operator.
After ``hybridize()`` and ``export()`` the json holds those operators, so
``gluon.SymbolBlock.imports`` (after ``import bmxnet``) reloads the network.

Quantization arguments
----------------------
act_bit : int, default 1
    Bits of the layer's input: 1 = sign (sign(0) = +1), 2..31 = DoReFa ``rint((2^k-1) clip(x,0,1))
    / (2^k-1)``, 32 = full precision.
weight_bit : int, default 1
    Bits of the weights: 1 = sign, 2..31 = DoReFa weights, 32 = full precision. The latent float
    weights are what the optimizer updates; the operator quantizes them on every forward pass.
scaling : bool or {'none', 'forward'}, default False
    XNOR-Net scaling: each output channel is multiplied by the mean |W| of that channel's latent
    weights (a constant for the backward pass).
grad_cancel : float, default 1.0
    Straight-through estimator: gradients pass where |x| <= grad_cancel (for inputs and latent
    weights) and are zero elsewhere.
act_grad : {'ste', 'approx_sign', 'swish_sign'}, default 'ste'
    Pseudo-gradient of the 1-bit input quantizer (forward is sign in every case): the clipped
    straight-through estimator, Bi-Real Net's ``2 - 2|x|`` on [-1, 1], or SignSwish with beta=5.
pad_value : {0, 1, -1}, default 0 (QConv2D only)
    Value of the border for 1-bit inputs: 0 is exact zero padding as in nn.Conv2D.
"""
from mxnet.gluon import HybridBlock, nn

__all__ = ["QActivation", "QConv2D", "QDense"]


def _scaling_mode(scaling):
    if scaling in (False, None, "none"):
        return "none"
    if scaling in (True, "forward"):
        return "forward"
    raise ValueError("scaling must be False/True or 'none'/'forward', got %r" % (scaling,))


ACT_GRADS = ("ste", "approx_sign", "swish_sign")


def _quant_kwargs(act_bit, weight_bit, scaling, grad_cancel, act_grad):
    for name, bits in (("act_bit", act_bit), ("weight_bit", weight_bit)):
        if not isinstance(bits, int) or not 1 <= bits <= 32:
            raise ValueError("%s must be an integer in [1, 32], got %r" % (name, bits))
    if act_grad not in ACT_GRADS:
        raise ValueError("act_grad must be one of %s, got %r" % (ACT_GRADS, act_grad))
    return {"act_bit": act_bit, "weight_bit": weight_bit, "scaling_mode": _scaling_mode(scaling),
            "grad_cancel": float(grad_cancel), "act_grad": act_grad}


class QConv2D(nn.Conv2D):
    """2-D convolution with quantized inputs and weights (``QConvolution``).

    Takes ``nn.Conv2D``'s arguments (channels, kernel_size, strides, padding, dilation, groups,
    layout, activation, use_bias, weight_initializer, bias_initializer, in_channels) plus the
    quantization arguments described in :mod:`bmxnet.gluon.layers`. With act_bit = weight_bit = 32
    and no scaling it computes exactly what ``nn.Conv2D`` computes.

    Examples
    --------
    >>> layer = bmxnet.gluon.QConv2D(64, 3, padding=1, act_bit=1, weight_bit=1)
    """

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1, layout="NCHW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, act_bit=1, weight_bit=1, scaling=False,
                 grad_cancel=1.0, act_grad="ste", pad_value=0, **kwargs):
        if layout != "NCHW":
            raise ValueError("QConv2D supports layout='NCHW' only, got %r" % (layout,))
        if pad_value not in (0, 1, -1):
            raise ValueError("pad_value must be 0, 1 or -1, got %r" % (pad_value,))
        super().__init__(channels, kernel_size, strides=strides, padding=padding,
                         dilation=dilation, groups=groups, layout=layout, activation=activation,
                         use_bias=use_bias, weight_initializer=weight_initializer,
                         bias_initializer=bias_initializer, in_channels=in_channels, **kwargs)
        self._op_name = "QConvolution"
        self._kwargs.update(_quant_kwargs(act_bit, weight_bit, scaling, grad_cancel, act_grad))
        self._kwargs["pad_value"] = pad_value

    def _alias(self):
        return "qconv"


class QDense(nn.Dense):
    """Fully-connected layer with quantized inputs and weights (``QFullyConnected``).

    Takes ``nn.Dense``'s arguments (units, activation, use_bias, flatten, dtype,
    weight_initializer, bias_initializer, in_units) plus the quantization arguments described in
    :mod:`bmxnet.gluon.layers`.

    Examples
    --------
    >>> layer = bmxnet.gluon.QDense(1000, act_bit=1, weight_bit=1)
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0, act_bit=1,
                 weight_bit=1, scaling=False, grad_cancel=1.0, act_grad="ste", **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, flatten=flatten,
                         dtype=dtype, weight_initializer=weight_initializer,
                         bias_initializer=bias_initializer, in_units=in_units, **kwargs)
        self._qkwargs = _quant_kwargs(act_bit, weight_bit, scaling, grad_cancel, act_grad)

    def hybrid_forward(self, F, x, weight, bias=None):
        args = (x, weight) if bias is None else (x, weight, bias)
        out = F.QFullyConnected(*args, no_bias=bias is None, num_hidden=self._units,
                                flatten=self._flatten, name="fwd", **self._qkwargs)
        return self.act(out) if self.act is not None else out


class QActivation(HybridBlock):
    """Quantizes its input to ``act_bit`` bits (the ``QActivation`` operator).

    Parameters
    ----------
    act_bit : int, default 1
        1 = sign, 2..31 = DoReFa levels in [0, 1], 32 = identity.
    grad_cancel : float, default 1.0
        Straight-through estimator: the gradient passes where |x| <= grad_cancel.
    backward_only : bool, default False
        Identity in the forward pass, straight-through estimator in the backward pass (the
        following Q-layer quantizes its input itself).
    act_grad : {'ste', 'approx_sign', 'swish_sign'}, default 'ste'
        Pseudo-gradient of sign for act_bit = 1 (see :mod:`bmxnet.gluon.layers`).
    """

    def __init__(self, act_bit=1, grad_cancel=1.0, backward_only=False, act_grad="ste",
                 **kwargs):
        super().__init__(**kwargs)
        q = _quant_kwargs(act_bit, 32, False, grad_cancel, act_grad)
        self._kwargs = {"act_bit": act_bit, "grad_cancel": q["grad_cancel"],
                        "backward_only": bool(backward_only), "act_grad": act_grad}

    def hybrid_forward(self, F, x):
        return F.QActivation(x, name="fwd", **self._kwargs)

    def __repr__(self):
        return "{}(act_bit={act_bit}, grad_cancel={grad_cancel}, backward_only={backward_only}, " \
            "act_grad={act_grad})".format(self.__class__.__name__, **self._kwargs)
