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
``threshold``, ``gamma``, ``gamma_decay`` (Bop), and the schedule keys ``lr_schedule``
(constant / linear / cosine / step), ``lr_step_epochs`` (list), ``lr_step_factor``,
``gamma_decay_epochs``, ``batch_size``.

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

__all__ = ["main", "train", "build_parser", "HPARAM_SETS", "RECIPES", "parse_hparams",
           "run_preset"]

# Named hyperparameter sets: the Bop paper's (bmxnet.optimizer.HPARAM_SETS) and Bi-Real's.
HPARAM_SETS = dict(bopt.HPARAM_SETS)
HPARAM_SETS["bireal"] = {"learning_rate": 5e-3, "lr_schedule": "linear", "wd": 0.0}

RECIPES = {"bireal": {"optimizer": "adam", "hparams_set": "bireal", "two_step": True}}

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "bop": 1e-3}
SCHEDULE_KEYS = ("lr_schedule", "lr_step_epochs", "lr_step_factor", "gamma_decay_epochs",
                 "batch_size", "epochs")


class UsageError(ValueError):
    pass


def parse_hparams(text):
    """``'a=1,b=0.5,c=adam,d=[1,2]'`` -> dict (values parsed as Python literals)."""
    out = {}
    if not text:
        return out
    for part in re.split(r",(?![^\[]*\])", text):
        if not part.strip():
            continue
        if "=" not in part:
            raise UsageError("--hparams expects k=v pairs separated by commas, got %r" % part)
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = ast.literal_eval(v.strip())
        except (ValueError, SyntaxError):
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
    raise UsageError("lr_schedule must be constant, linear, cosine or step, got %r" % kind)


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
    except TypeError as e:
        raise UsageError("bad hyperparameter for optimizer %r: %s" % (optimizer, e)) from None


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
    """Writes PREFIX-symbol.json, PREFIX-NNNN.params and .states through a temp dir + rename."""
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=out_dir)
    try:
        net.export(os.path.join(tmp, prefix), epoch=epoch)
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
    loaded = mx.nd.load(path)
    params = net.collect_params()
    missing = set(params.keys())
    for k, v in loaded.items():
        name = k.split(":", 1)[1] if ":" in k else k
        if name in params:
            params[name].set_data(v.as_in_context(ctx))
            missing.discard(name)
    if missing:
        raise DataError("checkpoint %s lacks %s; was it written for another model?"
                        % (path, ", ".join(sorted(missing)[:5])))


def _read_history(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in r.items():
            if k == "epoch":
                r[k] = int(float(v))
            elif k != "stage":
                r[k] = float(v) if v not in ("", None) else float("nan")
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
               progress, log):
    from tqdm import tqdm
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    binary = _binary_params(net)
    path = None
    for epoch in range(start_epoch + 1, epochs + 1):
        t0 = time.time()
        before = _signs(binary)
        total = correct = 0
        loss_sum = 0.0
        bar = tqdm(ds.train, desc="%s epoch %d/%d" % (stage, epoch, epochs), leave=False,
                   disable=None if progress else True, total=len(ds.train) if hasattr(ds.train, "__len__")
                   else None, file=sys.stderr)
        for x, y in bar:
            x, y = x.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                out = net(x)
                loss = loss_fn(out, y)
            loss.backward()
            trainer.step(x.shape[0])
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
        path = _export(net, out_dir, prefix, epoch, trainer)
        _write_history(os.path.join(out_dir, "%s-metrics.csv" % prefix), history)
        log("%s epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | flips %.4f%% | "
            "%.1fs" % (stage, epoch, row["train_loss"], row["train_acc"], val_loss, val_acc,
                       100 * row["flip_rate"], row["seconds"]))
    return path


def train(model, *, dataset="digits", data_dir=None, optimizer="adam", hparams=None,
          hparams_set=None, recipe=None, epochs=10, batch_size=None, out_dir="checkpoints",
          prefix=None, resume=False, num_train=None, num_val=None, seed=0, model_kwargs=None,
          progress=True, plot=True, kvstore="device", log=print):
    """Trains a model of the zoo on a data set; the Python form of ``bmxnet train``.

    Returns
    -------
    dict
        ``val_acc``, ``train_acc`` (last epoch), ``history`` (list of metric rows),
        ``symbol`` and ``params`` (paths of the last checkpoint), ``metrics``, ``curves``.
    """
    if recipe is not None:
        if recipe not in RECIPES:
            raise UsageError("unknown recipe %r; choose one of %s" % (recipe, sorted(RECIPES)))
        r = RECIPES[recipe]
        optimizer = r["optimizer"]
        hparams_set = hparams_set or r["hparams_set"]
    if optimizer not in DEFAULT_LR:
        raise UsageError("optimizer must be one of %s, got %r" % (sorted(DEFAULT_LR), optimizer))
    hp = {}
    if hparams_set is not None:
        if hparams_set not in HPARAM_SETS:
            raise UsageError("unknown hparams set %r; choose one of %s"
                             % (hparams_set, sorted(HPARAM_SETS)))
        if hparams_set.startswith("bop") and optimizer != "bop":
            log("hparams set %r is Bop's: using --optimizer bop" % hparams_set)
            optimizer = "bop"
        hp.update(HPARAM_SETS[hparams_set])
    hp.update(hparams or {})
    batch_size = batch_size or hp.get("batch_size", 64)
    epochs = hp.get("epochs", epochs) if epochs is None else epochs
    prefix = prefix or model.lower()
    os.makedirs(out_dir, exist_ok=True)
    mx.random.seed(seed)
    np.random.seed(seed)
    ctx = mx.cpu()
    ds = get_dataset(dataset, data_dir, batch_size, num_train=num_train, num_val=num_val,
                     seed=seed)
    steps = len(ds.train) if hasattr(ds.train, "__len__") else \
        max(1, (ds.num_train or batch_size) // batch_size)
    two_step = recipe is not None and RECIPES[recipe].get("two_step")
    kw = _model_kwargs(model, ds, model_kwargs)
    history = _read_history(os.path.join(out_dir, "%s-metrics.csv" % prefix)) if resume else []

    def build(**extra):
        net = model_zoo.get_model(model, prefix=model.lower() + "_", **dict(kw, **extra))
        net.initialize(mx.init.Xavier(magnitude=2), ctx=ctx)
        net.hybridize(static_alloc=True, static_shape=True)
        try:
            net(mx.nd.zeros((1,) + ds.input_shape, ctx=ctx))
        except mx.base.MXNetError as e:
            raise UsageError("model %r cannot take %s inputs of shape %s: %s"
                             % (model, dataset, ds.input_shape,
                                str(e).strip().splitlines()[0])) from None
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
            _load_export(net, os.path.join(out_dir, "%s-%04d.params" % (pfx, done)), ctx)
            states = os.path.join(out_dir, "%s-%04d.states" % (pfx, done))
            if os.path.exists(states):
                trainer.load_states(states)
            log("resumed %s from epoch %d" % (pfx, done))
        history = [r for r in history if not (r["stage"] == stage and r["epoch"] > done)]
        p = _run_stage(net, ds, ctx, trainer, n_epochs, out_dir, pfx, stage, history, done,
                       progress, log)
        path = p or os.path.join(out_dir, "%s-%04d.params" % (pfx, done))
        prev = net
    metrics = os.path.join(out_dir, "%s-metrics.csv" % prefix)
    if two_step:  # one log with both steps
        _write_history(metrics, history)
    curves = os.path.join(out_dir, "%s-curves.png" % prefix)
    if plot and history:
        _plot(curves, history, "%s on %s (%s)" % (model, dataset, optimizer))
    last = history[-1] if history else {}
    return {"val_acc": last.get("val_acc"), "train_acc": last.get("train_acc"),
            "history": history, "params": path,
            "symbol": os.path.join(out_dir, "%s-symbol.json" % prefix), "metrics": metrics,
            "curves": curves if plot and history else None, "optimizer": optimizer}


# ------------------------------------------------------------------------------------------------
def build_parser():
    p = argparse.ArgumentParser(prog="bmxnet", description="Binary neural networks for MXNet.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model of the zoo",
                       description="Train a model of bmxnet's zoo (see `bmxnet models`).")
    t.add_argument("model", help="model name, e.g. lenet, binarynet, birealnet18_cifar")
    t.add_argument("--dataset", default="digits", choices=DATASETS)
    t.add_argument("--data-dir", default=None, help="folder with the data set's files")
    t.add_argument("--optimizer", default="adam", choices=sorted(DEFAULT_LR))
    t.add_argument("--hparams", default="", help="k=v,k=v overrides (Python literals)")
    t.add_argument("--hparams-set", default=None, choices=sorted(HPARAM_SETS))
    t.add_argument("--recipe", default=None, choices=sorted(RECIPES))
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--out-dir", default="checkpoints")
    t.add_argument("--prefix", default=None, help="checkpoint prefix (default: the model name)")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    t.add_argument("--num-train", type=int, default=None, help="use only N training examples")
    t.add_argument("--num-val", type=int, default=None, help="use only N validation examples")
    t.add_argument("--model-kwargs", default="", help="k=v,k=v for the model constructor")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    t.add_argument("--no-plot", action="store_true", help="no training-curve PNG")

    sub.add_parser("models", help="list the model zoo")

    s = sub.add_parser("summary", help="per-layer table of a zoo model")
    s.add_argument("model")
    s.add_argument("--input-shape", default=None, help="e.g. 1,3,224,224")
    s.add_argument("--classes", type=int, default=None)
    return p


def _default_shape(name):
    if "lenet" in name:
        return (1, 1, 28, 28)
    if "cifar" in name or name.startswith("binarynet"):
        return (1, 3, 32, 32)
    return (1, 3, 224, 224)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "models":
            print("\n".join(model_zoo.get_model_list()))
            return 0
        if args.command == "summary":
            from .summary import summary
            shape = tuple(int(v) for v in args.input_shape.split(",")) if args.input_shape \
                else _default_shape(args.model.lower())
            kw = {"classes": args.classes} if args.classes else {}
            summary(model_zoo.get_model(args.model, **kw), shape)
            return 0
        res = train(args.model, dataset=args.dataset, data_dir=args.data_dir,
                    optimizer=args.optimizer, hparams=parse_hparams(args.hparams),
                    hparams_set=args.hparams_set, recipe=args.recipe, epochs=args.epochs,
                    batch_size=args.batch_size, out_dir=args.out_dir, prefix=args.prefix,
                    resume=args.resume, num_train=args.num_train, num_val=args.num_val,
                    seed=args.seed, model_kwargs=parse_hparams(args.model_kwargs),
                    progress=not args.no_progress, plot=not args.no_plot)
        print(json.dumps({k: res[k] for k in ("val_acc", "train_acc", "symbol", "params",
                                              "metrics", "curves", "optimizer")}, indent=1))
        return 0
    except (UsageError, DataError, ValueError) as e:
        print("bmxnet: error: %s" % e, file=sys.stderr)
        return 2


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
