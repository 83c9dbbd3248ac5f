#!/usr/bin/env python3
"""Binary LeNet on real handwritten digits: Adam on latent weights vs Bop (not a timed test).

Trains bmxnet's binary LeNet (float first conv and classifier, 1-bit 5x5 convolution and 1-bit
1000-unit dense layer; padding 2 for the 8x8 images) on scikit-learn's bundled digits (1438
train / 359 test images, no download) with

* ``adam``: Adam on the latent float weights (straight-through estimator), and
* ``bop``:  Bop (Helwegen et al. 2019) on the binary weights, Adam on the real-valued ones,

over several seeds, and prints the test accuracy of the last epoch of each run plus mean and
standard deviation. The claims this checks: the binary LeNet reaches >= 0.95 test accuracy, and
Bop lands within 2 points of Adam. Two CPU cores take about 20 s per run.

    .venv/bin/python bench/bench_digits_training.py [--epochs 15] [--seeds 0,1,2]
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from bmxnet import cli  # noqa: E402

CONFIGS = {
    "adam": dict(optimizer="adam", hparams={"learning_rate": 1e-3, "lr_schedule": "cosine"}),
    "bop": dict(optimizer="bop", hparams={"threshold": 1e-8, "gamma": 1e-4,
                                          "learning_rate": 1e-3, "lr_schedule": "cosine"}),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in CONFIGS.items():
            for seed in seeds:
                t0 = time.time()
                res = cli.train("lenet", dataset="digits", epochs=args.epochs,
                                batch_size=args.batch_size, seed=seed, progress=False,
                                plot=False, out_dir=os.path.join(tmp, "%s-%d" % (name, seed)),
                                log=lambda *a: None, **cfg)
                results.setdefault(name, []).append(res["val_acc"])
                print("%-4s seed %d: test accuracy %.4f (best epoch %.4f)  %.0fs"
                      % (name, seed, res["val_acc"], max(r["val_acc"] for r in res["history"]),
                         time.time() - t0), flush=True)
    print()
    for name, accs in results.items():
        print("%-4s test accuracy: mean %.4f  std %.4f  min %.4f  over %d seeds"
              % (name, np.mean(accs), np.std(accs), np.min(accs), len(accs)))
    gap = 100 * (np.mean(results["adam"]) - np.mean(results["bop"]))
    ok_acc = min(np.mean(v) for v in results.values()) >= 0.95
    print("binary LeNet >= 0.95: %s;  Adam - Bop = %.2f points (within 2: %s)"
          % (ok_acc, gap, abs(gap) <= 2.0))
    return 0 if ok_acc and abs(gap) <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
