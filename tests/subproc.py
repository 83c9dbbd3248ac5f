"""Runs a snippet of Python in a fresh interpreter, so that a crash fails one test, not pytest.

Hostile-input and crash-reproducer tests use :func:`run_snippet` and then :func:`expect_ok` or
:func:`expect_error`. With ``malloc_check=True`` the child runs under glibc's heap checker
(``libc_malloc_debug.so.0`` preloaded, ``MALLOC_CHECK_=3``), which aborts on the first heap
overrun that glibc can see at ``free``.
"""
import os
import signal
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"

PRELUDE = """\
import os, sys
sys.path.insert(0, {tests!r})
import numpy as np
import mxnet as mx
import bmxnet
"""


def run_snippet(code, *, malloc_check=False, timeout=300, env=None):
    """Runs ``code`` (dedented, after importing numpy as np, mxnet as mx and bmxnet) in a child
    interpreter from the repository root; returns the CompletedProcess (text output)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    if malloc_check and os.path.exists(MALLOC_DEBUG):
        full_env["LD_PRELOAD"] = MALLOC_DEBUG
        full_env["MALLOC_CHECK_"] = "3"
    source = PRELUDE.format(tests=os.path.join(ROOT, "tests")) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


def describe(proc):
    """The child's exit (signal name for a crash) and its output, for assertion messages."""
    rc = proc.returncode
    how = ("killed by %s" % signal.Signals(-rc).name) if rc < 0 else "exit code %d" % rc
    return "%s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (how, proc.stdout[-4000:],
                                                           proc.stderr[-4000:])


def expect_ok(code, **kwargs):
    """Runs ``code`` and asserts that it exits 0; returns its stdout."""
    proc = run_snippet(code, **kwargs)
    assert proc.returncode == 0, describe(proc)
    return proc.stdout


def expect_error(code, exc_type, *fragments, **kwargs):
    """Runs ``code``, which must raise ``exc_type`` (a name such as 'MXNetError' or 'ValueError')
    uncaught, with every fragment in the message; a crash or a clean exit fails."""
    proc = run_snippet(code, **kwargs)
    assert proc.returncode == 1, describe(proc)
    last = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert any(exc_type in ln for ln in proc.stderr.splitlines()), describe(proc)
    for fragment in fragments:
        assert fragment in proc.stderr, "missing %r\n%s" % (fragment, describe(proc))
    return last[-1] if last else ""
