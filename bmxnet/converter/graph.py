"""The converter's readers and writers, now in :mod:`bmxnet.graph` (one home for the MXNet json
graph and .params files, shared with :mod:`bmxnet.legacy`); kept under this name for the code
that imports them from here (the fuzz targets)."""
from ..graph import (AlreadyBinarizedError, ConversionError, DTYPE_IDS, LOSS_OPS, atomic_write,
                     data_input_names, flag, guess_data_shape, load_symbol_file,
                     load_symbol_json, node_attrs, parse_int, parse_tuple, split_params)
from ..graph import read_params_file as load_params_file

__all__ = ["ConversionError", "AlreadyBinarizedError", "node_attrs", "flag", "parse_int",
           "parse_tuple", "load_symbol_file", "load_symbol_json", "load_params_file",
           "split_params", "atomic_write", "guess_data_shape", "data_input_names",
           "LOSS_OPS", "DTYPE_IDS"]
