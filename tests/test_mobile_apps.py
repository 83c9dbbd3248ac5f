"""The mobile apps' native parts on this machine: ``mobile/examples/classify`` (C99 on the
runtime's public header) on x86 and under qemu-aarch64, and the Android binding
(``org.bmxnet.BmxnetModel`` + ``libbmxnet_jni.so``) on the desktop JVM.

Model: the ``make demo`` binary LeNet (smd_hpi_examples/binary_mnist), trained one epoch on
scikit-learn's digits (about 2 s, accuracy ~0.9) and converted with ``model_converter``.

References (independent of the code under test):
* the preprocessing is recomputed here in numpy (nearest: ``floor((i + 0.5) * in / out)``;
  bilinear: ``mnist_data._bilinear_matrix``, the demo's own resampling matrices);
* scores: ``bmxnet.runtime`` (the Cython binding of the same library, same kernels) must give
  the same float32 values bit for bit on the same input; MXNet on the same binarized files must
  agree within the bound of tests/test_runtime.py (``2e-5 * max|mxnet| + 1e-6``) and give the
  same top class.
* under qemu-aarch64 the NEON kernels sum the float layers in another order: the same bound
  against MXNet, and the same top classes.

Builds: ``build/mobile`` (host, with the JNI library) and ``build/mobile-aarch64`` (static,
cross-compiled), both incremental: the first run compiles the runtime (about 35 s each on 2
cores), later runs only what changed. Tools that are missing are installed only when running
as root with apt-get (as tests/cpp/run_aarch64.sh does); otherwise the test is skipped.
"""
import os
import re
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "smd_hpi_examples", "binary_mnist")
EXAMPLES_SRC = os.path.join(ROOT, "mobile", "examples")
ANDROID = os.path.join(ROOT, "mobile", "android")
HOST_BUILD = os.path.join(ROOT, "build", "mobile")
ARM_BUILD = os.path.join(ROOT, "build", "mobile-aarch64")
SHAPE = (1, 1, 28, 28)
JOBS = "-j2"


def _run(cmd, timeout=600, **kwargs):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kwargs)


def _checked(cmd, what, **kwargs):
    proc = _run(["nice", "-n", "5"] + cmd, **kwargs)
    if proc.returncode != 0:
        pytest.fail("%s failed (%d):\n%s" % (what, proc.returncode, proc.stdout[-6000:]),
                    pytrace=False)
    return proc


def _close(got, want):
    """The float bound of tests/test_runtime.py."""
    got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    bound = 2e-5 * float(np.abs(want).max()) + 1e-6
    diff = float(np.abs(got - want).max())
    assert diff <= bound, "max |got - mxnet| = %g > %g" % (diff, bound)


def _mxnet(symbol_file, params_file, x):
    import mxnet as mx
    from mxnet import gluon
    import bmxnet  # noqa: F401  (registers the Q-operators)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        block = gluon.SymbolBlock.imports(symbol_file, ["data"], params_file)
    return block(mx.nd.array(x)).asnumpy()


def _runtime(symbol_file, params_file, x):
    import bmxnet.runtime
    model = bmxnet.runtime.Model(symbol_file, params_file, input_shapes={"data": SHAPE})
    return np.concatenate([model.run(x[i:i + 1]) for i in range(len(x))])


def _write_pnm(path, pixels):
    """pixels: uint8 (H, W) -> P5, (H, W, 3) -> P6."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    magic = b"P5" if pixels.ndim == 2 else b"P6"
    with open(path, "wb") as f:
        f.write(b"%s\n# written by test_mobile_apps.py\n%d %d\n255\n" % (magic, pixels.shape[1],
                                                                        pixels.shape[0]))
        f.write(pixels.tobytes())


def _parse(stdout):
    """classify's top-k lines -> (classes, float32 scores), and the median latency in ms."""
    rows = re.findall(r"^\s+\d+\. class (\d+)  score (\S+)$", stdout, re.M)
    latency = re.search(r"^latency: median ([0-9.]+) ms over (\d+) runs", stdout, re.M)
    assert rows and latency, stdout
    return ([int(c) for c, _ in rows], np.array([float(s) for _, s in rows], np.float32),
            float(latency.group(1)))


def _cmake_configure(build, extra):
    os.makedirs(build, exist_ok=True)
    _checked(["cmake", "-S", EXAMPLES_SRC, "-B", build, "-DCMAKE_BUILD_TYPE=Release"] + extra,
             "cmake configure of mobile/examples in %s" % build)


# ------------------------------------------------------------------------------------------
# Fixtures: the host build, the digits model, test images
# ------------------------------------------------------------------------------------------
def _have_jdk():
    return shutil.which("javac") is not None and shutil.which("java") is not None


@pytest.fixture(scope="module")
def host_build():
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    _cmake_configure(HOST_BUILD, ["-DBMX_EXAMPLES_JNI=%s" % ("ON" if _have_jdk() else "OFF")])
    targets = ["classify", "cbmxnet_shim"] + (["bmxnet_jni"] if _have_jdk() else [])
    _checked(["cmake", "--build", HOST_BUILD, JOBS, "--target"] + targets, "host build")
    return HOST_BUILD


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The make-demo model trained one epoch, converted, and four test images (different digits)
    that MXNet classifies correctly on the converted files."""
    sys.path.insert(0, EXAMPLE)
    import binary_mnist
    from bmxnet import converter
    folder = str(tmp_path_factory.mktemp("digits"))
    trained = binary_mnist.main(["--epochs", "1", "--out-dir", folder, "--no-progress"])
    report = converter.convert_checkpoint(trained["params_file"], data_shape=SHAPE)
    symbol, params = report.files["symbol_out"], report.files["params_out"]
    # a few test images the model classifies correctly, of different digits
    x, y = trained["x_test"], trained["y_test"]
    want = _mxnet(symbol, params, x)
    picks, seen = [], set()
    for i in np.flatnonzero(want.argmax(1) == y):
        if y[i] not in seen:
            seen.add(y[i])
            picks.append(int(i))
        if len(picks) == 4:
            break
    return {"symbol": symbol, "params": params, "x": x[picks], "y": y[picks]}


def _as_uint8(img):
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _classify(build, digits, image, *flags, runner=(), env=None):
    exe = os.path.join(build, "classify")
    return _run(list(runner) + [exe, digits["symbol"], digits["params"], image] + list(flags),
                timeout=300, env=env)


# ------------------------------------------------------------------------------------------
# classify on x86
# ------------------------------------------------------------------------------------------
def test_classify_digits_x86(host_build, digits, tmp_path):
    pixels = [_as_uint8(img[0]) for img in digits["x"]]
    # the exact float32 input classify makes with its defaults (scale 1/255, identity resize)
    inputs = np.stack([(p.astype(np.float64) * (1.0 / 255.0)).astype(np.float32)[None]
                       for p in pixels])
    want_rt = _runtime(digits["symbol"], digits["params"], inputs)
    want_mx = _mxnet(digits["symbol"], digits["params"], inputs)
    for i, p in enumerate(pixels):
        path = str(tmp_path / ("digit%d.pgm" % i))
        _write_pnm(path, p)
        proc = _classify(host_build, digits, path, "--runs", "5")
        assert proc.returncode == 0, proc.stdout
        classes, scores, latency = _parse(proc.stdout)
        order = list(np.argsort(-want_rt[i], kind="stable")[:5])
        assert classes == order, (classes, order, proc.stdout)
        np.testing.assert_array_equal(scores, want_rt[i][order])  # same engine: bit for bit
        _close(scores, want_mx[i][order])
        assert classes[0] == want_mx[i].argmax() == digits["y"][i]
        assert latency > 0.0
        assert "over 5 runs" in proc.stdout


def _nearest(img, h, w):
    ys = np.minimum(np.floor((np.arange(h) + 0.5) * img.shape[0] / h).astype(int),
                    img.shape[0] - 1)
    xs = np.minimum(np.floor((np.arange(w) + 0.5) * img.shape[1] / w).astype(int),
                    img.shape[1] - 1)
    return img[ys][:, xs]


def _bilinear(img, h, w):
    sys.path.insert(0, EXAMPLE)
    from mnist_data import _bilinear_matrix
    return _bilinear_matrix(img.shape[0], h) @ img @ _bilinear_matrix(img.shape[1], w).T


def test_classify_resizes_and_normalises(host_build, digits, tmp_path):
    """A 61x47 RGB version of a digit (P6): luma, then nearest or bilinear to 28x28, then
    (x * scale - mean) / std; checked against the numpy reference of the same steps."""
    base = digits["x"][0, 0].astype(np.float64)
    big = _bilinear(base, 61, 47)
    rgb = _as_uint8(np.stack([big, big * 0.5, big * 0.8], axis=-1))
    path = str(tmp_path / "digit.ppm")
    _write_pnm(path, rgb)
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    scale, mean, std = 1.0 / 255.0, 0.1, 0.5
    for mode, resize in (("nearest", _nearest), ("bilinear", _bilinear)):
        x = ((resize(luma, 28, 28) * scale - mean) / std).astype(np.float32)[None, None]
        want_mx = _mxnet(digits["symbol"], digits["params"], x)[0]
        proc = _classify(host_build, digits, path, "--resize", mode, "--mean", str(mean),
                         "--std", str(std), "--scale", repr(scale), "--top", "10", "--runs", "1")
        assert proc.returncode == 0, proc.stdout
        assert "47x61 RGB, %s" % mode in proc.stdout, proc.stdout
        classes, scores, _ = _parse(proc.stdout)
        assert len(classes) == 10 and sorted(classes) == list(range(10))
        assert classes[0] == want_mx.argmax(), mode
        _close(scores, want_mx[classes])


def _rgb_model(folder):
    """A small float model with a 3-channel input (convolution 3->4, dense 10): the runtime runs
    float layers too; enough to check the per-channel preprocessing."""
    import mxnet as mx
    rng = np.random.RandomState(5)
    data = mx.sym.var("data")
    net = mx.sym.Convolution(data, num_filter=4, kernel=(3, 3), name="conv")
    net = mx.sym.FullyConnected(mx.sym.Flatten(mx.sym.Activation(net, act_type="relu")),
                                num_hidden=10, name="fc")
    symbol = os.path.join(folder, "rgb-symbol.json")
    params = os.path.join(folder, "rgb-0000.params")
    net.save(symbol)
    mx.nd.save(params, {"arg:conv_weight": mx.nd.array(rng.randn(4, 3, 3, 3)),
                        "arg:conv_bias": mx.nd.array(rng.randn(4)),
                        "arg:fc_weight": mx.nd.array(rng.randn(10, 4 * 14 * 14) * 0.1),
                        "arg:fc_bias": mx.nd.array(rng.randn(10))})
    return symbol, params


def test_classify_rgb_model_per_channel(host_build, tmp_path):
    """--shape 1,3,16,16 with per-channel --mean/--std, on an RGB PPM and on a grey PGM
    (replicated into the 3 channels), against numpy preprocessing + MXNet."""
    symbol, params = _rgb_model(str(tmp_path))
    rng = np.random.RandomState(6)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    flags = ["--shape", "1,3,16,16", "--mean", "0.485,0.456,0.406", "--std",
             "0.229,0.224,0.225", "--resize", "nearest", "--top", "3", "--runs", "1"]
    rgb = rng.randint(0, 256, size=(32, 24, 3)).astype(np.uint8)
    grey = rng.randint(0, 256, size=(16, 16)).astype(np.uint8)
    for name, pixels in (("rgb.ppm", rgb), ("grey.pgm", grey)):
        path = str(tmp_path / name)
        _write_pnm(path, pixels)
        chw = pixels.transpose(2, 0, 1) if pixels.ndim == 3 else np.stack([pixels] * 3)
        small = np.stack([_nearest(c.astype(np.float64), 16, 16) for c in chw])
        x = ((small / 255.0 - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cannot decide type")
            from mxnet import gluon
            import mxnet as mx
            want = gluon.SymbolBlock.imports(symbol, ["data"], params)(
                mx.nd.array(x[None])).asnumpy()[0]
        proc = _run([os.path.join(host_build, "classify"), symbol, params, path] + flags)
        assert proc.returncode == 0, proc.stdout
        classes, scores, _ = _parse(proc.stdout)
        assert classes == list(np.argsort(-want, kind="stable")[:3]), (name, proc.stdout, want)
        _close(scores, want[classes])


HOSTILE = [
    ("ascii.pgm", b"P2\n2 2\n255\n0 1 2 3\n", "not a binary PGM (P5) or PPM (P6)"),
    ("png.pgm", b"\x89PNG\r\n\x1a\n" + b"\0" * 32, "not a binary PGM (P5) or PPM (P6)"),
    ("empty.pgm", b"", "not a binary PGM (P5) or PPM (P6)"),
    ("huge.pgm", b"P5\n99999999999999999999 2\n255\n", "width is larger than 16384"),
    ("wide.pgm", b"P5 16385 1 255\n", "width is larger than 16384"),
    ("zero.pgm", b"P5\n0 4\n255\n", "width is 0"),
    ("negative.pgm", b"P5\n-4 4\n255\n", "width is missing or not a number"),
    ("maxval.pgm", b"P5\n2 2\n65536\n" + b"\0" * 8, "maxval is larger than 65535"),
    ("nomax.pgm", b"P5\n2 2\n", "maxval is missing"),
    ("glued.pgm", b"P5\n2 2\n255x\0\0\0\0", "not followed by whitespace"),
    ("short.pgm", b"P5\n28 28\n255\n" + b"\x80" * 100, "truncated"),
    ("short16.ppm", b"P6\n4 4\n1000\n" + b"\0" * 95, "needs 96 bytes of pixels, but only 95"),
    ("comments.pgm", b"P5\n#" + b"x" * 100000, "width is missing"),
]


@pytest.mark.parametrize("name,data,message", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_classify_refuses_hostile_images(host_build, digits, tmp_path, name, data, message):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(data)
    proc = _classify(host_build, digits, path)
    assert proc.returncode == 2, proc.stdout  # an error exit, not a crash (signal < 0)
    assert message in proc.stdout, proc.stdout
    assert path in proc.stdout


def test_classify_usage_and_model_errors(host_build, digits, tmp_path):
    path = str(tmp_path / "digit.pgm")
    _write_pnm(path, _as_uint8(digits["x"][0, 0]))
    for flags, message in ((["--shape", "1,2,28,28"], "C = 1 or 3"),
                           (["--shape", "2,1,28,28"], "N = 1"),
                           (["--runs", "0"], "--runs 0"),
                           (["--mean", "1,2"], "one number or three"),
                           (["--std", "0"], "none zero"),
                           (["--mean", "0.4,0.4,0.4"], "give one value"),
                           (["--resize", "cubic"], "bilinear or nearest"),
                           (["--colour"], "needs a value"),
                           (["--colour", "x"], "unknown option --colour")):
        proc = _classify(host_build, digits, path, *flags)
        assert proc.returncode == 2 and message in proc.stdout, (flags, proc.stdout)
    bad = str(tmp_path / "bad.params")
    with open(digits["params"], "rb") as f:
        raw = f.read()
    with open(bad, "wb") as f:
        f.write(raw[:len(raw) // 2])
    proc = _run([os.path.join(host_build, "classify"), digits["symbol"], bad, path])
    assert proc.returncode == 1 and "BMX_ERROR_FORMAT" in proc.stdout, proc.stdout
    for flags, status, message in ((["--input", "image"], "BMX_ERROR_INVALID_ARGUMENT", "data"),
                                   (["--kernel-path", "gpu"], "BMX_ERROR", "gpu")):
        proc = _classify(host_build, digits, path, *flags)
        assert proc.returncode == 1 and status in proc.stdout and message in proc.stdout, \
            proc.stdout


# ------------------------------------------------------------------------------------------
# classify under qemu-aarch64
# ------------------------------------------------------------------------------------------
def _find_qemu():
    return shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")


def _aarch64_tools():
    """(qemu path) once the cross toolchain and qemu are there; installs them as root."""
    need = ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++")
    if all(shutil.which(t) for t in need) and _find_qemu():
        return _find_qemu()
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "g++-aarch64-linux-gnu",
                     "gcc-aarch64-linux-gnu", "qemu-user"]):
            if _run(cmd, env=env).returncode != 0:
                break
        if all(shutil.which(t) for t in need) and _find_qemu():
            return _find_qemu()
    pytest.skip("the aarch64 cross compilers or qemu-aarch64 are missing and cannot be installed "
                "(need root and apt-get): apt-get install g++-aarch64-linux-gnu "
                "gcc-aarch64-linux-gnu qemu-user")


def test_classify_aarch64_qemu(digits, tmp_path):
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed")
    qemu = _aarch64_tools()
    gomp = _run(["aarch64-linux-gnu-g++", "-print-file-name=libgomp.a"]).stdout.strip()
    _cmake_configure(ARM_BUILD, [
        "-DCMAKE_TOOLCHAIN_FILE=%s" % os.path.join(ROOT, "tests", "cpp",
                                                   "aarch64_toolchain.cmake"),
        "-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc", "-DOpenMP_gomp_LIBRARY=%s" % gomp])
    _checked(["cmake", "--build", ARM_BUILD, JOBS, "--target", "classify"], "aarch64 build")
    exe = os.path.join(ARM_BUILD, "classify")
    info = _run(["file", "-b", exe]).stdout if shutil.which("file") else "ARM aarch64"
    assert "aarch64" in info, info
    pixels = [_as_uint8(img[0]) for img in digits["x"]]
    inputs = np.stack([(p.astype(np.float64) * (1.0 / 255.0)).astype(np.float32)[None]
                       for p in pixels])
    want_mx = _mxnet(digits["symbol"], digits["params"], inputs)
    env = dict(os.environ, OMP_WAIT_POLICY="passive")
    for i, p in enumerate(pixels):
        path = str(tmp_path / ("digit%d.pgm" % i))
        _write_pnm(path, p)
        for threads in ("1", "2"):
            proc = _classify(ARM_BUILD, digits, path, "--runs", "3", "--threads", threads,
                             runner=[qemu], env=env)
            assert proc.returncode == 0, proc.stdout
            classes, scores, _ = _parse(proc.stdout)
            order = list(np.argsort(-want_mx[i], kind="stable")[:5])
            assert classes[0] == order[0] == digits["y"][i], (classes, order)
            _close(scores, want_mx[i][classes])
    # a hostile header is refused there too
    bad = str(tmp_path / "bad.pgm")
    with open(bad, "wb") as f:
        f.write(b"P5\n28 28\n255\n" + b"\0" * 10)
    proc = _run([qemu, exe, digits["symbol"], digits["params"], bad], env=env)
    assert proc.returncode == 2 and "truncated" in proc.stdout, proc.stdout


# ------------------------------------------------------------------------------------------
# The Android binding on the desktop JVM
# ------------------------------------------------------------------------------------------
def test_java_binding_matches_python(host_build, digits, tmp_path):
    if not _have_jdk():
        pytest.skip("javac/java (a JDK 8+) are not installed: apt-get install "
                    "openjdk-17-jdk-headless")
    classes = str(tmp_path / "classes")
    sources = [os.path.join(ANDROID, "java", "org", "bmxnet", n)
               for n in ("BmxnetModel.java", "BmxnetException.java")]
    sources.append(os.path.join(ANDROID, "test", "org", "bmxnet", "BmxnetModelTest.java"))
    _checked(["javac", "-Xlint:all", "-Werror", "-d", classes] + sources, "javac")
    x = digits["x"].astype(np.float32)
    inputs, outputs = str(tmp_path / "inputs.f32"), str(tmp_path / "outputs.f32")
    x.astype("<f4").tofile(inputs)
    bad = str(tmp_path / "bad.params")
    with open(bad, "wb") as f:
        f.write(b"\x12\x01\0\0\0\0\0\0" + b"\xff" * 64)
    # -Xcheck:jni: the JVM checks every JNI call of the binding (pending exceptions, critical
    # regions, argument types) and reports misuse
    proc = _run(["java", "-Xcheck:jni", "-Djava.library.path=%s" % os.path.join(host_build, "jni"),
                 "-cp", classes, "org.bmxnet.BmxnetModelTest", digits["symbol"],
                 digits["params"], "1,28,28", inputs, outputs, bad], timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert "BmxnetModelTest: OK" in proc.stdout, proc.stdout
    assert "WARNING in native method" not in proc.stdout, proc.stdout
    got = np.fromfile(outputs, dtype="<f4").reshape(len(x), 10)
    np.testing.assert_array_equal(got, _runtime(digits["symbol"], digits["params"], x))
    want_mx = _mxnet(digits["symbol"], digits["params"], x)
    _close(got, want_mx)
    np.testing.assert_array_equal(got.argmax(1), digits["y"])


def test_android_sample_digit_image(host_build, digits, tmp_path):
    """The sample app's DigitImage (PGM reader + bilinear resize + /255, plain Java) against numpy
    on a 40x36 digit, its refusals of bad files, and the bundled asset (a 3) through the model."""
    if not _have_jdk():
        pytest.skip("javac/java (a JDK 8+) are not installed: apt-get install "
                    "openjdk-17-jdk-headless")
    classes = str(tmp_path / "classes")
    _checked(["javac", "-Xlint:all", "-Werror", "-d", classes,
              os.path.join(ANDROID, "app", "src", "main", "java", "org", "bmxnet", "sample",
                           "DigitImage.java"),
              os.path.join(ANDROID, "test", "org", "bmxnet", "sample", "DigitImageTest.java")],
             "javac")
    big = _as_uint8(_bilinear(digits["x"][0, 0].astype(np.float64), 40, 36))
    good = str(tmp_path / "digit.pgm")
    _write_pnm(good, big)
    bad = []
    for name, data in (("p6.pgm", b"P6\n1 1\n255\n\0\0\0"),
                       ("short.pgm", b"P5\n28 28\n255\n" + b"\0" * 5),
                       ("wide.pgm", b"P5\n4097 1\n255\n"),
                       ("nomax.pgm", b"P5\n2 2\n")):
        bad.append(str(tmp_path / name))
        with open(bad[-1], "wb") as f:
            f.write(data)
    out = str(tmp_path / "input.f32")
    proc = _run(["java", "-cp", classes, "org.bmxnet.sample.DigitImageTest", "28", out, good]
                + bad)
    assert proc.returncode == 0 and "DigitImageTest: OK" in proc.stdout, proc.stdout
    for path, message in zip(bad, ("not a binary PGM (P5)", "needs 784 bytes of pixels, but "
                                   "only 5 follow", "width is larger than 4096",
                                   "maxval is missing")):
        assert "refused %s: " % path in proc.stdout and message in proc.stdout, proc.stdout
    got = np.fromfile(out, dtype="<f4").reshape(28, 28)
    want = _bilinear(big.astype(np.float64), 28, 28) / 255.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)

    asset = os.path.join(ANDROID, "app", "src", "main", "assets", "digit.pgm")
    proc = _run(["java", "-cp", classes, "org.bmxnet.sample.DigitImageTest", "28", out, asset])
    assert proc.returncode == 0, proc.stdout
    x = np.fromfile(out, dtype="<f4").reshape(SHAPE)
    with open(asset, "rb") as f:
        raw = np.frombuffer(f.read()[-784:], np.uint8).reshape(SHAPE)
    np.testing.assert_array_equal(x, (raw / 255.0).astype(np.float32))
    assert _mxnet(digits["symbol"], digits["params"], x).argmax() == 3


# ------------------------------------------------------------------------------------------
# The iOS package's C target (CBmxnet), through ctypes
# ------------------------------------------------------------------------------------------
def _shim(build):
    import ctypes
    lib = ctypes.CDLL(os.path.join(build, "libcbmxnet_shim.so"))
    lib.cbmx_digit_input.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_size_t, ctypes.c_void_p]
    lib.cbmx_digit_input.restype = ctypes.c_int
    return lib


def _digit_reference(ink):
    """The SwiftUI app's preprocessing (cbmxnet.h), written independently: square box around the
    ink -> 32 x 32 on/off cells (mean ink >= 128, pixel centres binned) -> 4 x 4 counts -> the
    demo's own digits_to_28x28."""
    sys.path.insert(0, EXAMPLE)
    from mnist_data import digits_to_28x28
    ys, xs = np.nonzero(ink >= 128)
    side = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    ox = (xs.min() + xs.max() + 1) / 2.0 - side / 2.0
    oy = (ys.min() + ys.max() + 1) / 2.0 - side / 2.0
    yy, xx = np.mgrid[0:ink.shape[0], 0:ink.shape[1]]
    cy = np.floor((yy + 0.5 - oy) * 32 / side).astype(int)
    cx = np.floor((xx + 0.5 - ox) * 32 / side).astype(int)
    inside = (cy >= 0) & (cy < 32) & (cx >= 0) & (cx < 32)
    total, count = np.zeros((32, 32)), np.zeros((32, 32))
    np.add.at(total, (cy[inside], cx[inside]), ink[inside].astype(np.float64))
    np.add.at(count, (cy[inside], cx[inside]), 1)
    on = total >= 128 * count
    counts = on.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    return digits_to_28x28(counts[None].astype(np.float64))[0, 0]


def _drawing(strokes, size=240, width=14):
    """A white-on-black drawing of line segments ((x0, y0, x1, y1) in pixels), round pens."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    ink = np.zeros((size, size), np.uint8)
    for x0, y0, x1, y1 in strokes:
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
        near = (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2 <= (width / 2.0) ** 2
        ink[near] = 255
    return ink


def test_ios_digit_preprocessing(host_build):
    lib = _shim(host_build)
    out = np.zeros(28 * 28, np.float32)
    drawings = {
        "seven": _drawing([(60, 50, 180, 50), (180, 50, 100, 200)]),
        "one": _drawing([(120, 40, 124, 200)]),
        "four": _drawing([(140, 40, 60, 140), (60, 140, 180, 140), (150, 80, 150, 210)],
                         width=20),
    }
    for name, ink in drawings.items():
        padded = np.zeros((ink.shape[0], ink.shape[1] + 13), np.uint8)  # row_bytes > width
        padded[:, :ink.shape[1]] = ink
        rc = lib.cbmx_digit_input(padded.ctypes.data, ink.shape[1], ink.shape[0],
                                  padded.shape[1], out.ctypes.data)
        assert rc == 0, name
        np.testing.assert_allclose(out.reshape(28, 28), _digit_reference(ink), rtol=0,
                                   atol=1e-6, err_msg=name)
        assert out.reshape(28, 28)[:4].max() == 0 and out.max() > 0.25, name
    # a blank canvas and bad arguments: -1, zeros, no crash
    blank = np.zeros((50, 40), np.uint8)
    out[:] = 7
    assert lib.cbmx_digit_input(blank.ctypes.data, 40, 50, 40, out.ctypes.data) == -1
    assert not out.any()
    assert lib.cbmx_digit_input(None, 40, 50, 40, out.ctypes.data) == -1
    assert lib.cbmx_digit_input(blank.ctypes.data, 40, 50, 39, out.ctypes.data) == -1
    assert lib.cbmx_digit_input(blank.ctypes.data, 0, 50, 40, out.ctypes.data) == -1
    assert lib.cbmx_digit_input(blank.ctypes.data, 40, 50, 40, None) == -1


def test_ios_cbmx_run(host_build, digits):
    """cbmx_run (what BmxnetModel.run in Swift calls) gives the Python binding's outputs; its
    failures are a status with bmx_last_error set."""
    import ctypes
    lib = _shim(host_build)  # exports cbmx_* and the runtime's bmx_* (linked in)
    for f in ("bmx_options_create", "bmx_options_set_input_shape", "bmx_model_load_files",
              "bmx_predictor_create"):
        getattr(lib, f).restype = ctypes.c_int
    lib.bmx_last_error.restype = ctypes.c_char_p
    lib.cbmx_run.restype = ctypes.c_int
    lib.cbmx_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                             ctypes.c_size_t]
    opts, model, pred = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    dims = (ctypes.c_int64 * 4)(*SHAPE)
    assert lib.bmx_options_create(ctypes.byref(opts)) == 0
    assert lib.bmx_options_set_input_shape(opts, b"data", 4, dims) == 0
    assert lib.bmx_model_load_files(digits["symbol"].encode(), digits["params"].encode(), opts,
                                    ctypes.byref(model)) == 0, lib.bmx_last_error()
    assert lib.bmx_predictor_create(model, ctypes.byref(pred)) == 0
    x = np.ascontiguousarray(digits["x"], np.float32)
    want = _runtime(digits["symbol"], digits["params"], x)
    y = np.zeros(10, np.float32)
    for i in range(len(x)):
        assert lib.cbmx_run(pred, x[i].ctypes.data, 784, y.ctypes.data, 10) == 0
        np.testing.assert_array_equal(y, want[i])
    assert lib.cbmx_run(pred, x[0].ctypes.data, 783, y.ctypes.data, 10) == 1  # INVALID_ARGUMENT
    assert b"784" in lib.bmx_last_error()
    assert lib.cbmx_run(pred, x[0].ctypes.data, 784, y.ctypes.data, 9) == 1
    lib.bmx_predictor_free(pred)
    lib.bmx_model_free(model)
    lib.bmx_options_free(opts)
