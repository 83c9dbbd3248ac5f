"""Quantizers: the functions that turn latent float values into 1-bit or k-bit values.

A quantizer defines a forward pass :math:`q(x)` and a *pseudo-gradient* :math:`\\partial q /
\\partial x` used in its place in the backward pass (``sign`` has zero gradient almost everywhere,
so every binary network is trained through such an estimator). Each quantizer exists three times:

* a **function** holding the maths, e.g. ``ste_sign(x, clip_value=1.0)``, that works on
  ``mx.nd.NDArray`` and ``mx.sym.Symbol`` alike;
* a **class** holding the configuration, e.g. ``SteSign(clip_value=1.0)``, whose instances are
  callables;
* a **string alias**, e.g. ``"ste_sign"``, resolved by :func:`get`.

There are three equivalent ways to give a quantizer to a layer::

    QConv2D(64, 3, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")
    QConv2D(64, 3, input_quantizer=SteSign(clip_value=1.0),
            kernel_quantizer=MagnitudeAwareSign())
    QConv2D(64, 3, input_quantizer={"class_name": "SteSign", "config": {"clip_value": 1.0}})

Prefer the string when the defaults are what you want and the object otherwise: both are
translated into the parameters of the C++ operators (``act_bit``, ``act_grad``, ``swish_beta``,
``grad_cancel``, ``weight_bit``, ``scaling_mode``), so 1-bit layers keep running on the packed
xnor-popcount kernels and export as ``QConvolution`` / ``QFullyConnected`` nodes that the model
converter understands. A plain Python callable is accepted too, but a layer can only apply it
with MXNet operators in front of a 32-bit operator (no packed kernels, nothing to convert).

Every quantizer carries ``precision`` (bits of its output); the Q-layers copy it onto their weight
parameters, where :class:`bmxnet.optimizer.Bop` and :func:`bmxnet.summary` read it.

One limitation of the operators shows through: ``QConvolution`` / ``QFullyConnected`` have a
single ``grad_cancel`` for the input and the weights. When an input quantizer and a kernel
quantizer ask for different clip values, the layer computes the input quantizer in a separate
``QActivation`` node and lets the convolution pass the (already ±1 / k-bit) values straight
through, which needs the kernel's clip value to be at least 1.
"""
import collections

import mxnet as mx

__all__ = ["Quantizer", "SteSign", "ApproxSign", "SwishSign", "MagnitudeAwareSign", "DoReFa",
           "ste_sign", "approx_sign", "swish_sign", "magnitude_aware_sign", "dorefa_quantizer",
           "get", "serialize", "set_precision", "register_alias", "OpSpec",
           "DoReFaQuantizer", "MagnitudeAwareSignQuantizer"]

_ALIASES = {}


def register_alias(*names):
    """Class decorator: makes ``get(name)`` return a default instance of the class."""
    def wrap(cls):
        for name in names + (cls.__name__,):
            if name in _ALIASES and _ALIASES[name] is not cls:
                raise ValueError("quantizer alias %r is taken by %s" % (name, _ALIASES[name]))
            _ALIASES[name] = cls
        return cls
    return wrap


def set_precision(bits):
    """Decorator attaching ``precision = bits`` to a quantizer function or class."""
    def wrap(obj):
        obj.precision = bits
        return obj
    return wrap


def _F(x):
    """mx.sym for symbols, mx.nd otherwise (the ``F`` of hybrid_forward)."""
    return mx.sym if isinstance(x, mx.sym.Symbol) else mx.nd


# How a quantizer maps onto the operator parameters. `bits`: act_bit / weight_bit. `act_grad` /
# `swish_beta`: the input pseudo-gradient. `clip`: the grad_cancel the quantizer needs exactly
# (None: any). `min_clip`: the smallest grad_cancel that passes its values through unchanged.
# `scaling`: scaling_mode='forward'. `pre`: a function (F, x) -> x applied before the operator.
OpSpec = collections.namedtuple("OpSpec", "bits act_grad swish_beta clip min_clip scaling pre")
OpSpec.__new__.__defaults__ = (32, "ste", None, None, None, False, None)


class Quantizer:
    """Base class of the built-in quantizers.

    Subclasses set ``precision`` and implement ``__call__`` (the maths, on NDArray or Symbol),
    ``get_config`` and ``op_spec(role)`` (their translation into operator parameters for
    ``role`` in {'input', 'kernel'}; a quantizer that the operators cannot express in a role
    raises ValueError there).
    """
    precision = 32

    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}

    def op_spec(self, role):
        raise NotImplementedError

    def _only(self, role, allowed, why):
        if role != allowed:
            raise ValueError("%r cannot be used as %s quantizer: %s" % (self, role, why))

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self):
        cfg = ", ".join("%s=%r" % kv for kv in self.get_config().items())
        return "%s(%s)" % (type(self).__name__, cfg)


# ---------------------------------------------------------------------------------------------
@set_precision(1)
def ste_sign(x, clip_value=1.0):
    r"""Sign with the clipped straight-through estimator.

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = \begin{cases} 1 & |x| \leq \texttt{clip\_value} \\
        0 & |x| > \texttt{clip\_value} \end{cases}

    Parameters
    ----------
    x : NDArray or Symbol
    clip_value : float, default 1.0
        Threshold for cancelling the gradient.

    Examples
    --------
    >>> ste_sign(mx.nd.array([-2, -0.5, 0, 3])).asnumpy()
    array([-1., -1.,  1.,  1.], dtype=float32)

    References
    ----------
    Hubara et al., Binarized Neural Networks, NeurIPS 2016, https://arxiv.org/abs/1602.02830
    """
    return _F(x).QActivation(x, act_bit=1, act_grad="ste", grad_cancel=float(clip_value))


@register_alias("ste_sign")
class SteSign(Quantizer):
    r"""Sign with the clipped straight-through estimator (see :func:`ste_sign`).

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = 1_{|x| \leq \texttt{clip\_value}}

    Usable for inputs (``act_bit=1, act_grad='ste', grad_cancel=clip_value``) and for weights
    (``weight_bit=1, grad_cancel=clip_value``).

    Parameters
    ----------
    clip_value : float, default 1.0
        Threshold for cancelling the gradient.

    References
    ----------
    Hubara et al., Binarized Neural Networks, NeurIPS 2016, https://arxiv.org/abs/1602.02830
    """
    precision = 1

    def __init__(self, clip_value=1.0):
        if float(clip_value) < 0:
            raise ValueError("clip_value must be >= 0, got %r" % (clip_value,))
        self.clip_value = float(clip_value)

    def __call__(self, x):
        return ste_sign(x, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}

    def op_spec(self, role):
        return OpSpec(bits=1, act_grad="ste", clip=self.clip_value)


# ---------------------------------------------------------------------------------------------
@set_precision(1)
def approx_sign(x):
    r"""Sign with Bi-Real Net's piecewise-polynomial pseudo-gradient.

    The forward pass is sign; the backward pass differentiates the polynomial approximation
    ``F(x) = 2x + x^2`` on [-1, 0), ``2x - x^2`` on [0, 1), ±1 outside.

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = \begin{cases} 2 + 2x & -1 \leq x < 0 \\
        2 - 2x & 0 \leq x < 1 \\ 0 & \text{otherwise} \end{cases}

    (The operator evaluates ``2 - 2|x|`` on [-1, 1], which equals the cases above and is 0 at
    ``|x| = 1``.)

    Parameters
    ----------
    x : NDArray or Symbol

    References
    ----------
    Liu et al., Bi-Real Net, ECCV 2018, https://arxiv.org/abs/1808.00278
    """
    return _F(x).QActivation(x, act_bit=1, act_grad="approx_sign")


@register_alias("approx_sign")
class ApproxSign(Quantizer):
    r"""Sign with Bi-Real Net's pseudo-gradient (see :func:`approx_sign`).

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = \begin{cases} 2 + 2x & -1 \leq x < 0 \\
        2 - 2x & 0 \leq x < 1 \\ 0 & \text{otherwise} \end{cases}

    Input quantizer only (``act_bit=1, act_grad='approx_sign'``): the operators' weight gradient
    is always the clipped straight-through estimator.

    References
    ----------
    Liu et al., Bi-Real Net, ECCV 2018, https://arxiv.org/abs/1808.00278
    """
    precision = 1

    def __call__(self, x):
        return approx_sign(x)

    def op_spec(self, role):
        self._only(role, "input", "the operators differentiate weights with the clipped STE "
                                  "only; use 'ste_sign' or 'magnitude_aware_sign' for kernels")
        return OpSpec(bits=1, act_grad="approx_sign")


# ---------------------------------------------------------------------------------------------
@set_precision(1)
def swish_sign(x, beta=5.0):
    r"""Sign with the SignSwish pseudo-gradient.

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = \frac{\beta\left(2 - \beta x \tanh\left(\frac{\beta
        x}{2}\right)\right)}{1 + \cosh(\beta x)}

    which is the derivative of :math:`2\sigma(\beta x)(1 + \beta x(1 - \sigma(\beta x))) - 1`.

    Parameters
    ----------
    x : NDArray or Symbol
    beta : float, default 5.0
        Larger values make the gradient peak at 0 narrower and higher.

    References
    ----------
    Darabi et al., BNN+: Improved Binary Network Training, https://arxiv.org/abs/1812.11800
    """
    return _F(x).QActivation(x, act_bit=1, act_grad="swish_sign", swish_beta=float(beta))


@register_alias("swish_sign")
class SwishSign(Quantizer):
    r"""Sign with the SignSwish pseudo-gradient (see :func:`swish_sign`).

    .. math::
        q(x) = \begin{cases} -1 & x < 0 \\ 1 & x \geq 0 \end{cases}
        \qquad
        \frac{\partial q(x)}{\partial x} = \frac{\beta\left(2 - \beta x \tanh\left(\frac{\beta
        x}{2}\right)\right)}{1 + \cosh(\beta x)}

    Input quantizer only (``act_bit=1, act_grad='swish_sign', swish_beta=beta``).

    Parameters
    ----------
    beta : float, default 5.0

    References
    ----------
    Darabi et al., BNN+: Improved Binary Network Training, https://arxiv.org/abs/1812.11800
    """
    precision = 1

    def __init__(self, beta=5.0):
        self.beta = float(beta)

    def __call__(self, x):
        return swish_sign(x, self.beta)

    def get_config(self):
        return {"beta": self.beta}

    def op_spec(self, role):
        self._only(role, "input", "the operators differentiate weights with the clipped STE "
                                  "only; use 'ste_sign' or 'magnitude_aware_sign' for kernels")
        return OpSpec(bits=1, act_grad="swish_sign", swish_beta=self.beta)


# ---------------------------------------------------------------------------------------------
@set_precision(1)
def magnitude_aware_sign(x, clip_value=1.0):
    r"""Sign scaled by the mean magnitude of each output channel (Bi-Real Net / XNOR-Net).

    For a weight tensor with output channels along axis 0:

    .. math::
        \alpha_o = \frac{1}{n}\sum_{i} |W_{o,i}| \qquad q(W)_{o,i} = \alpha_o\,
        \mathrm{sign}(W_{o,i})
        \qquad
        \frac{\partial q(W)_{o,i}}{\partial W_{o,i}} = \alpha_o\, 1_{|W_{o,i}| \leq
        \texttt{clip\_value}}

    :math:`\alpha` is treated as a constant in the backward pass (no gradient flows into it).

    Parameters
    ----------
    x : NDArray or Symbol
        Weights, output channels first.
    clip_value : float, default 1.0

    References
    ----------
    Liu et al., Bi-Real Net, ECCV 2018, https://arxiv.org/abs/1808.00278;
    Rastegari et al., XNOR-Net, ECCV 2016, https://arxiv.org/abs/1603.05279
    """
    F = _F(x)
    flat = F.reshape(F.abs(x), shape=(0, -1))
    alpha = F.stop_gradient(F.mean(flat, axis=1))
    signs = F.QActivation(x, act_bit=1, act_grad="ste", grad_cancel=float(clip_value))
    return signs * _expand_like(F, alpha, x)


def _expand_like(F, v, x):
    """Reshapes a per-output-channel vector v (C,) to (C, 1, 1, ...) matching x's ndim."""
    # reshape (C,) -> (C, 1) then broadcast along the flattened remainder and back to x's shape
    col = F.reshape(v, shape=(-1, 1))
    flat = F.reshape(x, shape=(0, -1))
    return F.reshape_like(F.broadcast_like(col, flat), x)


@register_alias("magnitude_aware_sign")
class MagnitudeAwareSign(Quantizer):
    r"""Per-output-channel mean |W| times sign(W) (see :func:`magnitude_aware_sign`).

    .. math::
        q(W)_{o,i} = \alpha_o\, \mathrm{sign}(W_{o,i}), \quad \alpha_o = \mathrm{mean}_i
        |W_{o,i}|
        \qquad
        \frac{\partial q(W)_{o,i}}{\partial W_{o,i}} = \alpha_o\, 1_{|W_{o,i}| \leq
        \texttt{clip\_value}}

    Kernel quantizer only: ``weight_bit=1, scaling_mode='forward', grad_cancel=clip_value``.
    The operator multiplies each output channel of the xnor result by :math:`\alpha_o`, which
    is the same as convolving with :math:`q(W)`. The weights stay 1-bit (the converter packs
    them and stores :math:`\alpha` beside them).

    Parameters
    ----------
    clip_value : float, default 1.0

    References
    ----------
    Liu et al., Bi-Real Net, ECCV 2018, https://arxiv.org/abs/1808.00278
    """
    precision = 1

    def __init__(self, clip_value=1.0):
        self.clip_value = float(clip_value)

    def __call__(self, x):
        return magnitude_aware_sign(x, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}

    def op_spec(self, role):
        self._only(role, "kernel", "the scale is a per-output-channel statistic of weights")
        return OpSpec(bits=1, clip=self.clip_value, scaling=True)


# ---------------------------------------------------------------------------------------------
def _clip01(F, x):
    return F.clip(x, 0.0, 1.0)


def dorefa_quantizer(x, k_bit=2, mode="activations", clip_value=None):
    r"""DoReFa-Net's k-bit quantizer.

    ``mode='activations'`` (values in [0, 1]):

    .. math::
        q(x) = \frac{\mathrm{rint}\left((2^k - 1)\,\mathrm{clip}(x, 0, 1)\right)}{2^k - 1}
        \qquad
        \frac{\partial q(x)}{\partial x} = 1_{0 \leq x \leq 1}

    (with ``clip_value=c`` instead: :math:`1_{|x| \leq c}`, BMXNet's original ``act_bit``
    behaviour).

    ``mode='weights'`` (values in [-1, 1], the max over the whole tensor):

    .. math::
        q(w) = 2\,\frac{\mathrm{rint}\left((2^k - 1)\left(\frac{\tanh w}{2\max|\tanh w|} +
        \frac12\right)\right)}{2^k - 1} - 1
        \qquad
        \frac{\partial q(w)}{\partial w} = 1_{|w| \leq \texttt{clip\_value}}

    The weight gradient is the operators' clipped straight-through estimator; it does not
    differentiate through tanh and the max as the paper's autodiff implementation does.

    Parameters
    ----------
    x : NDArray or Symbol
    k_bit : int, default 2
        Bits, 2..31.
    mode : {'activations', 'weights'}
    clip_value : float or None
        Activations: None for the paper's gradient on [0, 1]. Weights: default 1.0.

    References
    ----------
    Zhou et al., DoReFa-Net, https://arxiv.org/abs/1606.06160
    """
    return DoReFa(k_bit, mode, clip_value)(x)


@register_alias("dorefa_quantizer", "dorefa")
class DoReFa(Quantizer):
    r"""DoReFa-Net's k-bit quantizer (see :func:`dorefa_quantizer`).

    ``mode='activations'``:

    .. math::
        q(x) = \frac{\mathrm{rint}\left((2^k - 1)\,\mathrm{clip}(x, 0, 1)\right)}{2^k - 1}
        \qquad \frac{\partial q(x)}{\partial x} = 1_{0 \leq x \leq 1}

    maps to a ``clip(x, 0, 1)`` node followed by ``act_bit=k`` (or, with ``clip_value=c``, to
    ``act_bit=k, grad_cancel=c`` alone, whose gradient is :math:`1_{|x| \leq c}`).

    ``mode='weights'``:

    .. math::
        q(w) = 2\,\frac{\mathrm{rint}\left((2^k - 1)\left(\frac{\tanh w}{2\max|\tanh w|} +
        \frac12\right)\right)}{2^k - 1} - 1
        \qquad \frac{\partial q(w)}{\partial w} = 1_{|w| \leq \texttt{clip\_value}}

    maps to ``weight_bit=k, grad_cancel=clip_value``.

    Parameters
    ----------
    k_bit : int, default 2
        2..31 (use ``ste_sign`` for 1 bit, None for 32).
    mode : {'activations', 'weights'}, default 'activations'
    clip_value : float or None, default None
        See above; for weights None means 1.0.

    References
    ----------
    Zhou et al., DoReFa-Net, https://arxiv.org/abs/1606.06160
    """

    def __init__(self, k_bit=2, mode="activations", clip_value=None):
        if not isinstance(k_bit, int) or not 2 <= k_bit <= 31:
            raise ValueError("DoReFa k_bit must be an integer in [2, 31], got %r (use "
                             "'ste_sign' for 1 bit and None for full precision)" % (k_bit,))
        if mode not in ("activations", "weights"):
            raise ValueError("DoReFa mode must be 'activations' or 'weights', got %r" % (mode,))
        self.k_bit = k_bit
        self.mode = mode
        if mode == "weights" and clip_value is None:
            clip_value = 1.0
        self.clip_value = None if clip_value is None else float(clip_value)

    @property
    def precision(self):
        return self.k_bit

    def __call__(self, x):
        F = _F(x)
        if self.mode == "activations":
            if self.clip_value is None:
                return F.QActivation(_clip01(F, x), act_bit=self.k_bit, grad_cancel=1.0)
            return F.QActivation(x, act_bit=self.k_bit, grad_cancel=self.clip_value)
        # weights: same values as the operator, clipped straight-through gradient
        levels = float(2 ** self.k_bit - 1)
        xc = F.stop_gradient(x)  # no gradient through tanh / max (the operator's STE)
        t = F.tanh(xc)
        m = F.max(F.abs(t))
        m = m + (m <= 0)  # an all-zero tensor divides by 1
        v = F.broadcast_div(t, 2 * m) + 0.5
        q = F.stop_gradient(2 * (F.round(levels * v) / levels) - 1)
        mask = F.stop_gradient(F.abs(xc) <= self.clip_value)
        return q + (x - xc) * mask

    def get_config(self):
        return {"k_bit": self.k_bit, "mode": self.mode, "clip_value": self.clip_value}

    def op_spec(self, role):
        want = "input" if self.mode == "activations" else "kernel"
        self._only(role, want, "mode=%r; use DoReFa(mode=%r) for %ss"
                   % (self.mode, "weights" if role == "kernel" else "activations", role))
        if self.mode == "weights":
            return OpSpec(bits=self.k_bit, clip=self.clip_value)
        if self.clip_value is None:
            return OpSpec(bits=self.k_bit, min_clip=1.0, pre=_clip01)
        return OpSpec(bits=self.k_bit, clip=self.clip_value)


# Old / alternative names stay available.
DoReFaQuantizer = DoReFa
MagnitudeAwareSignQuantizer = MagnitudeAwareSign


# ---------------------------------------------------------------------------------------------
def serialize(quantizer):
    """The dict form of a built-in quantizer: {'class_name': ..., 'config': {...}}."""
    if quantizer is None:
        return None
    if not isinstance(quantizer, Quantizer):
        raise ValueError("only built-in quantizers can be serialized, got %r" % (quantizer,))
    return {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}


def _valid_names():
    return ", ".join(sorted(n for n in _ALIASES if n[0].islower()))


def get(identifier):
    """Resolves a quantizer identifier.

    Parameters
    ----------
    identifier : None, str, dict, Quantizer or callable
        None (no quantization); a registered name such as ``'ste_sign'`` or ``'SteSign'``
        (default configuration); a dict ``{'class_name': 'SteSign', 'config': {...}}`` (or the
        short form ``{'class_name': 'ste_sign', 'clip_value': 0.5}``); a quantizer object; any
        other callable (used as is, see the module docstring).

    Returns
    -------
    Quantizer, callable or None

    Raises
    ------
    ValueError
        For anything else, naming the identifier and the registered names.
    """
    if identifier is None or isinstance(identifier, Quantizer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier)
        if cls is None:
            raise ValueError("unknown quantizer identifier %r; registered names are: %s"
                             % (identifier, _valid_names()))
        return cls()
    if isinstance(identifier, dict):
        d = dict(identifier)
        name = d.pop("class_name", None) or d.pop("name", None)
        cls = _ALIASES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise ValueError("could not interpret quantizer identifier %r: 'class_name' must "
                             "be one of %s" % (identifier, _valid_names()))
        config = d.pop("config", {})
        config.update(d)
        try:
            return cls(**config)
        except TypeError as e:
            raise ValueError("could not interpret quantizer identifier %r: %s"
                             % (identifier, e)) from None
    if callable(identifier):
        return identifier
    raise ValueError("could not interpret quantizer identifier %r: expected None, a name (%s), "
                     "a dict or a callable" % (identifier, _valid_names()))
