# cython: language_level=3, boundscheck=False, wraparound=False
"""The Cython layer over mobile/runtime's C API (include/bmxnet/runtime.h).

Only this file touches the C handles; ``bmxnet/runtime/__init__.py`` documents the public names.
"""
import operator
import os
import threading

import numpy as np

from libc.stdint cimport int64_t


cdef extern from "bmxnet/runtime.h" nogil:
    ctypedef enum bmx_status:
        BMX_OK

    ctypedef struct bmx_options
    ctypedef struct bmx_model
    ctypedef struct bmx_predictor

    const char* bmx_version()
    const char* bmx_last_error()
    const char* bmx_status_name(bmx_status status)

    bmx_status bmx_options_create(bmx_options** out)
    void bmx_options_free(bmx_options* options)
    bmx_status bmx_options_set_input_shape(bmx_options* options, const char* name, int ndim,
                                           const int64_t* dims)
    bmx_status bmx_options_set_num_threads(bmx_options* options, int num_threads)
    bmx_status bmx_options_set_kernel_path(bmx_options* options, const char* path)

    bmx_status bmx_model_load_files(const char* symbol_json_path, const char* params_path,
                                    const bmx_options* options, bmx_model** out)
    bmx_status bmx_model_load_buffers(const char* symbol_json, size_t symbol_json_size,
                                      const void* params, size_t params_size,
                                      const bmx_options* options, bmx_model** out)
    void bmx_model_free(bmx_model* model)
    int bmx_model_num_inputs(const bmx_model* model)
    int bmx_model_num_outputs(const bmx_model* model)
    const char* bmx_model_input_name(const bmx_model* model, int index)
    const char* bmx_model_output_name(const bmx_model* model, int index)
    bmx_status bmx_model_input_shape(const bmx_model* model, int index, int* ndim,
                                     const int64_t** dims)
    bmx_status bmx_model_output_shape(const bmx_model* model, int index, int* ndim,
                                      const int64_t** dims)
    const char* bmx_model_describe(const bmx_model* model)
    size_t bmx_model_arena_bytes(const bmx_model* model)

    bmx_status bmx_predictor_create(const bmx_model* model, bmx_predictor** out)
    void bmx_predictor_free(bmx_predictor* predictor)
    bmx_status bmx_predictor_set_input(bmx_predictor* predictor, int index, const float* data,
                                       size_t count)
    bmx_status bmx_predictor_forward(bmx_predictor* predictor)
    bmx_status bmx_predictor_get_output(const bmx_predictor* predictor, int index, float* data,
                                        size_t count)


class RuntimeModelError(Exception):
    """A call into the runtime failed: ``status`` is the C status name (``'BMX_ERROR_FORMAT'``,
    ``'BMX_ERROR_UNSUPPORTED'``, ...), ``message`` the runtime's explanation (bmx_last_error),
    which names the problem and the fix."""

    def __init__(self, status, message):
        super().__init__("%s: %s" % (status, message))
        self.status = status
        self.message = message


def version():
    """``'MAJOR.MINOR.PATCH'`` of the runtime library this extension was built with."""
    return bmx_version().decode()


cdef int _check(bmx_status status) except -1:
    """Raises RuntimeModelError for any status but BMX_OK. Called right after the failing call,
    on the same thread, so bmx_last_error() still holds its message."""
    if status != BMX_OK:
        raise RuntimeModelError(bmx_status_name(status).decode(),
                                bmx_last_error().decode("utf-8", "replace"))
    return 0


cdef bytes _path(path, what):
    encoded = os.fsencode(path)
    if b"\0" in encoded:
        raise ValueError("%s %r contains a NUL character" % (what, path))
    return encoded


cdef tuple _shape(int ndim, const int64_t* dims):
    return tuple(int(dims[i]) for i in range(ndim))


cdef int _num_threads(value) except? -1:
    try:
        threads = operator.index(value)
    except TypeError:
        raise TypeError("num_threads must be an int (<= 0: one per core); got %r"
                        % (value,)) from None
    if not -2 ** 31 <= threads < 2 ** 31:
        raise ValueError("num_threads %d is out of range" % threads)
    return threads


cdef bmx_options* _make_options(input_shapes, num_threads, kernel_path) except NULL:
    """A filled bmx_options (the caller frees it); Python-side checks give TypeError/ValueError
    before anything reaches the runtime, whose own checks give RuntimeModelError."""
    cdef bmx_options* options = NULL
    cdef int64_t[::1] dims
    cdef int64_t* dims_ptr
    if input_shapes is None:
        input_shapes = {}
    if not hasattr(input_shapes, "items"):
        raise TypeError("input_shapes must be a dict {input name: shape tuple}, e.g. "
                        "{'data': (1, 3, 224, 224)}; got %r" % (input_shapes,))
    if not isinstance(kernel_path, str):
        raise TypeError("kernel_path must be a string ('auto', 'reference', 'scalar', 'avx2', "
                        "'avx512' or 'neon'); got %r" % (kernel_path,))
    _check(bmx_options_create(&options))
    try:
        for name, shape in input_shapes.items():
            if not isinstance(name, str) or "\0" in name:
                raise TypeError("input_shapes keys must be input names (str without NUL); "
                                "got %r" % (name,))
            try:
                values = [operator.index(d) for d in shape]
            except TypeError:
                raise TypeError("the shape of input %r must be a tuple of ints, e.g. "
                                "(1, 3, 224, 224); got %r" % (name, shape)) from None
            if any(not -2 ** 63 <= d < 2 ** 63 for d in values):
                raise ValueError("the shape %r of input %r has a dimension outside int64"
                                 % (tuple(values), name))
            dims = np.asarray(values if values else [0], dtype=np.int64)
            dims_ptr = &dims[0]
            _check(bmx_options_set_input_shape(options, name.encode(), len(values), dims_ptr))
        _check(bmx_options_set_num_threads(options, _num_threads(num_threads)))
        _check(bmx_options_set_kernel_path(options, kernel_path.encode()))
    except BaseException:
        bmx_options_free(options)
        raise
    return options


cdef class Model:
    """A model compiled by the runtime for one set of input shapes, with one predictor.

    ``Model(symbol_path, params_path, input_shapes={'data': (1, 3, 224, 224)}, num_threads=1,
    kernel_path='auto')`` reads the two files ``model_converter`` writes; see
    :meth:`from_buffers` for files already in memory.

    Thread safety: the compiled model is immutable, and :meth:`run` holds a lock around the
    one predictor (the C API's working memory, which serves one inference at a time), so a
    Model may be shared by threads, whose calls then take turns. The lock is held, and the GIL
    released, while the runtime computes; for inferences in parallel, load one Model per thread.
    """
    cdef bmx_model* _model
    cdef bmx_predictor* _predictor
    cdef object _lock
    cdef readonly tuple input_names
    cdef readonly tuple input_shapes
    cdef readonly tuple output_names
    cdef readonly tuple output_shapes
    cdef readonly int num_threads
    cdef readonly str kernel_path

    def __cinit__(self):
        self._model = NULL
        self._predictor = NULL
        self._lock = threading.Lock()

    def __init__(self, symbol_path, params_path, *, input_shapes=None, num_threads=1,
                 kernel_path="auto"):
        if self._model != NULL:
            raise TypeError("this Model is loaded already: create a new one")
        cdef bytes symbol_b = _path(symbol_path, "symbol_path")
        cdef bytes params_b = _path(params_path, "params_path")
        cdef const char* symbol_c = symbol_b
        cdef const char* params_c = params_b
        cdef bmx_options* options = _make_options(input_shapes, num_threads, kernel_path)
        cdef bmx_status status
        cdef bmx_model* model = NULL
        with nogil:
            status = bmx_model_load_files(symbol_c, params_c, options, &model)
        bmx_options_free(options)
        _check(status)
        self._adopt(model, num_threads, kernel_path)

    @classmethod
    def from_buffers(cls, symbol_json, params, *, input_shapes=None, num_threads=1,
                     kernel_path="auto"):
        """The model from memory: ``symbol_json`` the json text (str or bytes), ``params`` the
        bytes of the .params file (any buffer); both are only read during the call."""
        cdef Model self = cls.__new__(cls)
        if isinstance(symbol_json, str):
            symbol_json = symbol_json.encode()
        cdef const unsigned char[::1] symbol_v = memoryview(symbol_json).cast("B")
        cdef const unsigned char[::1] params_v = memoryview(params).cast("B")
        # pointers into empty buffers are not taken: the runtime sees NULL with size 0
        cdef const char* symbol_c = <const char*>&symbol_v[0] if len(symbol_v) else NULL
        cdef const void* params_c = <const void*>&params_v[0] if len(params_v) else NULL
        cdef size_t symbol_n = len(symbol_v)
        cdef size_t params_n = len(params_v)
        cdef bmx_options* options = _make_options(input_shapes, num_threads, kernel_path)
        cdef bmx_status status
        cdef bmx_model* model = NULL
        with nogil:
            status = bmx_model_load_buffers(symbol_c, symbol_n, params_c, params_n, options,
                                            &model)
        bmx_options_free(options)
        _check(status)
        self._adopt(model, num_threads, kernel_path)
        return self

    cdef _adopt(self, bmx_model* model, num_threads, kernel_path):
        """Takes ownership of a loaded model, makes its predictor and reads its signature."""
        cdef int ndim = 0
        cdef const int64_t* dims = NULL
        cdef int i
        self._model = model
        self.num_threads = _num_threads(num_threads)
        self.kernel_path = kernel_path
        _check(bmx_predictor_create(model, &self._predictor))
        names, shapes = [], []
        for i in range(bmx_model_num_inputs(model)):
            _check(bmx_model_input_shape(model, i, &ndim, &dims))
            names.append(bmx_model_input_name(model, i).decode())
            shapes.append(_shape(ndim, dims))
        self.input_names, self.input_shapes = tuple(names), tuple(shapes)
        names, shapes = [], []
        for i in range(bmx_model_num_outputs(model)):
            _check(bmx_model_output_shape(model, i, &ndim, &dims))
            names.append(bmx_model_output_name(model, i).decode())
            shapes.append(_shape(ndim, dims))
        self.output_names, self.output_shapes = tuple(names), tuple(shapes)

    def __dealloc__(self):
        # the predictor first: the model must outlive it
        bmx_predictor_free(self._predictor)
        bmx_model_free(self._model)

    cdef _require_loaded(self):
        if self._predictor == NULL:
            raise RuntimeModelError("BMX_ERROR_INVALID_ARGUMENT",
                                    "this Model was not loaded: create it with "
                                    "Model(symbol_path, params_path, ...) or "
                                    "Model.from_buffers(...)")

    @property
    def arena_bytes(self):
        """Bytes of the predictor's activation arena (the static memory plan's size)."""
        self._require_loaded()
        return bmx_model_arena_bytes(self._model)

    def describe(self):
        """The compiled plan as text: one step per line (operator, fused parts, shapes, kernel
        path, buffer offsets), then the arena size."""
        self._require_loaded()
        return bmx_model_describe(self._model).decode("utf-8", "replace")

    def _inputs(self, data, named):
        """[(index, float32 C-contiguous array)] for every input, in the model's order."""
        if data is not None:
            if named:
                raise TypeError("pass the inputs either as one argument or by name, not both")
            if isinstance(data, dict):
                named = data
            elif len(self.input_names) == 1:
                named = {self.input_names[0]: data}
            else:
                raise TypeError("this model has %d inputs %s: pass a dict {name: array} or "
                                "name=array arguments" % (len(self.input_names),
                                                          list(self.input_names)))
        unknown = sorted(set(named) - set(self.input_names))
        missing = [n for n in self.input_names if n not in named]
        if unknown or missing:
            raise ValueError("the model's inputs are %s; %s" % (
                list(self.input_names),
                "; ".join(filter(None, ["missing: %s" % missing if missing else "",
                                        "unknown: %s" % unknown if unknown else ""]))))
        arrays = []
        for i, (name, shape) in enumerate(zip(self.input_names, self.input_shapes)):
            array = np.ascontiguousarray(named[name], dtype=np.float32)
            if array.shape != shape:
                raise ValueError("input %r has shape %s; the model was compiled for %s (load it "
                                 "with input_shapes={%r: %s} for that shape)"
                                 % (name, array.shape, shape, name, array.shape))
            arrays.append(array)
        return arrays

    def run(self, data=None, **inputs):
        """Runs one inference: ``run(x)`` for a model with one input, else ``run({'data': x,
        ...})`` or ``run(data=x, ...)``. Inputs are converted to float32 and must have the
        shapes the model was compiled for (:attr:`input_shapes`).

        Returns the output as a numpy float32 array, or a dict {output name: array} when the
        model has several outputs.
        """
        self._require_loaded()
        arrays = self._inputs(data, inputs)
        outputs = [np.empty(shape, dtype=np.float32) for shape in self.output_shapes]
        cdef float[::1] view
        cdef bmx_status status
        cdef int i
        with self._lock:
            for i in range(len(arrays)):
                view = arrays[i].reshape(-1)
                status = bmx_predictor_set_input(self._predictor, i, &view[0] if view.shape[0]
                                                 else NULL, view.shape[0])
                _check(status)
            with nogil:
                status = bmx_predictor_forward(self._predictor)
            _check(status)
            for i in range(len(outputs)):
                view = outputs[i].reshape(-1)
                status = bmx_predictor_get_output(self._predictor, i, &view[0] if view.shape[0]
                                                  else NULL, view.shape[0])
                _check(status)
        if len(outputs) == 1:
            return outputs[0]
        return dict(zip(self.output_names, outputs))

    def __repr__(self):
        if self._predictor == NULL:
            return "<bmxnet.runtime.Model (not loaded)>"
        return ("<bmxnet.runtime.Model inputs=%s outputs=%s arena_bytes=%d num_threads=%d "
                "kernel_path=%r>" % (dict(zip(self.input_names, self.input_shapes)),
                                     dict(zip(self.output_names, self.output_shapes)),
                                     self.arena_bytes, self.num_threads, self.kernel_path))
