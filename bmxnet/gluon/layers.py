"""Quantized Gluon layers.

``QConv2D`` and ``QDense`` take exactly the arguments of ``gluon.nn.Conv2D`` and
``gluon.nn.Dense`` plus the quantization arguments below, and run the C++ operators
``QConvolution`` / ``QFullyConnected``; ``QActivation`` wraps the ``QActivation`` operator.
After ``hybridize()`` and ``export()`` the json holds those operators, so
``gluon.SymbolBlock.imports`` (after ``import bmxnet``) reloads the network.

Quantizers (preferred)
----------------------
input_quantizer, kernel_quantizer : str, dict, Quantizer, callable or None
    Larq-style quantizers from :mod:`bmxnet.quantizers` (``'ste_sign'``, ``'approx_sign'``,
    ``'swish_sign'``, ``'magnitude_aware_sign'``, ``DoReFa(k, mode)``...). ``None`` means full
    precision: with both set to None (and no scaling) a layer computes exactly what its float
    parent computes. Built-in quantizers become operator parameters (1-bit layers run on the
    packed xnor kernels); a plain callable is applied with MXNet operators in front of a 32-bit
    operator. Left out, each one is derived from the legacy arguments below, whose defaults
    give ``ste_sign`` for both.

Legacy quantization arguments (BMXNet's)
----------------------------------------
act_bit : int, default 1
    Bits of the layer's input: 1 = sign (sign(0) = +1), 2..31 = DoReFa ``rint((2^k-1) clip(x,0,1))
    / (2^k-1)``, 32 = full precision.
weight_bit : int, default 1
    Bits of the weights: 1 = sign, 2..31 = DoReFa weights, 32 = full precision. The latent float
    weights are what the optimizer updates; the operator quantizes them on every forward pass.
scaling : bool or {'none', 'forward'}, default False
    XNOR-Net scaling: each output channel is multiplied by the mean |W| of that channel's latent
    weights (a constant for the backward pass). ``kernel_quantizer='magnitude_aware_sign'`` turns
    it on too.
grad_cancel : float, default 1.0
    Straight-through estimator: gradients pass where |x| <= grad_cancel (for inputs and latent
    weights) and are zero elsewhere.
act_grad : {'ste', 'approx_sign', 'swish_sign'}, default 'ste'
    Pseudo-gradient of the 1-bit input quantizer (forward is sign in every case): the clipped
    straight-through estimator, Bi-Real Net's ``2 - 2|x|`` on [-1, 1], or SignSwish with beta=5.
pad_value : {0, 1, -1}, default 0 (QConv2D only)
    Value of the border for 1-bit inputs: 0 is exact zero padding as in nn.Conv2D.

Metadata
--------
Each Q-layer has ``input_quantizer``, ``kernel_quantizer``, ``input_precision`` and
``kernel_precision``, and sets ``weight.precision`` (bits of the quantized weights, 32 when not
quantized) on its weight parameter; :class:`bmxnet.optimizer.Bop` and :func:`bmxnet.summary`
read it. Parameters without the attribute count as 32-bit.

Gradient accumulation
---------------------
The custom operators ignore ``grad_req='add'`` (MXNet hands them the ``.grad`` buffer and never
says to add). When a Q-layer's weight has ``grad_req='add'`` at the time the forward pass is
traced, the layer routes weight and bias through an ``identity`` node so that MXNet accumulates
(set grad_req before the first forward of a hybridized net, or hybridize again).
"""
from mxnet.gluon import HybridBlock, nn

from .. import quantizers as Q

__all__ = ["QActivation", "QConv2D", "QDense", "quant_layers"]


class _Unset:
    def __repr__(self):
        return "<unset>"


_UNSET = _Unset()

ACT_GRADS = ("ste", "approx_sign", "swish_sign")


def _scaling_mode(scaling):
    if scaling in (False, None, "none"):
        return "none"
    if scaling in (True, "forward"):
        return "forward"
    raise ValueError("scaling must be False/True or 'none'/'forward', got %r" % (scaling,))


def _check_legacy(act_bit, weight_bit, act_grad):
    for name, bits in (("act_bit", act_bit), ("weight_bit", weight_bit)):
        if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 32:
            raise ValueError("%s must be an integer in [1, 32], got %r" % (name, bits))
    if act_grad not in ACT_GRADS:
        raise ValueError("act_grad must be one of %s, got %r" % (ACT_GRADS, act_grad))
    if act_grad != "ste" and act_bit != 1:
        raise ValueError("act_grad=%r is the gradient of sign and needs act_bit=1, got act_bit=%d"
                         % (act_grad, act_bit))


def _legacy_input(act_bit, grad_cancel, act_grad):
    if act_bit == 32:
        return None
    if act_bit == 1:
        return {"ste": Q.SteSign(grad_cancel), "approx_sign": Q.ApproxSign(),
                "swish_sign": Q.SwishSign()}[act_grad]
    return Q.DoReFa(act_bit, "activations", clip_value=grad_cancel)


def _legacy_kernel(weight_bit, grad_cancel):
    if weight_bit == 32:
        return None
    if weight_bit == 1:
        return Q.SteSign(grad_cancel)
    return Q.DoReFa(weight_bit, "weights", clip_value=grad_cancel)


def _precision(q):
    if q is None:
        return 32
    return int(getattr(q, "precision", 32))


def _spec(q, role):
    """OpSpec of a quantizer (custom callables run in front of a 32-bit operator)."""
    if q is None:
        return Q.OpSpec()
    if isinstance(q, Q.Quantizer):
        return q.op_spec(role)
    return Q.OpSpec(pre=lambda F, x, _q=q: _q(x))


def _input_op_params(spec):
    p = {"act_bit": spec.bits, "act_grad": spec.act_grad}
    if spec.act_grad == "swish_sign":
        p["swish_beta"] = spec.swish_beta
    return p


class _Plan:
    """How a layer's quantizers become one operator call plus optional nodes in front of it.

    ``op``: the quantization attributes of the operator; ``pre_input`` / ``pre_weight``:
    functions (F, x) -> x or None.
    """

    def __init__(self, input_quantizer, kernel_quantizer, scaling, layer):
        si, sk = _spec(input_quantizer, "input"), _spec(kernel_quantizer, "kernel")
        ci = si.clip if si.bits < 32 and si.act_grad == "ste" else None
        ck = sk.clip if sk.bits < 32 else None
        pres = [si.pre] if si.pre is not None else []
        op = _input_op_params(si)
        if ck is None:
            gc = ci if ci is not None else max(si.min_clip or 1.0, 1.0)
        elif (ci is None or ci == ck) and (si.min_clip is None or ck >= si.min_clip):
            gc = ck
        else:
            # One grad_cancel for both sides: quantize the input in its own QActivation node and
            # let the operator pass the already quantized values (|v| <= 1) straight through.
            if ck < 1.0:
                raise ValueError(
                    "%s: the input quantizer %r and the kernel quantizer %r need different "
                    "gradient clip values, and the operator has one grad_cancel; this works only "
                    "when the kernel's clip_value is >= 1 (got %g)"
                    % (layer, input_quantizer, kernel_quantizer, ck))
            act = dict(op, grad_cancel=ci if ci is not None else 1.0)
            pres.append(lambda F, x, _a=act: F.QActivation(x, **_a))
            op = {"act_bit": si.bits, "act_grad": "ste"}
            gc = ck
        self.op = dict(op, weight_bit=sk.bits, grad_cancel=float(gc),
                       scaling_mode="forward" if (sk.scaling or _scaling_mode(scaling) ==
                                                  "forward") else "none")
        self.pre_input = _chain(pres)
        self.pre_weight = sk.pre


def _chain(fns):
    if not fns:
        return None

    def run(F, x):
        for f in fns:
            x = f(F, x)
        return x
    return run


class _QuantizerMixin:
    """Resolves quantizer arguments against the legacy ones and records the metadata."""

    def _setup_quant(self, input_quantizer, kernel_quantizer, act_bit, weight_bit, scaling,
                     grad_cancel, act_grad):
        _check_legacy(act_bit, weight_bit, act_grad)
        _scaling_mode(scaling)
        grad_cancel = float(grad_cancel)
        if grad_cancel < 0:
            raise ValueError("grad_cancel must be >= 0, got %r" % (grad_cancel,))
        name = type(self).__name__
        if input_quantizer is not _UNSET and (act_bit != 1 or act_grad != "ste"):
            raise ValueError("%s: give either input_quantizer or act_bit/act_grad, not both"
                             % name)
        if kernel_quantizer is not _UNSET and weight_bit != 1:
            raise ValueError("%s: give either kernel_quantizer or weight_bit, not both" % name)
        if input_quantizer is not _UNSET and kernel_quantizer is not _UNSET and \
                grad_cancel != 1.0:
            raise ValueError("%s: grad_cancel belongs to the legacy arguments; with both "
                             "quantizers given set clip_value on the quantizers" % name)
        iq = _legacy_input(act_bit, grad_cancel, act_grad) if input_quantizer is _UNSET \
            else Q.get(input_quantizer)
        kq = _legacy_kernel(weight_bit, grad_cancel) if kernel_quantizer is _UNSET \
            else Q.get(kernel_quantizer)
        self.input_quantizer, self.kernel_quantizer = iq, kq
        self.input_precision, self.kernel_precision = _precision(iq), _precision(kq)
        self._plan = _Plan(iq, kq, scaling, name)
        self.weight.precision = self.kernel_precision
        if getattr(self, "bias", None) is not None:
            self.bias.precision = 32
        return self._plan.op

    def __repr__(self):
        base = super().__repr__()
        return "%s, input_quantizer=%r, kernel_quantizer=%r)" % (
            base[:-1], self.input_quantizer, self.kernel_quantizer)

    @property
    def quant_kwargs(self):
        """The quantization attributes given to the operator."""
        return dict(self._plan.op)

    def _prepare(self, F, x, weight, bias):
        if self._plan.pre_input is not None:
            x = self._plan.pre_input(F, x)
        if self._plan.pre_weight is not None:
            weight = self._plan.pre_weight(F, weight)
        if self.weight.grad_req == "add":  # custom ops ignore 'add' (LIBAPI_NOTES §1)
            weight = F.identity(weight)
            if bias is not None:
                bias = F.identity(bias)
        return x, weight, bias


class QConv2D(_QuantizerMixin, nn.Conv2D):
    """2-D convolution with quantized inputs and weights (``QConvolution``).

    Takes ``nn.Conv2D``'s arguments (channels, kernel_size, strides, padding, dilation, groups,
    layout, activation, use_bias, weight_initializer, bias_initializer, in_channels) plus the
    quantization arguments described in :mod:`bmxnet.gluon.layers`. With both quantizers None
    (act_bit = weight_bit = 32) and no scaling it computes exactly what ``nn.Conv2D`` computes.

    Examples
    --------
    >>> layer = bmxnet.gluon.QConv2D(64, 3, padding=1, act_bit=1, weight_bit=1)
    >>> bireal = bmxnet.gluon.QConv2D(64, 3, padding=1, input_quantizer="approx_sign",
    ...                               kernel_quantizer="magnitude_aware_sign")
    """

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1, layout="NCHW", activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer="zeros", in_channels=0, act_bit=1, weight_bit=1, scaling=False,
                 grad_cancel=1.0, act_grad="ste", pad_value=0, input_quantizer=_UNSET,
                 kernel_quantizer=_UNSET, **kwargs):
        if layout != "NCHW":
            raise ValueError("QConv2D supports layout='NCHW' only, got %r" % (layout,))
        if pad_value not in (0, 1, -1):
            raise ValueError("pad_value must be 0, 1 or -1, got %r" % (pad_value,))
        super().__init__(channels, kernel_size, strides=strides, padding=padding,
                         dilation=dilation, groups=groups, layout=layout, activation=activation,
                         use_bias=use_bias, weight_initializer=weight_initializer,
                         bias_initializer=bias_initializer, in_channels=in_channels, **kwargs)
        self._op_name = "QConvolution"
        op = self._setup_quant(input_quantizer, kernel_quantizer, act_bit, weight_bit, scaling,
                               grad_cancel, act_grad)
        if pad_value != 0 and op["act_bit"] != 1:
            raise ValueError("pad_value=%r needs a 1-bit input quantizer" % (pad_value,))
        self._kwargs.update(op)
        self._kwargs["pad_value"] = pad_value

    def hybrid_forward(self, F, x, weight, bias=None):
        x, weight, bias = self._prepare(F, x, weight, bias)
        args = (x, weight) if bias is None else (x, weight, bias)
        out = F.QConvolution(*args, name="fwd", **self._kwargs)
        return self.act(out) if self.act is not None else out

    def _alias(self):
        return "qconv"


class QDense(_QuantizerMixin, nn.Dense):
    """Fully-connected layer with quantized inputs and weights (``QFullyConnected``).

    Takes ``nn.Dense``'s arguments (units, activation, use_bias, flatten, dtype,
    weight_initializer, bias_initializer, in_units) plus the quantization arguments described in
    :mod:`bmxnet.gluon.layers`.

    Examples
    --------
    >>> layer = bmxnet.gluon.QDense(1000, act_bit=1, weight_bit=1)
    >>> layer = bmxnet.gluon.QDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0, act_bit=1,
                 weight_bit=1, scaling=False, grad_cancel=1.0, act_grad="ste",
                 input_quantizer=_UNSET, kernel_quantizer=_UNSET, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, flatten=flatten,
                         dtype=dtype, weight_initializer=weight_initializer,
                         bias_initializer=bias_initializer, in_units=in_units, **kwargs)
        self._qkwargs = self._setup_quant(input_quantizer, kernel_quantizer, act_bit, weight_bit,
                                          scaling, grad_cancel, act_grad)

    def hybrid_forward(self, F, x, weight, bias=None):
        x, weight, bias = self._prepare(F, x, weight, bias)
        args = (x, weight) if bias is None else (x, weight, bias)
        out = F.QFullyConnected(*args, no_bias=bias is None, num_hidden=self._units,
                                flatten=self._flatten, name="fwd", **self._qkwargs)
        return self.act(out) if self.act is not None else out


class QActivation(HybridBlock):
    """Quantizes its input (the ``QActivation`` operator).

    Parameters
    ----------
    act_bit : int, default 1
        1 = sign, 2..31 = DoReFa levels in [0, 1], 32 = identity. A quantizer (str, dict or
        object) may be given here instead, as in ``QActivation('approx_sign')``.
    grad_cancel : float, default 1.0
        Straight-through estimator: the gradient passes where |x| <= grad_cancel.
    backward_only : bool, default False
        Identity in the forward pass, straight-through estimator in the backward pass (the
        following Q-layer quantizes its input itself).
    act_grad : {'ste', 'approx_sign', 'swish_sign'}, default 'ste'
        Pseudo-gradient of sign for act_bit = 1 (see :mod:`bmxnet.gluon.layers`).
    quantizer : str, dict, Quantizer, callable or None
        Replaces act_bit / grad_cancel / act_grad (see :mod:`bmxnet.quantizers`); None is the
        identity.
    """

    def __init__(self, act_bit=1, grad_cancel=1.0, backward_only=False, act_grad="ste",
                 quantizer=_UNSET, **kwargs):
        super().__init__(**kwargs)
        if quantizer is _UNSET and not isinstance(act_bit, int):
            quantizer, act_bit = act_bit, 1
        _check_legacy(act_bit, 32, act_grad)
        if float(grad_cancel) < 0:
            raise ValueError("grad_cancel must be >= 0, got %r" % (grad_cancel,))
        if quantizer is _UNSET:
            q = _legacy_input(act_bit, float(grad_cancel), act_grad)
        else:
            if act_bit != 1 or act_grad != "ste" or float(grad_cancel) != 1.0:
                raise ValueError("QActivation: give either quantizer or act_bit/grad_cancel/"
                                 "act_grad, not both")
            q = Q.get(quantizer)
        self.quantizer = q
        self.precision = _precision(q)
        spec = _spec(q, "input")
        self._pre = spec.pre
        self._kwargs = _input_op_params(spec)
        if quantizer is _UNSET:
            gc = float(grad_cancel)
        else:
            gc = spec.clip if spec.clip is not None else 1.0
        self._kwargs["grad_cancel"] = float(gc)
        self._kwargs["backward_only"] = bool(backward_only)
        self._custom = q is not None and not isinstance(q, Q.Quantizer)

    def hybrid_forward(self, F, x):
        if self._pre is not None:
            x = self._pre(F, x)
        if self._custom and not self._kwargs["backward_only"]:
            return x
        return F.QActivation(x, name="fwd", **self._kwargs)

    def __repr__(self):
        return "{}(quantizer={!r}, backward_only={})".format(
            self.__class__.__name__, self.quantizer, self._kwargs["backward_only"])


def quant_layers(block):
    """All QConv2D / QDense / QActivation blocks under ``block`` (depth first)."""
    out = []

    def visit(b):
        if isinstance(b, (QConv2D, QDense, QActivation)):
            out.append(b)
        for child in b._children.values():
            visit(child)
    visit(block)
    return out
