#!/usr/bin/env python3
"""Bi-Real Net (Liu et al., ECCV 2018, https://arxiv.org/abs/1808.00278) with its training recipe.

The network: one binary 3x3 convolution per shortcut (16 in Bi-Real Net-18), ``approx_sign``
on the inputs (gradient 2+2x on [-1, 0), 2-2x on [0, 1)), ``magnitude_aware_sign`` weights (mean
|W| per output channel times sign W), real-valued AvgPool + 1x1 convolution + BatchNorm
shortcuts where the resolution halves.

The recipe (``--recipe bireal``): Adam, learning rate 5e-3 decaying linearly to 0, weight decay
0, in two steps -- first with real-valued weights and binary activations, then with binary
weights too, starting from the first step's weights.

Presets (any ``bmxnet train`` option after them overrides):

=============== ========= ====================
preset          dataset   model
=============== ========= ====================
cifar10         cifar10   birealnet18_cifar
cifar10_34      cifar10   birealnet34_cifar
imagenet        imagenet  birealnet18
imagenet_stem   imagenet  birealnet18_stem (daBNN's stem module)
imagenet_34     imagenet  birealnet34
=============== ========= ====================

    python smd_hpi_examples/bireal/train_bireal.py cifar10 --data-dir ~/data/cifar10
"""
import os
import sys

try:
    import bmxnet  # noqa: F401
except ImportError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from bmxnet.cli import run_preset  # noqa: E402

PRESETS = {
    "cifar10": ["birealnet18_cifar", "--recipe", "bireal", "--epochs", "200",
                "--batch-size", "128"],
    "cifar10_34": ["birealnet34_cifar", "--recipe", "bireal", "--epochs", "200",
                   "--batch-size", "128"],
    "imagenet": ["birealnet18", "--recipe", "bireal", "--epochs", "60", "--batch-size", "256"],
    "imagenet_stem": ["birealnet18_stem", "--recipe", "bireal", "--epochs", "60",
                      "--batch-size", "256"],
    "imagenet_34": ["birealnet34", "--recipe", "bireal", "--epochs", "60", "--batch-size",
                    "256"],
}
DATASETS = {k: ("cifar10" if k.startswith("cifar") else "imagenet") for k in PRESETS}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    preset = next((a for a in argv if not a.startswith("-")), "cifar10")
    return run_preset(PRESETS, DATASETS.get(preset, "cifar10"), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
