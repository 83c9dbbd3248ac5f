"""1-bit inference speed: QConvolution / QFullyConnected against fp32 Convolution / FullyConnected.

A benchmark, not a test. For ResNet-18's 3x3 shapes, a 1x1 shape and a 4096x4096 dense layer it
times, at batch 1 and interleaved in one process, the packed 1-bit operator (weights packed as the
model converter writes them, ``binarized_weights_only=True``; the input is float and its signs are
packed on every call, as in a real network) against MXNet's own fp32 operator (oneDNN) on the same
shape, and reports the median of >= 20 runs. It also measures the binary GEMM's bit-MAC/s
against the xor + popcount + add peak of this CPU, measured here by a register-only loop, and a
whole network: binary ResNet-18 (first conv and last dense float, converted) against float
ResNet-18, batch 1, 224x224.

Speeds are ratios against baselines measured in the same process; absolute times are printed only
for orientation. Thread counts: the script runs itself once per setting with OMP_NUM_THREADS
fixed (1 thread, then all cores), since MXNet fixes its OpenMP team size at start-up.

    python bench/bench_qconv.py            # both thread settings
    python bench/bench_qconv.py --quick    # fewer repetitions, for a smoke run

The last line reads
``speedup_256x14x14_1thread=<x> geomean=<y> gemm_peak_fraction=<z> resnet18_speedup=<w>``
(geomean over the layer shapes, one thread). Targets: >= 8x, >= 6x, >= 0.70 and >= 3x.
"""
import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# (label, kind, in_channels, spatial, out_channels, kernel, pad)
SHAPES = [
    ("conv3x3 64ch 56x56", "conv", 64, 56, 64, 3, 1),
    ("conv3x3 128ch 28x28", "conv", 128, 28, 128, 3, 1),
    ("conv3x3 256ch 14x14", "conv", 256, 14, 256, 3, 1),
    ("conv3x3 512ch 7x7", "conv", 512, 7, 512, 3, 1),
    ("conv1x1 256ch 14x14", "conv", 256, 14, 256, 1, 0),
    ("dense 4096x4096", "dense", 4096, 1, 4096, 1, 0),
]
KEY_SHAPE = "conv3x3 256ch 14x14"


def _timed(fn, min_seconds):
    """Seconds per call of fn (an async MXNet call returning an NDArray), batching calls until
    one measurement lasts min_seconds (MXNet runs them in order on its engine thread)."""
    inner = 1
    while True:
        start = time.perf_counter()
        for _ in range(inner):
            out = fn()
        out.wait_to_read()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds or inner >= 4096:
            return elapsed / inner, inner
        inner *= 2


def _interleaved(fns, repeats, min_seconds):
    """Median seconds per call of each fn, measured alternately."""
    inners = [_timed(fn, min_seconds)[1] for fn in fns]  # warm-up and batch size
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(inners[i]):
                out = fn()
            out.wait_to_read()
            samples[i].append((time.perf_counter() - start) / inners[i])
    return [statistics.median(s) for s in samples]


def bench_layers(repeats, min_seconds):
    import mxnet as mx

    import bmxnet
    from bmxnet.converter import pack_conv_weights, pack_dense_weights

    rng = np.random.RandomState(0)
    rows = []
    for label, kind, cin, size, cout, k, pad in SHAPES:
        if kind == "conv":
            x = mx.nd.array(rng.randn(1, cin, size, size))
            w = rng.randn(cout, cin, k, k).astype(np.float32)
            wf, wp = mx.nd.array(w), mx.nd.array(pack_conv_weights(w), dtype="int64")
            common = dict(num_filter=cout, kernel=(k, k), pad=(pad, pad), no_bias=True)
            binary = lambda: mx.nd.QConvolution(x, wp, binarized_weights_only=True, in_channels=cin,
                                                **common)
            floating = lambda: mx.nd.Convolution(x, wf, **common)
            macs = cout * cin * k * k * size * size
        else:
            x = mx.nd.array(rng.randn(1, cin))
            w = rng.randn(cout, cin).astype(np.float32)
            wf, wp = mx.nd.array(w), mx.nd.array(pack_dense_weights(w), dtype="int64")
            binary = lambda: mx.nd.QFullyConnected(x, wp, num_hidden=cout, no_bias=True,
                                                   binarized_weights_only=True, in_units=cin)
            floating = lambda: mx.nd.FullyConnected(x, wf, num_hidden=cout, no_bias=True)
            macs = cout * cin
        tb, tf = _interleaved([binary, floating], repeats, min_seconds)
        rows.append(dict(label=label, binary_ms=tb * 1e3, float_ms=tf * 1e3, speedup=tf / tb,
                         binary_gmacs=macs / tb / 1e9, float_gmacs=macs / tf / 1e9))
    return rows, bmxnet.kernel_path()


def bench_gemm(threads):
    """Binary GEMM bit-MAC/s (M=256, N=196, K=2304 bits) against the measured peak."""
    import bmxnet

    lib = ctypes.CDLL(bmxnet.LIB_PATH)
    lib.bmxnet_bench_bgemm.restype = ctypes.c_double
    lib.bmxnet_bench_bgemm.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
    lib.bmxnet_bench_peak.restype = ctypes.c_double
    lib.bmxnet_bench_peak.argtypes = [ctypes.c_int]
    M, N, K = 256, 196, 2304
    gemm = statistics.median(M * N * K / lib.bmxnet_bench_bgemm(M, N, K, threads, 50)
                             for _ in range(5))
    peak = max(lib.bmxnet_bench_peak(threads) for _ in range(5))
    return dict(gemm_gbitmacs=gemm / 1e9, peak_gbitmacs=peak / 1e9, fraction=gemm / peak)


def bench_resnet18(repeats, min_seconds):
    """Binary ResNet-18 (converted, packed) vs float ResNet-18 (gluoncv), batch 1, 224x224."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model as gluoncv_model
    from mxnet import gluon

    import bmxnet.model_zoo
    from bmxnet.converter import convert_model

    x = mx.nd.array(np.random.RandomState(1).randn(1, 3, 224, 224))
    binary = bmxnet.model_zoo.get_model("binary_resnet18")
    binary.initialize(mx.init.Xavier())
    binary.hybridize()
    binary(x)
    sym = binary(mx.sym.var("data"))
    params = {k: v.data() for k, v in binary.collect_params().items()}
    arg, aux = {}, {}
    for name in sym.list_arguments():
        if name in params:
            arg[name] = params[name]
    for name in sym.list_auxiliary_states():
        aux[name] = params[name]
    csym, carg, caux, _ = convert_model(sym, arg, aux)
    with tempfile.TemporaryDirectory() as tmp:  # the converted files, loaded as a user would
        prefix = os.path.join(tmp, "binarized_resnet18")
        csym.save(prefix + "-symbol.json")
        saved = {"arg:" + k: mx.nd.array(v, dtype=v.dtype) for k, v in carg.items()}
        saved.update({"aux:" + k: mx.nd.array(v, dtype=v.dtype) for k, v in caux.items()})
        mx.nd.save(prefix + "-0001.params", saved)
        packed = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                           prefix + "-0001.params")
    floating = gluoncv_model("resnet18_v1")
    floating.initialize(mx.init.Xavier())
    for net in (packed, floating):
        net.hybridize(static_alloc=True, static_shape=True)
        net(x).wait_to_read()
    tb, tf = _interleaved([lambda: packed(x), lambda: floating(x)], repeats, min_seconds)
    return dict(binary_ms=tb * 1e3, float_ms=tf * 1e3, speedup=tf / tb)


def run_one(threads, repeats, min_seconds):
    layers, path = bench_layers(repeats, min_seconds)
    return dict(threads=threads, path=path, layers=layers, gemm=bench_gemm(threads),
                resnet18=bench_resnet18(max(5, repeats // 2), min_seconds))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=20, help="interleaved runs per shape (>= 20)")
    ap.add_argument("--min-ms", type=float, default=20.0, help="shortest single measurement")
    ap.add_argument("--quick", action="store_true", help="5 repeats, 5 ms: a smoke run")
    ap.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.min_ms = 5, 5.0
    if args.worker:
        print(json.dumps(run_one(args.worker, args.repeats, args.min_ms / 1e3)))
        return
    results = []
    for threads in sorted({1, os.cpu_count() or 1}):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_OMP_MAX_THREADS=str(threads))
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", str(threads),
                              "--repeats", str(args.repeats), "--min-ms", str(args.min_ms)],
                             env=env, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print("kernel path: %s" % results[0]["path"])
    print("| shape | threads | 1-bit ms | fp32 ms | speedup | 1-bit GMAC/s | fp32 GMAC/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for row in r["layers"]:
            print("| {label} | {t} | {binary_ms:.3f} | {float_ms:.3f} | {speedup:.2f}x | "
                  "{binary_gmacs:.0f} | {float_gmacs:.1f} |".format(t=r["threads"], **row))
    print()
    print("| threads | binary GEMM Gbit-MAC/s | peak Gbit-MAC/s | fraction |")
    print("| --- | --- | --- | --- |")
    for r in results:
        g = r["gemm"]
        print("| %d | %.0f | %.0f | %.2f |" % (r["threads"], g["gemm_gbitmacs"],
                                               g["peak_gbitmacs"], g["fraction"]))
    print()
    print("| threads | binary ResNet-18 ms | float ResNet-18 ms | speedup |")
    print("| --- | --- | --- | --- |")
    for r in results:
        n = r["resnet18"]
        print("| %d | %.2f | %.2f | %.2fx |" % (r["threads"], n["binary_ms"], n["float_ms"],
                                                n["speedup"]))
    one = results[0]
    key = next(row["speedup"] for row in one["layers"] if row["label"] == KEY_SHAPE)
    geo = float(np.exp(np.mean([np.log(row["speedup"]) for row in one["layers"]])))
    print("speedup_256x14x14_1thread=%.2f geomean=%.2f gemm_peak_fraction=%.2f "
          "resnet18_speedup=%.2f" % (key, geo, one["gemm"]["fraction"],
                                     one["resnet18"]["speedup"]))


if __name__ == "__main__":
    main()
