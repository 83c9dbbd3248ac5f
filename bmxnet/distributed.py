"""Training on several processes or machines with MXNet's parameter-server kvstore.

bmxnet writes no launcher or transport: processes are started by the launcher the mxnet wheel
ships (``python -m mxnet.tools.launch``; :func:`launch` runs it with one fix for Python >= 3.9)
and talk through ``mx.kv.create('dist_sync' | 'dist_async')``. This module holds what
``bmxnet train --kvstore dist_*`` adds on top:

* :class:`ShardIterator`: each worker's share of every global batch, so that N workers with
  batch B see exactly the batches of one worker with batch N*B;
* :func:`verify_first_step`: after the first update, a check that the update really happened the
  way the optimizer does it (a kvstore server that failed to load the optimizer otherwise lets
  training run on silently with wrong weights);
* :class:`Watchdog`: stops a worker whose peers are gone (a dist_sync push/pull otherwise waits
  forever) with a message naming the cause and the fix;
* :func:`install_trainer_fix` (run by ``import bmxnet`` in a worker): ``gluon.Trainer`` pulls the
  initial weights from the kvstore only at the first ``step``, and MXNet 1.9 does not order that
  pull before the first gradient push of the same key. When another worker's gradient for a key
  reaches the server first, the server answers the pull after merging the gradients, so with
  ``update_on_kvstore=False`` a worker's weights were overwritten with the summed gradient (seen
  in about 1 run in 8 of two workers; the workers' weights then differ for good). The fix waits
  for those pulls and holds every worker at a barrier before any gradient is pushed.
"""
import os
import sys
import threading
import time

import numpy as np

__all__ = ["ShardIterator", "verify_first_step", "Watchdog", "launch", "DistributedError",
           "install_trainer_fix"]


class DistributedError(RuntimeError):
    """Distributed training cannot go on correctly (the message names the cause and the fix)."""


class ShardIterator:
    """Worker ``rank``'s slice of each batch of ``global_iter`` (an iterable of (data, label)
    batches of ``num_workers * batch_size`` examples, the same on every worker: same data, same
    seed).

    Batch ``t`` of worker ``r`` is rows ``[r*B, (r+1)*B)`` of global batch ``t``, so the workers
    together see the batches of one worker with batch ``num_workers * B``. A last global batch
    with fewer than ``num_workers * B`` examples is dropped: in dist_sync every worker must make
    the same number of steps.
    """

    def __init__(self, global_iter, rank, num_workers, batch_size):
        if not 0 <= rank < num_workers:
            raise ValueError("rank %d is not in [0, %d)" % (rank, num_workers))
        self.global_iter, self.rank = global_iter, rank
        self.num_workers, self.batch_size = num_workers, batch_size

    def __len__(self):
        n = getattr(self.global_iter, "X", None)
        if n is None:
            raise TypeError("the length of a shard needs an in-memory global iterator")
        return len(n) // (self.num_workers * self.batch_size)

    def __iter__(self):
        full = self.num_workers * self.batch_size
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for x, y in self.global_iter:
            if x.shape[0] < full:
                return
            yield x[lo:hi], y[lo:hi]


def verify_first_step(params, before, binary=()):
    """Raises :class:`DistributedError` unless the first update changed the weights as the
    optimizer does.

    ``params``: the gluon Parameters; ``before``: their values (numpy) before the first step;
    ``binary``: the Parameters Bop trains, which must hold exactly -1 / +1 after an update.
    """
    changed = False
    for p, old in zip(params, before):
        new = p.data().asnumpy()
        if not np.all(np.isfinite(new)):
            raise DistributedError(
                "parameter %s is not finite after the first distributed update: the kvstore "
                "server did not apply the optimizer (see the server's log for the error)" % p.name)
        changed = changed or not np.array_equal(new, old)
    for p in binary:
        w = p.data().asnumpy()
        if not np.all(np.abs(w) == 1):
            raise DistributedError(
                "binary weight %s is not +-1 after the first Bop update: the kvstore server did "
                "not run Bop (see the server's log for the error; is bmxnet importable there, "
                "with the same version as on the workers?)" % p.name)
    if not changed:
        raise DistributedError(
            "no parameter changed in the first distributed update: the kvstore server did not "
            "apply the optimizer (see the server's log for the error)")


class Watchdog:
    """Ends the process (exit status 3) when :meth:`beat` has not been called for ``timeout``
    seconds, after writing ``message`` to stderr.

    A dist_sync worker whose peer or server died waits forever in the next push/pull; a thread
    outside that wait is the only place that can notice.
    """

    def __init__(self, timeout, message):
        self.timeout, self.message = float(timeout), message
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bmxnet-watchdog", daemon=True)
        self._thread.start()

    def beat(self):
        self._last = time.monotonic()

    def stop(self):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(min(1.0, self.timeout / 4)):
            idle = time.monotonic() - self._last
            if idle > self.timeout:
                sys.stderr.write("bmxnet: error: %s (no progress for %.0f s)\n"
                                 % (self.message, idle))
                sys.stderr.flush()
                os._exit(3)


def install_trainer_fix():
    """Makes ``gluon.Trainer`` finish pulling the initial weights on every worker of a dist
    kvstore before any worker pushes a gradient (see the module docstring); idempotent."""
    from mxnet.gluon import Trainer
    original = Trainer._init_params
    if getattr(original, "bmxnet_ordered", False):
        return

    def _init_params(self):
        pulled = [p for p in self._params_to_init if not p._deferred_init]
        original(self)
        kvstore = self._kvstore
        if pulled and kvstore is not None and "dist" in kvstore.type:
            for param in pulled:
                for array in param.list_data():
                    array.wait_to_read()
            kvstore._barrier()  # every worker has its weights: now gradients may be pushed

    _init_params.bmxnet_ordered = True
    _init_params.__doc__ = original.__doc__
    Trainer._init_params = _init_params


def launch(argv):
    """Runs ``python -m mxnet.tools.launch ARGV`` (the launcher of the mxnet wheel).

    The wheel's dmlc_tracker calls ``threading.Thread.isAlive``, which Python 3.9 removed; it is
    given back as the alias of ``is_alive`` it was, nothing else changes.
    """
    import runpy
    if not hasattr(threading.Thread, "isAlive"):
        threading.Thread.isAlive = threading.Thread.is_alive
    old = sys.argv
    sys.argv = ["mxnet.tools.launch"] + list(argv)
    try:
        runpy.run_module("mxnet.tools.launch", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return 0
