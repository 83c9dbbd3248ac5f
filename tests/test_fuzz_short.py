"""A short, seeded pass of each fuzz target (tests/fuzz/), each in its own process.

``make fuzz`` runs 1,000,000 executions per target; here every target runs a few hundred
executions with a fixed libFuzzer seed, starting from the seed corpus made from small valid
models, so that a reader which crashes, hangs or raises anything but its documented error on
an input one mutation away from a valid file fails a test (and the harness itself stays
working). The fuzzer runs in a child process: a segfault fails the test, not pytest.
"""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RUN = os.path.join(HERE, "fuzz", "run.py")
TARGETS = ["params", "symbol_json", "convert", "onnx"]
RUNS = 200

pytest.importorskip("atheris")


def _run(args, timeout):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, RUN] + args, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("target", TARGETS)
def test_short_seeded_fuzz_pass(target, tmp_path):
    proc = _run(["campaign", "--targets", target, "--runs", str(RUNS), "--seed", "1",
                 "--jobs", "1", "--max-restarts", "0", "--chunk", "170", "--max-time", "170",
                 "--out", str(tmp_path)], timeout=240)
    out = proc.stdout + proc.stderr
    summary = re.search(r"FUZZ SUMMARY target=%s executions=(\d+) crashes=(\d+)" % target, out)
    findings = [ln for ln in out.splitlines() if ln.startswith("FUZZ FINDING")]
    logs = ""
    if findings or not summary:
        logdir = tmp_path / "logs"
        for log in sorted(logdir.glob("*.log")) if logdir.is_dir() else []:
            text = log.read_text(errors="replace")
            keep = [ln for ln in text.splitlines() if "legacy_json_util" not in ln
                    and not ln.startswith("INFO: Instrumenting")]
            logs += "\n--- %s ---\n%s" % (log.name, "\n".join(keep[-60:]))
    assert summary, out + logs
    assert not findings, "\n".join(findings) + logs
    assert int(summary.group(1)) >= RUNS, out
    assert proc.returncode == 0, out + logs


@pytest.mark.parametrize("target", TARGETS)
def test_seeds_reach_past_the_first_check(target, tmp_path):
    """Some seed of every target is accepted: the fuzzer starts deep in the reader."""
    seeds = tmp_path / "seeds"
    proc = _run(["seeds", target, str(seeds)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    proc = _run(["replay", target] + sorted(str(p) for p in seeds.iterdir()), timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert ": accepted" in proc.stdout, proc.stdout


def test_attribute_parser_fuzz_target_builds_and_runs(tmp_path):
    """The C++ attribute parser's libFuzzer target (tests/fuzz/build_attrs_fuzz.sh) still links
    against the operators' sources and survives a short seeded run (skipped without clang)."""
    import shutil
    cxx = shutil.which("clang++") or shutil.which("clang++-14")
    probe = tmp_path / "probe.cc"
    probe.write_text('extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, '
                     'unsigned long) { return 0; }\n')
    if not cxx or subprocess.run([cxx, "-fsanitize=fuzzer,address", str(probe), "-o",
                                  str(tmp_path / "probe")], capture_output=True).returncode:
        pytest.skip("no clang++ with libFuzzer here (make fuzz builds it where there is one)")
    build = subprocess.run(["sh", os.path.join(HERE, "fuzz", "build_attrs_fuzz.sh"),
                            str(tmp_path), sys.executable], cwd=ROOT, capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run([str(tmp_path / "attrs_fuzz"), "-runs=3000", "-seed=1", str(corpus)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Done 3000 runs" in run.stderr, run.stderr[-3000:]
