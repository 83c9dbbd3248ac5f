r"""Bop, the binary optimizer of Helwegen et al. (2019).

For a binary weight :math:`w \in \{-1, +1\}` with gradient :math:`g_t`, Bop keeps an exponential
moving average :math:`m` of the gradient and flips the weight when the average is strong enough
and points the same way as the weight (following it would push the weight across 0):

.. math::
    m_t = (1 - \gamma)\, m_{t-1} + \gamma\, g_t
    \qquad
    w_t = \begin{cases} -w_{t-1} & |m_t| > \tau \text{ and } \mathrm{sign}(m_t) =
    \mathrm{sign}(w_{t-1}) \\ w_{t-1} & \text{otherwise} \end{cases}

i.e. :math:`w_t = -w_{t-1}` where :math:`w_{t-1} m_t > \tau`. :math:`\gamma` is the adaptivity
rate and :math:`\tau` the threshold. Learning rate, weight decay and gradient clipping of the
binary weights do not exist; ``rescale_grad`` (the 1/batch_size of gluon.Trainer) does apply.

Latent weights that are not ±1
------------------------------
Bop stores the binary weights themselves: it writes :math:`\pm 1` into the weight array. A weight
array initialised with real values (Xavier...) is projected onto :math:`\mathrm{sign}(w)` (with
sign(0) = +1, like the operators) by the first update, which then flips as above:
:math:`w_t = -\mathrm{sign}(w_{t-1})` where :math:`\mathrm{sign}(w_{t-1})\, m_t > \tau`, else
:math:`\mathrm{sign}(w_{t-1})`. The forward pass before that first update sees the same signs, so
nothing changes for layers without scaling; for ``magnitude_aware_sign`` layers the per-channel
scale becomes mean|±1| = 1 (the following BatchNorm absorbs it).

References
----------
Helwegen et al., Latent Weights Do Not Exist: Rethinking Binarized Neural Network Optimization,
NeurIPS 2019, https://arxiv.org/abs/1906.02107
"""
import numpy as np
# Submodules, not mx.nd: a kvstore server unpickles this optimizer while `import mxnet` is still
# running, before mxnet's `nd` alias exists (see bmxnet/__init__.py).
from mxnet import ndarray as nd
from mxnet.optimizer import Optimizer

from .case import CaseOptimizer, create, register_as

__all__ = ["Bop", "BopBinary", "HPARAM_SETS", "is_binary"]


def is_binary(param):
    """True for parameters whose quantized value is 1-bit (``param.precision == 1``).

    QConv2D / QDense set ``weight.precision`` from their kernel quantizer; any parameter may be
    marked by hand (``param.precision = 1``).
    """
    return param is not None and getattr(param, "precision", 32) == 1


@register_as("bop_binary")
class BopBinary(Optimizer):
    r"""The Bop flip rule alone (every parameter it gets is treated as binary).

    .. math::
        m_t = (1 - \gamma)\, m_{t-1} + \gamma\, g_t, \qquad
        w_t = \begin{cases} -\mathrm{sign}(w_{t-1}) & \mathrm{sign}(w_{t-1})\, m_t > \tau
        \\ \mathrm{sign}(w_{t-1}) & \text{otherwise} \end{cases}

    Parameters
    ----------
    threshold : float, default 1e-8
        :math:`\tau`.
    gamma : float, default 1e-4
        :math:`\gamma`, the adaptivity rate.
    gamma_decay : float, default 1.0
        :math:`\gamma` is multiplied by this every ``gamma_decay_steps`` updates (staircase).
    gamma_decay_steps : int or None
        None: constant :math:`\gamma`.
    **kwargs
        ``rescale_grad`` and the other arguments of mx.optimizer.Optimizer (learning rate and
        weight decay are ignored).
    """

    def __init__(self, threshold=1e-8, gamma=1e-4, gamma_decay=1.0, gamma_decay_steps=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0 < gamma <= 1:
            raise ValueError("Bop gamma must be in (0, 1], got %r" % (gamma,))
        if threshold < 0:
            raise ValueError("Bop threshold must be >= 0, got %r" % (threshold,))
        if gamma_decay_steps is not None and int(gamma_decay_steps) < 1:
            raise ValueError("gamma_decay_steps must be >= 1 or None, got %r"
                             % (gamma_decay_steps,))
        self.threshold = float(threshold)
        self.gamma = float(gamma)
        self.gamma_decay = float(gamma_decay)
        self.gamma_decay_steps = None if gamma_decay_steps is None else int(gamma_decay_steps)

    def gamma_at(self, step):
        """:math:`\\gamma` for the update number ``step`` (0 for the first update)."""
        if not self.gamma_decay_steps:
            return self.gamma
        return self.gamma * self.gamma_decay ** (step // self.gamma_decay_steps)

    def create_state(self, index, weight):
        return nd.zeros(weight.shape, weight.context, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        gamma = self.gamma_at(self._index_update_count[index] - 1)
        g = grad * self.rescale_grad
        if self.clip_gradient is not None:
            g = nd.clip(g, -self.clip_gradient, self.clip_gradient)
        m = state
        m[:] = (1.0 - gamma) * m + gamma * g
        s = (weight >= 0) * 2.0 - 1.0  # sign with sign(0) = +1
        flip = (s * m) > self.threshold
        weight[:] = s * (1.0 - 2.0 * flip)

    def update_multi_precision(self, index, weight, grad, state):
        if np.dtype(weight.dtype) != np.float32:
            raise ValueError("Bop updates float32 weights only, got %s" % np.dtype(weight.dtype))
        self.update(index, weight, grad, state)


@register_as("bop")
class Bop(CaseOptimizer):
    r"""Bop for binary weights, a float optimizer (Adam) for everything else.

    Binary weights are the parameters with ``precision == 1`` (see :func:`is_binary`); they get
    :class:`BopBinary`'s flip rule

    .. math::
        m_t = (1 - \gamma)\, m_{t-1} + \gamma\, g_t, \qquad
        w_t = -w_{t-1} \text{ where } |m_t| > \tau \text{ and } \mathrm{sign}(m_t) =
        \mathrm{sign}(w_{t-1}).

    Parameters
    ----------
    threshold : float, default 1e-8
        :math:`\tau`.
    gamma : float, default 1e-4
        :math:`\gamma`.
    gamma_decay, gamma_decay_steps :
        Staircase decay of :math:`\gamma` (see :class:`BopBinary`).
    fp_optimizer : str or Optimizer, default 'adam'
        The optimizer of the real-valued parameters (BatchNorm, float first/last layers, biases).
    fp_optimizer_params : dict, optional
        Extra arguments for ``fp_optimizer`` when it is a name.
    **kwargs
        The rest (``learning_rate``, ``wd``, ``beta1``, ``lr_scheduler``, ``clip_gradient`` ...)
        go to the float optimizer as well; ``rescale_grad`` / ``param_dict`` are shared.

    Examples
    --------
    >>> trainer = gluon.Trainer(net.collect_params(), 'bop',
    ...                         {'threshold': 1e-8, 'gamma': 1e-4, 'learning_rate': 0.01})
    """

    _SHARED = ("rescale_grad", "param_dict", "begin_num_update", "param_idx2name", "sym",
               "multi_precision")

    def __init__(self, threshold=1e-8, gamma=1e-4, gamma_decay=1.0, gamma_decay_steps=None,
                 fp_optimizer="adam", fp_optimizer_params=None, **kwargs):
        shared = {k: kwargs.pop(k) for k in self._SHARED if k in kwargs}
        fp_params = dict(fp_optimizer_params or {})
        fp_params.update(kwargs)
        fp = create(fp_optimizer, **fp_params)
        binary = BopBinary(threshold=threshold, gamma=gamma, gamma_decay=gamma_decay,
                           gamma_decay_steps=gamma_decay_steps)
        super().__init__((is_binary, binary), default_optimizer=fp, **shared)
        self.binary_optimizer = binary
        self.fp_optimizer = fp

    def __repr__(self):
        b = self.binary_optimizer
        return "Bop(threshold=%g, gamma=%g, fp_optimizer=%s)" % (b.threshold, b.gamma,
                                                                 type(self.fp_optimizer).__name__)


# Hyperparameters of the Bop paper's experiments (plumerai/rethinking-bnn-optimization), by name.
# Keys: Bop arguments plus 'batch_size' and the gamma decay period in epochs
# ('gamma_decay_epochs', converted to gamma_decay_steps by the trainer, which knows the epoch
# length).
HPARAM_SETS = {
    # Section 5.1 (hyperparameter analysis, BinaryNet on CIFAR-10): the default point.
    "bop": {"threshold": 1e-6, "gamma": 1e-3, "learning_rate": 0.01, "batch_size": 100},
    # Section 5.2 (BinaryNet on CIFAR-10, 91.3%): gamma decays by 10x every 100 epochs.
    "bop_cifar10": {"threshold": 1e-8, "gamma": 1e-4, "gamma_decay": 0.1,
                    "gamma_decay_epochs": 100, "learning_rate": 0.01, "batch_size": 50},
}
