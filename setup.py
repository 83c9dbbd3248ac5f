"""Builds bmxnet: the C++ operator library (operators/, via CMake) against the installed mxnet.

    pip install --no-build-isolation -e .      # mxnet must already be installed (make does this)
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
            sys.exit("bmxnet builds against the installed mxnet wheel: "
                     "pip install 'mxnet==1.9.1' first, then pip install --no-build-isolation .")
        mxnet_root = os.path.dirname(os.path.abspath(mxnet.__file__))
        out_dir = os.path.dirname(os.path.abspath(self.get_ext_fullpath(ext.name)))
        # An editable install copies the library into the source tree's bmxnet/lib/, which a
        # fresh clone lacks (it holds only build outputs).
        for folder in (out_dir, os.path.join(ROOT, "bmxnet", "lib")):
            os.makedirs(folder, exist_ok=True)
        build_dir = os.path.join(ROOT, "build", "ops")
        os.makedirs(build_dir, exist_ok=True)
        subprocess.check_call(["cmake", "-S", ext.source_dir, "-B", build_dir,
                               "-DCMAKE_BUILD_TYPE=Release",
                               "-DMXNET_ROOT=" + mxnet_root, "-DBMXNET_LIB_DIR=" + out_dir])
        subprocess.check_call(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2)])


setup(
    name="bmxnet",
    version="0.1.0",
    description="Binary and low-bit neural networks for Apache MXNet 1.9 (plugin operators)",
    packages=find_packages(include=["bmxnet", "bmxnet.*"]),
    ext_modules=[CMakeExtension("bmxnet.lib.libbmxnet_ops", os.path.join(ROOT, "operators"))],
    cmdclass={"build_ext": CMakeBuild},
    python_requires=">=3.8",
    install_requires=["mxnet==1.9.1", "numpy>=1.22,<1.24"],
    entry_points={"console_scripts": [
        "model_converter = bmxnet.converter.cli:main",
        "bmxnet = bmxnet.cli:main",
    ]},
    zip_safe=False,
)
