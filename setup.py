"""Builds bmxnet's C++ operator library (operators/, via CMake) into bmxnet/lib/libbmxnet_ops.so.

Metadata and build requirements live in pyproject.toml; this file only adds the CMake step.

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
    def __init__(self, name, source_dir):
        super().__init__(name, sources=[])
        self.source_dir = source_dir


class CMakeBuild(build_ext):
    """Runs CMake for each CMakeExtension and puts the plain .so where the package expects it."""

    def get_ext_filename(self, ext_name):
        return os.path.join(*ext_name.split(".")) + ".so"

    def build_extension(self, ext):
        try:
            import mxnet
        except ImportError:
            sys.exit("bmxnet builds against the mxnet wheel, which is not importable here: "
                     "use `pip install .` (pyproject.toml installs it for the build), or "
                     "pip install 'mxnet==1.9.1' first when building with --no-build-isolation")
        mxnet_root = os.path.dirname(os.path.abspath(mxnet.__file__))
        out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        os.makedirs(out_dir, exist_ok=True)
        if self.editable_mode:
            # The editable install copies the library into the source tree's bmxnet/lib/, which a
            # fresh clone lacks (it holds only build outputs). Its CMake tree stays in build/ops
            # across rebuilds.
            os.makedirs(os.path.join(ROOT, "bmxnet", "lib"), exist_ok=True)
            build_dir = os.path.join(ROOT, "build", "ops")
        else:
            # Wheels (pip install . / pip wheel .) configure against another mxnet (the isolated
            # build environment's): their own CMake tree, so the editable one is never
            # reconfigured or raced.
            build_dir = os.path.join(os.path.abspath(self.build_temp), "ops")
        os.makedirs(build_dir, exist_ok=True)
        subprocess.check_call(["cmake", "-S", ext.source_dir, "-B", build_dir,
                               "-DCMAKE_BUILD_TYPE=Release",
                               "-DMXNET_ROOT=" + mxnet_root, "-DBMXNET_LIB_DIR=" + out_dir])
        subprocess.check_call(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2)])


setup(
    packages=find_packages(include=["bmxnet", "bmxnet.*"]),
    ext_modules=[CMakeExtension("bmxnet.lib.libbmxnet_ops", os.path.join(ROOT, "operators"))],
    cmdclass={"build_ext": CMakeBuild},
)
