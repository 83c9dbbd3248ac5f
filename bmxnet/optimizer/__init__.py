"""Optimizers for binary networks.

Binary networks mix two kinds of parameters. The weights of 1-bit layers are used only through
their sign, so an update that does not change a sign does nothing; everything else (BatchNorm,
the float first and last layers, biases, learnable thresholds) is an ordinary real value. The
classic recipe keeps a *latent* float copy of each binary weight and trains it with Adam or SGD
through a straight-through estimator; Bop (Helwegen et al., 2019) treats binary weights as what
they are and only decides when to *flip* one, while a second optimizer trains the real values.

* :class:`CaseOptimizer` sends each parameter to the first optimizer whose predicate accepts it
  (and the rest to a default optimizer), so one ``gluon.Trainer`` trains both kinds;
* :class:`Bop` is that combination ready-made and registered as ``'bop'``::

      trainer = gluon.Trainer(net.collect_params(), 'bop',
                              {'threshold': 1e-8, 'gamma': 1e-4, 'learning_rate': 1e-3})

  binary weights (``param.precision == 1``, set by QConv2D/QDense) get the flip rule, the rest
  Adam (``fp_optimizer``) with the remaining keyword arguments;
* :class:`BopBinary` is the bare flip rule, for use inside a CaseOptimizer;
* :data:`HPARAM_SETS` holds the hyperparameters of the Bop paper's experiments by name.

Importing :mod:`bmxnet.optimizer` registers ``'bop'``, ``'bop_binary'`` and ``'case'`` with
``mx.optimizer``.
"""
from .bop import Bop, BopBinary, HPARAM_SETS, is_binary
from .case import CaseOptimizer

__all__ = ["Bop", "BopBinary", "CaseOptimizer", "HPARAM_SETS", "is_binary"]
