#!/usr/bin/env python3
"""Binary networks on CIFAR-10 (python batches ``data_batch_1..5`` / ``test_batch`` in DATA_DIR).

Presets (any ``bmxnet train`` option after them overrides):

=========== =========================== ===============================================
preset      model                       training
=========== =========================== ===============================================
resnet18    binary_resnet18_cifar       Adam 1e-3, cosine decay (BMXNet's binary ResNet)
bireal      birealnet18_cifar           Bi-Real recipe: Adam 5e-3, linear decay, two-step
binarynet   binarynet                   Bop, the Bop paper's section 5.2 hyperparameters
=========== =========================== ===============================================

    python smd_hpi_examples/cifar10/train_cifar10.py bireal --data-dir ~/data/cifar10 \\
        --epochs 100 --out-dir runs/cifar_bireal
    python smd_hpi_examples/cifar10/train_cifar10.py binarynet --data-dir ... --print-command

Checkpoints (``PREFIX-symbol.json`` / ``PREFIX-NNNN.params``) go to ``--out-dir`` and are what
``model_converter`` takes.
"""
import os
import sys

try:
    import bmxnet  # noqa: F401
except ImportError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from bmxnet.cli import run_preset  # noqa: E402

PRESETS = {
    "resnet18": ["binary_resnet18_cifar", "--optimizer", "adam", "--epochs", "200",
                 "--batch-size", "128", "--hparams", "learning_rate=1e-3,lr_schedule=cosine"],
    "bireal": ["birealnet18_cifar", "--recipe", "bireal", "--epochs", "200", "--batch-size",
               "128"],
    "binarynet": ["binarynet", "--optimizer", "bop", "--hparams-set", "bop_cifar10",
                  "--epochs", "500"],
}

if __name__ == "__main__":
    sys.exit(run_preset(PRESETS, "cifar10", __doc__))
