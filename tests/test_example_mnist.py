"""Fast tests of smd_hpi_examples/binary_mnist: the IDX reader and a short training run whose
exported checkpoint reloads with gluon.SymbolBlock.imports and gives the trained net's outputs."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "smd_hpi_examples", "binary_mnist")
sys.path.insert(0, EXAMPLE)

import mnist_data  # noqa: E402
from mnist_data import IdxFormatError, read_idx, write_idx  # noqa: E402


# ---------------------------------------------------------------------------------------------
# IDX reader / writer
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,shape", [(np.uint8, (5, 28, 28)), (np.uint8, (7,)),
                                         (np.int8, (3, 4)), (np.int16, (2, 3, 4)),
                                         (np.int32, (6,)), (np.float32, (2, 5)),
                                         (np.float64, (1, 1, 1, 3))])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, shape, suffix):
    rng = np.random.RandomState(0)
    data = (rng.uniform(-100, 100, shape) if np.issubdtype(dtype, np.floating)
            else rng.randint(np.iinfo(dtype).min, np.iinfo(dtype).max, shape)).astype(dtype)
    path = str(tmp_path / ("a.idx" + suffix))
    write_idx(path, data)
    back = read_idx(path)
    assert back.dtype == data.dtype and back.shape == data.shape
    np.testing.assert_array_equal(back, data)
    assert os.listdir(str(tmp_path)) == ["a.idx" + suffix]  # no temp file left behind


def test_idx_header_layout(tmp_path):
    """The bytes are MNIST's: 00 00 08 03, big-endian sizes, then the pixels."""
    path = str(tmp_path / "x")
    write_idx(path, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    raw = open(path, "rb").read()
    assert raw == bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 1, 2, 3, 4, 5])


@pytest.mark.parametrize("payload,what", [
    (b"\x00\x00", "too short"),
    (b"\x12\x34\x08\x01\x00\x00\x00\x02\x01\x02", "magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x02\x01\x02", "magic"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated or corrupt"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "truncated or corrupt"),
])
def test_idx_malformed(tmp_path, payload, what):
    path = str(tmp_path / "bad-idx")
    with open(path, "wb") as f:
        f.write(payload)
    with pytest.raises(IdxFormatError, match=what) as err:
        read_idx(path)
    assert path in str(err.value)


def test_idx_bad_gzip(tmp_path):
    path = str(tmp_path / "bad.gz")
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")  # plain bytes named .gz
    with pytest.raises(IdxFormatError, match="gzip"):
        read_idx(path)


def _write_tiny_mnist(folder, n_train=64, n_test=32, gz=False):
    rng = np.random.RandomState(1)
    os.makedirs(folder, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):  # a bright bar whose position is the label
            images[i, 4 + 2 * label:6 + 2 * label, 6:22] = 255
        images = np.clip(images + rng.randint(0, 30, images.shape), 0, 255).astype(np.uint8)
        write_idx(os.path.join(folder, "%s-images-idx3-ubyte%s" % (split, ext)), images)
        write_idx(os.path.join(folder, "%s-labels-idx1-ubyte%s" % (split, ext)), labels)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_dir(tmp_path, gz):
    _write_tiny_mnist(str(tmp_path), gz=gz)
    x_train, y_train, x_test, y_test = mnist_data.load_mnist_dir(str(tmp_path))
    assert x_train.shape == (64, 1, 28, 28) and x_test.shape == (32, 1, 28, 28)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert 0.0 <= x_train.min() and x_train.max() == 1.0
    np.testing.assert_array_equal(y_test, np.arange(32) % 10)


def test_load_mnist_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        mnist_data.load_mnist_dir(str(tmp_path / "nope"))
    _write_tiny_mnist(str(tmp_path))
    os.remove(str(tmp_path / "t10k-labels-idx1-ubyte"))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        mnist_data.load_mnist_dir(str(tmp_path))
    # labels file that holds images instead
    write_idx(str(tmp_path / "t10k-labels-idx1-ubyte"), np.zeros((32, 28, 28), np.uint8))
    with pytest.raises(IdxFormatError, match="labels"):
        mnist_data.load_mnist_dir(str(tmp_path))
    # label count that does not match the image count
    write_idx(str(tmp_path / "t10k-labels-idx1-ubyte"), np.zeros(31, np.uint8))
    with pytest.raises(IdxFormatError, match="31 labels"):
        mnist_data.load_mnist_dir(str(tmp_path))
    # a truncated gzip copy wins over nothing: .gz is looked up when the plain file is missing
    os.remove(str(tmp_path / "t10k-labels-idx1-ubyte"))
    with gzip.open(str(tmp_path / "t10k-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(b"\x00\x00\x08\x01\x00\x00\x00\x20\x01")
    with pytest.raises(IdxFormatError, match="t10k-labels-idx1-ubyte.gz"):
        mnist_data.load_mnist_dir(str(tmp_path))


def test_digits_28x28():
    x_train, y_train, x_test, y_test = mnist_data.load_digits_28x28()
    assert x_train.shape == (1437, 1, 28, 28) and x_test.shape == (360, 1, 28, 28)
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    # a 4-pixel empty border around the 20x20 digit, as in MNIST
    assert x_train[:, :, :4].max() == 0 and x_train[:, :, 24:].max() == 0
    assert x_train[:, :, :, :4].max() == 0 and x_train[:, :, :, 24:].max() == 0
    # stratified: every class in the test set, roughly 36 each
    assert np.bincount(y_test, minlength=10).min() >= 30
    # the same split every time
    np.testing.assert_array_equal(mnist_data.load_digits_28x28()[3], y_test)


# ---------------------------------------------------------------------------------------------
# The example itself
# ---------------------------------------------------------------------------------------------
def test_short_run_exports_reloadable_checkpoint(tmp_path, capsys):
    import mxnet as mx

    import binary_mnist

    out_dir = str(tmp_path / "out")
    res = binary_mnist.main(["--epochs", "1", "--limit", "192", "--batch-size", "64",
                             "--out-dir", out_dir, "--prefix", "tiny", "--no-progress"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("test_accuracy=")
    assert float(lines[-1].split("=")[1]) == pytest.approx(res["test_accuracy"], abs=1e-4)
    assert sorted(os.listdir(out_dir)) == ["tiny-0001.params", "tiny-symbol.json"]
    symbol = open(os.path.join(out_dir, "tiny-symbol.json")).read()
    assert "QConvolution" in symbol and "QFullyConnected" in symbol

    reloaded = binary_mnist.load_checkpoint(os.path.join(out_dir, "tiny-symbol.json"),
                                            os.path.join(out_dir, "tiny-0001.params"))
    x = mx.nd.array(res["x_test"][:50])
    np.testing.assert_allclose(reloaded(x).asnumpy(), res["net"](x).asnumpy(), rtol=1e-5,
                               atol=1e-5)
    assert res["reloaded_accuracy"] == res["test_accuracy"]


def test_cli_with_data_dir(tmp_path):
    """End to end through the command line on a tiny MNIST folder; also the missing-files error."""
    data_dir = str(tmp_path / "mnist")
    _write_tiny_mnist(data_dir, gz=True)
    out_dir = str(tmp_path / "out")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    script = os.path.join(EXAMPLE, "binary_mnist.py")
    proc = subprocess.run([sys.executable, script, "--data-dir", data_dir, "--epochs", "2",
                           "--batch-size", "16", "--out-dir", out_dir, "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test_accuracy=")
    assert 0.0 <= float(last.split("=")[1]) <= 1.0
    assert sorted(os.listdir(out_dir)) == ["mnist-0001.params", "mnist-symbol.json"]

    os.remove(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    proc = subprocess.run([sys.executable, script, "--data-dir", data_dir, "--epochs", "1",
                           "--out-dir", out_dir, "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "train-images-idx3-ubyte" in proc.stderr and "missing" in proc.stderr


def test_demo_trains_converts_and_agrees(tmp_path, capsys):
    """`make demo`'s script: train (briefly), convert, and the packed model predicts the same."""
    import demo
    demo.main(["--limit", "300", "--epochs", "1", "--out-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert (tmp_path / "binarized_mnist-symbol.json").exists()
    assert (tmp_path / "binarized_mnist-0001.params").exists()
    assert "predictions identical on all 300 test images: True" in out
    last = out.strip().splitlines()[-1].split()
    assert last[0].split("=")[1] == last[1].split("=")[1]  # same accuracy, both models
