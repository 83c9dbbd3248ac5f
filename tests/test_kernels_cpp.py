"""Builds and runs the C++ kernel tests (tests/cpp/) from pytest.

* ``test_kernels_x86_host``: configures the standalone kernels project
  (``cmake -S operators/kernels -B build/kernels``), builds ``bmx_kernels_test`` and runs it: every
  kernel path the CPU supports (reference, scalar, AVX2, AVX-512 VPOPCNTDQ) against the references.
* ``test_kernel_path_override``: ``BMXNET_KERNEL_PATHS`` narrows the active path end to end.
* ``test_kernels_aarch64_qemu``: ``tests/cpp/run_aarch64.sh`` cross-compiles for aarch64 and runs
  the same tests (NEON path) under qemu-aarch64; it installs the cross tools itself when root.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "kernels"
TEST_EXE = BUILD / "bmx_kernels_test"


def _run(cmd, timeout, env=None):
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout


def _check(cmd, timeout, env=None):
    rc, out = _run(cmd, timeout, env)
    if rc != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {rc}:\n{out}", pytrace=False)
    return out


@pytest.fixture(scope="module")
def kernels_test_exe():
    if shutil.which("cmake") is None:
        pytest.fail("cmake is not on PATH (pip install cmake, or apt-get install cmake)")
    _check(["cmake", "-S", "operators/kernels", "-B", str(BUILD), "-DCMAKE_BUILD_TYPE=Release",
            "-DBMX_KERNELS_BUILD_TESTS=ON"], timeout=300)
    _check(["cmake", "--build", str(BUILD), "-j", str(os.cpu_count() or 2)], timeout=900)
    assert TEST_EXE.exists()
    return TEST_EXE


def _test_env():
    env = dict(os.environ)
    env.pop("BMXNET_KERNEL_PATHS", None)  # test every path the CPU supports
    # Idle OpenMP workers sleep instead of spinning: the tests call the kernels thousands of times
    # with 1-3 threads, which on a busy 2-core machine would otherwise spin against each other.
    env.setdefault("OMP_WAIT_POLICY", "passive")
    return env


def test_kernels_x86_host(kernels_test_exe):
    env = _test_env()
    out = _check([str(kernels_test_exe)], timeout=600, env=env)
    print(out)
    assert " 0 failed" in out.splitlines()[-1]


def test_kernel_path_override(kernels_test_exe):
    env = dict(os.environ)
    env.pop("BMXNET_KERNEL_PATHS", None)
    best = _check([str(kernels_test_exe), "--print-active-path"], 60, env).strip()
    assert best in ("scalar", "avx2", "avx512", "neon")
    for name in ("reference", "scalar"):
        env["BMXNET_KERNEL_PATHS"] = name
        assert _check([str(kernels_test_exe), "--print-active-path"], 60, env).strip() == name
    if best == "avx512":  # an AVX-512 machine can run the AVX2 path too
        env["BMXNET_KERNEL_PATHS"] = "avx2"
        assert _check([str(kernels_test_exe), "--print-active-path"], 60, env).strip() == "avx2"
    # A path the machine cannot run falls back to the detected best, with a warning.
    env["BMXNET_KERNEL_PATHS"] = "no_such_path"
    rc, out = _run([str(kernels_test_exe), "--print-active-path"], 60, env)
    assert rc == 0 and out.strip().splitlines()[-1] == best and "no_such_path" in out


def test_isa_objects_export_only_descriptors(kernels_test_exe):
    """The ODR rule of operators/kernels/dispatch.h: an ISA-specific object file (compiled with
    -mavx2 / -mavx512*) may define no weak or inline symbol another file could share (the linker
    could keep its AVX-512 copy for everyone), and export nothing but the kernel descriptors."""
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not available")
    objects = [p for p in BUILD.rglob("*.o") if p.name.endswith(("_avx2.cc.o", "_avx512.cc.o"))]
    if not objects:
        pytest.skip("no AVX2/AVX-512 objects on this architecture")
    for obj in objects:
        out = _check(["nm", "-C", "--defined-only", str(obj)], timeout=60)
        for line in out.splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) < 3:
                continue
            kind, name = parts[1], parts[2]
            assert kind not in ("W", "V", "u", "w", "v"), f"{obj.name}: weak/unique symbol {name}"
            if kind.isupper():
                assert name.startswith("bmx::k"), f"{obj.name} exports {name}"


@pytest.mark.skipif(sys.platform != "linux", reason="uses Debian's cross compiler and qemu-user")
def test_kernels_aarch64_qemu():
    rc, out = _run(["bash", "tests/cpp/run_aarch64.sh"], timeout=1200, env=_test_env())
    if rc == 77:
        pytest.skip("aarch64 cross tools missing and not installable here:\n" + out)
    if rc != 0:
        pytest.fail(f"tests/cpp/run_aarch64.sh exited with {rc}:\n{out}", pytrace=False)
    print(out)
    assert "testing paths: reference scalar neon" in out
    assert " 0 failed" in out.splitlines()[-1]
