"""bmxnet: binary (1-bit) and low-bit neural networks for Apache MXNet 1.9.

Importing the package loads the C++ operator library once, after which ``mx.nd.QConvolution``,
``mx.nd.QFullyConnected`` and ``mx.nd.QActivation`` (and their ``mx.sym`` twins) exist::

    import mxnet as mx
    import bmxnet
    data = mx.sym.var('data')
    net = mx.sym.QConvolution(data, num_filter=64, kernel=(3, 3), pad=(1, 1),
                              act_bit=1, weight_bit=1)

Gluon layers live in :mod:`bmxnet.gluon` (``QConv2D``, ``QDense``, ``QActivation``), quantizers
in :mod:`bmxnet.quantizers`, the Bop optimizer in :mod:`bmxnet.optimizer` (``'bop'`` for
``gluon.Trainer``), models in :mod:`bmxnet.model_zoo`; :func:`binarize` turns a float Gluon model
into a binary one and :func:`summary` prints a per-layer table. The model converter is
:mod:`bmxnet.converter`, BMXNet v1 files load with :mod:`bmxnet.legacy`, and ONNX export and import
are :mod:`bmxnet.onnx`.
"""
import os

import mxnet as mx

__version__ = "0.1.0"

LIB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "libbmxnet_ops.so")
OPS = ("QConvolution", "QFullyConnected", "QActivation")


# In a kvstore server or scheduler process (DMLC_ROLE, set by mxnet.tools.launch), MXNet runs the
# server loop inside its own `import mxnet` and exits after it: mxnet stays half-initialised there.
# The only part of bmxnet a server needs is the optimizers it unpickles from the workers
# (gluon.Trainer's set_optimizer), so only they are imported; the operator library, the layers and
# the converters (which need a complete mxnet) are not.
_KVSTORE_SERVER = os.environ.get("DMLC_ROLE") in ("server", "scheduler")

if _KVSTORE_SERVER:
    from . import optimizer  # noqa: F401
else:
    def _load_library():
        """Loads libbmxnet_ops.so into MXNet unless its operators are registered already.

        MXNet accepts an operator name at most twice per process, so the check must come first.
        """
        if all(hasattr(mx.nd, op) for op in OPS):
            return
        if not os.path.exists(LIB_PATH):
            raise ImportError(
                "bmxnet's operator library is missing at %s; build it with `pip install -e .` "
                "(or `make test`, which does that) from the bmxnet checkout" % LIB_PATH)
        mx.library.load(LIB_PATH, verbose=False)


    _load_library()


    def kernel_path():
        """Name of the kernel path the 1-bit layers run on: 'avx512', 'avx2', 'neon', 'scalar' or
        'reference' (chosen from the CPU at first use; ``BMXNET_KERNEL_PATHS`` narrows it)."""
        import ctypes
        lib = ctypes.CDLL(LIB_PATH)
        lib.bmxnet_kernel_path.restype = ctypes.c_char_p
        return lib.bmxnet_kernel_path().decode()


    from . import ops, shape_inference  # noqa: E402  (needs the operators registered)

    ops.install()
    shape_inference.install()

    from . import gluon, optimizer, quantizers  # noqa: E402  (optimizer registers 'bop')
    from . import model_zoo  # noqa: E402
    from .binarize import binarize  # noqa: E402
    from .summary import summary  # noqa: E402
    from . import converter, legacy  # noqa: E402  (bmxnet.converter / bmxnet.legacy after import bmxnet)
    from . import onnx  # noqa: E402,F401  (mx.onnx.export_model handles the Q-operators)
    from . import distributed  # noqa: E402

    distributed.install_trainer_fix()  # gluon.Trainer on a dist kvstore: see bmxnet.distributed

__all__ = ["gluon", "ops", "optimizer", "quantizers", "model_zoo", "binarize", "summary",
           "converter", "legacy", "onnx", "kernel_path", "LIB_PATH", "OPS"]
