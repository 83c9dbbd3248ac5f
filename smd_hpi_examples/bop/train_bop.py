#!/usr/bin/env python3
"""Bop, the binary optimizer (Helwegen et al., NeurIPS 2019, https://arxiv.org/abs/1906.02107).

Bop keeps a moving average m of each binary weight's gradient and flips the weight when |m|
passes a threshold tau with the weight's sign; the real-valued parameters (BatchNorm, the
classifier...) go to Adam. In bmxnet it is the optimizer ``'bop'`` of ``gluon.Trainer``::

    import bmxnet.optimizer
    trainer = gluon.Trainer(net.collect_params(), 'bop',
                            {'threshold': 1e-8, 'gamma': 1e-4, 'learning_rate': 0.01})

Presets (any ``bmxnet train`` option after them overrides):

=============== ========== ========== ===================================================
preset          dataset    model      hyperparameters
=============== ========== ========== ===================================================
digits          digits     lenet      tau 1e-8, gamma 1e-4, Adam 1e-3 (runs in ~20 s)
cifar10         cifar10    binarynet  section 5.2: tau 1e-8, gamma 1e-4 (x0.1 every 100
                                      epochs), Adam 0.01, batch 50
cifar10_ablate  cifar10    binarynet  section 5.1's default point: tau 1e-6, gamma 1e-3
=============== ========== ========== ===================================================

    python smd_hpi_examples/bop/train_bop.py digits
    python smd_hpi_examples/bop/train_bop.py cifar10 --data-dir ~/data/cifar10
"""
import os
import sys

try:
    import bmxnet  # noqa: F401
except ImportError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from bmxnet.cli import run_preset  # noqa: E402

DATASETS = {"digits": "digits", "cifar10": "cifar10", "cifar10_ablate": "cifar10"}
PRESETS = {
    "digits": ["lenet", "--optimizer", "bop", "--epochs", "15", "--hparams",
               "threshold=1e-8,gamma=1e-4,learning_rate=1e-3"],
    "cifar10": ["binarynet", "--optimizer", "bop", "--hparams-set", "bop_cifar10",
                "--epochs", "500"],
    "cifar10_ablate": ["binarynet", "--optimizer", "bop", "--hparams-set", "bop",
                       "--epochs", "100"],
}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    preset = next((a for a in argv if not a.startswith("-")), "digits")
    return run_preset(PRESETS, DATASETS.get(preset, "digits"), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
