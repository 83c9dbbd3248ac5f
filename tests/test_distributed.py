"""Distributed training on MXNet's parameter server (dist_sync / dist_async) on loopback.

Every test starts its own scheduler, server and workers (DMLC_* environment variables, as
mxnet.tools.launch sets them) on a free port, bounds each run in time and kills every process
group it started at the end, also on failure.

Equivalence: 2 workers x batch B with dist_sync against 1 process x batch 2B on the same data
order. The binary weights must be identical; the real-valued ones agree within 1e-6 (absolute):
the only difference is the order in which the two halves of the gradient are summed (float32
rounding, ~1e-8 measured). k is kept small: a Bop flip compares the gradient average with the
threshold, so over many steps a rounding difference eventually decides a near-tie the other way.
"""
import os
import pickle
import signal
import socket
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

import bmxnet  # noqa: F401
from bmxnet import distributed
from bmxnet.cli import _load_export, train
from bmxnet.optimizer import Bop, BopBinary, CaseOptimizer, is_binary

PY = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_TOL = 1e-6

WORKER = r'''
import sys
import numpy as np
import mxnet as mx
from mxnet import autograd, gluon
import bmxnet
from bmxnet.data import load_digits
from bmxnet.gluon import QDense
opt, kvname, B, steps, out, where = sys.argv[1:7]
B, steps = int(B), int(steps)
mx.random.seed(0)
(X, y), _ = load_digits()
X = X.reshape(len(X), -1)
if kvname.startswith("dist"):
    kv = mx.kv.create(kvname)
    rank, n = kv.rank, kv.num_workers
else:
    kv, rank, n = kvname, 0, 1
net = gluon.nn.HybridSequential()  # no BatchNorm: its batch statistics depend on B
net.add(gluon.nn.Dense(32, in_units=64, activation="tanh"), QDense(32, in_units=32),
        gluon.nn.Dense(10, in_units=32))
net.initialize(mx.init.Xavier())
hp = {"learning_rate": 0.05} if opt == "sgd" else \
    {"learning_rate": 1e-3, "threshold": 1e-6, "gamma": 1e-2}
trainer = gluon.Trainer(net.collect_params(), opt, hp, kvstore=kv,
                        update_on_kvstore={"server": True, "worker": False, "-": None}[where])
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
G = B * n
for t in range(steps):
    lo = t * G + rank * B  # worker r: rows [r*B, (r+1)*B) of global batch t
    xb, yb = mx.nd.array(X[lo:lo + B]), mx.nd.array(y[lo:lo + B])
    with autograd.record():
        loss = loss_fn(net(xb), yb)
    loss.backward()
    trainer.step(G)  # the summed gradient of all workers, averaged over the global batch
np.savez(out % rank, **{k: v.data().asnumpy() for k, v in net.collect_params().items()})
'''


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """1 scheduler, 1 server, ``n`` workers running ``cmd``; logs in ``logdir``."""

    def __init__(self, cmd, n, logdir, cwd=None):
        env = dict(os.environ, DMLC_PS_ROOT_URI="127.0.0.1", DMLC_PS_ROOT_PORT=str(_free_port()),
                   DMLC_NUM_WORKER=str(n), DMLC_NUM_SERVER="1", OMP_NUM_THREADS="1",
                   PYTHONPATH=ROOT)
        self.procs, self.logs = [], []
        for i, role in enumerate(["scheduler", "server"] + ["worker"] * n):
            log = os.path.join(logdir, "%s%d.log" % (role, i))
            with open(log, "w") as f:
                self.procs.append(subprocess.Popen(
                    cmd, env=dict(env, DMLC_ROLE=role), stdout=f, stderr=subprocess.STDOUT,
                    cwd=cwd, start_new_session=True))
            self.logs.append(log)
        self.workers = self.procs[2:]

    def log(self, i):
        with open(self.logs[i]) as f:
            return f.read()

    def wait(self, timeout):
        """Return codes of the workers (each within ``timeout`` s), then of server/scheduler."""
        end = time.monotonic() + timeout
        for p in self.workers + self.procs[:2]:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail("distributed run exceeded %d s; logs:\n%s" % (timeout, "\n".join(
                    "--- %s\n%s" % (log, self.log(i)[-1500:]) for i, log in enumerate(self.logs))))
        return [p.returncode for p in self.procs]

    def kill(self):
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


@pytest.fixture
def cluster(tmp_path):
    started = []

    def start(cmd, n, cwd=None):
        c = Cluster(cmd, n, str(tmp_path), cwd)
        started.append(c)
        return c
    yield start
    for c in started:
        c.kill()


def _run_worker_script(tmp_path, cluster, opt, where, kv="dist_sync", B=16, steps=6):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = str(tmp_path / ("%s-%s-%s-%%d.npz" % (opt, where, kv)))
    c = cluster([PY, str(script), opt, kv, str(B), str(steps), out, where], 2)
    rcs = c.wait(60)
    assert rcs[2:] == [0, 0], c.log(2)[-2000:] + c.log(3)[-2000:]
    return [dict(np.load(out % r)) for r in range(2)], str(script)


# --- the optimizer on a server ------------------------------------------------------------------
def _param(name, precision=32):
    p = mx.gluon.Parameter(name, shape=(2,))
    p.precision = precision
    return p


def test_pickle_round_trip_keeps_routing():
    opt = Bop(threshold=1e-5, gamma=1e-2, learning_rate=0.01)
    opt.param_dict = {0: _param("w", 1), 1: _param("b")}
    opt.rescale_grad = 0.25
    back = pickle.loads(pickle.dumps(opt, 0))  # protocol 0, as KVStore.set_optimizer sends it
    assert back.param_dict == {}  # a server gets no Parameters...
    assert isinstance(back.optimizer_for(0), BopBinary)  # ...but the same routing
    assert back.optimizer_for(1) is back.fp_optimizer
    assert back.binary_optimizer.threshold == 1e-5 and back.binary_optimizer.gamma == 1e-2
    assert back.rescale_grad == 0.25 and back.binary_optimizer.rescale_grad == 0.25
    case = CaseOptimizer((is_binary, "sgd"), default_optimizer="adam")
    case.param_dict = {3: _param("w", 1), 4: _param("b")}
    back = pickle.loads(pickle.dumps(case))
    assert type(back.optimizer_for(3)).__name__ == "SGD"
    assert type(back.optimizer_for(4)).__name__ == "Adam"


def test_verify_first_step_catches_a_server_that_did_not_update():
    p = _param("w", 1)
    p.initialize()
    p.set_data(mx.nd.array([0.3, -0.2]))
    before = [p.data().asnumpy()]
    with pytest.raises(distributed.DistributedError, match="no parameter changed"):
        distributed.verify_first_step([p], before)
    with pytest.raises(distributed.DistributedError, match="not \\+-1 after the first Bop"):
        p.set_data(mx.nd.array([5.0, -3.0]))  # e.g. summed gradients written as weights
        distributed.verify_first_step([p], before, [p])
    p.set_data(mx.nd.array([1.0, -1.0]))
    distributed.verify_first_step([p], before, [p])


def test_shards_make_the_global_batches():
    from bmxnet.data import ArrayIterator
    X = np.arange(22, dtype=np.float32).reshape(11, 1, 1, 2)
    y = np.arange(11)
    shards = [list(distributed.ShardIterator(ArrayIterator(X, y, 6, shuffle=True, seed=3), r, 2, 3))
              for r in range(2)]
    glob = list(ArrayIterator(X, y, 6, shuffle=True, seed=3))[:1]  # 11 // 6: one full batch
    assert len(shards[0]) == len(shards[1]) == 1
    np.testing.assert_array_equal(np.concatenate([shards[0][0][1].asnumpy(),
                                                  shards[1][0][1].asnumpy()]), glob[0][1].asnumpy())


# --- (a) 2 workers x B == 1 worker x 2B ---------------------------------------------------------
# Both places the optimizer can run. Updates on the workers (update_on_kvstore=False) depend on
# bmxnet.distributed.install_trainer_fix (run by `import bmxnet`): without it MXNet 1.9 lets a
# worker's first pull of the initial weights be answered with the first summed gradient, and the
# workers' weights differed in about 1 run of 4 (test_trainer_fix_orders_the_first_pull).
@pytest.mark.parametrize("opt,where", [("sgd", "server"), ("bop", "server"),
                                       ("sgd", "worker"), ("bop", "worker")])
def test_two_workers_reproduce_one_worker_with_the_double_batch(tmp_path, cluster, opt, where):
    (w0, w1), script = _run_worker_script(tmp_path, cluster, opt, where)
    ref = str(tmp_path / "ref-%d.npz")
    subprocess.run([PY, script, opt, "local", "32", "6", ref, "-"], check=True, timeout=60,
                   env=dict(os.environ, OMP_NUM_THREADS="1"))
    ref = dict(np.load(ref % 0))
    print("%s updated on the %s: largest |2 workers x 16 - 1 x 32| over real-valued params %.2g"
          % (opt, where, max(float(np.abs(w0[n] - v).max()) for n, v in ref.items()
                              if not (opt == "bop" and n.startswith("qdense")
                                      and n.endswith("weight")))))
    for name, value in ref.items():
        if name.startswith("qdense") and name.endswith("weight") and opt == "bop":
            assert set(np.unique(w0[name])) == {-1.0, 1.0}
            np.testing.assert_array_equal(w0[name], value, err_msg=name)
        else:
            np.testing.assert_allclose(w0[name], value, rtol=0, atol=REAL_TOL, err_msg=name)
        np.testing.assert_array_equal(w0[name], w1[name], err_msg=name)  # workers agree


def test_trainer_fix_orders_the_first_pull(tmp_path, cluster):
    """Several short runs with the updates on the workers: the first step is where MXNet's race
    hit (a worker's weights became the summed gradient), so each run checks step 1 only, and
    both workers must hold the same weights, equal to the single-process run's."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    ref = str(tmp_path / "ref-%d.npz")
    subprocess.run([PY, str(script), "sgd", "local", "32", "1", ref, "-"], check=True,
                   timeout=60, env=dict(os.environ, OMP_NUM_THREADS="1"))
    ref = dict(np.load(ref % 0))
    for run in range(6):
        out = str(tmp_path / ("run%d-%%d.npz" % run))
        c = cluster([PY, str(script), "sgd", "dist_sync", "16", "1", out, "worker"], 2)
        assert c.wait(60)[2:] == [0, 0], c.log(2)[-2000:] + c.log(3)[-2000:]
        w0, w1 = (dict(np.load(out % r)) for r in range(2))
        for name, value in ref.items():
            np.testing.assert_array_equal(w0[name], w1[name], err_msg="run %d %s" % (run, name))
            np.testing.assert_allclose(w0[name], value, rtol=0, atol=REAL_TOL,
                                       err_msg="run %d %s" % (run, name))


def test_install_trainer_fix_is_in_place_once():
    from mxnet.gluon import Trainer
    patched = Trainer._init_params
    assert getattr(patched, "bmxnet_ordered", False)  # import bmxnet installed it
    distributed.install_trainer_fix()
    assert Trainer._init_params is patched  # not wrapped twice


def test_bop_with_dist_async_updates_on_the_server(tmp_path, cluster):
    (w0, _), _ = _run_worker_script(tmp_path, cluster, "bop", "server", kv="dist_async", steps=3)
    assert set(np.unique(w0["qdense0_weight"])) == {-1.0, 1.0}


# --- (b), (c): bmxnet train --kvstore dist_sync ----------------------------------------------------
BOP = ["--optimizer", "bop", "--hparams", "threshold=1e-6,gamma=1e-3,learning_rate=0.01"]


def _train_cmd(out_dir, *extra):
    return [PY, "-m", "bmxnet.cli", "train", "lenet", "--dataset", "digits", "--out-dir",
            out_dir, "--no-progress", "--no-plot", "--kvstore", "dist_sync"] + BOP + list(extra)


def test_two_worker_bop_reaches_single_worker_accuracy(tmp_path, cluster):
    single = train("lenet", dataset="digits", optimizer="bop", batch_size=64, epochs=4,
                   hparams={"threshold": 1e-6, "gamma": 1e-3, "learning_rate": 0.01},
                   out_dir=str(tmp_path / "single"), progress=False, plot=False, log=lambda m: 0)
    c = cluster(_train_cmd(str(tmp_path / "dist"), "--batch-size", "32", "--epochs", "4"), 2)
    assert c.wait(80)[2:] == [0, 0], c.log(2)[-2000:] + c.log(3)[-2000:]
    with open(tmp_path / "dist" / "lenet-metrics.csv") as f:
        rows = f.read().strip().splitlines()
    assert len(rows) == 5  # header + 4 epochs, written once (rank 0 only)
    dist_acc = float(rows[-1].split(",")[5])
    print("Bop lenet/digits val acc: 1 worker x 64 %.4f, 2 workers x 32 %.4f"
          % (single["val_acc"], dist_acc))
    assert dist_acc >= single["val_acc"] - 0.03
    assert single["val_acc"] > 0.9


def test_killed_worker_stops_the_others_and_resume_works(tmp_path, cluster):
    out = str(tmp_path / "ck")
    c = cluster(_train_cmd(out, "--batch-size", "32", "--epochs", "50", "--dist-timeout", "6"), 2)
    end = time.monotonic() + 60
    while not os.path.exists(os.path.join(out, "lenet-0001.params")):
        assert time.monotonic() < end and all(p.poll() is None for p in c.workers), \
            c.log(2)[-2000:] + c.log(3)[-2000:]
        time.sleep(0.2)
    os.killpg(c.workers[1].pid, signal.SIGKILL)
    t0 = time.monotonic()
    c.workers[0].wait(timeout=30)
    assert c.workers[0].returncode == 3
    assert time.monotonic() - t0 < 20
    assert "a worker or server of the dist_sync job is gone" in c.log(2)
    assert "--resume" in c.log(2)
    c.kill()
    # the last checkpoint loads, and a new job resumes from it
    done = max(int(f[6:10]) for f in os.listdir(out) if f.endswith(".params"))
    net = bmxnet.model_zoo.get_model("lenet", classes=10, in_channels=1, padding=2,
                                     prefix="lenet_")
    net.initialize()
    net(mx.nd.zeros((1, 1, 8, 8)))
    _load_export(net, os.path.join(out, "lenet-%04d.params" % done), mx.cpu())
    c2 = cluster(_train_cmd(out, "--batch-size", "32", "--epochs", str(done + 1), "--resume"), 2)
    assert c2.wait(60)[2:] == [0, 0], c2.log(2)[-2000:] + c2.log(3)[-2000:]
    assert "resumed lenet from epoch %d" % done in c2.log(2)
    assert os.path.exists(os.path.join(out, "lenet-%04d.params" % (done + 1)))
