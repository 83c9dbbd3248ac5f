"""Python signatures of the operators, as MXNet's built-in layers have them.

Operators from a custom library take their inputs positionally and never create parameter
variables. ``import bmxnet`` wraps ``QConvolution``, ``QFullyConnected`` and ``QActivation`` in
``mx.nd`` and ``mx.sym`` so that, like ``Convolution`` / ``FullyConnected``:

* inputs may be given by keyword (``weight=``, ``bias=``, ``weight_scale=``), and
* in ``mx.sym`` missing parameter inputs become variables named ``<name>_weight``,
  ``<name>_bias`` …, so ``mx.sym.QConvolution(data, num_filter=64, kernel=(3, 3))`` works.
  Each created variable carries a ``__shape__`` hint of known ndim (MXNet's shape inference
  crashes on a Q-layer input of unknown ndim: :mod:`bmxnet.shape_inference`) and the hidden
  attributes given with ``attr=`` (``lr_mult``, ``wd_mult``, ``ctx_group`` …), as the variables
  that ``mx.sym.Convolution`` creates do;
* in ``mx.nd`` a 0-d input array is refused with a ValueError (MXNet's wrapper of library
  operators would fail with ``std::bad_alloc``).
"""
import functools

import mxnet as mx

from .shape_inference import input_names, param_hints

__all__ = ["install"]


def _hidden(attr):
    """``attr=`` of a symbol call as hidden variable attributes: lr_mult -> __lr_mult__."""
    return {(k if k.startswith("__") else "__%s__" % k): str(v) for k, v in (attr or {}).items()}


def _check_ndarrays(op_name, names, inputs):
    """Refuses 0-d arrays: MXNet's library-operator wrapper treats ndim 0 as unknown and fails
    with std::bad_alloc before the operator sees them."""
    for name, value in zip(names, inputs):
        if isinstance(value, mx.nd.NDArray) and value.ndim == 0:
            raise ValueError("%s: input '%s' is a 0-d array; MXNet's library operators need at "
                             "least one dimension: pass it as x.reshape((1,))" % (op_name, name))


def _attrs(kwargs):
    """The keyword arguments that are operator attributes, as text. Arrays, symbols and ``out=``
    are not attributes (and printing an array would format all its values on every call)."""
    return {k: str(v) for k, v in kwargs.items()
            if k != "out" and not isinstance(v, (mx.nd.NDArray, mx.sym.Symbol))}


def _wrap(raw, hint, symbolic):
    @functools.wraps(raw)
    def op(*args, **kwargs):
        op_name = raw.__name__
        attrs = _attrs(kwargs)
        names = input_names(op_name, attrs)
        if len(args) > len(names):
            raise TypeError("%s takes the inputs %s, got %d positional inputs"
                            % (raw.__name__, ", ".join(names), len(args)))
        inputs = list(args) + [kwargs.pop(n, None) for n in names[len(args):]]
        for n in names:
            kwargs.pop(n, None)
        missing = [n for n, v in zip(names, inputs) if v is None]
        if not symbolic:
            _check_ndarrays(op_name, names, inputs)
        if not missing:
            return raw(*inputs, **kwargs)
        if not symbolic or "data" in missing:
            raise TypeError("%s is missing the input(s) %s" % (raw.__name__, ", ".join(missing)))
        name = mx.name.NameManager.current.get(kwargs.pop("name", None), hint)
        shapes = param_hints(op_name, attrs)
        hidden = _hidden(kwargs.get("attr"))
        inputs = [v if v is not None else
                  mx.sym.var("%s_%s" % (name, n), shape=shapes.get(n), attr=dict(hidden))
                  for n, v in zip(names, inputs)]
        with mx.name.NameManager():  # `name` is final: no second prefix
            return raw(*inputs, name=name, **kwargs)
    return op


def install():
    """Wraps the raw generated functions in mx.nd / mx.sym (once)."""
    for module, symbolic in ((mx.nd, False), (mx.sym, True)):
        for op_name, hint in (("QConvolution", "qconvolution"),
                              ("QFullyConnected", "qfullyconnected"),
                              ("QActivation", "qactivation")):
            raw = getattr(module, op_name)
            if getattr(raw, "_bmxnet_wrapped", False):
                continue
            wrapped = _wrap(raw, hint, symbolic)
            wrapped._bmxnet_wrapped = True
            setattr(module, op_name, wrapped)
            setattr(module.op, op_name, wrapped)
