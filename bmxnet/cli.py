"""The ``bmxnet`` command: train binary networks, list the model zoo, print summaries.

::

    bmxnet train lenet --dataset digits --optimizer bop
    bmxnet train binarynet --dataset cifar10 --data-dir ~/data/cifar --hparams-set bop_cifar10
    bmxnet train birealnet18_cifar --dataset cifar10 --data-dir ~/data/cifar --recipe bireal
    bmxnet models
    bmxnet summary birealnet18 --input-shape 1,3,224,224

(``python -m bmxnet.cli ...`` is the same.) ``train`` writes into ``--out-dir``:

* ``PREFIX-symbol.json`` and ``PREFIX-NNNN.params`` after every epoch (``HybridBlock.export``;
  the input of ``model_converter``), ``PREFIX-NNNN.states`` (optimizer state, for ``--resume``);
* ``PREFIX-metrics.csv``: one row per epoch (losses, accuracies, learning rate, the fraction of
  binary weights that changed sign, seconds);
* ``PREFIX-curves.png``: loss and accuracy curves.

Hyperparameters: ``--hparams k=v,k=v`` (values are Python literals) on top of a named set
(``--hparams-set``, see :data:`HPARAM_SETS`) on top of the optimizer's defaults. Keys:
``learning_rate``, ``wd``, ``momentum``, ``beta1``, ``beta2`` ... (optimizer arguments),
``threshold``, ``gamma``, ``gamma_decay``, ``fp_optimizer`` (Bop), and the schedule keys
``lr_schedule`` (constant / linear / cosine / step), ``lr_step_epochs`` (list),
``lr_step_factor``, ``gamma_decay_epochs``, ``batch_size``, ``epochs``. Values are checked
before anything runs (see :func:`check_hparams`).

Exit status: 0 on success; 2 for wrong command-line usage (an option's value, an unknown model,
hyperparameter or model argument); 1 for bad input (a data set folder or checkpoint that is
missing or malformed, an output folder that cannot be written). Errors are one line on stderr.

``--recipe bireal`` is Bi-Real Net's two-step training: Adam with a learning rate decaying
linearly to 0, first (half the epochs) with real-valued weights and binary activations, then with
binary weights too, initialised from the first step (checkpoints ``PREFIX-stage1-*``, then
``PREFIX-*``).
"""
import argparse
import ast
import csv
import glob
import json
import math
import numbers
import os
import re
import shutil
import sys
import tempfile
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

from . import model_zoo
from . import optimizer as bopt
from .data import DATASETS, DataError, get_dataset
from .distributed import ShardIterator, Watchdog, verify_first_step
from .graph import ConversionError, error_line, read_params_file

__all__ = ["main", "train", "build_parser", "HPARAM_SETS", "RECIPES", "parse_hparams",
           "check_hparams", "run_preset", "UsageError"]

# Named hyperparameter sets: the Bop paper's (bmxnet.optimizer.HPARAM_SETS) and Bi-Real's.
HPARAM_SETS = dict(bopt.HPARAM_SETS)
HPARAM_SETS["bireal"] = {"learning_rate": 5e-3, "lr_schedule": "linear", "wd": 0.0}

RECIPES = {"bireal": {"optimizer": "adam", "hparams_set": "bireal", "two_step": True}}

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "bop": 1e-3}
KVSTORES = ("local", "device", "dist_sync", "dist_async")
SCHEDULE_KEYS = ("lr_schedule", "lr_step_epochs", "lr_step_factor", "gamma_decay_epochs",
                 "batch_size", "epochs")


class UsageError(ValueError):
    """A command-line option or a :func:`train` argument has a value that cannot be used (exit
    status 2)."""


# What each hyperparameter may be; any other key is an optimizer argument and must be a number or
# a bool (the optimizer refuses names it does not know).
_LR_SCHEDULES = ("constant", "linear", "cosine", "step")
_HPARAM_RULES = {
    "learning_rate": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "lr": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "wd": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "momentum": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "beta1": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "beta2": ("a number in [0, 1)", lambda v: _is_number(v) and 0 <= v < 1),
    "epsilon": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "threshold": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "gamma": ("a number in [0, 1]", lambda v: _is_number(v) and 0 <= v <= 1),
    "gamma_decay": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "gamma_decay_epochs": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "lr_schedule": ("one of " + ", ".join(_LR_SCHEDULES), lambda v: v in _LR_SCHEDULES),
    "lr_step_epochs": ("a list of numbers > 0, e.g. [30,60]",
                       lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and
                       all(_is_number(e) and e > 0 for e in v)),
    "lr_step_factor": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "epochs": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "fp_optimizer": ("an optimizer name, e.g. adam", lambda v: isinstance(v, str) and v != ""),
    "fp_optimizer_params": ("a dict, e.g. {'wd':1e-4}", lambda v: isinstance(v, dict)),
}


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_hparams(hp):
    """Raises :class:`UsageError` naming the first hyperparameter whose value cannot be used:
    known keys by their rule (learning_rate a number > 0, lr_schedule one of the schedules ...),
    other keys (optimizer arguments) must be finite numbers or booleans."""
    for key, value in hp.items():
        if key in _HPARAM_RULES:
            what, ok = _HPARAM_RULES[key]
        else:
            what, ok = "a number or True/False", lambda v: _is_number(v) or isinstance(v, bool)
        if not ok(value):
            raise UsageError("hyperparameter %s=%r: expected %s" % (key, value, what))


def _check_count(name, value, minimum=1):
    if not _is_int(value) or value < minimum:
        raise UsageError("%s must be an integer >= %d, got %r" % (name, minimum, value))


def _split_pairs(text):
    """Splits ``text`` at the commas that are outside brackets: ``'a=[1,2],b=(3,4)'`` ->
    ``['a=[1,2]', 'b=(3,4)']``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_hparams(text, option="--hparams"):
    """``'a=1,b=0.5,c=adam,d=[1,2]'`` -> dict (values parsed as Python literals; a value that is
    not a literal stays a string). ``option`` names the option in the error message."""
    out = {}
    if not text:
        return out
    for part in _split_pairs(text):
        if not part.strip():
            continue
        k, sep, v = part.partition("=")
        if not sep or not k.strip():
            raise UsageError("%s expects k=v pairs separated by commas, got %r" % (option, part))
        try:
            out[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[k.strip()] = v.strip()
    return out


def _model_kwargs(name, ds, extra):
    kw = {"classes": ds.num_classes}
    key = name.lower()
    if key in ("lenet", "binary_lenet"):
        kw["in_channels"] = ds.input_shape[0]
        if ds.input_shape[1] < 20:
            kw["padding"] = 2  # 8x8 digits: keep the two 5x5 convolutions valid
    kw.update(extra or {})
    return kw


def _lr_scheduler(hp, lr, steps_per_epoch, epochs):
    kind = hp.get("lr_schedule", "constant")
    total = max(1, steps_per_epoch * epochs)
    if kind not in _LR_SCHEDULES:
        raise UsageError("lr_schedule must be one of %s, got %r" % (", ".join(_LR_SCHEDULES), kind))
    if kind == "constant":
        return None
    if kind == "linear":
        return mx.lr_scheduler.PolyScheduler(max_update=total, base_lr=lr, pwr=1, final_lr=0.0)
    if kind == "cosine":
        return mx.lr_scheduler.CosineScheduler(max_update=total, base_lr=lr, final_lr=0.0)
    if kind == "step":
        steps = [int(e * steps_per_epoch) for e in hp.get("lr_step_epochs", [epochs // 2])]
        steps = [s for s in steps if 0 < s]
        if not steps:
            return None
        return mx.lr_scheduler.MultiFactorScheduler(step=steps,
                                                    factor=hp.get("lr_step_factor", 0.1),
                                                    base_lr=lr)


def _make_trainer(net, optimizer, hp, steps_per_epoch, epochs, kvstore):
    hp = dict(hp)
    lr = hp.pop("learning_rate", hp.pop("lr", DEFAULT_LR[optimizer]))
    sched = _lr_scheduler(hp, lr, steps_per_epoch, epochs)
    if optimizer == "bop" and "gamma_decay_epochs" in hp:
        hp["gamma_decay_steps"] = int(hp["gamma_decay_epochs"] * steps_per_epoch)
    for k in SCHEDULE_KEYS:
        hp.pop(k, None)
    params = dict(hp, learning_rate=lr)
    if sched is not None:
        params["lr_scheduler"] = sched
    if optimizer == "sgd":
        params.setdefault("momentum", 0.9)
    try:
        return gluon.Trainer(net.collect_params(), optimizer, params, kvstore=kvstore)
    except (TypeError, ValueError, mx.base.MXNetError) as e:
        raise UsageError("bad hyperparameter for optimizer %r: %s"
                         % (optimizer, error_line(e))) from None


def _evaluate(net, data, ctx, loss_fn):
    n = correct = 0
    loss_sum = 0.0
    for x, y in data:
        x, y = x.as_in_context(ctx), y.as_in_context(ctx)
        out = net(x)
        loss_sum += loss_fn(out, y).sum().asscalar()
        correct += (out.argmax(axis=1) == y.astype(out.dtype)).sum().asscalar()
        n += x.shape[0]
    return (loss_sum / n, correct / n) if n else (float("nan"), float("nan"))


def _binary_params(net):
    return [p for p in net.collect_params().values() if bopt.is_binary(p)]


def _signs(params):
    return [(p.data() >= 0).asnumpy() for p in params]


def _export(net, out_dir, prefix, epoch, trainer):
    """Writes PREFIX-symbol.json, PREFIX-NNNN.params and .states (unless ``trainer`` is None)
    through a temp dir + rename."""
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=out_dir)
    try:
        net.export(os.path.join(tmp, prefix), epoch=epoch)
        if trainer is not None:
            trainer.save_states(os.path.join(tmp, "%s-%04d.states" % (prefix, epoch)))
        for name in os.listdir(tmp):
            os.replace(os.path.join(tmp, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(out_dir, "%s-%04d.params" % (prefix, epoch))


def _latest_checkpoint(out_dir, prefix):
    best = 0
    for path in glob.glob(os.path.join(glob.escape(out_dir), glob.escape(prefix) + "-*.params")):
        m = re.fullmatch(re.escape(prefix) + r"-(\d{4,})\.params", os.path.basename(path))
        if m:
            best = max(best, int(m.group(1)))
    return best


def _load_export(net, path, ctx):
    try:  # the .params header is checked before MXNet's reader sees it
        loaded = read_params_file(path)
    except ConversionError as e:
        raise DataError("cannot resume from %s: %s" % (path, e)) from None
    params = net.collect_params()
    missing = set(params.keys())
    for k, v in loaded.items():
        name = k.split(":", 1)[1] if ":" in k else k
        if name in params:
            try:
                params[name].set_data(v.as_in_context(ctx))
            except (AssertionError, mx.base.MXNetError):
                raise DataError("checkpoint %s: %s has shape %s, the model needs %s; was it "
                                "written for another model?" % (path, name, v.shape,
                                                                params[name].shape)) from None
            missing.discard(name)
    if missing:
        raise DataError("checkpoint %s lacks %s; was it written for another model?"
                        % (path, ", ".join(sorted(missing)[:5])))


def _read_history(path):
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            if set(r) != set(FIELDS):
                raise ValueError("its columns are not %s" % ",".join(FIELDS))
            for k, v in r.items():
                if k == "epoch":
                    r[k] = int(float(v))
                elif k != "stage":
                    r[k] = float(v) if v not in ("", None) else float("nan")
    except (ValueError, TypeError, csv.Error, UnicodeDecodeError) as e:
        raise DataError("cannot resume: %s is not a metrics file written by bmxnet train (%s); "
                        "move it away or train without --resume" % (path, e)) from None
    return rows


FIELDS = ["stage", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "flip_rate",
          "seconds"]


def _write_history(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in FIELDS})
    os.replace(tmp, path)


def _plot(path, rows, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x = np.arange(1, len(rows) + 1)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for key, ax in (("loss", a1), ("acc", a2)):
        ax.plot(x, [r["train_" + key] for r in rows], label="train")
        ax.plot(x, [r["val_" + key] for r in rows], label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


def _run_stage(net, ds, ctx, trainer, epochs, out_dir, prefix, stage, history, start_epoch,
               progress, log, dist=None):
    """``dist``: None, or for a dist kvstore a dict with ``rank``, ``num_workers`` and
    ``watchdog``."""
    from tqdm import tqdm
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    binary = _binary_params(net)
    path = None
    num_workers = dist["num_workers"] if dist else 1
    writer = dist is None or dist["rank"] == 0  # only rank 0 writes files
    check = dist is not None  # the first update is checked (a server may have failed to load it)
    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.time()
        before = _signs(binary)
        total = correct = 0
        loss_sum = 0.0
        bar = tqdm(ds.train, desc="%s epoch %d/%d" % (stage, epoch, epochs), leave=False,
                   disable=None if progress else True,
                   total=len(ds.train) if hasattr(ds.train, "__len__") else None, file=sys.stderr)
        for x, y in bar:
            x, y = x.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            if check:
                params = list(net.collect_params().values())
                values = [p.data().asnumpy() for p in params]
            # the gradients of all workers are summed: normalise by the global batch
            trainer.step(x.shape[0] * num_workers)
            if check:
                verify_first_step(params, values, binary if isinstance(
                    trainer._optimizer, bopt.Bop) else ())
                check = False
            if dist:
                dist["watchdog"].beat()
            loss_sum += loss.sum().asscalar()
            correct += (out.argmax(axis=1) == y.astype(out.dtype)).sum().asscalar()
            total += x.shape[0]
            bar.set_postfix(loss="%.3f" % (loss_sum / total), acc="%.3f" % (correct / total))
        bar.close()
        after = _signs(binary)
        nbin = sum(a.size for a in after)
        flips = sum(int((a != b).sum()) for a, b in zip(after, before))
        val_loss, val_acc = _evaluate(net, ds.val, ctx, loss_fn)
        row = {"stage": stage, "epoch": epoch, "train_loss": loss_sum / max(total, 1),
               "train_acc": correct / max(total, 1), "val_loss": val_loss, "val_acc": val_acc,
               "lr": trainer.learning_rate, "flip_rate": flips / nbin if nbin else 0.0,
               "seconds": time.time() - t0}
        history.append(row)
        if writer:
            path = _export(net, out_dir, prefix, epoch, None if dist else trainer)
            _write_history(os.path.join(out_dir, "%s-metrics.csv" % prefix), history)
        else:
            path = os.path.join(out_dir, "%s-%04d.params" % (prefix, epoch))
        if dist:
            dist["watchdog"].beat()
        log("%s epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | flips %.4f%% | "
            "%.1fs" % (stage, epoch, row["train_loss"], row["train_acc"], val_loss, val_acc,
                       100 * row["flip_rate"], row["seconds"]))
    return path


def train(model, *, dataset="digits", data_dir=None, optimizer=None, hparams=None,
          hparams_set=None, recipe=None, epochs=None, batch_size=None, out_dir="checkpoints",
          prefix=None, resume=False, num_train=None, num_val=None, seed=0, model_kwargs=None,
          progress=True, plot=True, kvstore="device", dist_timeout=600, log=print):
    """Trains a model of the zoo on a data set; the Python form of ``bmxnet train``.

    ``epochs`` and ``batch_size`` default to the hyperparameters' ``epochs`` / ``batch_size``,
    then to 10 and 64; ``optimizer`` to the recipe's, to bop with a Bop hyperparameter set, else
    adam.

    ``kvstore``: ``'local'``, ``'device'`` or, in a process started by MXNet's launcher,
    ``'dist_sync'`` / ``'dist_async'``. With a dist kvstore ``batch_size`` is per worker: each
    step of worker ``r`` of ``N`` takes rows ``[r*B, (r+1)*B)`` of a global batch of ``N*B``
    (the same order as one worker with batch ``N*B``), gradients are averaged over the global
    batch, so the learning rate is that of batch ``N*B``; only rank 0 writes files. The
    optimizers run on the kvstore servers (MXNet's default for dist): their state is not
    checkpointed (MXNet cannot save it from a worker) and ``resume`` restarts it. A worker that
    makes no progress for ``dist_timeout`` seconds (a peer or server died) stops with exit
    status 3.

    Returns
    -------
    dict
        ``val_acc``, ``train_acc`` (last epoch), ``history`` (list of metric rows),
        ``symbol`` and ``params`` (paths of the last checkpoint), ``metrics``, ``curves``; a path
        is None when that file does not exist (e.g. ``plot=False``).

    Raises
    ------
    UsageError
        An argument or hyperparameter that cannot be used (nothing has been written then).
    bmxnet.data.DataError
        A data set or a checkpoint to resume from that is missing or malformed.
    """
    if recipe is not None:
        if recipe not in RECIPES:
            raise UsageError("unknown recipe %r; choose one of %s" % (recipe, sorted(RECIPES)))
        r = RECIPES[recipe]
        if optimizer not in (None, r["optimizer"]):
            raise UsageError("recipe %r trains with %s: leave out --optimizer %s"
                             % (recipe, r["optimizer"], optimizer))
        optimizer = r["optimizer"]
        hparams_set = hparams_set or r["hparams_set"]
    hp = {}
    if hparams_set is not None:
        if hparams_set not in HPARAM_SETS:
            raise UsageError("unknown hparams set %r; choose one of %s"
                             % (hparams_set, sorted(HPARAM_SETS)))
        if hparams_set.startswith("bop"):
            if optimizer not in (None, "bop"):
                raise UsageError("hparams set %r is Bop's: use it with --optimizer bop, not %s"
                                 % (hparams_set, optimizer))
            optimizer = "bop"
        hp.update(HPARAM_SETS[hparams_set])
    optimizer = "adam" if optimizer is None else optimizer
    if optimizer not in DEFAULT_LR:
        raise UsageError("optimizer must be one of %s, got %r" % (sorted(DEFAULT_LR), optimizer))
    hp.update(hparams or {})
    check_hparams(hp)
    batch_size = hp.get("batch_size", 64) if batch_size is None else batch_size
    epochs = hp.get("epochs", 10) if epochs is None else epochs
    _check_count("epochs", epochs)
    _check_count("batch_size", batch_size)
    for name, value in (("num_train", num_train), ("num_val", num_val)):
        if value is not None:
            _check_count(name, value)
    if not _is_int(seed) or not 0 <= seed < 2 ** 32:
        raise UsageError("seed must be an integer in [0, 2**32), got %r" % (seed,))
    if not isinstance(model, str) or model.lower() not in model_zoo.get_model_list():
        raise UsageError("model %r is not in the zoo; `bmxnet models` lists them" % (model,))
    prefix = model.lower() if prefix is None else prefix
    if not prefix or prefix != os.path.basename(prefix) or prefix in (".", ".."):
        raise UsageError("prefix must be a file name without a folder, got %r (use --out-dir "
                         "for the folder)" % (prefix,))
    if dataset not in DATASETS:
        raise UsageError("unknown dataset %r; choose one of %s" % (dataset, ", ".join(DATASETS)))
    if dataset != "digits" and not data_dir:
        raise UsageError("dataset %r needs --data-dir (the folder with its files)" % dataset)
    two_step = recipe is not None and RECIPES[recipe].get("two_step")
    if two_step and epochs < 2:
        raise UsageError("recipe %r trains in two steps of half the epochs each: --epochs must "
                         "be >= 2, got %d" % (recipe, epochs))
    if kvstore not in KVSTORES:
        raise UsageError("kvstore must be one of %s, got %r" % (", ".join(KVSTORES), kvstore))
    dist = None
    if kvstore.startswith("dist"):
        if two_step:
            raise UsageError("recipe %r is not supported with --kvstore %s; train each step "
                             "as its own run" % (recipe, kvstore))
        if dataset == "imagenet":
            raise UsageError("--kvstore %s shards in-memory data sets (digits, mnist, cifar10), "
                             "not imagenet" % kvstore)
        if not _is_number(dist_timeout) or dist_timeout <= 0:
            raise UsageError("dist_timeout must be a number > 0, got %r" % (dist_timeout,))
        if "DMLC_ROLE" not in os.environ:
            raise UsageError("--kvstore %s needs the processes of MXNet's launcher: run `bmxnet "
                             "launch -n WORKERS -s SERVERS --launcher local bmxnet train ...`"
                             % kvstore)
        kv = mx.kv.create(kvstore)
        dist = {"rank": kv.rank, "num_workers": kv.num_workers}
        kvstore = kv
    mx.random.seed(seed)
    np.random.seed(seed)
    ctx = mx.cpu()
    nw = dist["num_workers"] if dist else 1
    ds = get_dataset(dataset, data_dir, batch_size * nw, num_train=num_train, num_val=num_val,
                     seed=seed)
    if dist:
        ds.train = ShardIterator(ds.train, dist["rank"], nw, batch_size)
        if len(ds.train) == 0:
            raise UsageError("%d training examples make no global batch of %d workers x %d"
                             % (ds.num_train, nw, batch_size))
    steps = len(ds.train) if hasattr(ds.train, "__len__") else \
        max(1, (ds.num_train or batch_size) // batch_size)
    kw = _model_kwargs(model, ds, model_kwargs)
    history = _read_history(os.path.join(out_dir, "%s-metrics.csv" % prefix)) if resume else []

    def build(**extra):
        # Model arguments come from the command line: a wrong name or type shows up as TypeError
        # or ValueError in the constructor or the first forward, a shape that does not fit as
        # MXNetError.
        try:
            net = model_zoo.get_model(model, prefix=model.lower() + "_", **dict(kw, **extra))
            net.initialize(mx.init.Xavier(magnitude=2), ctx=ctx)
            net.hybridize(static_alloc=True, static_shape=True)
            net(mx.nd.zeros((1,) + ds.input_shape, ctx=ctx))
        except (TypeError, ValueError, mx.base.MXNetError) as e:
            raise UsageError("cannot build model %r with arguments %s for %s inputs of shape %s: "
                             "%s" % (model, ", ".join("%s=%r" % i for i in sorted(kw.items())),
                                     dataset, ds.input_shape, error_line(e))) from None
        return net

    stages = []
    if two_step:
        e1 = max(1, epochs // 2)
        stages.append(("stage1", prefix + "-stage1", e1, {"kernel_quantizer": None}))
        stages.append(("stage2", prefix, max(1, epochs - e1), {}))
    else:
        stages.append(("train", prefix, epochs, {}))
    net = prev = path = None
    for stage, pfx, n_epochs, extra in stages:
        net = build(**extra)
        done = _latest_checkpoint(out_dir, pfx) if resume else 0
        if prev is not None and done == 0:  # Bi-Real step 2 starts from step 1's weights
            src = prev.collect_params()
            for name, p in net.collect_params().items():
                p.set_data(src[name].data())
        trainer = _make_trainer(net, optimizer, hp, steps, n_epochs, kvstore)
        if done:
            states = os.path.join(out_dir, "%s-%04d.states" % (pfx, done))
            if dist:
                log("%s: the optimizer state lives on the kvstore servers and is not "
                    "checkpointed; it restarts from zero" % kvstore.type)
            elif os.path.exists(states):
                try:
                    trainer.load_states(states)
                except Exception as e:  # a pickle or MXNet error from a damaged file
                    raise DataError("cannot resume from %s: %s (%s); delete it to resume with "
                                    "fresh optimizer state" % (states, type(e).__name__,
                                                               error_line(e))) from None
            _load_export(net, os.path.join(out_dir, "%s-%04d.params" % (pfx, done)), ctx)
            log("resumed %s from epoch %d" % (pfx, done))
            if done >= n_epochs:
                log("%s: the checkpoint already has epoch %d of %d; nothing to train"
                    % (pfx, done, n_epochs))
        history = [r for r in history if not (r["stage"] == stage and r["epoch"] > done)]
        if dist is None or dist["rank"] == 0:
            os.makedirs(out_dir, exist_ok=True)  # only now: a usage error leaves nothing behind
        if dist:
            dist["watchdog"] = Watchdog(
                dist_timeout, "worker %d of %d: a worker or server of the %s job is gone; "
                "stopped. Restart the job with --resume (from the last checkpoint in %s)"
                % (dist["rank"], nw, kvstore.type, out_dir))
        try:
            p = _run_stage(net, ds, ctx, trainer, n_epochs, out_dir, pfx, stage, history, done,
                           progress, log, dist)
        finally:
            if dist:
                dist["watchdog"].stop()
        path = p or os.path.join(out_dir, "%s-%04d.params" % (pfx, done))  # done >= 1 here
        prev = net
    metrics = os.path.join(out_dir, "%s-metrics.csv" % prefix)
    if two_step:  # one log with both steps
        _write_history(metrics, history)
    curves = os.path.join(out_dir, "%s-curves.png" % prefix)
    if plot and history and (dist is None or dist["rank"] == 0):
        _plot(curves, history, "%s on %s (%s)" % (model, dataset, optimizer))
    last = history[-1] if history else {}

    def existing(file):
        return file if file is not None and os.path.isfile(file) else None
    return {"val_acc": last.get("val_acc"), "train_acc": last.get("train_acc"),
            "history": history, "params": existing(path),
            "symbol": existing(os.path.join(out_dir, "%s-symbol.json" % prefix)),
            "metrics": existing(metrics), "curves": existing(curves) if plot and history else None,
            "optimizer": optimizer}


# ------------------------------------------------------------------------------------------------
def _int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError("expected an integer >= %d, got %r" % (minimum, text))
        return value
    return parse


def _seed(text):
    value = _int_at_least(0)(text)
    if value >= 2 ** 32:
        raise argparse.ArgumentTypeError("expected an integer in [0, 2**32), got %r" % text)
    return value


def _shape(text):
    try:
        shape = tuple(int(t) for t in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError("expected a shape with the batch first, e.g. "
                                         "1,3,224,224, got %r" % text)
    return shape


def build_parser():
    p = argparse.ArgumentParser(prog="bmxnet", description="Binary neural networks for MXNet.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model of the zoo",
                       description="Train a model of bmxnet's zoo (see `bmxnet models`).")
    t.add_argument("model", help="model name, e.g. lenet, binarynet, birealnet18_cifar")
    t.add_argument("--dataset", default="digits", choices=DATASETS)
    t.add_argument("--data-dir", default=None, help="folder with the data set's files")
    t.add_argument("--optimizer", default=None, choices=sorted(DEFAULT_LR),
                   help="default: the recipe's; bop with a Bop --hparams-set; else adam")
    t.add_argument("--hparams", default="", help="k=v,k=v overrides (Python literals)")
    t.add_argument("--hparams-set", default=None, choices=sorted(HPARAM_SETS))
    t.add_argument("--recipe", default=None, choices=sorted(RECIPES))
    t.add_argument("--epochs", type=_int_at_least(1), default=None,
                   help="epochs to train (default: the hyperparameters' epochs, else 10)")
    t.add_argument("--batch-size", type=_int_at_least(1), default=None,
                   help="default: the hyperparameters' batch_size, else 64")
    t.add_argument("--out-dir", default="checkpoints")
    t.add_argument("--prefix", default=None, help="checkpoint prefix (default: the model name)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--num-train", type=_int_at_least(1), default=None,
                   help="use only N training examples")
    t.add_argument("--num-val", type=_int_at_least(1), default=None,
                   help="use only N validation examples")
    t.add_argument("--model-kwargs", default="", help="k=v,k=v for the model constructor")
    t.add_argument("--seed", type=_seed, default=0)
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    t.add_argument("--no-plot", action="store_true", help="no training-curve PNG")
    t.add_argument("--kvstore", default="device", choices=KVSTORES,
                   help="dist_sync / dist_async: in processes started by `bmxnet launch` "
                   "(--batch-size is then per worker)")
    t.add_argument("--dist-timeout", type=float, default=600,
                   help="dist kvstore: stop a worker after this many seconds without progress")

    sub.add_parser("launch", add_help=False,
                   help="MXNet's launcher: bmxnet launch -n 2 -s 1 --launcher local bmxnet "
                   "train ... (python -m mxnet.tools.launch, fixed for Python >= 3.9)")

    sub.add_parser("models", help="list the model zoo")

    s = sub.add_parser("summary", help="per-layer table of a zoo model")
    s.add_argument("model")
    s.add_argument("--input-shape", type=_shape, default=None, help="e.g. 1,3,224,224")
    s.add_argument("--classes", type=_int_at_least(1), default=None)
    return p


def _default_shape(name):
    if "lenet" in name:
        return (1, 1, 28, 28)
    if "cifar" in name or name.startswith("binarynet"):
        return (1, 3, 32, 32)
    return (1, 3, 224, 224)


def _summary(args):
    from .summary import summary
    if args.model.lower() not in model_zoo.get_model_list():
        raise UsageError("model %r is not in the zoo; `bmxnet models` lists them" % args.model)
    shape = args.input_shape or _default_shape(args.model.lower())
    kw = {"classes": args.classes} if args.classes else {}
    net = model_zoo.get_model(args.model, **kw)
    try:
        summary(net, shape)
    except ValueError as e:  # the shape does not fit the model
        raise UsageError("--input-shape %s: %s" % (",".join(map(str, shape)), e)) from None


def main(argv=None):
    """The ``bmxnet`` command; returns the exit status (argparse exits with 2 itself on an
    option it cannot parse)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["launch"]:
        from .distributed import launch
        return launch(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            print("\n".join(model_zoo.get_model_list()))
            return 0
        if args.command == "summary":
            _summary(args)
            return 0
        res = train(args.model, dataset=args.dataset, data_dir=args.data_dir,
                    optimizer=args.optimizer, hparams=parse_hparams(args.hparams),
                    hparams_set=args.hparams_set, recipe=args.recipe, epochs=args.epochs,
                    batch_size=args.batch_size, out_dir=args.out_dir, prefix=args.prefix,
                    resume=args.resume, num_train=args.num_train, num_val=args.num_val,
                    seed=args.seed,
                    model_kwargs=parse_hparams(args.model_kwargs, "--model-kwargs"),
                    progress=not args.no_progress, plot=not args.no_plot,
                    kvstore=args.kvstore, dist_timeout=args.dist_timeout)
        print(json.dumps({k: res[k] for k in ("val_acc", "train_acc", "symbol", "params",
                                              "metrics", "curves", "optimizer")}, indent=1))
        return 0
    except UsageError as e:
        print("bmxnet: error: %s" % e, file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of our output went away (`bmxnet models | head -3`): stop quietly; the
        # remaining output goes nowhere, so that flushing it at exit raises nothing either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (DataError, OSError) as e:
        print("bmxnet: error: %s" % e, file=sys.stderr)
        return 1


def run_preset(presets, dataset, doc, argv=None):
    """The launcher of the scripts in smd_hpi_examples/: ``PRESET [bmxnet train options]``.

    ``presets`` maps a name to ``[model, option, ...]``; options given after the preset name
    override the preset's (argparse keeps the last value). ``--print-command`` prints the
    equivalent ``bmxnet train`` command instead of running it.
    """
    import shlex
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("preset", choices=sorted(presets))
    p.add_argument("--print-command", action="store_true",
                   help="print the equivalent `bmxnet train` command and exit")
    args, extra = p.parse_known_args(argv)
    model, *rest = presets[args.preset]
    cmd = ["train", model, "--dataset", dataset] + list(rest) + list(extra)
    if args.print_command:
        print("bmxnet " + " ".join(shlex.quote(a) for a in cmd))
        return 0
    return main(cmd)


if __name__ == "__main__":
    sys.exit(main())
