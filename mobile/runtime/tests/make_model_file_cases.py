"""Writes the files test_model_file.cc reads, with MXNet itself, and what MXNet reads from them.

    python make_model_file_cases.py OUT_DIR

For every case NAME it writes the file(s) MXNet made (NAME.params, NAME-symbol.json) and
NAME.expect, a line-based account of their contents as MXNet's own loader (``mx.nd.load``) and
Python's json module read them. Strings are hex-encoded in .expect so that names and attribute
values with spaces, quotes or non-ASCII characters survive. Lines:

    array <name-hex> <aux 0|1> <dtype code> <ndim> <dims...> <byte count> <fnv1a64 of the bytes>
    error <phrase the reader's message must contain>          (MXNet refuses or misreads the file)
    nodes <count>
    node <op-hex> <name-hex> <attr count> <input count>
    attr <key-hex> <value-hex>
    input <node> <output>
    arg_nodes <count> <indices...>
    heads <count> <node output pairs...>
"""
import json
import os
import struct
import sys

import mxnet as mx
import numpy as np

DTYPE_CODES = {np.dtype(np.float32): 0, np.dtype(np.float64): 1, np.dtype(np.float16): 2,
               np.dtype(np.uint8): 3, np.dtype(np.int32): 4, np.dtype(np.int8): 5,
               np.dtype(np.int64): 6, np.dtype(np.bool_): 7}


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def hexs(text):
    return text.encode("utf-8").hex() or "-"


def expect_params(path, np_shape=False):
    """Lines for every array MXNet loads from `path` (in file order)."""
    if np_shape:
        with mx.util.np_shape(True):
            loaded = mx.nd.load(path)
            arrays = [(k, v.asnumpy()) for k, v in loaded.items()]
    else:
        arrays = [(k, v.asnumpy()) for k, v in mx.nd.load(path).items()]
    lines = []
    for key, a in arrays:
        aux = key.startswith("aux:")
        name = key[4:] if key.startswith(("arg:", "aux:")) else key
        data = np.ascontiguousarray(a).tobytes()
        lines.append("array %s %d %d %d %s %d %s" % (
            hexs(name), aux, DTYPE_CODES[a.dtype], a.ndim,
            " ".join(str(d) for d in a.shape), len(data), fnv1a64(data)))
    return lines


def expect_symbol(path):
    """Lines for the graph as Python's json module reads `path` ("attr"/"param" merged)."""
    with open(path, encoding="utf-8") as f:
        g = json.load(f)
    lines = ["nodes %d" % len(g["nodes"])]
    for n in g["nodes"]:
        attrs = {}
        for field in ("attrs", "attr", "param"):
            attrs.update(n.get(field, {}))
        lines.append("node %s %s %d %d" % (hexs(n["op"]), hexs(n["name"]), len(attrs),
                                           len(n["inputs"])))
        lines += ["attr %s %s" % (hexs(k), hexs(v)) for k, v in sorted(attrs.items())]
        lines += ["input %d %d" % (e[0], e[1]) for e in n["inputs"]]
    lines.append("arg_nodes %d %s" % (len(g["arg_nodes"]), " ".join(map(str, g["arg_nodes"]))))
    lines.append("heads %d %s" % (len(g["heads"]), " ".join("%d %d" % (e[0], e[1])
                                                              for e in g["heads"])))
    return lines


def write(out, name, lines):
    with open(os.path.join(out, name + ".expect"), "w") as f:
        f.write("\n".join(lines) + "\n")


def raw_params(records, names):
    """An NDArray list file from raw record bytes (for record versions MXNet no longer writes)."""
    b = struct.pack("<QQQ", 0x112, 0, len(records)) + b"".join(records)
    b += struct.pack("<Q", len(names))
    for n in names:
        b += struct.pack("<Q", len(n)) + n.encode()
    return b


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(0)
    p = lambda name: os.path.join(out, name)  # noqa: E731

    # Every dtype MXNet saves, arg:/aux:/bare names, 1- to 4-d (V2 records).
    arrays = {
        "arg:w": mx.nd.array(rng.randn(2, 3), dtype="float32"),
        "aux:moving_mean": mx.nd.array(rng.randn(5), dtype="float32"),
        "arg:conv_weight": mx.nd.array(rng.randn(4, 3, 2, 2), dtype="float32"),
        "arg:packed": mx.nd.array(rng.randint(-2**62, 2**62, size=(3, 2)), dtype="int64"),
        "arg:half": mx.nd.array(rng.randn(7), dtype="float16"),
        "arg:bytes": mx.nd.array(rng.randint(0, 256, size=(2, 2, 2)), dtype="uint8"),
        "arg:small": mx.nd.array(rng.randint(-128, 128, size=(3,)), dtype="int8"),
        "arg:ints": mx.nd.array(rng.randint(-2**31, 2**31, size=(2,)), dtype="int32"),
        "arg:doubles": mx.nd.array(rng.randn(2, 1), dtype="float64"),
        "arg:flags": mx.nd.array([1, 0, 1], dtype="bool"),
        "gluon_style_name": mx.nd.array([1.5], dtype="float32"),
    }
    mx.nd.save(p("dtypes.params"), arrays)
    write(out, "dtypes", expect_params(p("dtypes.params")))

    # np-shape semantics (V3 records): a 0-d array and empty arrays.
    with mx.util.np_shape(True):
        mx.nd.save(p("np_shape.params"), {
            "arg:scalar": mx.nd.array(np.float32(3.25)).reshape(()),
            "arg:empty": mx.nd.zeros((2, 0)),
            "arg:w": mx.nd.array(rng.randn(3, 2))})
    write(out, "np_shape", expect_params(p("np_shape.params"), np_shape=True))

    # Records older than V2, which MXNet still reads: V1 (int64 dims) and pre-V1 (uint32 ndim
    # and dims, as BMXNet v1 files are written).
    w1 = rng.randn(2, 3).astype(np.float32)
    w0 = rng.randn(4).astype(np.float32)
    v1 = (struct.pack("<Iiqq", 0xF993fac8, 2, 2, 3) + struct.pack("<iii", 1, 0, 0) + w1.tobytes())
    v0 = struct.pack("<II", 1, 4) + struct.pack("<iii", 1, 0, 0) + w0.tobytes()
    with open(p("legacy.params"), "wb") as f:
        f.write(raw_params([v1, v0], ["arg:v1", "aux:v0"]))
    write(out, "legacy", expect_params(p("legacy.params")))

    # Files MXNet writes but the runtime refuses (each with the phrase of its message).
    mx.nd.save(p("list.params"), [mx.nd.ones((2,))])
    write(out, "list", ["error no names"])
    mx.nd.save(p("csr.params"), {"a": mx.nd.array([[0, 1], [2, 0]]).tostype("csr")})
    write(out, "csr", ["error csr storage"])
    mx.nd.save(p("zerod_v2.params"), {"a": mx.nd.array(np.float32(3))})  # MXNet can't load it
    write(out, "zerod_v2", ["error no shape"])
    mx.nd.save(p("empty_list.params"), {})
    write(out, "empty_list", [])

    # A symbol with escapes and non-ASCII names, as MXNet writes it.
    x = mx.sym.var("d\u00e4ta", attr={"__note__": 'a "q" \\ b\nc\t\u00e9 \U0001F600 /'})
    y = mx.sym.Activation(x, act_type="relu", name="r\u00e9lu")
    y.save(p("escapes-symbol.json"))
    write(out, "escapes", expect_symbol(p("escapes-symbol.json")))

    # A converted zoo model: the files the runtime exists for.
    import bmxnet  # noqa: F401  (registers the Q-operators)
    from bmxnet import converter
    from bmxnet.model_zoo import get_model
    net = get_model("binary_lenet")
    net.initialize(mx.init.Xavier(rnd_type="gaussian"))
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.hybridize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.export(p("lenet"), epoch=1)
    converter.convert_checkpoint(p("lenet-0001.params"), output_dir=out)
    write(out, "binarized_lenet",
          expect_symbol(p("binarized_lenet-symbol.json")) +
          expect_params(p("binarized_lenet-0001.params")))

    # BMXNet v1 files (MXNet 0.9.3 json with "attr", pre-V1 records), when the shared copy exists.
    legacy_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "..", "..", "..", "..", "shared", "bmxnet_legacy")
    prefix = os.path.join(legacy_dir, "binarized_mnist_32bit")
    if os.path.exists(prefix + "-symbol.json"):
        with open(p("bmxnet_v1.path"), "w") as f:
            f.write(prefix + "\n")
        write(out, "bmxnet_v1", expect_symbol(prefix + "-symbol.json") +
              expect_params(prefix + "-0001.params"))


if __name__ == "__main__":
    main(sys.argv[1])
