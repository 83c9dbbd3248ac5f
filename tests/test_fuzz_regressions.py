"""Inputs the fuzzers found (tests/fuzz/corpus_regressions/TARGET/*) replayed through their target.

Each input once crashed a reader, hung it or made it raise something other than its
documented error (see tests/fuzz/corpus_regressions/README.md). Now every one must be accepted
or refused with the documented error: ConversionError (and subclasses, LegacyFormatError
included) for the .params / json readers and the converter, OnnxImportError for the ONNX
importer. The replay runs in a child process, so a crash fails the test of its target and
the output names the input it was working on.
"""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN = os.path.join(HERE, "fuzz", "run.py")
CORPUS = os.path.join(HERE, "fuzz", "corpus_regressions")
TARGETS = ["params", "symbol_json", "convert", "onnx"]


def _limit_memory():
    """Some inputs once made MXNet allocate gigabytes: a regression fails, it does not swap."""
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


def _inputs(target):
    folder = os.path.join(CORPUS, target)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder)
                  if not f.startswith(".") and not f.endswith(".md"))


@pytest.mark.parametrize("target", [t for t in TARGETS if _inputs(t)])
def test_found_inputs_end_in_the_documented_error(target):
    files = _inputs(target)
    proc = subprocess.run([sys.executable, RUN, "replay", target] + files, cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), preexec_fn=_limit_memory)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    done = len([ln for ln in lines if ": accepted" in ln or ": refused" in ln])
    findings = [ln for ln in lines if ": FINDING" in ln]
    if proc.returncode < 0 or done + len(findings) < len(files):
        # The process died: the input after the last reported one crashed it.
        crashed = files[done + len(findings)] if done + len(findings) < len(files) else "?"
        pytest.fail("replay died (exit %d) on %s\n%s\n%s" % (
            proc.returncode, os.path.relpath(crashed, ROOT), proc.stdout[-3000:],
            proc.stderr[-3000:]))
    assert not findings, "\n".join(findings) + "\n" + proc.stderr[-6000:]
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
