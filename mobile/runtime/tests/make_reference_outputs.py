"""Writes converted zoo models and MXNet's outputs on them, for runtime_check.c.

    python make_reference_outputs.py OUT_DIR [MODEL ...]

For each model (default: binary_lenet, birealnet18_cifar and reactnet_a_cifar): random weights
(Xavier) and randomised BatchNorm statistics, exported and converted with model_converter; then
MXNet itself (with bmxnet's operators) runs the binarized files on a random input. Written to OUT_DIR:
    binarized_MODEL-symbol.json, binarized_MODEL-0001.params   the files the runtime loads
    MODEL.input.f32, MODEL.reference.f32   raw little-endian float32 (input, first output)
and one line per model in OUT_DIR/cases.txt:
    MODEL SYMBOL_JSON PARAMS N,C,H,W INPUT REFERENCE
The model name bmxnet_v1_mnist stands for the BMXNet v1 binary LeNet of ../shared/bmxnet_legacy/
(64-bit words), migrated with ``model_converter --from-bmxnet``'s library call; it joins the
default models when that folder exists.
"""
import os
import sys

import mxnet as mx
import numpy as np

import bmxnet  # noqa: F401  (registers the Q-operators)
from bmxnet import converter
from bmxnet.model_zoo import get_model

SHAPES = {"binary_lenet": (1, 1, 28, 28), "lenet": (1, 1, 28, 28),
          "bmxnet_v1_mnist": (1, 1, 28, 28)}
DEFAULT_MODELS = ["binary_lenet", "birealnet18_cifar", "reactnet_a_cifar"]
LEGACY_PREFIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..",
                             "shared", "bmxnet_legacy", "binarized_mnist_64bit")
if os.path.exists(LEGACY_PREFIX + "-0001.params"):
    DEFAULT_MODELS.append("bmxnet_v1_mnist")


def randomize_batchnorm(net, rng):
    """BatchNorm statistics far from (0, 1), so that folding them is really tested."""
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "beta")):
            p.set_data(mx.nd.array(rng.randn(*p.shape) * 0.5))
        elif name.endswith(("running_var", "gamma")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))


def data_shape(name):
    if name in SHAPES:
        return SHAPES[name]
    return (1, 3, 32, 32) if name.endswith("_cifar") else (1, 3, 224, 224)


def main(out, models):
    os.makedirs(out, exist_ok=True)
    lines = []
    for seed, name in enumerate(models):
        rng = np.random.RandomState(1000 + seed)
        shape = data_shape(name)
        prefix = os.path.join(out, name)
        if name == "bmxnet_v1_mnist":
            x = mx.nd.array(rng.uniform(0, 1, size=shape).astype(np.float32))
            report = converter.convert_checkpoint(LEGACY_PREFIX + "-0001.params", output_dir=out,
                                                  from_bmxnet=True)
            symbol, params = report.files["symbol_out"], report.files["params_out"]
        else:
            net = get_model(name)
            net.initialize(mx.init.Xavier(rnd_type="gaussian", magnitude=2))
            x = rng.uniform(0, 1, size=shape) if "lenet" in name else rng.randn(*shape)
            x = mx.nd.array(x.astype(np.float32))
            net(x)
            randomize_batchnorm(net, rng)
            net.hybridize()
            net(x)
            net.export(prefix, epoch=1)
            report = converter.convert_checkpoint(prefix + "-0001.params", output_dir=out)
            symbol, params = report.files["symbol_out"], report.files["params_out"]
            for source in (prefix + "-symbol.json", prefix + "-0001.params"):
                os.remove(source)  # the float checkpoint is not needed any more
        # The reference: MXNet on the converted files (what the runtime reads), not the source.
        sym = mx.sym.load(symbol)
        saved = mx.nd.load(params)
        args = {k[4:]: v for k, v in saved.items() if k.startswith("arg:")}
        aux = {k[4:]: v for k, v in saved.items() if k.startswith("aux:")}
        ex = sym.bind(mx.cpu(), args=dict(args, data=x), aux_states=aux, grad_req="null")
        y = ex.forward(is_train=False)[0].asnumpy().astype("<f4")
        x.asnumpy().astype("<f4").tofile(prefix + ".input.f32")
        y.tofile(prefix + ".reference.f32")
        lines.append("%s %s %s %s %s %s" % (
            name, os.path.basename(symbol), os.path.basename(params),
            ",".join(map(str, shape)), name + ".input.f32", name + ".reference.f32"))
        print("%s: output %s, max |y| %.4g" % (name, y.shape, float(np.abs(y).max())))
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or DEFAULT_MODELS)
