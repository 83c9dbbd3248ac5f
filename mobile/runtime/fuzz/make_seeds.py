"""Writes the seed corpus of loader_fuzz: tiny models, converted by model_converter, as fuzz inputs.

    python make_seeds.py OUT_DIR

Each seed is one fuzz input (see loader_fuzz.cc): uint32 h (little-endian: the json length n,
plus the kernel path index << 24), n bytes of binarized_*-symbol.json with a ``__shape__`` on the
data variable, then the binarized_*-NNNN.params bytes. Every model is written once for each of
the four kernel paths the target picks from (auto, reference, scalar, avx2). The models are small (8x8 inputs, a few channels) so that
one execution takes well under a millisecond, yet together they use every operator family the
runtime compiles: float and binary convolution (with and without scaling), binary and float dense,
BatchNorm, tanh/relu/PReLU-style activations, sign, pooling (max, avg, global), residual add,
concat, broadcast arithmetic, reshape/flatten, dropout, clip and softmax; and, written with mx.sym
as ONNX imports and migrated BMXNet v1 models use them, Pad, transpose, reshape_like,
expand_dims/squeeze, dot/linalg_gemm2 with constant weights, sigmoid, sign and scalar arithmetic.
Nothing here is committed: run.sh makes the seeds at build time.
"""
import json
import os
import struct
import sys
import tempfile

import mxnet as mx
import numpy as np
from mxnet import gluon
from mxnet.gluon import nn

import bmxnet  # noqa: F401  (registers the Q-operators)
from bmxnet import converter
from bmxnet.gluon import QActivation, QConv2D, QDense
from bmxnet.gluon.blocks import LearnableBias, RPReLU


class ResidualBlock(gluon.HybridBlock):
    """Bi-Real style: sign -> binary 3x3 conv -> BatchNorm, plus the shortcut; then concat."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.bias = LearnableBias(channels)
        self.act = QActivation()
        self.conv = QConv2D(channels, 3, padding=1, use_bias=False)
        self.bn = nn.BatchNorm()
        self.prelu = RPReLU(channels)
        self.pool = nn.AvgPool2D(2)
        self.down = nn.Conv2D(channels, 1, use_bias=False)

    def hybrid_forward(self, F, x):
        y = self.bn(self.conv(self.act(self.bias(x))))
        y = self.prelu(y + x)
        z = self.pool(y)
        return F.concat(z, self.pool(self.down(x)), dim=1)


def tiny_lenet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3), nn.Activation("tanh"), nn.MaxPool2D(2), nn.BatchNorm(),
            QActivation(backward_only=True), QConv2D(8, 3, padding=1, use_bias=False),
            nn.BatchNorm(), nn.Flatten(), QDense(16), nn.BatchNorm(), nn.Activation("tanh"),
            nn.Dense(4))
    return net, (1, 1, 8, 8)


def tiny_scaled():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1), nn.BatchNorm(), QActivation(),
            QConv2D(8, 3, strides=2, padding=1, scaling=True, use_bias=False), nn.BatchNorm(),
            nn.Activation("relu"), nn.GlobalAvgPool2D(), nn.Flatten(),
            QDense(6, scaling=True, use_bias=False), nn.Dropout(0.5), nn.Dense(3))
    return net, (1, 2, 8, 8)


def tiny_resnet():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(8, 3, padding=1, use_bias=False), nn.BatchNorm(), ResidualBlock(8),
            nn.MaxPool2D(2), nn.LeakyReLU(0.1), nn.Flatten(), nn.Dense(5))
    return net, (1, 3, 8, 8)


class Tail(gluon.HybridBlock):
    """clip, scalar arithmetic, reshape and softmax after a tiny model."""

    def __init__(self, body, **kwargs):
        super().__init__(**kwargs)
        self.body = body

    def hybrid_forward(self, F, x):
        y = F.clip(self.body(x) * 0.5 + 1.0, -3.0, 3.0)
        return F.softmax(F.reshape(y, shape=(1, -1)))


def tiny_tail():
    body, shape = tiny_lenet()
    return Tail(body), shape


def ops_seed(rng, folder):
    """The operators ONNX imports and migrated v1 models use, as an mx.sym graph (no Gluon)."""
    shape = (1, 2, 4, 4)
    x = mx.sym.Pad(mx.sym.var("data"), mode="constant", pad_width=(0, 0, 0, 0, 1, 1, 1, 1),
                   constant_value=0.5, name="pad0")
    x = mx.sym.Convolution(x, mx.sym.var("conv_weight"), mx.sym.var("conv_bias"), kernel=(3, 3),
                           num_filter=4, name="conv")
    x = mx.sym.sigmoid(mx.sym.transpose(mx.sym.relu(x), axes=(0, 1, 3, 2)), name="sig")
    x = mx.sym.reshape_like(x, mx.sym.transpose(x, axes=(0, 1, 3, 2)), name="rl")
    x = mx.sym.squeeze(mx.sym.expand_dims(x, axis=1), axis=1, name="sq")
    x = mx.sym.dot(mx.sym.flatten(x), mx.sym.var("mat"), name="dot0")
    x = mx.sym.sign(mx.sym.tanh(x) - 0.1, name="sgn")
    x = mx.sym.linalg_gemm2(x, mx.sym.var("mat2"), name="g2")
    x = mx.sym.softmax(x / 2.0, name="sm")
    args = {"conv_weight": rng.randn(4, 2, 3, 3), "conv_bias": rng.randn(4),
            "mat": rng.randn(64, 6), "mat2": rng.randn(6, 3)}
    args = {k: mx.nd.array(v) for k, v in args.items()}
    x.bind(mx.cpu(), dict(args, data=mx.nd.zeros(shape))).forward()  # MXNet accepts the graph
    graph = json.loads(x.tojson())
    for node in graph["nodes"]:
        if node["name"] == "data":
            node["attrs"] = {"__shape__": str(shape)}
    path = os.path.join(folder, "ops.params")
    mx.nd.save(path, {"arg:" + k: v for k, v in args.items()})
    with open(path, "rb") as f:
        params = f.read()
    body = json.dumps(graph, separators=(",", ":")).encode("utf-8")
    return struct.pack("<I", len(body)) + body + params


def seed_bytes(net, shape, rng, folder, name, compact):
    net.initialize(mx.init.Xavier(rnd_type="gaussian"))
    x = mx.nd.array(rng.randn(*shape))
    net(x)
    for pname, p in net.collect_params().items():  # BatchNorm statistics that matter
        if pname.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.randn(*p.shape) * 0.5))
        elif pname.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))
    net.hybridize()
    net(x)
    prefix = os.path.join(folder, name)
    net.export(prefix, epoch=1)
    report = converter.convert_checkpoint(prefix + "-0001.params", output_dir=folder)
    with open(report.files["symbol_out"], encoding="utf-8") as f:
        graph = json.load(f)
    for node in graph["nodes"]:
        if node["op"] == "null" and node["name"] == "data":
            node["attrs"] = {"__shape__": str(tuple(shape))}
        elif compact and node["op"] == "null":
            node.pop("attrs", None)  # __lr_mult__ and the like: not read, and they cost bytes
    if compact:
        text = json.dumps(graph, separators=(",", ":"))
    else:
        text = json.dumps(graph, indent=2)
    with open(report.files["params_out"], "rb") as f:
        params = f.read()
    body = text.encode("utf-8")
    return struct.pack("<I", len(body)) + body + params


def write_seeds(out, name, data, sizes):
    """seed_NAME_pP for the kernel paths P = 0..3 (the top byte of the length word)."""
    n = struct.unpack("<I", data[:4])[0]
    for path in range(4):
        with open(os.path.join(out, "seed_%s_p%d" % (name, path)), "wb") as f:
            f.write(struct.pack("<I", n | path << 24) + data[4:])
    sizes.append("%s %d" % (name, len(data)))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(0)
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, make, compact in [("lenet_full", tiny_lenet, False),
                                    ("lenet", tiny_lenet, True),
                                    ("scaled", tiny_scaled, True),
                                    ("resnet", tiny_resnet, True),
                                    ("tail", tiny_tail, True)]:
            net, shape = make()
            write_seeds(out, name, seed_bytes(net, shape, rng, tmp, name, compact), sizes)
        write_seeds(out, "ops", ops_seed(rng, tmp), sizes)
    print("seeds: " + ", ".join(sizes) + " bytes")


if __name__ == "__main__":
    main(sys.argv[1])
