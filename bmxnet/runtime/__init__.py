"""bmxnet.runtime: the standalone 1-bit inference engine (mobile/runtime) from Python.

It runs the files ``model_converter`` writes (``binarized_PREFIX-symbol.json`` and
``binarized_PREFIX-NNNN.params``) without MXNet, on the kernels MXNet's Q-operators use: the
graph is compiled once for fixed input shapes (BatchNorm folded, binary layers fused, weights
packed, one static activation arena), then each :meth:`Model.run` is numpy in, numpy out::

    import numpy as np
    import bmxnet.runtime

    m = bmxnet.runtime.Model("binarized_mnist-symbol.json", "binarized_mnist-0001.params",
                             input_shapes={"data": (1, 1, 28, 28)}, num_threads=1)
    logits = m.run(np.zeros((1, 1, 28, 28), np.float32))   # np.ndarray, m.output_shapes[0]
    print(m.describe())                                      # the compiled plan
    m.input_names, m.input_shapes, m.output_names, m.output_shapes, m.arena_bytes

``Model.from_buffers(symbol_json, params_bytes, input_shapes=...)`` loads the same from memory.
``kernel_path`` is ``'auto'`` (the best this CPU supports) or one of ``'reference'``,
``'scalar'``, ``'avx2'``, ``'avx512'``, ``'neon'``; ``num_threads <= 0`` means one per core.

Errors: a file the runtime cannot read, a malformed or hostile file, an operator it does not
support or a path this CPU lacks raise :class:`RuntimeModelError`, whose ``status`` is the C
status name (``'BMX_ERROR_FORMAT'``, ``'BMX_ERROR_UNSUPPORTED'``, ...) and whose ``message``
names the problem and the fix. Wrong Python arguments (an input of the wrong shape, a shape
that is not a tuple of ints) raise ValueError or TypeError before the runtime is called.

Thread safety: a Model holds one predictor behind a lock; threads may share it and take turns
(the GIL is released while the runtime computes). For inferences in parallel, use one Model
per thread. The C API (``mobile/runtime/include/bmxnet/runtime.h``) states the same contract.
"""
try:
    from ._runtime import Model, RuntimeModelError, version
except ImportError as err:  # an operators-only build, or a checkout never built
    raise ImportError(
        "bmxnet.runtime's extension module is not built (%s); build it with "
        "`pip install -e . --no-build-isolation --no-deps` (make build) from the bmxnet "
        "checkout" % err) from err

__all__ = ["Model", "RuntimeModelError", "version"]
