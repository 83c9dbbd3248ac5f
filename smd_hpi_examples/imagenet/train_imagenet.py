#!/usr/bin/env python3
"""Binary networks on ImageNet from a local copy: ``train/`` and ``val/`` folders of class
subfolders (gluon ImageFolderDataset) or ``train.rec`` / ``val.rec`` (mx.io.ImageRecordIter).

Presets (any ``bmxnet train`` option after them overrides):

================ ===================== ======================================================
preset           model                 training
================ ===================== ======================================================
resnet18         binary_resnet18       Adam 1e-3, cosine decay (BMXNet's binary ResNet-18)
bireal18         birealnet18           Bi-Real recipe (Adam 5e-3, linear decay, two-step)
bireal18_stem    birealnet18_stem      the same with daBNN's stem module
bireal34         birealnet34           Bi-Real recipe
xnornet          xnornet               Adam 1e-3, step decay at epochs 30/60
binary_alexnet   binary_alexnet        Adam 1e-3, step decay at epochs 30/60
reactnet         reactnet_a            Adam 5e-4, linear decay (ReActNet's second step,
                                       without the distributional loss)
bireal18_bop     birealnet18           Bop (threshold 1e-8, gamma 1e-4) + Adam 2.5e-3
================ ===================== ======================================================

    python smd_hpi_examples/imagenet/train_imagenet.py bireal18 --data-dir /data/imagenet \\
        --out-dir runs/bireal18
"""
import os
import sys

try:
    import bmxnet  # noqa: F401
except ImportError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from bmxnet.cli import run_preset  # noqa: E402

PRESETS = {
    "resnet18": ["binary_resnet18", "--epochs", "90", "--batch-size", "256",
                 "--hparams", "learning_rate=1e-3,lr_schedule=cosine"],
    "bireal18": ["birealnet18", "--recipe", "bireal", "--epochs", "60", "--batch-size", "256"],
    "bireal18_stem": ["birealnet18_stem", "--recipe", "bireal", "--epochs", "60",
                      "--batch-size", "256"],
    "bireal34": ["birealnet34", "--recipe", "bireal", "--epochs", "60", "--batch-size", "256"],
    "xnornet": ["xnornet", "--epochs", "90", "--batch-size", "256", "--hparams",
                "learning_rate=1e-3,lr_schedule=step,lr_step_epochs=[30, 60]"],
    "binary_alexnet": ["binary_alexnet", "--epochs", "90", "--batch-size", "256", "--hparams",
                       "learning_rate=1e-3,lr_schedule=step,lr_step_epochs=[30, 60]"],
    "reactnet": ["reactnet_a", "--epochs", "256", "--batch-size", "256", "--hparams",
                 "learning_rate=5e-4,lr_schedule=linear"],
    "bireal18_bop": ["birealnet18", "--optimizer", "bop", "--epochs", "60", "--batch-size",
                     "256", "--hparams", "threshold=1e-8,gamma=1e-4,learning_rate=2.5e-3"],
}

if __name__ == "__main__":
    sys.exit(run_preset(PRESETS, "imagenet", __doc__))
