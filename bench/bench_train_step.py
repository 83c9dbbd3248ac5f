#!/usr/bin/env python3
"""Benchmark: training-step time of a binary ResNet-18 against the same float ResNet-18.

Both networks are built, hybridized (static_alloc, static_shape) and timed in one process, with
interleaved steps, so machine noise hits both alike. One step = forward + loss + backward +
trainer.step, synchronised with mx.nd.waitall().

Topology (CIFAR ResNet-18, input 3x32x32): 3x3 conv 64ch (float) -> BN -> act, 4 stages of 2
BasicBlocks with 64/128/256/512 channels (stride 2 and a 1x1 conv + BN downsample at the start of
stages 2-4), global average pooling, Dense(10) (float). A BasicBlock is
    conv3x3(stride) -> BN -> act -> conv3x3 -> BN, + shortcut, -> act.
* float net: nn.Conv2D everywhere, act = ReLU.
* binary net: the two 3x3 convs of every block are QConv2D(act_bit=1, weight_bit=1,
  use_bias=False); first conv, the 1x1 downsample convs and the last dense stay float, as BMXNet
  trains it. act = tanh: a ReLU in front of a 1-bit layer would turn every input into +1
  (sign(0) = +1), while sign(tanh(x)) = sign(x). tanh runs through the same Activation operator
  (oneDNN) as ReLU at about the same cost, so both nets run the same number and kind of
  operators. (clip(x, -1, 1), the usual hard tanh, is ~8x slower than ReLU in MXNet 1.9 and
  would bias the comparison.)
Both: SGD with momentum 0.9, softmax cross-entropy, random data (fixed per run).

Threads: --threads N sets OMP_NUM_THREADS=N before MXNet is imported; without it nothing is set,
and the environment's OMP_NUM_THREADS (if any) controls both MXNet's float operators and bmxnet's
kernels.

The last line is ``train_step_ratio=<binary median / float median>``.
"""
import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="timed steps per network (>= 1)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per network first")
    p.add_argument("--threads", type=int, default=None,
                   help="set OMP_NUM_THREADS to this before importing MXNet (default: set nothing)")
    p.add_argument("--no-static", action="store_true",
                   help="hybridize without static_alloc/static_shape")
    p.add_argument("--profile", action="store_true",
                   help="after timing, run a few steps of each net under mx.profiler and print "
                        "where the time goes, per operator; then time QConvolution against "
                        "Convolution, forward and backward, on each 3x3 conv shape of the net")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.steps < 1 or args.warmup < 0:
        p.error("--batch-size and --steps must be >= 1, --warmup >= 0")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    return args


ARGS = parse_args()
if ARGS.threads is not None:
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402
import mxnet as mx  # noqa: E402
from mxnet import autograd, gluon  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

try:
    import bmxnet  # noqa: E402,F401
except ImportError:  # source checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import bmxnet  # noqa: E402,F401
from bmxnet.gluon import QConv2D  # noqa: E402


def activation(binary):
    return nn.Activation("tanh" if binary else "relu")


def conv3x3(channels, stride, binary):
    if binary:
        return QConv2D(channels, 3, strides=stride, padding=1, use_bias=False, act_bit=1,
                       weight_bit=1)
    return nn.Conv2D(channels, 3, strides=stride, padding=1, use_bias=False)


class BasicBlock(gluon.HybridBlock):
    def __init__(self, channels, stride, downsample, binary, **kwargs):
        super().__init__(**kwargs)
        self.body = nn.HybridSequential()
        self.body.add(conv3x3(channels, stride, binary), nn.BatchNorm(), activation(binary),
                      conv3x3(channels, 1, binary), nn.BatchNorm())
        self.downsample = None
        if downsample:  # float 1x1 conv in both nets
            self.downsample = nn.HybridSequential()
            self.downsample.add(nn.Conv2D(channels, 1, strides=stride, use_bias=False),
                                nn.BatchNorm())
        self.act = activation(binary)

    def hybrid_forward(self, F, x):
        shortcut = self.downsample(x) if self.downsample is not None else x
        return self.act(self.body(x) + shortcut)


def resnet18_cifar(binary, classes=10):
    net = nn.HybridSequential()
    net.add(nn.Conv2D(64, 3, padding=1, use_bias=False), nn.BatchNorm(), activation(binary))
    in_channels = 64
    for stage, channels in enumerate((64, 128, 256, 512)):
        stride = 1 if stage == 0 else 2
        net.add(BasicBlock(channels, stride, stride != 1 or in_channels != channels, binary))
        net.add(BasicBlock(channels, 1, False, binary))
        in_channels = channels
    net.add(nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dense(classes))
    return net


class Runner:
    """One network with its trainer; step() runs one synchronised training step."""

    def __init__(self, binary, x, y, static):
        self.net = resnet18_cifar(binary)
        self.net.initialize(mx.init.Xavier(magnitude=2))
        if static:
            self.net.hybridize(static_alloc=True, static_shape=True)
        else:
            self.net.hybridize()
        self.trainer = gluon.Trainer(self.net.collect_params(), "sgd",
                                     {"learning_rate": 0.01, "momentum": 0.9, "wd": 1e-4})
        self.loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
        self.x, self.y = x, y
        self.last_loss = None

    def step(self):
        with autograd.record():
            loss = self.loss_fn(self.net(self.x), self.y)
        loss.backward()
        self.trainer.step(self.x.shape[0])
        mx.nd.waitall()
        self.last_loss = float(loss.mean().asscalar())

    def timed_step(self):
        mx.nd.waitall()
        tic = time.perf_counter()
        self.step()
        return (time.perf_counter() - tic) * 1000.0


def profile(x, y, static, steps=3):
    """Per-operator time of each net over `steps` steps, from mx.profiler's aggregate stats.

    Fresh nets are built with MXNet's bulk execution off (MXNET_EXEC_BULK_EXEC_TRAIN=0), so every
    operator is timed on its own instead of inside fused segments.
    """
    import json
    import tempfile

    os.environ["MXNET_EXEC_BULK_EXEC_TRAIN"] = "0"
    os.environ["MXNET_EXEC_BULK_EXEC_INFERENCE"] = "0"
    for name, binary in (("binary", True), ("float", False)):
        runner = Runner(binary, x, y, static)
        for _ in range(2):
            runner.step()
        out = tempfile.NamedTemporaryFile(suffix=".json", delete=False).name
        mx.profiler.set_config(profile_imperative=True, profile_symbolic=True,
                               aggregate_stats=True, filename=out)
        mx.profiler.set_state("run")
        for _ in range(steps):
            runner.step()
        mx.profiler.set_state("stop")
        stats = json.loads(mx.profiler.dumps(reset=True, format="json"))
        os.remove(out)
        ops = stats.get("Time", {}).get("operator", {})
        total = sum(v["Total"] for v in ops.values())
        print("\nprofile, %s net, per step (ms), operators by total time:" % name)
        print("  %-32s %9s %6s %7s" % ("operator", "ms/step", "calls", "share"))
        for op, v in sorted(ops.items(), key=lambda kv: -kv[1]["Total"])[:14]:
            print("  %-32s %9.2f %6d %6.1f%%" % (op, v["Total"] / steps, v["Count"] // steps,
                                                100.0 * v["Total"] / max(total, 1e-9)))
        print("  %-32s %9.2f" % ("sum of operators", total / steps))


# The 3x3 convolutions of the CIFAR ResNet-18 blocks: (in_channels, out_channels, size, stride,
# how many of them the network has).
RESNET18_CONVS = [(64, 64, 32, 1, 4), (64, 128, 32, 2, 1), (128, 128, 16, 1, 3),
                  (128, 256, 16, 2, 1), (256, 256, 8, 1, 3), (256, 512, 8, 2, 1),
                  (512, 512, 4, 1, 3)]


def per_layer(batch, repeats=5):
    """Forward and backward time of QConvolution (1 bit x 1 bit) against Convolution on every
    3x3 conv shape of the network, each op alone (medians of `repeats`), interleaved."""
    print("\nper-layer 3x3 convolutions, batch %d, median ms (fwd = forward in training mode, "
          "bwd = backward alone):" % batch)
    print("  %-22s %3s %8s %8s %8s %8s %7s %7s"
          % ("shape (in>out, HxW, s)", "n", "Q fwd", "F fwd", "Q bwd", "F bwd", "fwd x", "bwd x"))
    tot = np.zeros(4)
    for cin, cout, size, stride, count in RESNET18_CONVS:
        x = mx.nd.random.uniform(-1, 1, (batch, cin, size, size))
        w = mx.nd.random.uniform(-1, 1, (cout, cin, 3, 3))
        x.attach_grad()
        w.attach_grad()
        kw = dict(kernel=(3, 3), stride=(stride, stride), pad=(1, 1), num_filter=cout,
                  no_bias=True)
        ops = {"Q": lambda: mx.nd.QConvolution(x, w, act_bit=1, weight_bit=1, **kw),
               "F": lambda: mx.nd.Convolution(x, w, **kw)}
        res = {k: ([], []) for k in ops}
        for rep in range(repeats + 1):
            for k, op in ops.items():
                mx.nd.waitall()
                t0 = time.perf_counter()
                with autograd.record():
                    out = op()
                out.wait_to_read()
                t1 = time.perf_counter()
                out.backward(mx.nd.ones_like(out))
                mx.nd.waitall()
                t2 = time.perf_counter()
                if rep:  # the first round is warm-up
                    res[k][0].append((t1 - t0) * 1e3)
                    res[k][1].append((t2 - t1) * 1e3)
        qf, ff = np.median(res["Q"][0]), np.median(res["F"][0])
        qb, fb = np.median(res["Q"][1]), np.median(res["F"][1])
        tot += count * np.array([qf, ff, qb, fb])
        print("  %-22s %3d %8.2f %8.2f %8.2f %8.2f %7.2f %7.2f"
              % ("%d>%d %dx%d s%d" % (cin, cout, size, size, stride), count, qf, ff, qb, fb,
                 qf / ff, qb / fb))
    print("  %-22s %3s %8.1f %8.1f %8.1f %8.1f %7.2f %7.2f"
          % ("network total (x n)", "", tot[0], tot[1], tot[2], tot[3], tot[0] / tot[1],
             tot[2] / tot[3]))


def main(args=ARGS):
    mx.random.seed(args.seed)
    np.random.seed(args.seed)
    x = mx.nd.array(np.random.uniform(-1, 1, (args.batch_size, 3, 32, 32)).astype(np.float32))
    y = mx.nd.array(np.random.randint(0, 10, args.batch_size).astype(np.float32))
    static = not args.no_static
    runners = [("binary", Runner(True, x, y, static)), ("float", Runner(False, x, y, static))]
    for _, runner in runners:
        for _ in range(args.warmup):
            runner.step()
    times = {name: [] for name, _ in runners}
    for i in range(args.steps):
        order = runners if i % 2 == 0 else runners[::-1]  # alternate who goes first
        for name, runner in order:
            times[name].append(runner.timed_step())
    for name, runner in runners:
        if not np.isfinite(runner.last_loss):
            raise SystemExit("the %s net's loss is %s" % (name, runner.last_loss))
    med = {name: float(np.median(t)) for name, t in times.items()}
    ratio = med["binary"] / med["float"]

    print("binary vs float ResNet-18 (CIFAR, 3x32x32), batch %d, %d timed steps each, "
          "OMP_NUM_THREADS=%s, static_alloc/static_shape=%s"
          % (args.batch_size, args.steps, os.environ.get("OMP_NUM_THREADS", "unset"), static))
    print("%-8s %12s %10s %10s" % ("net", "median ms", "min ms", "max ms"))
    for name, _ in runners:
        t = times[name]
        print("%-8s %12.1f %10.1f %10.1f" % (name, med[name], min(t), max(t)))
    print("%-8s %12.2f" % ("ratio", ratio))
    if args.profile:
        profile(x, y, static)
        per_layer(args.batch_size)
    print("train_step_ratio=%.3f" % ratio)
    return ratio


if __name__ == "__main__":
    main()
