"""1-bit inference speed: QConvolution / QFullyConnected against fp32 Convolution / FullyConnected.

A benchmark, not a test. For ResNet-18's 3x3 shapes, a 1x1 shape and a 4096x4096 dense layer it
times, at batch 1 and interleaved in one process, the packed 1-bit operator (weights packed as the
model converter writes them, ``binarized_weights_only=True``; the input is float and its signs are
packed on every call, as in a real network) against MXNet's own fp32 operator (oneDNN) on the same
shape, two ways: throughput (calls pipelined on MXNet's engine, median of >= 20 runs) and latency
(one call at a time, waited for, alternating with the fp32 call; median and minimum). It measures
the binary GEMM's and each layer's bit-MAC/s against the xor + popcount + add peak of this CPU on
the running kernel path (a register-only loop of that path, measured between the rounds of that
layer's or the GEMM's runs, medians against medians), beside the convolution kernel alone (a
prepared plan run without MXNet, also between the rounds) and the time Python takes to issue one
call, and whole networks, batch 1,
224x224, one call at a time the way users run them (plain ``hybridize()``):

* a Gluon ``QConv2D(256, 3, padding=1)`` holding latent float weights vs ``nn.Conv2D``, 14x14;
* Bi-Real Net-18 as trained (latent float weights), the same network converted
  (``convert_checkpoint`` files loaded with ``SymbolBlock.imports``), and gluoncv's float
  ResNet-18;
* binary ResNet-18 (converted) vs float ResNet-18 under ``hybridize(static_alloc=True,
  static_shape=True)``.

Speeds are ratios against baselines measured in the same process; absolute times are printed only
for orientation. Thread counts: the script runs itself once per setting with OMP_NUM_THREADS
fixed (1 thread, then all cores), since MXNet fixes its OpenMP team size at start-up. The
targets of issue 12 (1 thread, stated for AVX2: run with ``BMXNET_KERNEL_PATHS=avx2`` on an
AVX-512 CPU) are printed as met / not met at the end, followed by two measured limits: the call
floor (a QConvolution that does almost no work, against the small 1x1 layer's time) and the
fastest converted Bi-Real-18 this kernel path allows (its 1-bit MACs counted by shape inference
at 100% of the popcount peak, its float MACs at MXNet's float ResNet-18 rate, nothing else),
and what bounds the other two network rows: the fixed cost of one call of a hybridized block
(the same blocks doing almost no work), and the time to read the trained network's latent 1-bit
weights once, which it checks on every call.

    python bench/bench_qconv.py            # both thread settings
    python bench/bench_qconv.py --quick    # fewer repetitions, for a smoke run

The last line reads
``speedup_256x14x14_1thread=<x> geomean=<y> gemm_peak_fraction=<z> resnet18_speedup=<w>
qconv2d_hybridize_speedup=<a> bireal_latent_vs_converted=<b> bireal_converted_speedup=<c>``
(geomean over the layer shapes, one thread).
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


def _interleaved(fns, repeats, min_seconds, between=None, issue=None):
    """Median seconds per call of each fn, measured alternately; with `between`, also the
    medians of the tuple between() returns, called once per round after the fns (baselines
    measured under the same conditions as the fns). A list passed as `issue` receives each fn's
    median seconds per call spent issuing the calls (Python and MXNet's front end, before the
    engine has finished them)."""
    inners = [_timed(fn, min_seconds)[1] for fn in fns]  # warm-up and batch size
    samples = [[] for _ in fns]
    issued = [[] for _ in fns]
    extra = []
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for _ in range(inners[i]):
                out = fn()
            issued[i].append((time.perf_counter() - start) / inners[i])
            out.wait_to_read()
            samples[i].append((time.perf_counter() - start) / inners[i])
        if between is not None:
            extra.append(between())
    medians = [statistics.median(s) for s in samples]
    if issue is not None:
        issue.extend(statistics.median(s) for s in issued)
    if between is None:
        return medians
    return medians + [tuple(statistics.median(v) for v in zip(*extra))]


def _latency(fns, repeats):
    """(median, minimum) seconds of one call of each fn, waited for, the fns alternating."""
    for fn in fns:
        for _ in range(3):
            fn().wait_to_read()
    samples = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn().wait_to_read()
            samples[i].append(time.perf_counter() - start)
    return [(statistics.median(s), min(s)) for s in samples]


def _bench_lib():
    """The plugin's measurement functions: bmxnet_bench_peak (the running path's register-only
    xor + popcount + add rate in bit-MAC/s, the best of 3 short runs, ~50 ms in all),
    bmxnet_bench_bconv2d and bmxnet_bench_bgemm (median seconds, see operators/kernels/bench.h)."""
    import bmxnet

    lib = ctypes.CDLL(bmxnet.LIB_PATH)
    lib.bmxnet_bench_peak.restype = ctypes.c_double
    lib.bmxnet_bench_peak.argtypes = [ctypes.c_int]
    lib.bmxnet_bench_bconv2d.restype = ctypes.c_double
    lib.bmxnet_bench_bconv2d.argtypes = [ctypes.c_int64] * 5 + [ctypes.c_int] * 2
    lib.bmxnet_bench_bgemm.restype = ctypes.c_double
    lib.bmxnet_bench_bgemm.argtypes = [ctypes.c_int64] * 3 + [ctypes.c_int] * 2
    return lib


def bench_layers(threads, repeats, min_seconds):
    import mxnet as mx

    import bmxnet
    from bmxnet.converter import pack_conv_weights, pack_dense_weights

    lib = _bench_lib()
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
        # The peak, and the convolution kernel alone (a prepared plan run without MXNet), are
        # measured between the rounds, so a layer's fraction of the peak compares medians taken
        # under the same conditions (this machine's speed drifts by 1.5x within minutes).
        if kind == "conv":
            between = lambda: (lib.bmxnet_bench_peak(threads),
                               lib.bmxnet_bench_bconv2d(cin, size, cout, k, pad, threads, 20))
        else:
            between = lambda: (lib.bmxnet_bench_peak(threads), float("nan"))
        issue = []
        tb, tf, (tp, tk) = _interleaved([binary, floating], repeats, min_seconds,
                                        between=between, issue=issue)
        (lb, lb_min), (lf, lf_min) = _latency([binary, floating], max(repeats, 50))
        rows.append(dict(label=label, binary_ms=tb * 1e3, float_ms=tf * 1e3, speedup=tf / tb,
                         binary_gmacs=macs / tb / 1e9, float_gmacs=macs / tf / 1e9,
                         peak_gbitmacs=tp / 1e9, peak_fraction=macs / tb / tp,
                         kernel_ms=tk * 1e3, kernel_peak_fraction=macs / tk / tp,
                         issue_binary_ms=issue[0] * 1e3, issue_float_ms=issue[1] * 1e3,
                         lat_binary_ms=lb * 1e3, lat_binary_min_ms=lb_min * 1e3,
                         lat_float_ms=lf * 1e3, lat_float_min_ms=lf_min * 1e3,
                         lat_speedup=lf / lb))
    # The cost of a call that does almost no work (1 pixel, 1 filter, 64 input channels): what
    # MXNet's operator dispatch and the operator's fixed work take, for the small-layer rows.
    x = mx.nd.array(rng.randn(1, 64, 1, 1))
    wf = mx.nd.array(rng.randn(1, 64, 1, 1))
    wp = mx.nd.array(pack_conv_weights(wf.asnumpy()), dtype="int64")
    tiny = dict(num_filter=1, kernel=(1, 1), no_bias=True)
    (fb, fb_min), (ff, ff_min) = _latency(
        [lambda: mx.nd.QConvolution(x, wp, binarized_weights_only=True, in_channels=64, **tiny),
         lambda: mx.nd.Convolution(x, wf, **tiny)], max(repeats, 50))
    floor = dict(binary_ms=fb * 1e3, binary_min_ms=fb_min * 1e3, float_ms=ff * 1e3,
                 float_min_ms=ff_min * 1e3)
    return rows, floor, bmxnet.kernel_path()


def bench_gemm(threads):
    """Binary GEMM bit-MAC/s (M=256, N=196, K=2304 bits) against the measured peak."""
    lib = _bench_lib()
    M, N, K = 256, 196, 2304
    gemm, peak = [], []
    for _ in range(5):  # alternately, medians
        gemm.append(M * N * K / lib.bmxnet_bench_bgemm(M, N, K, threads, 50))
        peak.append(lib.bmxnet_bench_peak(threads))
    gemm, peak = statistics.median(gemm), statistics.median(peak)
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


def network_macs(sym, data_shape):
    """(1-bit MACs, other MACs) of the convolution and dense layers of ``sym`` (latent weights)
    for one input of ``data_shape``: output elements x inputs per output, from MXNet's shape
    inference; 1-bit means act_bit = weight_bit = 1."""
    internals = sym.get_internals()
    shapes = dict(zip(internals.list_outputs(),
                      internals.infer_shape(data=data_shape)[1]))
    args = dict(zip(sym.list_arguments(), sym.infer_shape(data=data_shape)[0]))
    binary = other = 0
    nodes = json.loads(sym.tojson())["nodes"]
    for node in nodes:
        if node["op"] not in ("Convolution", "QConvolution", "FullyConnected", "QFullyConnected"):
            continue
        attrs = node.get("attrs", {})
        weight = args[nodes[node["inputs"][1][0]]["name"]]
        macs = int(np.prod(shapes[node["name"] + "_output"][1:])) * int(np.prod(weight[1:]))
        if node["op"].startswith("Q") and attrs.get("act_bit") == "1" and \
                attrs.get("weight_bit", "1") == "1":
            binary += macs
        else:
            other += macs
    return binary, other


def bench_networks(repeats):
    """Latency (median, min ms) of whole networks run as users run them: plain hybridize()."""
    import mxnet as mx
    from gluoncv.model_zoo import get_model as gluoncv_model
    from mxnet import gluon

    import bmxnet.model_zoo
    from bmxnet.converter import convert_checkpoint
    from bmxnet.gluon import QConv2D

    out = {}
    x = mx.nd.array(np.random.RandomState(2).randn(1, 256, 14, 14))
    x1 = mx.nd.array(np.random.RandomState(2).randn(1, 256, 1, 1))
    layers = []
    # The layers, and the same layers doing almost no work (1 filter, 1 pixel): the fixed cost of
    # one call of a hybridized block.
    for channels, size in ((256, 3), (1, 1)):
        for cls in (QConv2D, gluon.nn.Conv2D):
            layer = cls(channels, size, padding=size // 2, in_channels=256)
            layer.initialize(mx.init.Xavier())  # QConv2D: latent float weights, as training leaves
            layer.hybridize()
            layers.append(layer)
    (qb, qb_min), (qf, qf_min), (tb, _), (tf, _) = _latency(
        [lambda: layers[0](x), lambda: layers[1](x), lambda: layers[2](x1),
         lambda: layers[3](x1)], max(repeats, 50))
    out["qconv2d"] = dict(binary_ms=qb * 1e3, binary_min_ms=qb_min * 1e3, float_ms=qf * 1e3,
                          float_min_ms=qf_min * 1e3, speedup=qf / qb, tiny_binary_ms=tb * 1e3,
                          tiny_float_ms=tf * 1e3)

    x = mx.nd.array(np.random.RandomState(1).randn(1, 3, 224, 224))
    latent = bmxnet.model_zoo.get_model("birealnet18")
    latent.initialize(mx.init.Xavier())
    latent.hybridize()
    latent(x).wait_to_read()
    bireal_binary, bireal_other = network_macs(latent(mx.sym.var("data")), x.shape)
    with tempfile.TemporaryDirectory() as tmp:  # the converted files, loaded as a user would
        prefix = os.path.join(tmp, "birealnet18")
        latent.export(prefix)
        files = convert_checkpoint(prefix + "-0000.params", data_shape=(1, 3, 224, 224)).files
        converted = gluon.SymbolBlock.imports(files["symbol_out"], ["data"], files["params_out"])
        with open(files["symbol_out"]) as f:
            converted_ops = sum(n["op"] != "null" for n in json.load(f)["nodes"])
    converted.hybridize()
    floating = gluoncv_model("resnet18_v1")
    floating.initialize(mx.init.Xavier())
    floating.hybridize()
    _, float_macs = network_macs(floating(mx.sym.var("data")), x.shape)
    diff = float(np.abs(latent(x).asnumpy() - converted(x).asnumpy()).max())
    # What the trained network reads on every call to check its packed weights are current: the
    # latent float weights of its 1-bit layers. Reading them once (numpy sums, from memory as in
    # the network: more bytes than the L3 cache) is the least that check can cost.
    one_bit = [p.data().asnumpy() for name, p in latent.collect_params().items()
               if name.endswith("weight") and "qconv" in name]
    reads = []
    for _ in range(max(repeats, 10)):
        start = time.perf_counter()
        for w in one_bit:
            w.sum()
        reads.append(time.perf_counter() - start)
    weight_bytes = sum(w.nbytes for w in one_bit)
    (lt, lt_min), (cv, cv_min), (fl, fl_min) = _latency(
        [lambda: latent(x), lambda: converted(x), lambda: floating(x)], max(repeats, 10))
    out["bireal"] = dict(latent_ms=lt * 1e3, latent_min_ms=lt_min * 1e3, converted_ms=cv * 1e3,
                         converted_min_ms=cv_min * 1e3, float_ms=fl * 1e3,
                         float_min_ms=fl_min * 1e3, latent_vs_converted=lt / cv,
                         converted_speedup=fl / cv, max_abs_diff=diff,
                         binary_macs=bireal_binary, other_macs=bireal_other,
                         float_macs=float_macs, converted_ops=converted_ops,
                         weight_bytes=weight_bytes, weight_read_ms=statistics.median(reads) * 1e3)
    return out


def run_one(threads, repeats, min_seconds):
    layers, floor, path = bench_layers(threads, repeats, min_seconds)
    gemm = bench_gemm(threads)
    return dict(threads=threads, path=path, layers=layers, floor=floor, gemm=gemm,
                networks=bench_networks(repeats),
                resnet18=bench_resnet18(max(5, repeats // 2), min_seconds))


def _targets(one):
    """Issue 12's targets (one thread; stated for AVX2) as (text, met) pairs."""
    rows = {row["label"]: row for row in one["layers"]}
    net = one["networks"]
    out = []
    for label, row in rows.items():
        if label.startswith("conv3x3"):
            out.append(("%s at >= 60%% of the popcount peak: %.0f%% (the kernel alone %.0f%%)"
                        % (label, 100 * row["peak_fraction"], 100 * row["kernel_peak_fraction"]),
                        row["peak_fraction"] >= 0.60))
    one_by_one = rows["conv1x1 256ch 14x14"]
    out.append(("conv1x1 256ch 14x14 >= 3x fp32 (pipelined, as issue 12 measured it): %.2fx "
                "(the kernel alone %.2fx); one call at a time %.2fx, most of it the call floor "
                "below" % (one_by_one["speedup"], one_by_one["float_ms"] / one_by_one["kernel_ms"],
                           one_by_one["lat_speedup"]),
                one_by_one["speedup"] >= 3))
    out.append(("QConv2D latent, plain hybridize() >= 3x nn.Conv2D (256ch 14x14): %.2fx"
                % net["qconv2d"]["speedup"], net["qconv2d"]["speedup"] >= 3))
    b = net["bireal"]
    out.append(("Bi-Real-18 trained network within 1.2x of the converted files: %.2fx"
                % b["latent_vs_converted"], b["latent_vs_converted"] <= 1.2))
    out.append(("converted Bi-Real-18 >= 3.5x faster than float ResNet-18: %.2fx"
                % b["converted_speedup"], b["converted_speedup"] >= 3.5))
    return out


def bireal_bound(one):
    """What the fastest possible converted Bi-Real-18 would be on this kernel path: its 1-bit
    MACs at 100% of the measured popcount peak, its other MACs (the float stem, the 1x1
    shortcut convolutions, the classifier) at the MAC rate MXNet reaches on float ResNet-18, and
    nothing else (no BatchNorm, activations, additions, packing). Returns (ms, speedup bound)."""
    b = one["networks"]["bireal"]
    float_rate = b["float_macs"] / (b["float_min_ms"] / 1e3)  # MAC/s of MXNet's float convs
    seconds = b["binary_macs"] / (one["gemm"]["peak_gbitmacs"] * 1e9) + b["other_macs"] / float_rate
    return seconds * 1e3, b["float_min_ms"] / (seconds * 1e3)


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
    print("Throughput (pipelined calls) and latency (one call at a time, alternating with fp32; "
          "median / min):")
    print("| shape | threads | 1-bit ms | fp32 ms | speedup | 1-bit GMAC/s | peak | of peak | "
          "kernel alone ms (of peak) | issue ms 1-bit / fp32 | fp32 GMAC/s | 1-bit latency ms | "
          "fp32 latency ms | latency speedup |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        for row in r["layers"]:
            print("| {label} | {t} | {binary_ms:.3f} | {float_ms:.3f} | {speedup:.2f}x | "
                  "{binary_gmacs:.0f} | {peak_gbitmacs:.0f} | {peak_fraction:.0%} | "
                  "{kernel_ms:.3f} ({kernel_peak_fraction:.0%}) | "
                  "{issue_binary_ms:.3f} / {issue_float_ms:.3f} | {float_gmacs:.1f} | "
                  "{lat_binary_ms:.3f} / {lat_binary_min_ms:.3f} | "
                  "{lat_float_ms:.3f} / {lat_float_min_ms:.3f} | {lat_speedup:.2f}x |"
                  .format(t=r["threads"], **row))
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
    print()
    print("Networks, batch 1, plain hybridize(), latency median / min ms:")
    print("| threads | QConv2D latent | nn.Conv2D | speedup | Bi-Real-18 trained | "
          "Bi-Real-18 converted | float ResNet-18 | trained / converted | "
          "float / converted |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        q, b = r["networks"]["qconv2d"], r["networks"]["bireal"]
        print("| %d | %.3f / %.3f | %.3f / %.3f | %.2fx | %.1f / %.1f | %.1f / %.1f | "
              "%.1f / %.1f | %.2fx | %.2fx |"
              % (r["threads"], q["binary_ms"], q["binary_min_ms"], q["float_ms"],
                 q["float_min_ms"], q["speedup"], b["latent_ms"], b["latent_min_ms"],
                 b["converted_ms"], b["converted_min_ms"], b["float_ms"], b["float_min_ms"],
                 b["latent_vs_converted"], b["converted_speedup"]))
    one = results[0]
    print()
    print("Targets of issue 12 (1 thread, kernel path %s; the targets are stated for avx2):"
          % one["path"])
    for text, met in _targets(one):
        print("  %-8s %s" % ("met" if met else "NOT MET", text))
    one_by_one = next(row for row in one["layers"] if row["label"] == "conv1x1 256ch 14x14")
    f = one["floor"]
    print("Small layers and the call floor: a QConvolution that does almost no work (1 pixel, "
          "1 filter) takes %.3f ms (median; min %.3f), a Convolution %.3f ms (min %.3f); "
          "conv1x1 256ch 14x14 takes %.3f ms 1-bit, %.3f ms fp32 (latency medians), so the "
          "1-bit call floor is %.0f%% of that layer's time."
          % (f["binary_ms"], f["binary_min_ms"], f["float_ms"], f["float_min_ms"],
             one_by_one["lat_binary_ms"], one_by_one["lat_float_ms"],
             100 * f["binary_ms"] / one_by_one["lat_binary_ms"]))
    b = one["networks"]["bireal"]
    bound_ms, bound = bireal_bound(one)
    print("Why Bi-Real-18 vs float ResNet-18 is bounded: %.2f G 1-bit MACs at 100%% of the %.0f "
          "Gbit-MAC/s popcount peak, plus %.2f G float MACs at the %.1f GMAC/s MXNet reaches on "
          "float ResNet-18 (%.2f G MACs in %.1f ms), take %.1f ms with nothing else counted: at "
          "most %.2fx on this kernel path (measured %.2fx, %.0f%% of that bound). The converted "
          "network's %.1f ms (minimum) beyond that bound are its %d operators' other work "
          "(BatchNorm, sign, additions, pooling), MXNet's cost per operator (the call floor "
          "above) and the 1-bit layers below peak."
          % (b["binary_macs"] / 1e9, one["gemm"]["peak_gbitmacs"], b["other_macs"] / 1e9,
             b["float_macs"] / b["float_min_ms"] / 1e6, b["float_macs"] / 1e9,
             b["float_min_ms"], bound_ms, bound, b["converted_speedup"],
             100 * b["converted_speedup"] / bound, b["converted_min_ms"] - bound_ms,
             b["converted_ops"]))
    print("What MXNet adds to a 1-bit layer: the kernel alone (a prepared plan run without MXNet, "
          "measured between the same rounds) against the pipelined operator calls, and what "
          "issuing one call from Python costs (calls only overlap with the work before them, so "
          "a layer cannot be faster than its issue time):")
    for row in one["layers"]:
        if row["label"].startswith("conv"):
            print("  %s: kernel %.3f ms, operator %.3f ms (%+.3f ms); issuing a call %.3f ms "
                  "(fp32 Convolution %.3f ms)"
                  % (row["label"], row["kernel_ms"], row["binary_ms"],
                     row["binary_ms"] - row["kernel_ms"], row["issue_binary_ms"],
                     row["issue_float_ms"]))
    q = one["networks"]["qconv2d"]
    print("Why QConv2D vs nn.Conv2D (plain hybridize, one call at a time) is bounded: the same "
          "blocks doing almost no work (1 filter, 1 pixel) take %.3f ms (QConv2D) and %.3f ms "
          "(nn.Conv2D) per call, MXNet's fixed cost of a call; beyond it the 256ch layers take "
          "%.3f ms and %.3f ms, %.2fx. With that fixed cost the whole call can be at most %.2fx "
          "(nn.Conv2D's time over the fixed cost alone), measured %.2fx."
          % (q["tiny_binary_ms"], q["tiny_float_ms"], q["binary_ms"] - q["tiny_binary_ms"],
             q["float_ms"] - q["tiny_float_ms"],
             (q["float_ms"] - q["tiny_float_ms"]) / (q["binary_ms"] - q["tiny_binary_ms"]),
             q["float_ms"] / q["tiny_binary_ms"], q["speedup"]))
    print("Why the trained Bi-Real-18 is slower than the converted files: on every call (plain "
          "hybridize() keeps no operator state) it checks that its packed weights are current, "
          "which reads the %.1f MB of latent float weights of its 1-bit layers; reading them "
          "once takes %.1f ms here (numpy sums, median), so the trained network needs at least "
          "the converted one's %.1f ms plus that: at best %.2fx (measured %.2fx)."
          % (b["weight_bytes"] / 1e6, b["weight_read_ms"], b["converted_ms"],
             (b["converted_ms"] + b["weight_read_ms"]) / b["converted_ms"],
             b["latent_vs_converted"]))
    if one["networks"]["bireal"]["max_abs_diff"] != 0:
        print("  WARNING: the converted Bi-Real-18 differs from the trained one by %g"
              % one["networks"]["bireal"]["max_abs_diff"])
    key = next(row["speedup"] for row in one["layers"] if row["label"] == KEY_SHAPE)
    geo = float(np.exp(np.mean([np.log(row["speedup"]) for row in one["layers"]])))
    net = one["networks"]
    print("speedup_256x14x14_1thread=%.2f geomean=%.2f gemm_peak_fraction=%.2f "
          "resnet18_speedup=%.2f qconv2d_hybridize_speedup=%.2f bireal_latent_vs_converted=%.2f "
          "bireal_converted_speedup=%.2f"
          % (key, geo, one["gemm"]["fraction"], one["resnet18"]["speedup"],
             net["qconv2d"]["speedup"], net["bireal"]["latent_vs_converted"],
             net["bireal"]["converted_speedup"]))


if __name__ == "__main__":
    main()
