"""CaseOptimizer: one optimizer per kind of parameter, behind a single mx.optimizer.Optimizer."""
from mxnet.optimizer import Optimizer, create as _mx_create

__all__ = ["CaseOptimizer", "create", "register_as"]


def register_as(name):
    """Registers an optimizer class with mx.optimizer under ``name`` (once per process)."""
    def wrap(cls):
        old = Optimizer.opt_registry.get(name)
        if old is None or (old.__module__, old.__qualname__) == (cls.__module__, cls.__qualname__):
            Optimizer.opt_registry[name] = cls
        else:
            raise ValueError("optimizer name %r is already registered by %s.%s"
                             % (name, old.__module__, old.__qualname__))
        return cls
    return wrap


def create(optimizer, **kwargs):
    """An Optimizer from an instance (kwargs must be empty) or a registered name."""
    if isinstance(optimizer, Optimizer):
        if kwargs:
            raise ValueError("optimizer parameters %s given for an optimizer instance %r"
                             % (sorted(kwargs), optimizer))
        return optimizer
    if isinstance(optimizer, str):
        return _mx_create(optimizer, **kwargs)
    raise ValueError("expected an optimizer name or an mx.optimizer.Optimizer, got %r"
                     % (optimizer,))


@register_as("case")
class CaseOptimizer(Optimizer):
    """Routes each parameter to the first optimizer whose predicate accepts it.

    Parameters
    ----------
    *predicate_optimizer_pairs : (callable, Optimizer or str)
        ``predicate(param) -> bool`` gets the ``gluon.Parameter`` (None when the index has no
        parameter, as with the Module API without ``param_dict``).
    default_optimizer : Optimizer or str, default 'adam'
        For parameters no predicate accepts.
    **kwargs
        ``rescale_grad``, ``param_dict``, ``begin_num_update`` of mx.optimizer.Optimizer; they
        are shared with all the inner optimizers (gluon.Trainer sets ``rescale_grad`` and
        ``param_dict`` on this object and they reach the inner ones). The learning rate is the
        default optimizer's (``learning_rate`` / ``set_learning_rate``).

    Examples
    --------
    >>> opt = CaseOptimizer((bmxnet.optimizer.is_binary, BopBinary(threshold=1e-8)),
    ...                     default_optimizer=mx.optimizer.Adam(learning_rate=1e-3))
    >>> trainer = gluon.Trainer(net.collect_params(), opt)
    """

    def __init__(self, *predicate_optimizer_pairs, default_optimizer="adam", **kwargs):
        for pair in predicate_optimizer_pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2 and callable(pair[0])):
                raise ValueError("CaseOptimizer takes (predicate, optimizer) pairs, got %r"
                                 % (pair,))
        self._cases = [(pred, create(opt)) for pred, opt in predicate_optimizer_pairs]
        self._default = create(default_optimizer)
        self._param_dict = {}
        self._rescale_grad = 1.0
        for key in ("learning_rate", "lr_scheduler", "wd", "clip_gradient"):
            if key in kwargs:
                raise ValueError("CaseOptimizer: give %r to the inner optimizers" % key)
        super().__init__(learning_rate=self._default.lr, **kwargs)
        self.aggregate_num = 0  # one parameter per call, each routed on its own

    # --- attributes shared with the inner optimizers -----------------------------------------
    def _all(self):
        return [opt for _, opt in self._cases] + [self._default]

    @property
    def rescale_grad(self):
        return self._rescale_grad

    @rescale_grad.setter
    def rescale_grad(self, value):
        self._rescale_grad = value
        for opt in self._all():
            opt.rescale_grad = value

    @property
    def param_dict(self):
        return self._param_dict

    @param_dict.setter
    def param_dict(self, value):
        self._param_dict = value
        for opt in self._all():
            opt.param_dict = value

    @property
    def lr(self):
        return self._default.lr

    @lr.setter
    def lr(self, value):
        self._default.lr = value

    @property
    def learning_rate(self):
        return self._default.learning_rate

    def set_learning_rate(self, lr):
        self._default.set_learning_rate(lr)

    def set_lr_mult(self, args_lr_mult):
        super().set_lr_mult(args_lr_mult)
        for opt in self._all() if hasattr(self, "_default") else ():
            opt.set_lr_mult(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        super().set_wd_mult(args_wd_mult)
        for opt in self._all() if hasattr(self, "_default") else ():
            opt.set_wd_mult(args_wd_mult)

    def _set_current_context(self, device_id):
        super()._set_current_context(device_id)
        for opt in self._all():
            opt._set_current_context(device_id)

    def __getstate__(self):
        # The gluon.Parameters are not pickled (gluon.Trainer sets param_dict again after
        # loading); the routing they decide is: a kvstore server, which unpickles this optimizer
        # and never gets a param_dict, routes each index as the sender did.
        state = self.__dict__.copy()
        state["_param_dict"] = {}
        state["_routes"] = self._route_table()
        return state

    def _route_table(self):
        routes = dict(self.__dict__.get("_routes", {}))
        for index in self._param_dict:
            routes[index] = self._case_number(self._param_dict[index])
        return routes

    def _case_number(self, param):
        for number, (pred, _) in enumerate(self._cases):
            if pred(param):
                return number
        return len(self._cases)

    def __setstate__(self, state):
        self.__dict__ = state

    # --- routing --------------------------------------------------------------------------------
    def optimizer_for(self, index):
        """The inner optimizer that updates parameter ``index``: the first whose predicate accepts
        ``param_dict[index]``; without a param_dict entry (a kvstore server), the one chosen for
        ``index`` where this optimizer was pickled."""
        if index in self._param_dict or index not in self.__dict__.get("_routes", {}):
            number = self._case_number(self._param_dict.get(index))
        else:
            number = self._routes[index]
        return self._cases[number][1] if number < len(self._cases) else self._default

    def create_state(self, index, weight):
        return self.optimizer_for(index).create_state(index, weight)

    def create_state_multi_precision(self, index, weight):
        return self.optimizer_for(index).create_state_multi_precision(index, weight)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        self.optimizer_for(index).update(index, weight, grad, state)

    def update_multi_precision(self, index, weight, grad, state):
        self._update_count(index)
        self.optimizer_for(index).update_multi_precision(index, weight, grad, state)

    def __repr__(self):
        cases = ", ".join("(%s, %s)" % (getattr(p, "__name__", p), type(o).__name__)
                          for p, o in self._cases)
        return "%s(%s, default_optimizer=%s)" % (type(self).__name__, cases,
                                                 type(self._default).__name__)
