#!/usr/bin/env python3
"""Trains a binary LeNet (BMXNet recipe) on handwritten digits and exports an MXNet checkpoint.

First convolution and last dense layer are full precision; the middle convolution and dense
layer are binary (1-bit inputs and 1-bit weights, ``QConv2D`` / ``QDense``), each followed by
BatchNorm::

    Conv2D(64, 5) -> tanh -> MaxPool(2) -> BatchNorm
    -> QConv2D(64, 5, 1 bit x 1 bit, no bias) -> BatchNorm -> MaxPool(2) -> Flatten
    -> QDense(1000, 1 bit x 1 bit, no bias) -> BatchNorm -> tanh -> Dense(10)

Input: (N, 1, 28, 28) float32 in [0, 1]. By default the data are scikit-learn's bundled 8x8
digits placed into 28x28 frames (see mnist_data.py); ``--data-dir`` reads real MNIST IDX files.

Writes ``<out-dir>/<prefix>-symbol.json`` and ``<out-dir>/<prefix>-0001.params``, reloads them
with ``gluon.SymbolBlock.imports`` to check they reproduce the accuracy, and ends with the line
``test_accuracy=<float>``.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

try:
    import bmxnet  # noqa: E402,F401  (registers QConvolution & co.)
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
    import bmxnet  # noqa: E402,F401
from bmxnet.gluon import QConv2D, QDense  # noqa: E402

from mnist_data import load_digits_28x28, load_mnist_dir  # noqa: E402

DEFAULTS = dict(epochs=10, batch_size=64, lr=2e-3, optimizer="adam", seed=1, shift=2,
                hidden=1000)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=None,
                   help="folder with the MNIST idx files (train-images-idx3-ubyte, "
                        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                        "t10k-labels-idx1-ubyte, each optionally .gz); default: scikit-learn's "
                        "bundled 8x8 digits in 28x28 frames")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"],
                   help="initial learning rate (cosine-decayed to 0 over the run)")
    p.add_argument("--optimizer", default=DEFAULTS["optimizer"],
                   help="any mx.optimizer name (adam, sgd, nag, rmsprop, ...)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                   help="seeds initialisation, shuffling and augmentation")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the fixed 80/20 stratified train/test split of the digits")
    p.add_argument("--shift", type=int, default=DEFAULTS["shift"],
                   help="training augmentation: random translation by up to this many pixels "
                        "(0 = off)")
    p.add_argument("--hidden", type=int, default=DEFAULTS["hidden"],
                   help="units of the binary dense layer")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training and N test images (quick runs, tests)")
    p.add_argument("--out-dir", default=".", help="where the checkpoint is written")
    p.add_argument("--prefix", default="mnist", help="checkpoint name prefix")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error("--%s must be >= 1" % name.replace("_", "-"))
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.shift < 0:
        p.error("--shift must be >= 0")
    return args


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def build_net(hidden=1000):
    """The binary LeNet; float first conv and last dense, binary middle layers."""
    net = nn.HybridSequential()
    net.add(
        nn.Conv2D(64, kernel_size=5),
        nn.Activation("tanh"),
        nn.MaxPool2D(pool_size=2, strides=2),
        nn.BatchNorm(),
        QConv2D(64, kernel_size=5, use_bias=False, act_bit=1, weight_bit=1),
        nn.BatchNorm(),
        nn.MaxPool2D(pool_size=2, strides=2),
        nn.Flatten(),
        QDense(hidden, use_bias=False, act_bit=1, weight_bit=1),
        nn.BatchNorm(),
        nn.Activation("tanh"),
        nn.Dense(10),
    )
    return net


def load_data(args):
    if args.data_dir:
        x_train, y_train, x_test, y_test = load_mnist_dir(args.data_dir)
        source = "MNIST idx files in %s" % args.data_dir
    else:
        x_train, y_train, x_test, y_test = load_digits_28x28(split_seed=args.split_seed)
        source = "scikit-learn digits (8x8 -> 20x20 bilinear, centred in 28x28)"
    if args.limit is not None:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    return source, x_train, y_train, x_test, y_test


def random_shift(batch, max_shift, rng):
    """Translates each image by up to ``max_shift`` pixels in x and y, zero fill."""
    if max_shift == 0:
        return batch
    out = np.zeros_like(batch)
    h, w = batch.shape[2:]
    shifts = rng.randint(-max_shift, max_shift + 1, size=(batch.shape[0], 2))
    for i, (dy, dx) in enumerate(shifts):
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, :, yd, xd] = batch[i, :, ys, xs]
    return out


def predict(net, x, batch_size=256):
    """Logits of ``net`` on ``x`` (numpy), in inference mode."""
    outs = []
    for i in range(0, len(x), batch_size):
        outs.append(net(mx.nd.array(x[i:i + batch_size])).asnumpy())
    return np.concatenate(outs) if outs else np.zeros((0, 10), np.float32)


def accuracy(logits, labels):
    return float((logits.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def train(net, x_train, y_train, args, log=print):
    from tqdm import tqdm

    rng = np.random.RandomState(args.seed)
    n = len(x_train)
    steps_per_epoch = (n + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    schedule = mx.lr_scheduler.CosineScheduler(max_update=max(total, 1), base_lr=args.lr,
                                               final_lr=0.0)
    trainer = gluon.Trainer(net.collect_params(), args.optimizer,
                            {"learning_rate": args.lr, "lr_scheduler": schedule})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(n)
        loss_sum, correct, seen = 0.0, 0, 0
        tic = time.time()
        bar = tqdm(range(steps_per_epoch), desc="epoch %d/%d" % (epoch, args.epochs),
                   disable=args.no_progress, leave=False, file=sys.stderr)
        for step in bar:
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            data = mx.nd.array(random_shift(x_train[idx], args.shift, rng))
            label = mx.nd.array(y_train[idx])
            with autograd.record():
                out = net(data)
                loss = loss_fn(out, label)
            loss.backward()
            trainer.step(len(idx))
            loss_sum += float(loss.sum().asscalar())
            correct += int((out.argmax(axis=1).astype("int32") == label.astype("int32"))
                           .sum().asscalar())
            seen += len(idx)
            bar.set_postfix(loss="%.3f" % (loss_sum / seen), acc="%.3f" % (correct / seen))
        bar.close()
        log("epoch %d/%d  loss=%.4f  train_accuracy=%.4f  lr=%.2e  (%.1f s)"
            % (epoch, args.epochs, loss_sum / seen, correct / seen, trainer.learning_rate,
               time.time() - tic))
    return net


def export_checkpoint(net, out_dir, prefix):
    """``net.export`` into ``out_dir`` atomically: written in a temp folder, then renamed."""
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=out_dir, prefix=".export-")
    try:
        net.export(os.path.join(tmp, prefix), epoch=1)
        paths = []
        for name in ("%s-symbol.json" % prefix, "%s-0001.params" % prefix):
            dst = os.path.join(out_dir, name)
            os.replace(os.path.join(tmp, name), dst)
            paths.append(dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tuple(paths)


def load_checkpoint(symbol_file, params_file):
    """Reloads an exported checkpoint (``import bmxnet`` must have run: it has, above)."""
    with warnings.catch_warnings():
        # MXNet warns that the input's type is not known before the first call; it is float32.
        warnings.filterwarnings("ignore", message="Cannot decide type")
        return gluon.SymbolBlock.imports(symbol_file, ["data"], params_file)


def main(argv=None):
    """Runs the example; returns a dict with the trained net, the data and the results."""
    args = parse_args(argv)
    seed_everything(args.seed)
    start = time.time()
    source, x_train, y_train, x_test, y_test = load_data(args)
    print("data: %s; %d train / %d test images" % (source, len(x_train), len(x_test)))
    print("settings: epochs=%d batch_size=%d lr=%g optimizer=%s seed=%d shift=%d hidden=%d"
          % (args.epochs, args.batch_size, args.lr, args.optimizer, args.seed, args.shift,
             args.hidden))

    net = build_net(args.hidden)
    net.initialize(mx.init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    train(net, x_train, y_train, args)

    logits = predict(net, x_test)
    test_acc = accuracy(logits, y_test)
    print("trained net: test_accuracy=%.4f" % test_acc)

    symbol_file, params_file = export_checkpoint(net, args.out_dir, args.prefix)
    print("saved %s and %s" % (symbol_file, params_file))
    reloaded = load_checkpoint(symbol_file, params_file)
    reloaded_logits = predict(reloaded, x_test)
    reloaded_acc = accuracy(reloaded_logits, y_test)
    max_diff = float(np.abs(reloaded_logits - logits).max()) if len(logits) else 0.0
    print("reloaded checkpoint: test_accuracy=%.4f  max|logit diff|=%.2e" % (reloaded_acc,
                                                                             max_diff))
    if reloaded_acc != test_acc:
        raise SystemExit("the reloaded checkpoint gives test accuracy %.4f, the trained net %.4f"
                         % (reloaded_acc, test_acc))
    print("wall time %.1f s" % (time.time() - start))
    print("test_accuracy=%.4f" % test_acc)
    return {"net": net, "args": args, "test_accuracy": test_acc, "logits": logits,
            "x_test": x_test, "y_test": y_test, "symbol_file": symbol_file,
            "params_file": params_file, "reloaded_accuracy": reloaded_acc}


if __name__ == "__main__":
    main()
