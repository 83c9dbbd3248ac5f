"""Builds bmxnet's two native parts with CMake:

* the C++ operator library (operators/) into bmxnet/lib/libbmxnet_ops.so, loaded by MXNet;
* the standalone runtime's Python binding (bmxnet/runtime/CMakeLists.txt: Cython over
  mobile/runtime, linked statically) into bmxnet/runtime/_runtime<EXT_SUFFIX>.

Metadata and build requirements live in pyproject.toml; this file only adds the CMake steps.

    pip install .                            # isolated build: pip installs mxnet, cmake ... first
    pip install --no-build-isolation -e .    # development (make build): mxnet already installed
"""
import os
import subprocess
import sys

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    """A library CMake builds from ``source_dir`` in build/``tree``. ``python_module``: an
    importable extension module (named with the interpreter's EXT_SUFFIX), else a plain ``.so``
    that a loader opens by path."""

    def __init__(self, name, source_dir, tree, python_module=False):
        super().__init__(name, sources=[])
        self.source_dir = source_dir
        self.tree = tree
        self.python_module = python_module


class CMakeBuild(build_ext):
    """Runs CMake for each CMakeExtension and puts the library where the package expects it."""

    def get_ext_filename(self, ext_name):
        # the full dotted name, or only its last part for in-place (editable) builds
        ext = next(e for e in self.extensions if ext_name in (e.name, e.name.rsplit(".", 1)[-1]))
        if ext.python_module:
            return super().get_ext_filename(ext_name)
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        out_path = os.path.abspath(self.get_ext_fullpath(ext.name))
        out_dir = os.path.dirname(out_path)
        os.makedirs(out_dir, exist_ok=True)
        if self.editable_mode:
            # The editable install puts the library into the source tree (bmxnet/lib/ holds only
            # build outputs, so a fresh clone lacks it). Its CMake tree stays in build/<name>
            # across rebuilds. setuptools then copies the library into the source tree, whose
            # folder must exist.
            os.makedirs(os.path.join(ROOT, *ext.name.split(".")[:-1]), exist_ok=True)
            build_dir = os.path.join(ROOT, "build", ext.tree)
        else:
            # Wheels (pip install . / pip wheel .) configure against another mxnet and Python
            # (the isolated build environment's): their own CMake tree, so the editable one is
            # never reconfigured or raced.
            build_dir = os.path.join(os.path.abspath(self.build_temp), ext.tree)
        os.makedirs(build_dir, exist_ok=True)
        if ext.python_module:
            args = ["-DPython3_EXECUTABLE=" + sys.executable, "-DBMX_MODULE_PATH=" + out_path]
        else:
            args = self._mxnet_args(out_dir)
        subprocess.check_call(["cmake", "-S", ext.source_dir, "-B", build_dir,
                               "-DCMAKE_BUILD_TYPE=Release"] + args)
        subprocess.check_call(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2)])

    @staticmethod
    def _mxnet_args(out_dir):
        """The operator library compiles against the installed mxnet wheel."""
        try:
            import mxnet
        except ImportError:
            sys.exit("bmxnet builds against the mxnet wheel, which is not importable here: "
                     "use `pip install .` (pyproject.toml installs it for the build), or "
                     "pip install 'mxnet==1.9.1' first when building with --no-build-isolation")
        mxnet_root = os.path.dirname(os.path.abspath(mxnet.__file__))
        return ["-DMXNET_ROOT=" + mxnet_root, "-DBMXNET_LIB_DIR=" + out_dir]


setup(
    packages=find_packages(include=["bmxnet", "bmxnet.*"]),
    ext_modules=[CMakeExtension("bmxnet.lib.libbmxnet_ops", os.path.join(ROOT, "operators"),
                                "ops"),
                 CMakeExtension("bmxnet.runtime._runtime", os.path.join(ROOT, "bmxnet", "runtime"),
                                "runtime_python", python_module=True)],
    cmdclass={"build_ext": CMakeBuild},
)
