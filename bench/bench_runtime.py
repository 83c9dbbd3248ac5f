"""The standalone runtime (bmxnet.runtime) against MXNet on the same converted files.

A benchmark, not a test. Batch 1, 224x224, random weights (speed does not depend on them):

* the runtime on converted Bi-Real Net-18 and binary ResNet-18 (``bmxnet.runtime.Model``);
* the same binarized files inside MXNet (``gluon.SymbolBlock``, hybridized with
  ``static_alloc``/``static_shape``: MXNet's fastest inference path);
* gluoncv's float ResNet-18 (``resnet18_v1``, random weights, nothing downloaded) in MXNet.

Times: one child process per thread count (1, then 2; MXNet fixes its OpenMP team at start-up,
so OMP_NUM_THREADS is set per child and the runtime gets ``num_threads``), in which the five
engines run interleaved, one inference each per round, for ``--runs`` rounds; median and
minimum per engine. The ratios of the last line use the minimum: on a shared machine the
best run is the one least disturbed by other work.

Memory: each engine alone in its own child process (1 thread), loading its model and running
it five times; the peak resident set of that process (VmHWM: Linux's ``ru_maxrss`` would carry
over the parent's peak across execve). The runtime's child
loads the extension module by its file and never imports MXNet (a phone app has no MXNet
either; ``import bmxnet`` would load it), which the child checks.

The compute limit of Bi-Real Net-18: its binary MACs and float MACs per image
(``bmxnet.summary``) divided by the peaks this CPU reaches with the running kernel path:
xor + popcount + add bit-MACs per second from the kernel core's register-only loop
(``bmxnet_bench_peak``, as bench/bench_qconv.py uses it) and float MACs per second of a large
single-precision matrix product (MXNet's oneDNN sgemm, 1024^3: close to the FMA units' peak;
the kernel core has no float peak loop). Both are measured once per round, between the
engines' runs, and the best round counts, as for the times.

    nice -n 5 python bench/bench_runtime.py            # 40 rounds
    python bench/bench_runtime.py --runs 5             # a smoke run

The last line reads
``runtime_vs_mxnet=<x> runtime_vs_float=<y> limit_ratio=<z> rss_vs_mxnet=<w>``:
Bi-Real-18 at 1 thread, MXNet's time / the runtime's, float ResNet-18's time / the runtime's,
the runtime's time / the compute limit, and the runtime's peak RSS / MXNet's on the same files.
Targets (issue 11): >= 2, >= 5, <= 1.4, <= 0.33.
"""
import argparse
import ctypes
import glob
import importlib.machinery
import importlib.util
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

SHAPE = (1, 3, 224, 224)
BINARY_MODELS = ("birealnet18", "binary_resnet18")
# (engine, model): the five measured configurations
ENGINES = [("runtime", m) for m in BINARY_MODELS] + [("mxnet", m) for m in BINARY_MODELS] + \
    [("mxnet float", "resnet18_v1")]


def prepare(folder):
    """Converted files of the two binary models (random weights and BatchNorm statistics);
    returns {model: (symbol file, params file)} and Bi-Real-18's summary totals."""
    import mxnet as mx

    import bmxnet
    from bmxnet import converter, model_zoo

    files, totals = {}, None
    rng = np.random.RandomState(0)
    for name in BINARY_MODELS:
        net = model_zoo.get_model(name)
        net.initialize(mx.init.Xavier())
        net(mx.nd.array(rng.randn(*SHAPE)))
        for pname, p in net.collect_params().items():
            if pname.endswith(("running_mean", "beta")):
                p.set_data(mx.nd.array(rng.randn(*p.shape) * 0.5))
            elif pname.endswith(("running_var", "gamma")):
                p.set_data(mx.nd.array(rng.uniform(0.5, 2.0, size=p.shape)))
        net.hybridize()
        net(mx.nd.array(rng.randn(*SHAPE)))
        prefix = os.path.join(folder, name)
        net.export(prefix, epoch=0)
        report = converter.convert_checkpoint(prefix + "-0000.params", data_shape=SHAPE)
        files[name] = (report.files["symbol_out"], report.files["params_out"])
        if name == "birealnet18":
            totals = dict(bmxnet.summary(net, SHAPE, print_fn=None).totals)
    return files, totals


def _load(engine, model, files, threads, runtime_module):
    """A function running one inference of ``engine`` on ``model`` (after a warm-up)."""
    x = np.random.RandomState(1).randn(*SHAPE).astype(np.float32)
    if engine == "runtime":
        net = runtime_module.Model(*files[model], input_shapes={"data": SHAPE},
                                   num_threads=threads)
        run = lambda: net.run(x)  # noqa: E731
    else:
        import mxnet as mx
        from mxnet import gluon

        import bmxnet  # noqa: F401  (registers the Q-operators the binarized files use)
        if engine == "mxnet":
            net = gluon.SymbolBlock.imports(files[model][0], ["data"], files[model][1])
        else:
            from gluoncv.model_zoo import get_model
            net = get_model(model)
            net.initialize(mx.init.Xavier())
        net.hybridize(static_alloc=True, static_shape=True)
        xm = mx.nd.array(x)
        run = lambda: net(xm).wait_to_read()  # noqa: E731
    for _ in range(3):
        run()
    return run


def _peak_meters(threads):
    """Two functions, each measuring one peak once (operations per second): bit-MACs of the
    kernel core's register-only xor + popcount + add loop, and float MACs of MXNet's oneDNN
    sgemm (FullyConnected, 1024 x 1024 x 1024), both on ``threads`` threads."""
    import mxnet as mx

    import bmxnet
    lib = ctypes.CDLL(bmxnet.LIB_PATH)
    lib.bmxnet_bench_peak.restype = ctypes.c_double
    lib.bmxnet_bench_peak.argtypes = [ctypes.c_int]
    n = 1024
    a = mx.nd.array(np.random.RandomState(2).rand(n, n))

    def sgemm():
        tic = time.perf_counter()
        mx.nd.FullyConnected(a, a, num_hidden=n, no_bias=True).wait_to_read()
        return n ** 3 / (time.perf_counter() - tic)

    sgemm()  # oneDNN picks and compiles its kernel on the first call
    return lambda: lib.bmxnet_bench_peak(threads), sgemm


def time_worker(threads, files, runs):
    """Interleaved times of the five engines on ``threads`` threads, and the peaks, measured
    in the same rounds (so under the same load: on a shared machine they vary together)."""
    import bmxnet
    import bmxnet.runtime
    fns = [_load(e, m, files, threads, bmxnet.runtime) for e, m in ENGINES]
    binary_meter, float_meter = _peak_meters(threads)
    samples = [[] for _ in fns]
    binary_peaks, float_peaks = [], []
    for r in range(runs):
        for k in range(len(fns)):
            i = (k + r) % len(fns)  # a rotating order, so no engine always follows another
            tic = time.perf_counter()
            fns[i]()
            samples[i].append(time.perf_counter() - tic)
        binary_peaks.append(binary_meter())
        float_peaks.append(float_meter())
    return dict(threads=threads, kernel_path=bmxnet.kernel_path(),
                binary_peak=max(binary_peaks), float_peak=max(float_peaks),
                times={"%s|%s" % em: dict(median_ms=statistics.median(s) * 1e3,
                                          min_ms=min(s) * 1e3)
                       for em, s in zip(ENGINES, samples)})


def _runtime_without_mxnet():
    """bmxnet.runtime's extension module, loaded by its file: bmxnet/__init__ (and MXNet) is
    never imported."""
    package = importlib.util.find_spec("bmxnet").submodule_search_locations[0]
    paths = [p for s in importlib.machinery.EXTENSION_SUFFIXES
             for p in glob.glob(os.path.join(package, "runtime", "_runtime" + s))]
    if not paths:
        sys.exit("bmxnet/runtime/_runtime*.so is not built: run `make build`")
    spec = importlib.util.spec_from_file_location("_runtime", paths[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _peak_rss_bytes():
    """This process's peak resident set. Linux's ru_maxrss survives execve (the child would
    report the larger parent's peak), so it is read as VmHWM, the high-water mark of the
    current address space, which the kernel restarts at execve."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line")


def rss_worker(engine, model, files):
    """Peak resident set (bytes) of a process that loads one engine and runs it five times
    (engine "python": the interpreter with numpy and nothing else, for scale)."""
    if engine == "python":
        return dict(rss_bytes=_peak_rss_bytes())
    runtime_module = _runtime_without_mxnet() if engine == "runtime" else None
    run = _load(engine, model, files, 1, runtime_module)
    for _ in range(2):
        run()
    if engine == "runtime":
        assert "mxnet" not in sys.modules, "the runtime's process imported MXNet"
    return dict(rss_bytes=_peak_rss_bytes())


def _child(args, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MXNET_OMP_MAX_THREADS=str(threads),
               OPENBLAS_NUM_THREADS=str(threads), MXNET_SUBGRAPH_VERBOSE="0")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__)] + args, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("worker %s failed:\n%s" % (args, proc.stderr[-4000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=40, help="interleaved rounds per thread count")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--files", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        files = json.loads(args.files)
        kind, _, rest = args.worker.partition(":")
        if kind == "time":
            result = time_worker(int(rest), files, args.runs)
        else:
            engine, model = rest.split("|")
            result = rss_worker(engine, model, files)
        print(json.dumps(result))
        return

    threads = (1, 2)
    with tempfile.TemporaryDirectory(prefix="bench_runtime_") as folder:
        files, totals = prepare(folder)
        shared = ["--files", json.dumps(files), "--runs", str(args.runs)]
        timings = [_child(["--worker", "time:%d" % t] + shared, t) for t in threads]
        rss = {"%s|%s" % em: _child(["--worker", "rss:%s|%s" % em] + shared, 1)["rss_bytes"]
               for em in ENGINES}
        bare = _child(["--worker", "rss:python|none"] + shared, 1)["rss_bytes"]

    print("bmxnet.kernel_path() = %s" % timings[0]["kernel_path"])
    print("batch 1, 224x224, %d interleaved rounds; peak RSS of each engine alone (1 thread; "
          "Python with numpy alone: %.0f MiB)" % (args.runs, bare / 2 ** 20))
    print()
    print("| engine | model | threads | median ms | min ms | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for timing in timings:
        for em in ENGINES:
            key = "%s|%s" % em
            t = timing["times"][key]
            print("| %s | %s | %d | %.2f | %.2f | %.0f |"
                  % (em[0], em[1], timing["threads"], t["median_ms"], t["min_ms"],
                     rss[key] / 2 ** 20))
    print()
    print("Compute limit of Bi-Real Net-18: %.3f G binary MACs, %.3f G float MACs per image"
          % (totals["binary_macs"] / 1e9, totals["float_macs"] / 1e9))
    print("| threads | peak Gbit-MAC/s | float peak GMAC/s | limit ms | runtime min ms | "
          "runtime / limit |")
    print("| --- | --- | --- | --- | --- | --- |")
    limits = []
    for timing in timings:
        limit = (totals["binary_macs"] / timing["binary_peak"]
                 + totals["float_macs"] / timing["float_peak"]) * 1e3
        got = timing["times"]["runtime|birealnet18"]["min_ms"]
        limits.append(got / limit)
        print("| %d | %.0f | %.1f | %.2f | %.2f | %.2f |"
              % (timing["threads"], timing["binary_peak"] / 1e9, timing["float_peak"] / 1e9,
                 limit, got, got / limit))
    one = timings[0]["times"]
    runtime_ms = one["runtime|birealnet18"]["min_ms"]
    print()
    print("runtime_vs_mxnet=%.2f runtime_vs_float=%.2f limit_ratio=%.2f rss_vs_mxnet=%.2f"
          % (one["mxnet|birealnet18"]["min_ms"] / runtime_ms,
             one["mxnet float|resnet18_v1"]["min_ms"] / runtime_ms, limits[0],
             rss["runtime|birealnet18"] / rss["mxnet|birealnet18"]))


if __name__ == "__main__":
    main()
