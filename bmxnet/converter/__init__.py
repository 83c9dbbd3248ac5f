"""The model converter: packs the 1-bit layers of trained models (``model_converter``).

Library entry points (the command line tool is :mod:`bmxnet.converter.cli`):

* :func:`convert_model` — in-memory ``(sym, arg_params, aux_params)`` → converted model and
  report (:mod:`bmxnet.converter.report`);
* :func:`convert_checkpoint` — ``PREFIX-EPOCH.params`` files → ``binarized_PREFIX-*`` files;
* :func:`pack_conv_weights`, :func:`pack_dense_weights` and their ``unpack_*`` inverses — the
  packed layout of ``operators/kernels/bmx_kernels.h`` in numpy.

Example
-------
>>> import bmxnet.converter as conv
>>> report = conv.convert_checkpoint("demo_output/mnist-0001.params", verify=2)
>>> report.ratio, report.files["params_out"], report.verify["max_abs_diff"]
(32.0, '.../binarized_mnist-0001.params', 0.0)
"""
from ..graph import AlreadyBinarizedError, ConversionError
from .convert import channel_scale, convert_checkpoint, convert_model, output_paths, verify_models
from .packing import (pack_conv_weights, pack_dense_weights, pack_signs, unpack_conv_weights,
                      unpack_dense_weights, unpack_signs, words_for)
from .report import ConversionReport, LayerReport

__all__ = ["convert_model", "convert_checkpoint", "verify_models", "channel_scale",
           "ConversionReport", "LayerReport", "ConversionError", "AlreadyBinarizedError",
           "pack_conv_weights", "pack_dense_weights", "unpack_conv_weights",
           "unpack_dense_weights", "pack_signs", "unpack_signs", "words_for", "output_paths"]
