"""Bop and CaseOptimizer: the update rules against numpy over several steps, through
gluon.Trainer, hybridized or not, without a kvstore and with kvstore 'local' / 'device'."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon
from mxnet.gluon import nn

import bmxnet.optimizer as bopt
from bmxnet.gluon import QConv2D, QDense

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def _net():
    net = nn.HybridSequential()
    net.add(QConv2D(6, 3, padding=1, in_channels=2, use_bias=False), nn.BatchNorm(in_channels=6),
            nn.Flatten(), QDense(8, in_units=6 * 5 * 5), nn.BatchNorm(in_channels=8),
            nn.Dense(3, in_units=8))
    return net


class NumpyReference:
    """Bop (binary) + Adam (the rest), written from the formulas."""

    def __init__(self, params, threshold, gamma, lr):
        self.tau, self.gamma, self.lr = threshold, gamma, lr
        self.state = {}
        self.binary = {n: getattr(p, "precision", 32) == 1 for n, p in params.items()}

    def step(self, name, w, g):
        if self.binary[name]:
            m = self.state.get(name, np.zeros_like(w))
            m = (1 - self.gamma) * m + self.gamma * g
            self.state[name] = m
            s = np.where(w >= 0, 1.0, -1.0)
            return np.where(s * m > self.tau, -s, s)
        t, m, v = self.state.get(name, (0, np.zeros_like(w), np.zeros_like(w)))
        t += 1
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        self.state[name] = (t, m, v)
        lr = self.lr * np.sqrt(1 - BETA2 ** t) / (1 - BETA1 ** t)
        return w - lr * m / (np.sqrt(v) + EPS)


@pytest.mark.parametrize("hybridize", [False, True], ids=["imperative", "hybridized"])
@pytest.mark.parametrize("kvstore,update_on_kvstore,nctx", [
    (None, None, 1), ("local", None, 2), ("device", None, 2), ("device", False, 2)])
def test_bop_trainer_matches_numpy(hybridize, kvstore, update_on_kvstore, nctx):
    mx.random.seed(3)
    rng = np.random.RandomState(0)
    ctxs = [mx.cpu(i) for i in range(nctx)]
    net = _net()
    net.initialize(mx.init.Xavier(), ctx=ctxs)
    if hybridize:
        net.hybridize()
    params = {n: p for n, p in net.collect_params().items() if p.grad_req != "null"}
    tau, gamma, lr, batch = 2e-3, 0.3, 0.01, 8
    trainer = gluon.Trainer(net.collect_params(), "bop",
                            {"threshold": tau, "gamma": gamma, "learning_rate": lr},
                            kvstore=kvstore, update_on_kvstore=update_on_kvstore)
    ref = NumpyReference(params, tau, gamma, lr)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    flips = kept = 0
    for step in range(4):
        X = rng.randn(batch * nctx, 2, 5, 5).astype(np.float32)
        y = rng.randint(0, 3, batch * nctx).astype(np.float32)
        xs = gluon.utils.split_and_load(X, ctxs)
        ys = gluon.utils.split_and_load(y, ctxs)
        with autograd.record():
            losses = [loss_fn(net(a), b) for a, b in zip(xs, ys)]
        for loss in losses:
            loss.backward()
        before = {n: p.data(ctxs[0]).asnumpy() for n, p in params.items()}
        grads = {n: sum(g.asnumpy() for g in p.list_grad()) for n, p in params.items()}
        trainer.step(batch * nctx)
        for n, p in params.items():
            want = ref.step(n, before[n], grads[n] / (batch * nctx))
            for c in ctxs:
                got = p.data(c).asnumpy()
                if ref.binary[n]:
                    np.testing.assert_array_equal(got, want, err_msg="%s step %d" % (n, step))
                    if step > 0:
                        flips += int((got != before[n]).sum())
                        kept += int((got == before[n]).sum())
                else:
                    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6,
                                               err_msg="%s step %d" % (n, step))
    assert flips > 0 and kept > 0, (flips, kept)  # the threshold matters in this setting
    if nctx > 1:  # the kvstore really ran (one device would skip it)
        assert trainer._kvstore is not None and trainer._kvstore.type == kvstore
        assert trainer._update_on_kvstore == (update_on_kvstore is not False)
    assert sorted(n for n in params if ref.binary[n]) == sorted(
        [net[0].weight.name, net[3].weight.name])


def test_binary_weights_become_pm1_and_sign0_is_plus():
    opt = bopt.BopBinary(threshold=1.0, gamma=0.5)
    w = mx.nd.array([0.3, -2.0, 0.0, 1.0])
    state = opt.create_state(0, w)
    opt.update(0, w, mx.nd.array([0.0, 0.0, 0.0, 4.0]), state)  # m = [0, 0, 0, 2]: flip last
    np.testing.assert_array_equal(w.asnumpy(), [1, -1, 1, -1])


def test_gamma_decay():
    opt = bopt.BopBinary(gamma=1e-4, gamma_decay=0.1, gamma_decay_steps=100)
    assert opt.gamma_at(0) == opt.gamma_at(99) == 1e-4
    assert abs(opt.gamma_at(100) - 1e-5) < 1e-12 and abs(opt.gamma_at(250) - 1e-6) < 1e-13
    w, g = mx.nd.ones((1,)), mx.nd.ones((1,))
    state = opt.create_state(0, w)
    for _ in range(101):
        opt.update(0, w, g * 0, state)
    assert opt._index_update_count[0] == 101


def test_case_optimizer_routes_and_shares_settings():
    net = _net()
    net.initialize()
    net(mx.nd.ones((2, 2, 5, 5)))
    bop = bopt.BopBinary(threshold=0.0, gamma=1.0)
    sgd = mx.optimizer.SGD(learning_rate=0.1)
    opt = bopt.CaseOptimizer((bopt.is_binary, bop), default_optimizer=sgd)
    trainer = gluon.Trainer(net.collect_params(), opt)
    with autograd.record():
        out = net(mx.nd.ones((2, 2, 5, 5))).sum()
    out.backward()
    trainer.step(2)
    assert bop.rescale_grad == sgd.rescale_grad == 0.5
    names = [p.name for p in trainer._params]
    routed = {names[i]: type(opt.optimizer_for(i)).__name__ for i in range(len(names))}
    assert routed[net[0].weight.name] == routed[net[3].weight.name] == "BopBinary"
    assert routed[net[5].weight.name] == routed[net[1].gamma.name] == "SGD"
    assert set(np.unique(net[0].weight.data().asnumpy())) <= {-1.0, 1.0}
    trainer.set_learning_rate(0.05)
    assert trainer.learning_rate == sgd.learning_rate == 0.05
    with pytest.raises(ValueError, match="pairs"):
        bopt.CaseOptimizer(("not callable", bop))


def test_bop_states_save_and_load(tmp_path):
    net = _net()
    net.initialize()
    trainer = gluon.Trainer(net.collect_params(), "bop", {"learning_rate": 0.01, "gamma": 0.5})
    for _ in range(2):
        with autograd.record():
            out = net(mx.nd.ones((2, 2, 5, 5))).sum()
        out.backward()
        trainer.step(2)
    trainer.save_states(str(tmp_path / "t.states"))
    trainer2 = gluon.Trainer(net.collect_params(), "bop", {"learning_rate": 0.01, "gamma": 0.5})
    trainer2.load_states(str(tmp_path / "t.states"))
    opt = trainer2._optimizer
    assert isinstance(opt, bopt.Bop) and opt.binary_optimizer.param_dict is opt.param_dict
    assert bopt.is_binary(opt.param_dict[0]) == bopt.is_binary(trainer._optimizer.param_dict[0])
    with autograd.record():
        out = net(mx.nd.ones((2, 2, 5, 5))).sum()
    out.backward()
    trainer2.step(2)


def test_registry_and_arguments():
    assert isinstance(mx.optimizer.create("bop"), bopt.Bop)
    assert isinstance(mx.optimizer.create("bop_binary"), bopt.BopBinary)
    opt = mx.optimizer.create("bop", fp_optimizer="sgd", learning_rate=0.2, momentum=0.9)
    assert isinstance(opt.fp_optimizer, mx.optimizer.SGD) and opt.fp_optimizer.momentum == 0.9
    assert opt.learning_rate == 0.2
    b = opt.binary_optimizer
    assert (b.threshold, b.gamma) == (1e-8, 1e-4)  # the paper's defaults
    with pytest.raises(ValueError, match="gamma"):
        bopt.Bop(gamma=0)
    assert set(bopt.HPARAM_SETS) >= {"bop", "bop_cifar10"}
