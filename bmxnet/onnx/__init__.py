"""ONNX export and import for bmxnet networks.

``import bmxnet.onnx`` registers translators for ``QConvolution``, ``QFullyConnected`` and
``QActivation`` with MXNet's mx2onnx registry, after which ``mx.onnx.export_model`` exports
networks that contain them, as standard ONNX operators only (see :mod:`bmxnet.onnx.export` for
what each operator becomes, how zero and ±1 padding are written, and why 1-bit layers are exact).

Export::

    import bmxnet.onnx
    bmxnet.onnx.export_model('lenet-symbol.json', 'lenet-0001.params', (1, 1, 28, 28),
                             'lenet.onnx')
    # or MXNet's own entry point, once bmxnet.onnx is imported:
    mx.onnx.export_model(sym, params, in_shapes=[(1, 1, 28, 28)], onnx_file_path='lenet.onnx')

Import (ONNX binary networks -> packed bmxnet files, see :mod:`bmxnet.onnx.importer`)::

    sym, arg_params, aux_params, report = bmxnet.onnx.import_model('bnn.onnx', 'binarized_bnn')
    # writes binarized_bnn-symbol.json and binarized_bnn-0000.params

The command line does the same: ``python -m bmxnet.onnx export ...`` / ``... import ...``.
"""
from .export import export_model  # noqa: F401  (importing registers the translators)
from .importer import OnnxImportError, import_model  # noqa: F401

__all__ = ["export_model", "import_model", "OnnxImportError"]
