"""Python signatures of the operators, as MXNet's built-in layers have them.

Operators from a custom library take their inputs positionally and never create parameter
variables. ``import bmxnet`` wraps ``QConvolution`` and ``QFullyConnected`` in ``mx.nd`` and
``mx.sym`` so that, like ``Convolution`` / ``FullyConnected``:

* inputs may be given by keyword (``weight=``, ``bias=``, ``weight_scale=``), and
* in ``mx.sym`` missing parameter inputs become variables named ``<name>_weight``,
  ``<name>_bias`` …, so ``mx.sym.QConvolution(data, num_filter=64, kernel=(3, 3))`` works.
"""
import functools

import mxnet as mx

__all__ = ["install"]


def _flag(value):
    return str(value) in ("True", "true", "1")


def _input_names(kwargs):
    names = ["data", "weight"]
    if not _flag(kwargs.get("no_bias", False)):
        names.append("bias")
    if _flag(kwargs.get("binarized_weights_only", False)) and \
            kwargs.get("scaling_mode", "none") == "forward":
        names.append("weight_scale")
    return names


def _wrap(raw, hint, symbolic):
    @functools.wraps(raw)
    def op(*args, **kwargs):
        names = _input_names(kwargs)
        if len(args) > len(names):
            raise TypeError("%s takes the inputs %s, got %d positional inputs"
                            % (raw.__name__, ", ".join(names), len(args)))
        inputs = list(args) + [kwargs.pop(n, None) for n in names[len(args):]]
        for n in names:
            kwargs.pop(n, None)
        missing = [n for n, v in zip(names, inputs) if v is None]
        if not missing:
            return raw(*inputs, **kwargs)
        if not symbolic or "data" in missing:
            raise TypeError("%s is missing the input(s) %s" % (raw.__name__, ", ".join(missing)))
        name = mx.name.NameManager.current.get(kwargs.pop("name", None), hint)
        inputs = [v if v is not None else mx.sym.var("%s_%s" % (name, n))
                  for n, v in zip(names, inputs)]
        with mx.name.NameManager():  # `name` is final: no second prefix
            return raw(*inputs, name=name, **kwargs)
    return op


def install():
    """Wraps the raw generated functions in mx.nd / mx.sym (once)."""
    for module, symbolic in ((mx.nd, False), (mx.sym, True)):
        for op_name, hint in (("QConvolution", "qconvolution"),
                              ("QFullyConnected", "qfullyconnected")):
            raw = getattr(module, op_name)
            if getattr(raw, "_bmxnet_wrapped", False):
                continue
            wrapped = _wrap(raw, hint, symbolic)
            wrapped._bmxnet_wrapped = True
            setattr(module, op_name, wrapped)
            setattr(module.op, op_name, wrapped)
