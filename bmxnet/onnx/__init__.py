"""ONNX export and import for bmxnet networks.

Importing this package (``import bmxnet`` does) registers translators for ``QConvolution``,
``QFullyConnected`` and ``QActivation`` with MXNet's mx2onnx registry, after which
``mx.onnx.export_model`` exports networks that contain them, as standard ONNX operators only (see
:mod:`bmxnet.onnx.export` for what each operator becomes, how zero and ±1 padding are written,
and why 1-bit layers are exact). It also corrects two of MXNet's own translators: ``BatchNorm``
with ``fix_gamma=True`` (MXNet's default) is written with gamma = 1, as MXNet computes it, and
``SoftmaxOutput`` (the loss head of Module checkpoints) is written as ``Softmax``, its label input
dropped. Registration is cheap and works without the ``onnx`` package: the translators' code is
imported on first use.

Export::

    import bmxnet
    bmxnet.onnx.export_model('lenet-symbol.json', 'lenet-0001.params', (1, 1, 28, 28),
                             'lenet.onnx')
    # or MXNet's own entry point:
    mx.onnx.export_model(sym, params, in_shapes=[(1, 1, 28, 28)], onnx_file_path='lenet.onnx')

Import (ONNX binary networks -> packed bmxnet files, see :mod:`bmxnet.onnx.importer`)::

    sym, arg_params, aux_params, report = bmxnet.onnx.import_model('bnn.onnx', 'binarized_bnn')
    # writes binarized_bnn-symbol.json and binarized_bnn-0000.params
    sym, arg_params, aux_params, report = bmxnet.onnx.import_bytes(data)  # nothing written

Every error of this package is an :class:`OnnxError` (:class:`OnnxImportError` when reading,
:class:`OnnxExportError` when writing) whose message names the file or node and the fix.
The command line does the same: ``python -m bmxnet.onnx export ...`` / ``... import ...``.
"""
import importlib

from .errors import OnnxError, OnnxExportError, OnnxImportError

__all__ = ["export_model", "import_model", "import_bytes", "register_translators", "OnnxError",
           "OnnxImportError", "OnnxExportError", "OPSET"]

#: Lowest opset the translators are registered for (MXNet uses them for every later opset).
OPSET = 12

_LAZY = {"export_model": "export", "import_model": "importer", "import_bytes": "importer"}
#: Operators whose translators come from :mod:`bmxnet.onnx.export`.
_OWN = ("QConvolution", "QFullyConnected", "QActivation", "SoftmaxOutput")
#: MXNet's own translators that :mod:`bmxnet.onnx.export` wraps (receiving the original).
_WRAPPED = ("BatchNorm",)


def __getattr__(name):
    """export_model / import_model / import_bytes and the submodules, imported on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module("." + _LAZY[name], __name__), name)
    if name in ("export", "importer", "checks"):
        return importlib.import_module("." + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _own(op):
    def translate(node, **kwargs):
        from . import export
        return export.TRANSLATORS[op](node, **kwargs)
    translate.bmxnet_translator = op
    translate.__name__ = "convert_" + op.lower()
    return translate


def _wrapped(op, original):
    def translate(node, **kwargs):
        from . import export
        return export.TRANSLATORS[op](original, node, **kwargs)
    translate.bmxnet_translator = op
    translate.__name__ = "convert_" + op.lower()
    return translate


def register_translators():
    """Registers bmxnet's translators with ``mx.onnx`` (idempotent, cheap).

    Returns the operator names registered now (empty when they were registered already, or when
    the ``onnx`` package is missing: mx2onnx then registers nothing and export is unavailable).
    """
    from mxnet.onnx.mx2onnx._export_onnx import MXNetGraph
    registry = MXNetGraph.registry_
    done = []
    for op in _OWN + _WRAPPED:
        # the translator MXNet would use for the highest opset, i.e. for every opset >= OPSET
        versions = sorted((v for v in registry if op in registry[v]), reverse=True)
        current = registry[versions[0]][op] if versions else None
        if getattr(current, "bmxnet_translator", None) == op:
            continue
        if op in _WRAPPED:
            if current is None:  # onnx missing: mx2onnx registered nothing to wrap
                continue
            for v in versions:  # one wrapper, at the lowest opset, serves every opset
                if v != OPSET:
                    del registry[v][op]
            func = _wrapped(op, current)
        else:
            for v in versions:
                if v != OPSET:
                    del registry[v][op]
            func = _own(op)
        MXNetGraph.register(op, opset_version=OPSET)(func)
        if getattr(registry.get(OPSET, {}).get(op), "bmxnet_translator", None) == op:
            done.append(op)
    return done


register_translators()
