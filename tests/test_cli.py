"""`bmxnet train` end to end on small subsets, and the data loaders on tiny files written here
(MNIST idx, CIFAR-10 pickles, an ImageNet-style image folder and a .rec file)."""
import csv
import gzip
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from bmxnet import cli, data
from subproc import describe, run_snippet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- synthetic files --------------------------------------------------------------------------
def _write_idx(path, arr, gz=False):
    code = {np.uint8: 0x08}[arr.dtype.type]
    raw = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(">" + "I" * arr.ndim,
                                                                   *arr.shape) + arr.tobytes()
    with (gzip.open(path + ".gz", "wb") if gz else open(path, "wb")) as f:
        f.write(raw)


def _mnist_dir(tmp_path, rng, n=(40, 20)):
    d = tmp_path / "mnist"
    d.mkdir()
    for split, count, gz in (("train", n[0], True), ("t10k", n[1], False)):
        _write_idx(str(d / ("%s-images-idx3-ubyte" % split)),
                   rng.randint(0, 256, (count, 28, 28)).astype(np.uint8), gz)
        _write_idx(str(d / ("%s-labels-idx1-ubyte" % split)),
                   rng.randint(0, 10, count).astype(np.uint8), gz)
    return str(d)


def _cifar_dir(tmp_path, rng, per_batch=8):
    d = tmp_path / "cifar" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    names = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {b"data": rng.randint(0, 256, (per_batch, 3072)).astype(np.uint8),
                 b"labels": list(rng.randint(0, 10, per_batch))}
        with open(str(d / name), "wb") as f:
            pickle.dump(batch, f)
    return str(tmp_path / "cifar")


def _jpeg(rng, size=(40, 36)):
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(rng.randint(0, 256, size + (3,)).astype(np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _imagenet_dirs(tmp_path, rng):
    root = tmp_path / "imagenet"
    for split in ("train", "val"):
        for cls in ("n01", "n02", "n03"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                (d / ("%d.jpg" % i)).write_bytes(_jpeg(rng))
    return str(root)


def _rec_dir(tmp_path, rng):
    root = tmp_path / "rec"
    root.mkdir()
    for split in ("train", "val"):
        rec = mx.recordio.MXIndexedRecordIO(str(root / (split + ".idx")),
                                            str(root / (split + ".rec")), "w")
        for i in range(5):
            header = mx.recordio.IRHeader(0, float(i % 3), i, 0)
            rec.write_idx(i, mx.recordio.pack(header, _jpeg(rng)))
        rec.close()
    return str(root)


# ---- loaders ----------------------------------------------------------------------------------
def test_mnist_idx(tmp_path, rng):
    d = _mnist_dir(tmp_path, rng)
    (Xtr, ytr), (Xte, yte) = data.load_mnist(d)
    assert Xtr.shape == (40, 1, 28, 28) and Xte.shape == (20, 1, 28, 28)
    assert Xtr.dtype == np.float32 and 0 <= Xtr.min() and Xtr.max() <= 1
    raw = data.read_idx(os.path.join(d, "t10k-labels-idx1-ubyte"))
    np.testing.assert_array_equal(raw, yte)
    ds = data.get_dataset("mnist", d, batch_size=16)
    batches = list(ds.train)
    assert [b[0].shape[0] for b in batches] == [16, 16, 8] and ds.num_classes == 10
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(data.DataError, match="not an idx file"):
        data.read_idx(str(tmp_path / "bad"))
    with pytest.raises(data.DataError, match="missing file"):
        data.load_mnist(str(tmp_path))


def test_cifar10_pickles(tmp_path, rng):
    d = _cifar_dir(tmp_path, rng)
    (Xtr, ytr), (Xte, yte) = data.load_cifar10(d)
    assert Xtr.shape == (40, 3, 32, 32) and Xte.shape == (8, 3, 32, 32)
    ds = data.get_dataset("cifar10", d, batch_size=10, num_train=30)
    x, y = next(iter(ds.train))
    assert x.shape == (10, 3, 32, 32) and ds.num_train == 30 and ds.input_shape == (3, 32, 32)
    assert abs(float(next(iter(ds.val))[0].mean().asscalar())) < 0.5  # normalized
    with pytest.raises(data.DataError, match="data_batch_1"):
        data.load_cifar10(str(tmp_path))


def test_imagenet_folder_and_rec(tmp_path, rng):
    ds = data.get_dataset("imagenet", _imagenet_dirs(tmp_path, rng), batch_size=4,
                          image_size=32)
    assert ds.num_classes == 3 and ds.num_train == 6
    shapes = [(x.shape, y.shape) for x, y in ds.val]
    assert shapes == [((4, 3, 32, 32), (4,)), ((2, 3, 32, 32), (2,))]
    ds = data.get_dataset("imagenet", _rec_dir(tmp_path, rng), batch_size=2, image_size=24)
    got = [(x.shape, y.asnumpy().tolist()) for x, y in ds.val]
    assert [g[0] for g in got] == [(2, 3, 24, 24), (2, 3, 24, 24), (1, 3, 24, 24)]
    assert sum((g[1] for g in got), []) == [0.0, 1.0, 2.0, 0.0, 1.0]
    for _ in range(3):  # every epoch sees every record once
        labels = sorted(sum((y.asnumpy().tolist() for _, y in ds.train), []))
        assert labels == [0.0, 0.0, 1.0, 1.0, 2.0]


def test_digits_and_errors():
    ds = data.get_dataset("digits", batch_size=100)
    assert (ds.num_train, ds.num_val, ds.input_shape) == (1438, 359, (1, 8, 8))
    with pytest.raises(data.DataError, match="unknown dataset"):
        data.get_dataset("svhn", "/tmp")
    with pytest.raises(data.DataError, match="--data-dir"):
        data.get_dataset("mnist")


# ---- the command ------------------------------------------------------------------------------
def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_train_bop_checkpoint_resume_and_import(tmp_path):
    out = str(tmp_path / "out")
    args = ["train", "lenet", "--dataset", "digits", "--optimizer", "bop", "--epochs", "1",
            "--num-train", "256", "--num-val", "128", "--batch-size", "64", "--out-dir", out,
            "--hparams", "learning_rate=0.005,gamma=1e-3", "--no-progress"]
    assert cli.main(args) == 0
    for name in ("lenet-symbol.json", "lenet-0001.params", "lenet-0001.states",
                 "lenet-metrics.csv", "lenet-curves.png"):
        assert os.path.exists(os.path.join(out, name)), name
    assert not [n for n in os.listdir(out) if n.startswith(".tmp")]
    args[args.index("--epochs") + 1] = "2"
    assert cli.main(args + ["--resume"]) == 0
    rows = _rows(os.path.join(out, "lenet-metrics.csv"))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["flip_rate"]) >= 0
    # the checkpoint is a plain MXNet export: it reloads (after `import bmxnet`) and predicts
    net = mx.gluon.SymbolBlock.imports(os.path.join(out, "lenet-symbol.json"), ["data"],
                                       os.path.join(out, "lenet-0002.params"))
    ds = data.get_dataset("digits", batch_size=128, num_val=128)
    x, y = next(iter(ds.val))
    acc = (net(x).argmax(axis=1) == y).mean().asscalar()
    assert abs(acc - float(rows[1]["val_acc"])) < 1e-6
    with open(os.path.join(out, "lenet-symbol.json")) as f:
        assert '"QConvolution"' in f.read()


def test_train_other_datasets_and_recipe(tmp_path, rng):
    res = cli.train("lenet", dataset="mnist", data_dir=_mnist_dir(tmp_path, rng), epochs=1,
                    batch_size=20, out_dir=str(tmp_path / "m"), progress=False, plot=False,
                    log=lambda *a: None)
    assert res["val_acc"] is not None and os.path.exists(res["params"])
    res = cli.train("binarynet", dataset="cifar10", data_dir=_cifar_dir(tmp_path, rng),
                    hparams_set="bop_cifar10", epochs=1, batch_size=20, num_train=20, num_val=8,
                    model_kwargs={"filters": 8, "dense_units": 16},
                    out_dir=str(tmp_path / "c"), progress=False, plot=False, log=lambda *a: None)
    assert res["optimizer"] == "bop"
    res = cli.train("lenet", recipe="bireal", epochs=2, num_train=128, num_val=64,
                    out_dir=str(tmp_path / "b"), progress=False, log=lambda *a: None)
    assert [r["stage"] for r in res["history"]] == ["stage1", "stage2"]
    names = os.listdir(str(tmp_path / "b"))
    assert "lenet-stage1-0001.params" in names and "lenet-0001.params" in names


def test_parse_hparams_and_errors(tmp_path, capsys):
    assert cli.parse_hparams("a=1,b=0.5,c=adam,d=[1, 2],e=1e-8") == \
        {"a": 1, "b": 0.5, "c": "adam", "d": [1, 2], "e": 1e-8}
    # a missing data folder is an input error (1), a malformed option a usage error (2)
    assert cli.main(["train", "lenet", "--dataset", "mnist", "--data-dir",
                     str(tmp_path / "none")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["train", "lenet", "--hparams", "oops"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["train", "lenet", "--optimizer", "rmsprop"])


# ---- bad command lines: one line on stderr, exit 2 (usage) or 1 (input), nothing written -------
USAGE_ERRORS = [
    # (extra arguments of `train lenet`, a fragment of the message)
    (["--hparams", "learning_rate=abc"], "learning_rate='abc': expected a number > 0"),
    (["--hparams", "learning_rate=0"], "learning_rate=0"),
    (["--hparams", "lr=-1"], "lr=-1"),
    (["--hparams", "learning_rate=1e999"], "learning_rate=inf"),
    (["--hparams", "wd=-0.1"], "wd=-0.1"),
    (["--hparams", "momentum=1.5"], "momentum=1.5"),
    (["--hparams", "beta1=abc"], "beta1='abc'"),
    (["--hparams", "batch_size=0"], "batch_size=0: expected an integer >= 1"),
    (["--hparams", "batch_size=2.5"], "batch_size=2.5"),
    (["--hparams", "epochs=0"], "epochs=0"),
    (["--hparams", "lr_schedule=sawtooth"], "lr_schedule='sawtooth'"),
    (["--hparams", "lr_step_epochs=[]"], "lr_step_epochs=[]"),
    (["--hparams", "lr_step_epochs=[1,x]"], "lr_step_epochs="),
    (["--hparams", "lr_step_factor=abc"], "lr_step_factor='abc'"),
    (["--hparams", "clip_gradient=abc"], "clip_gradient='abc': expected a number or True/False"),
    (["--hparams", "nosuch=1"], "unexpected keyword argument 'nosuch'"),
    (["--optimizer", "bop", "--hparams", "gamma=2"], "gamma=2"),
    (["--optimizer", "bop", "--hparams", "fp_optimizer=nosuch"], "nosuch"),
    (["--model-kwargs", "nosuch=1"], "unexpected keyword argument 'nosuch'"),
    (["--model-kwargs", "hidden=abc"], "hidden='abc'"),
    (["--model-kwargs", "channels=(0,0)"], "channels=(0, 0)"),
    (["--model-kwargs", "padding=0"], "exceeds input"),  # an MXNetError: its last line
    (["--prefix", "sub/lenet"], "prefix must be a file name"),
    (["--recipe", "bireal", "--optimizer", "sgd"], "recipe 'bireal' trains with adam"),
    (["--recipe", "bireal", "--epochs", "1"], "--epochs must be >= 2"),
    (["--hparams-set", "bop", "--optimizer", "adam"], "hparams set 'bop' is Bop's"),
    (["--dataset", "mnist"], "needs --data-dir"),
    (["--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'"),
    (["--epochs", "two"], "argument --epochs"),
    (["--batch-size", "0"], "argument --batch-size: expected an integer >= 1, got '0'"),
    (["--batch-size", "-8"], "argument --batch-size"),
    (["--num-train", "0"], "argument --num-train"),
    (["--num-val", "-1"], "argument --num-val"),
    (["--seed", "-1"], "argument --seed"),
    (["--seed", str(2 ** 32)], "argument --seed"),
]


def _main_exit(argv):
    """(exit status, stderr) of ``bmxnet ARGV`` run in-process (argparse exits by itself)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


@pytest.mark.parametrize("extra, fragment", USAGE_ERRORS, ids=[" ".join(a) for a, _ in
                                                               USAGE_ERRORS])
def test_train_usage_errors(tmp_path, capsys, extra, fragment):
    out = tmp_path / "out"
    rc = _main_exit(["train", "lenet", "--out-dir", str(out), "--no-progress", "--no-plot",
                     "--num-train", "32", "--num-val", "16"] + extra)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert fragment in err and "Traceback" not in err, err
    assert not out.exists()  # nothing written, not even the folder


@pytest.mark.parametrize("argv, fragment", [
    (["train", "nosuchnet"], "'nosuchnet' is not in the zoo"),
    (["summary", "nosuchnet"], "'nosuchnet' is not in the zoo"),
    (["summary", "lenet", "--input-shape", "1,x,28,28"], "argument --input-shape"),
    (["summary", "lenet", "--input-shape", "28"], "argument --input-shape"),
    (["summary", "lenet", "--input-shape", "1,1,0,28"], "argument --input-shape"),
    (["summary", "lenet", "--input-shape", "1,1,4,4"], "--input-shape 1,1,4,4"),
    (["summary", "lenet", "--classes", "0"], "argument --classes"),
])
def test_other_usage_errors(capsys, argv, fragment):
    rc = _main_exit(argv)
    err = capsys.readouterr().err
    assert rc == 2 and fragment in err and "Traceback" not in err, err


def test_input_errors_exit_1(tmp_path, capsys):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    rc = cli.main(["train", "lenet", "--out-dir", str(not_a_dir), "--epochs", "1",
                   "--num-train", "32", "--num-val", "16", "--no-progress", "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 1 and str(not_a_dir) in err and "Traceback" not in err, err
    # --resume from a checkpoint of another model
    out = tmp_path / "out"
    out.mkdir()
    mx.nd.save(str(out / "lenet-0001.params"), {"arg:other_weight": mx.nd.ones((2,))})
    rc = cli.main(["train", "lenet", "--out-dir", str(out), "--epochs", "2", "--resume",
                   "--num-train", "32", "--num-val", "16", "--no-progress", "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 1 and "lacks" in err and "Traceback" not in err, err
    # ... a damaged one (an ndim field of 0xFFFFFFFF: MXNet's own reader would crash), one with
    # the right names but other shapes, damaged optimizer states, a damaged metrics file
    good = tmp_path / "good"
    assert cli.main(["train", "lenet", "--out-dir", str(good), "--epochs", "1", "--num-train",
                     "32", "--num-val", "16", "--no-progress", "--no-plot"]) == 0
    capsys.readouterr()
    params = (good / "lenet-0001.params").read_bytes()
    # list magic, reserved, count (8 bytes each); the first array: magic, storage type, ndim
    assert struct.unpack("<QQQIiI", params[:36])[0::3] == (0x112, 0xF993FAC9)
    cases = {"lenet-0001.params": params[:32] + b"\xff\xff\xff\xff" + params[36:],
             "lenet-0001.states": b"not a pickle",
             "lenet-metrics.csv": b"epoch,loss\n1,abc\n"}
    for name, damaged in cases.items():
        case = tmp_path / ("case-" + name)
        shutil.copytree(str(good), str(case))
        (case / name).write_bytes(damaged)
        proc = run_snippet("from bmxnet import cli\nsys.exit(cli.main(%r))" % [
            "train", "lenet", "--out-dir", str(case), "--epochs", "2", "--resume", "--num-train",
            "32", "--num-val", "16", "--no-progress", "--no-plot"])
        assert proc.returncode == 1, describe(proc)
        assert name in proc.stderr and "Traceback" not in proc.stderr, describe(proc)
    other = tmp_path / "other"
    assert cli.main(["train", "lenet", "--out-dir", str(other), "--epochs", "1", "--num-train",
                     "32", "--num-val", "16", "--no-progress", "--no-plot",
                     "--model-kwargs", "hidden=7"]) == 0
    capsys.readouterr()
    rc = cli.main(["train", "lenet", "--out-dir", str(other), "--epochs", "2", "--resume",
                   "--num-train", "32", "--num-val", "16", "--no-progress", "--no-plot"])
    err = capsys.readouterr().err
    assert rc == 1 and "another model" in err and "Traceback" not in err, err


def test_usage_error_in_a_child_process_has_no_traceback(tmp_path):
    """The reproducers of issue 10, as a user runs them: `python -m bmxnet.cli ...`."""
    for extra, code in ((["--hparams", "learning_rate=abc"], 2),
                        (["--model-kwargs", "nosuch=1"], 2),
                        (["--epochs", "0"], 2), (["--batch-size", "0"], 2),
                        (["--dataset", "mnist", "--data-dir", str(tmp_path / "no")], 1)):
        argv = ["train", "lenet", "--out-dir", str(tmp_path / "out")] + extra
        proc = run_snippet("from bmxnet import cli\nsys.exit(cli.main(%r))" % argv)
        assert proc.returncode == code, describe(proc)
        assert "Traceback" not in proc.stderr and "error:" in proc.stderr, describe(proc)
        assert not (tmp_path / "out").exists()


def test_train_python_api_checks_its_arguments(tmp_path):
    kw = dict(out_dir=str(tmp_path / "o"), progress=False, plot=False, log=lambda *a: None)
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"batch_size": -1}, {"num_train": 0},
                {"seed": -1}, {"hparams": {"batch_size": 0}}, {"prefix": ""},
                {"dataset": "svhn"}, {"hparams": {"learning_rate": "abc"}}):
        with pytest.raises(cli.UsageError):
            cli.train("lenet", **dict(kw, **bad))
    assert not (tmp_path / "o").exists()


def test_batch_size_and_epochs_reach_the_training(tmp_path, monkeypatch):
    """--batch-size, or the hyperparameters' batch_size / epochs, are what the data set and the
    loop get (no silent fallback to 64 or 10)."""
    seen = []
    real = cli.get_dataset

    def spy(name, data_dir, batch_size, **kw):
        seen.append(batch_size)
        return real(name, data_dir, batch_size, **kw)
    monkeypatch.setattr(cli, "get_dataset", spy)
    kw = dict(num_train=40, num_val=16, progress=False, plot=False, log=lambda *a: None)
    res = cli.train("lenet", batch_size=7, epochs=1, out_dir=str(tmp_path / "a"), **kw)
    res2 = cli.train("lenet", hparams={"batch_size": 13, "epochs": 2},
                     out_dir=str(tmp_path / "b"), **kw)
    assert seen == [7, 13]
    assert len(res["history"]) == 1 and len(res2["history"]) == 2


def test_reports_only_files_it_wrote(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["train", "lenet", "--epochs", "1", "--num-train", "32", "--num-val", "16",
            "--out-dir", str(out), "--no-progress", "--no-plot"]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])  # after the per-epoch log lines
    assert report["curves"] is None  # --no-plot
    written = [report[k] for k in ("symbol", "params", "metrics")]
    assert sorted(os.path.basename(p) for p in written) == \
        ["lenet-0001.params", "lenet-metrics.csv", "lenet-symbol.json"]
    assert all(os.path.isfile(p) for p in written)
    # resuming a run that is already complete trains nothing and says so
    assert cli.main(args + ["--resume"]) == 0
    captured = capsys.readouterr()
    assert "nothing to train" in captured.out
    report = json.loads(captured.out[captured.out.index("{"):])
    assert report["params"] == written[1] and os.path.isfile(report["params"])


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "bmxnet.cli", "models"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "birealnet18" in out.stdout.split()
    out = subprocess.run([sys.executable, "-m", "bmxnet.cli", "summary", "birealnet18"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "1,676,279,808" in out.stdout


def test_reader_that_stops_early_gets_no_traceback():
    """`bmxnet models | head -1`: the pipe is closed before the list is written."""
    proc = subprocess.Popen([sys.executable, "-m", "bmxnet.cli", "models"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == "", err


def _script(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("example_" + os.path.basename(path)[:-3],
                                                  os.path.join(ROOT, "smd_hpi_examples", path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_example_scripts(tmp_path, capsys):
    for path, preset in (("cifar10/train_cifar10.py", "binarynet"),
                         ("imagenet/train_imagenet.py", "bireal18_stem"),
                         ("bireal/train_bireal.py", "cifar10")):
        mod = _script(path)
        argv = [preset, "--data-dir", str(tmp_path), "--print-command"]
        assert (mod.main(argv) if hasattr(mod, "main") else
                mod.run_preset(mod.PRESETS, "cifar10" if "cifar" in path else "imagenet",
                               mod.__doc__, argv)) == 0
        assert capsys.readouterr().out.startswith("bmxnet train ")
    out = str(tmp_path / "bop")
    assert _script("bop/train_bop.py").main(
        ["digits", "--epochs", "1", "--num-train", "64", "--num-val", "32", "--out-dir", out,
         "--no-progress", "--no-plot"]) == 0
    assert os.path.exists(os.path.join(out, "lenet-0001.params"))
