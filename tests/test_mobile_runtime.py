"""Runs mobile/runtime's own C/C++ checks from pytest (each script in its own process).

* ``test_runtime_native``: ``mobile/runtime/tests/run_tests.sh`` — the file readers' unit test
  (under ASan/UBSan) on files MXNet writes, then ``runtime_check`` (C99, the public header only)
  on converted zoo models against MXNet's outputs, on every kernel path and 1 and 2 threads.
* ``test_runtime_aarch64_qemu``: ``mobile/runtime/tests/run_aarch64.sh`` — the same runtime and
  checks cross-compiled for aarch64 (NEON kernels) and run under qemu-aarch64.
* ``test_runtime_loader_fuzz_short``: ``mobile/runtime/fuzz/run.sh`` — a short libFuzzer pass
  (clang, ASan + UBSan) over the whole loader; ``make fuzz`` runs 1,000,000 executions.

A script that exits 77 lacks its tools and cannot install them (not root, or no apt-get): the
test is skipped with the script's message. Anything else but 0 fails with the script's output.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "mobile" / "runtime"


def _script(path, args, timeout):
    env = dict(os.environ, PYTHON=sys.executable, OMP_WAIT_POLICY="passive")
    env.pop("BMXNET_KERNEL_PATHS", None)
    proc = subprocess.run(["bash", str(path)] + list(args), cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, env=env)
    if proc.returncode == 77:
        pytest.skip(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "tools "
                    "missing")
    if proc.returncode != 0:
        pytest.fail("%s exited with %d:\n%s" % (path.relative_to(ROOT), proc.returncode,
                                                proc.stdout[-8000:]), pytrace=False)
    return proc.stdout


def test_runtime_native():
    out = _script(SCRIPTS / "tests" / "run_tests.sh", [], timeout=900)
    print(out[-3000:])


def test_runtime_aarch64_qemu():
    out = _script(SCRIPTS / "tests" / "run_aarch64.sh", [], timeout=1200)
    print(out[-3000:])


def test_runtime_loader_fuzz_short():
    out = _script(SCRIPTS / "fuzz" / "run.sh", ["3000"], timeout=600)
    print(out[-2000:])
