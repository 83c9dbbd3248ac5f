"""The standard build: pyproject.toml declares what the build needs, and a wheel built from a
copy of the tree carries the operator library and every module, and works.

The wheel is built with ``pip wheel --no-build-isolation --no-deps`` against this venv's mxnet
(an isolated build would download mxnet and cmake first); it compiles operators/ for real (about
a minute and a half on 2 busy cores). The isolated ``pip install .`` into a fresh venv is the
same build with the requirements installed first.
"""
import configparser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from subproc import describe

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _pins():
    """requirements.txt's lines for mxnet and numpy (the pinned stack of DESIGN.md)."""
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        lines = [ln.split("#")[0].strip() for ln in f]
    return {re.split(r"[=<>!~ ]", ln)[0]: ln for ln in lines if ln}


def _normal(requirement):
    return requirement.replace(" ", "")


def test_pyproject_declares_the_build_requirements():
    data = _pyproject()
    build = data["build-system"]
    assert build["build-backend"] == "setuptools.build_meta"
    requires = {re.split(r"[=<>!~ ]", r)[0]: _normal(r) for r in build["requires"]}
    pins = _pins()
    # the operators compile against the mxnet wheel's include/ and src/lib_api.cc: the same
    # release as at run time, with a numpy it imports with
    assert requires["mxnet"] == _normal(pins["mxnet"]) == "mxnet==1.9.1"
    assert requires["numpy"] == _normal(pins["numpy"])
    assert {"setuptools", "wheel", "cmake"} <= set(requires)
    project = data["project"]
    assert sorted(map(_normal, project["dependencies"])) == \
        sorted([_normal(pins["mxnet"]), _normal(pins["numpy"])])
    assert project["scripts"] == {"model_converter": "bmxnet.converter.cli:main",
                                  "bmxnet": "bmxnet.cli:main"}


def _copy_tree(dest):
    """The files a clone of the working tree has (tracked and new, not ignored): no build/,
    no .venv, no bmxnet/lib/*.so."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    names = [n for n in listed.stdout.decode().split("\0") if n]
    for name in names:
        src = os.path.join(ROOT, name)
        if not os.path.isfile(src):  # deleted in the working tree
            continue
        os.makedirs(os.path.join(dest, os.path.dirname(name)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, name))
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(source copy, wheel path) of one real build."""
    if shutil.which("git") is None or not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("needs a git checkout to know which files a clone holds")
    base = tmp_path_factory.mktemp("pkg")
    src, wheels = str(base / "src"), str(base / "wheels")
    _copy_tree(src)
    assert not os.path.exists(os.path.join(src, "bmxnet", "lib", "libbmxnet_ops.so"))
    proc = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pip", "wheel",
                           "--no-build-isolation", "--no-deps", "--no-index", "-q", "-w", wheels,
                           src], cwd=str(base), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, describe(proc)
    found = [n for n in os.listdir(wheels) if n.endswith(".whl")]
    assert len(found) == 1, found
    return src, os.path.join(wheels, found[0])


def test_wheel_carries_the_library_every_module_and_the_scripts(built):
    src, wheel = built
    modules = sorted(os.path.relpath(os.path.join(d, f), src).replace(os.sep, "/")
                     for d, _, files in os.walk(os.path.join(src, "bmxnet"))
                     for f in files if f.endswith(".py"))
    assert "bmxnet/cli.py" in modules and "bmxnet/converter/cli.py" in modules
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(z.read(info).decode())
        metadata = z.read(info.replace("entry_points.txt", "METADATA")).decode()
    assert "bmxnet/lib/libbmxnet_ops.so" in names
    assert [n for n in names if re.match(r"bmxnet/runtime/_runtime.*\.so$", n)], sorted(names)
    assert [m for m in modules if m not in names] == []
    assert not [n for n in names if n.startswith(("tests/", "operators/", "bench/"))]
    assert dict(entry_points["console_scripts"]) == {
        "model_converter": "bmxnet.converter.cli:main", "bmxnet": "bmxnet.cli:main"}
    assert "Requires-Dist: mxnet==1.9.1" in metadata


def test_built_wheel_loads_the_operators_from_another_folder(built, tmp_path):
    """The unpacked wheel, first on sys.path, in a folder away from the source tree."""
    _, wheel = built
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(str(site))
    os.chmod(str(site / "bmxnet" / "lib" / "libbmxnet_ops.so"), 0o755)
    code = ("import bmxnet, mxnet as mx\n"
            "assert bmxnet.__file__.startswith(%r), bmxnet.__file__\n"
            "y = mx.nd.QConvolution(mx.nd.ones((1, 3, 4, 4)), mx.nd.ones((2, 3, 3, 3)),\n"
            "                       num_filter=2, kernel=(3, 3), no_bias=True)\n"
            "print(y.asnumpy().ravel().tolist())\n" % str(site))
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    # all-ones 1-bit inputs and weights: every output is the dot product 3*3*3 = 27
    assert proc.stdout.split("\n")[0] == str([27.0] * 8)
    # The standalone runtime's extension is in the wheel and imports from it.
    code = ("import bmxnet.runtime as rt, sys\n"
            "assert rt.__file__.startswith(%r), rt.__file__\n"
            "print(rt.version())\n" % str(site))
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, describe(proc)
    assert re.match(r"\d+\.\d+\.\d+$", proc.stdout.strip()), proc.stdout


def test_sdist_carries_the_operator_sources(tmp_path):
    """pip builds a wheel from the sdist when there is no wheel: it must hold operators/."""
    src = str(tmp_path / "src")
    names = _copy_tree(src)
    code = ("from setuptools import build_meta\n"
            "print(build_meta.build_sdist(%r))\n" % str(tmp_path / "dist"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, describe(proc)
    import tarfile
    sdist = str(tmp_path / "dist" / proc.stdout.split()[-1])
    with tarfile.open(sdist) as t:
        inside = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    wanted = [n for n in names if n.startswith("operators/") and os.path.isfile(
        os.path.join(ROOT, n))] + ["pyproject.toml", "setup.py"]
    assert [n for n in wanted if n not in inside] == []
