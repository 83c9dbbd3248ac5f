"""The fuzz targets: bmxnet's readers of untrusted files, each with its documented error type.

A target takes the fuzzer's bytes and feeds them to one reader. The reader may refuse the input
with its documented error — :class:`bmxnet.converter.ConversionError` (and its subclasses
``AlreadyBinarizedError`` and ``bmxnet.legacy.LegacyFormatError``) for the converter and the
legacy loader, :class:`bmxnet.onnx.OnnxImportError` for the ONNX importer — and that is the
expected outcome. Anything else is a *finding*: another Python exception escapes (atheris
reports it with its traceback and libFuzzer writes ``crash-*``), the process dies (a segfault or
an abort: libFuzzer writes ``crash-*``), or one input runs past ``-timeout`` (``timeout-*``).

=============  ===========================================================================
target         what one input is, and what it runs
=============  ===========================================================================
params         a ``.params`` file: ``converter.graph.load_params_file`` + ``split_params``
               (the converter's reader); when it loads, ``bmxnet.legacy.read`` with it and
               a fixed BMXNet v1 json (the legacy decoder of packed words)
symbol_json    a symbol ``.json``: ``converter.graph.load_symbol_file`` (the converter's
               reader), then ``bmxnet.legacy.read`` with it and fixed BMXNet v1 params
convert        a (json, params) pair (``seeds.pack_pair``): both readers, then
               ``bmxnet.converter.convert_model``; when the conversion succeeds and the
               original model runs for the guessed data shape, the converted one must run
               and give the same outputs (``verify_models``), else it is a finding
onnx           ONNX model bytes: ``bmxnet.onnx.import_model(path, None)``
=============  ===========================================================================

Inputs go through a file in a private folder (on ``/dev/shm`` when there is one), since the
readers take paths. ``Target.expected`` is resolved after import, so that a reader whose
exception base changes is still checked against what it documents.
"""
import math
import os
import shutil
import tempfile

import seeds

_CTX = {}


class Finding(AssertionError):
    """A wrong answer without an error: the input is accepted but the result is broken."""


def _workdir():
    if "dir" not in _CTX:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        _CTX["dir"] = tempfile.mkdtemp(prefix="bmxnet-fuzz-", dir=base)
        import atexit
        atexit.register(shutil.rmtree, _CTX["dir"], True)
    return _CTX["dir"]


def _write(name, data):
    path = os.path.join(_workdir(), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _legacy_files():
    """Paths of the fixed BMXNet v1 pair (json, params) that the legacy reads pair with."""
    if "legacy" not in _CTX:
        js, params = seeds.legacy_model()
        _CTX["legacy"] = (_write("legacy-symbol.json", js.encode()),
                          _write("legacy-0001.params", params))
    return _CTX["legacy"]


def _fixed_symbol():
    if "sym" not in _CTX:
        import mxnet as mx
        _CTX["sym"] = mx.sym.load_json(seeds.tiny_models()[1][1])
    return _CTX["sym"]


# ------------------------------------------------------------------------------------ targets
def run_params(data):
    from bmxnet import legacy
    from bmxnet.converter import graph
    path = _write("fuzz-0001.params", data)
    loaded = graph.load_params_file(path)
    graph.split_params(loaded, _fixed_symbol(), path)
    legacy.read(_legacy_files()[0], path)


def run_symbol_json(data):
    from bmxnet import legacy
    from bmxnet.converter import graph
    path = _write("fuzz-symbol.json", data)
    try:
        graph.load_symbol_file(path)
    except graph.ConversionError:
        pass  # the legacy reader gets every input, also those the converter refused
    legacy.read(path, _legacy_files()[1])


def run_convert(data):
    from bmxnet.converter import graph
    from bmxnet.converter import convert_model, verify_models
    js, pb = seeds.unpack_pair(data)
    json_path = _write("pair-symbol.json", js)
    params_path = _write("pair-0001.params", pb)
    sym, g = graph.load_symbol_file(json_path)
    arg_params, aux_params = graph.split_params(graph.load_params_file(params_path), sym,
                                                params_path)
    new_sym, new_args, new_aux, _ = convert_model(sym, arg_params, aux_params,
                                                  source=params_path)
    # Accepted: the converted model must run wherever the original runs, with the same outputs.
    shape = graph.guess_data_shape(sym, g, arg_params, aux_params)
    if isinstance(shape, tuple) and len(shape) == 2 and not isinstance(shape[1], int):
        shape = shape[0]  # bmxnet.graph returns (shape, None) or (None, reason)
    if shape is None or math.prod(shape) > 1 << 16 or not _runs(sym, arg_params, aux_params,
                                                                  shape):
        return
    try:
        result = verify_models(sym, arg_params, aux_params, new_sym, new_args, new_aux,
                               samples=1, data_shape=shape)
    except Exception as err:
        if isinstance(err, graph.ConversionError):
            raise Finding("convert_model accepted a model that then fails verification for the "
                          "data shape %s that the original runs with: %s" % (shape, err))
        raise
    diff = result["max_abs_diff"]
    if diff != 0 and not math.isnan(diff) and not math.isinf(diff):
        raise Finding("converted model differs from the original by %g for data shape %s"
                      % (diff, shape))


def seeds_graph_inputs(sym, free):
    """(data inputs, label inputs) among the free variables, as the converter tells them."""
    import json
    from bmxnet.converter import graph
    return graph.data_input_names(json.loads(sym.tojson()), free)


def _runs(sym, arg_params, aux_params, shape):
    """True when the original model binds and runs forward for ``shape`` with finite outputs."""
    import mxnet as mx
    import numpy as np
    free = [a for a in sym.list_arguments() if a not in arg_params]
    data, labels = seeds_graph_inputs(sym, free)
    if len(data) != 1 or len(labels) > 1:
        return False  # verify_models checks models with one data input (and a label) only
    data_names = data + labels
    try:
        args = {k: mx.nd.array(v) if not isinstance(v, mx.nd.NDArray) else v
                for k, v in arg_params.items()}
        for name in data_names:
            args[name] = mx.nd.ones(shape) if name == data_names[0] else mx.nd.zeros(shape[:1])
        exe = sym.bind(mx.cpu(), args=args, aux_states=dict(aux_params), grad_req="null")
        outs = exe.forward(is_train=False)
        return all(np.isfinite(o.asnumpy()).all() for o in outs)
    except (mx.base.MXNetError, ValueError, TypeError, KeyError):
        return False


def run_onnx(data):
    from bmxnet.onnx import import_model
    path = _write("fuzz.onnx", data)
    import_model(path, None)


def _converter_errors():
    from bmxnet.converter import ConversionError
    from bmxnet.legacy import LegacyFormatError
    return (ConversionError, LegacyFormatError)


def _onnx_errors():
    from bmxnet.onnx import OnnxImportError
    return (OnnxImportError,)


class Target:
    def __init__(self, name, run, expected, mutator, max_len, timeout, rss_limit_mb=4096):
        self.name, self.run, self._expected = name, run, expected
        self.mutator_name, self.max_len, self.timeout = mutator, max_len, timeout
        self.rss_limit_mb = rss_limit_mb

    @property
    def expected(self):
        return self._expected()

    @property
    def mutator(self):
        import mutators
        return getattr(mutators, self.mutator_name)

    def __call__(self, data):
        """Runs one input; returns True when the reader accepted it, False when it refused it
        with its documented error; anything else propagates (a finding)."""
        try:
            self.run(bytes(data))
        except self.expected:
            return False
        return True


TARGETS = {
    "params": Target("params", run_params, _converter_errors, "mutate_params", 16384, 20),
    "symbol_json": Target("symbol_json", run_symbol_json, _converter_errors, "mutate_json",
                          16384, 20),
    # MXNet keeps native memory for every model the convert target binds and runs (0.5 MB per
    # execution on average, more for larger graphs; not Python objects, not bmxnet's caches):
    # a higher limit means fewer restarts of the child (each costs a start and a corpus replay).
    "convert": Target("convert", run_convert, _converter_errors, "mutate_pair", 32768, 30,
                      rss_limit_mb=8192),
    "onnx": Target("onnx", run_onnx, _onnx_errors, "mutate_onnx", 8192, 20),
}
