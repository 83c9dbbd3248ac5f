"""Learnable building blocks of ReActNet (Liu et al., ECCV 2020, https://arxiv.org/abs/2003.03488).

* :class:`LearnableBias` adds a learnable per-channel shift.
* :class:`RSign` is ``sign(x - alpha_c)``: a LearnableBias (holding ``-alpha``, as ReActNet's
  code does) in front of a 1-bit quantizer. In a
  network the quantizer is best left to the following QConv2D (``input_quantizer``), which keeps
  the binary convolution on the packed kernels; :class:`RSign` itself is the stand-alone form.
* :class:`RPReLU` is ``PReLU_c(x - gamma_c) + zeta_c`` with per-channel slope, shift and bias
  (the shifts are LearnableBias blocks holding ``-gamma`` and ``zeta``).

All parameters are real-valued (32-bit): Bop leaves them to its float optimizer.
"""
from mxnet import init
from mxnet.gluon import HybridBlock, nn

from .layers import QActivation

__all__ = ["LearnableBias", "RSign", "RPReLU"]


class LearnableBias(HybridBlock):
    """``y = x + b_c``, a learnable shift per channel (axis 1), initialised to 0.

    Parameters
    ----------
    channels : int
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self._channels = channels
        with self.name_scope():
            self.bias = self.params.get("bias", shape=(channels,), init=init.Zero())

    def hybrid_forward(self, F, x, bias):
        return F.broadcast_add(x, F.reshape(bias, shape=(1, -1, 1, 1)))

    def __repr__(self):
        return "%s(%d)" % (type(self).__name__, self._channels)


class RSign(HybridBlock):
    r"""ReActNet's sign with a learnable threshold per channel.

    .. math::
        y_{n,c,h,w} = q(x_{n,c,h,w} - \alpha_c)

    with :math:`q` the 1-bit quantizer (``approx_sign`` as in ReActNet). The parameter is
    ``shift.bias`` :math:`= -\alpha` (initialised to 0); its gradient is the sum of the
    pseudo-gradients over the channel.

    Parameters
    ----------
    channels : int
    quantizer : quantizer identifier, default 'approx_sign'
    """

    def __init__(self, channels, quantizer="approx_sign", **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.shift = LearnableBias(channels)
            self.sign = QActivation(quantizer=quantizer)

    def hybrid_forward(self, F, x):
        return self.sign(self.shift(x))


class RPReLU(HybridBlock):
    r"""ReActNet's PReLU with learnable shifts per channel.

    .. math::
        y_c = \begin{cases} x_c - \gamma_c + \zeta_c & x_c > \gamma_c \\
        \beta_c (x_c - \gamma_c) + \zeta_c & x_c \leq \gamma_c \end{cases}

    Learnable parameters: ``shift_in.bias`` :math:`= -\gamma`, ``prelu.alpha`` :math:`= \beta`,
    ``shift_out.bias`` :math:`= \zeta`.

    Parameters
    ----------
    channels : int
    alpha : float, default 0.25
        Initial slope :math:`\beta`.
    """

    def __init__(self, channels, alpha=0.25, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.shift_in = LearnableBias(channels, prefix="gamma_")
            self.prelu = nn.PReLU(alpha_initializer=init.Constant(alpha), in_channels=channels)
            self.shift_out = LearnableBias(channels, prefix="zeta_")

    def hybrid_forward(self, F, x):
        return self.shift_out(self.prelu(self.shift_in(x)))
