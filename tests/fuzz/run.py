#!/usr/bin/env python
"""Fuzzing bmxnet's file readers with atheris (libFuzzer for Python).

Commands (run from the repository root with the project's venv)::

    python tests/fuzz/run.py campaign [--targets params,onnx] [--runs N] [--seed S] [--jobs J]
                                      [--max-time SECONDS] [--out DIR]
    python tests/fuzz/run.py fuzz TARGET [libFuzzer flags] [CORPUS_DIR ...]
    python tests/fuzz/run.py replay TARGET FILE ...
    python tests/fuzz/run.py seeds TARGET DIR

``campaign`` is what ``make fuzz`` (1,000,000 runs per target) and ``tests/test_fuzz_short.py``
(a few hundred, fixed seed) call: for each target it writes the seed corpus (made from small
valid models, see ``seeds.py``), runs ``fuzz`` in a child process (``--jobs`` children at a
time, one per core; when no target is waiting, a free core gets one more child of the target
furthest from its runs, on the same corpus), and after a finding restarts the child on the
grown corpus until the target has done ``--runs`` executions or used its share of
``--max-time``. Findings are copied to ``OUT/findings/TARGET/`` (the input libFuzzer wrote, and
the child's log). A Python
exception that was already found once is not counted again in the same campaign (its
signature, "ExceptionType in function", goes to ``OUT/known-TARGET.txt``, which the child
reads); a crash of the process (signal) cannot be skipped that way and ends the target after
``--max-restarts`` restarts. The last lines are one row per target::

    FUZZ SUMMARY target=params executions=1000000 crashes=0 distinct=0 execs_per_s=812 ...

MXNet keeps some memory for every symbol it builds (a few hundred KB per execution of the deep
targets; tracemalloc sees no Python objects), so a child runs at most ``--chunk`` seconds and a
child stopped by libFuzzer's RSS limit is restarted; the input it was running is replayed alone
in a fresh process, and when that stays far below the limit it is renamed ``growth-*`` and
reported as a ``FUZZ MEMORY`` line, not counted as a crash (a real out-of-memory input is).

``fuzz`` is the libFuzzer process itself (one target, in-process: a crash of the reader kills
it, which is how libFuzzer sees crashes). ``replay`` runs files through a target and prints
one line per file; it exits 1 when any input gives something other than the documented error
(a crash kills it: run it in a subprocess). ``seeds`` writes a target's seed corpus.

Flags worth knowing for ``fuzz``: ``-runs=N -seed=S -max_total_time=T -timeout=T
-artifact_prefix=DIR/ -minimize_crash=1 -runs=10000 CRASH_FILE`` (shrinks a finding).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

TARGET_NAMES = ["params", "symbol_json", "convert", "onnx"]
NATIVE_TARGETS = ["attrs"]  # libFuzzer binaries (tests/fuzz/build_attrs_fuzz.sh), --attrs-binary
SIGNATURE_TAG = "BMXNET-FUZZ-SIGNATURE:"
STATS_TAG = "BMXNET-FUZZ-STATS"


def _import_readers(instrument):
    """Imports the readers, with atheris's coverage instrumentation of bmxnet's own code."""
    if instrument:
        import atheris
        with atheris.instrument_imports(include=["bmxnet"]):
            import bmxnet  # noqa: F401
            import bmxnet.converter  # noqa: F401
            import bmxnet.legacy  # noqa: F401
            import bmxnet.onnx  # noqa: F401
    else:
        import bmxnet  # noqa: F401
        import bmxnet.converter  # noqa: F401
        import bmxnet.legacy  # noqa: F401
        import bmxnet.onnx  # noqa: F401


def signature(err):
    """'ExceptionType in function (file)' of the innermost bmxnet frame (or the innermost)."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if os.sep + "bmxnet" + os.sep in f.filename
            and os.sep + "tests" + os.sep not in f.filename]
    frame = (ours or frames or [None])[-1]
    where = "%s (%s)" % (frame.name, os.path.basename(frame.filename)) if frame else "?"
    kind = type(err).__name__
    if kind == "Finding":
        kind += " '%s'" % " ".join(str(err).split()[:4])
    return "%s in %s" % (kind, where)


def _known(target):
    path = os.environ.get("BMXNET_FUZZ_KNOWN")
    if not path or not os.path.isfile(path):
        return set()
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def cmd_fuzz(args):
    import atheris
    from targets import TARGETS
    target = TARGETS[args.target]
    _import_readers(instrument=True)
    known = _known(args.target)
    expected = target.expected

    counts = {"accepted": 0, "refused": 0}
    stats_path = os.environ.get("BMXNET_FUZZ_STATS")

    def save_stats():  # libFuzzer ends the process with exit(): no atexit, so save as we go
        if stats_path:
            with open(stats_path, "w") as f:
                f.write("%s accepted=%d refused=%d\n"
                        % (STATS_TAG, counts["accepted"], counts["refused"]))

    def test_one_input(data):
        if (counts["accepted"] + counts["refused"]) % 64 == 0:
            save_stats()
        try:
            target.run(bytes(data))
            counts["accepted"] += 1
        except expected:
            counts["refused"] += 1
        except Exception as err:  # a finding, unless this campaign has it already
            sig = signature(err)
            if sig in known:
                return
            sys.stderr.write("\n%s %s\n" % (SIGNATURE_TAG, sig))
            sys.stderr.flush()
            save_stats()
            raise

    flags = list(args.libfuzzer)
    if not any(f.startswith("-max_len=") for f in flags):
        flags.append("-max_len=%d" % target.max_len)
    if not any(f.startswith("-timeout=") for f in flags):
        flags.append("-timeout=%d" % target.timeout)
    mutator = None if os.environ.get("BMXNET_FUZZ_BYTES_ONLY") else target.mutator
    atheris.Setup([sys.argv[0]] + flags, test_one_input, custom_mutator=mutator)
    atheris.Fuzz()


def cmd_replay(args):
    from targets import TARGETS
    target = TARGETS[args.target]
    _import_readers(instrument=False)
    bad = 0
    for path in args.files:
        with open(path, "rb") as f:
            data = f.read()
        t0 = time.time()
        try:
            target.run(data)
            outcome = "accepted"
        except target.expected as err:
            outcome = "refused (%s)" % type(err).__name__
        except Exception as err:
            bad += 1
            outcome = "FINDING %s: %s" % (signature(err), " ".join(str(err).split())[:300])
            traceback.print_exc()
        print("%s: %s [%.2fs]" % (os.path.relpath(path), outcome, time.time() - t0), flush=True)
    return 1 if bad else 0


def cmd_seeds(args):
    import seeds
    n = seeds.write_seeds(args.target, args.dir)
    print("%d seeds in %s" % (n, args.dir))


# ----------------------------------------------------------------------------------- campaign
_STAT = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_PROGRESS = re.compile(r"^#(\d+)\s", re.M)
_ARTIFACT = re.compile(r"(?:Test unit written to|artifact_prefix.*?;\s*Test unit written to)"
                       r"\s*(\S+)")


def _executions(log):
    stats = _STAT.findall(log)
    if stats:
        return int(stats[-1])
    progress = _PROGRESS.findall(log)
    return int(progress[-1]) if progress else 0


def _kind(log, rc):
    if "ERROR: libFuzzer: timeout" in log:
        return "timeout (hang)"
    if "out-of-memory" in log:
        return "out-of-memory"
    sig = [ln.split(SIGNATURE_TAG, 1)[1].strip() for ln in log.splitlines() if SIGNATURE_TAG in ln]
    if sig:
        return "python: " + sig[-1]
    m = re.search(r"ERROR: libFuzzer: (deadly signal|[a-z -]+)", log)
    if m:
        return "crash: " + m.group(1)
    return "exit code %d" % rc


def _rss_limit_mb(name):
    """libFuzzer's -rss_limit_mb for a target (native targets: 4 GB)."""
    from targets import TARGETS
    return TARGETS[name].rss_limit_mb if name in TARGETS else 4096


def _replay_peak_mb(target, artifact):
    """Peak RSS (MB) of replaying one input in a fresh process, or None when it fails."""
    if artifact == "-" or not os.path.exists(artifact):
        return None
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "run.py"), "replay", target,
                             artifact], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=limit)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    return usage.ru_maxrss / 1024


class TargetRun:
    """The state of one target during a campaign."""

    def __init__(self, name, out, runs, seed, share_fn, max_restarts, extra, structured,
                 chunk=300, binary=None, parent=None):
        self.name, self.runs, self.seed, self.extra = name, runs, seed, extra
        # A target may run in several children at once on the shared corpus (a core that the
        # other targets left free helps the slowest one): the first run and its shards.
        self.group = parent.group if parent else []
        self.shard = len(self.group)
        self.group.append(self)
        self.share_fn, self.time_share, self.binary = share_fn, None, binary
        self.chunk = chunk
        self.rss_limit_mb = _rss_limit_mb(name)
        self.structured = structured
        self.max_restarts = max_restarts
        self.corpus = os.path.join(out, "corpus", name)
        self.findings = os.path.join(out, "findings", name)
        self.known = os.path.join(out, "known-%s.txt" % name)
        self.logdir = os.path.join(out, "logs")
        self.executions = self.seconds = self.cpu = 0
        self.accepted = self.refused = 0
        self.crashes = []  # (kind, artifact path)
        self.restarts = 0  # after findings
        self.session = 0  # every child, also the planned restarts after a chunk
        self.memory_notes = []
        self.proc = None
        self.done = False
        self.note = ""

    def total(self):
        """Executions of this target over all its shards."""
        return sum(t.executions for t in self.group)

    def start(self):
        os.makedirs(self.findings, exist_ok=True)
        os.makedirs(self.logdir, exist_ok=True)
        if not os.path.isdir(self.corpus) or not os.listdir(self.corpus):
            import seeds
            seeds.write_seeds(self.name, self.corpus)
        # This target's share of what is left of the budget, renewed at every restart: time
        # that targets which finished early did not use goes to the slow ones.
        self.time_share = max(self.time_share or 0, self.seconds + self.share_fn(self))
        remaining = max(1, self.runs - self.total())
        budget = max(1, int(self.time_share - self.seconds))
        tag = "%s-%d" % (self.name, self.session) if not self.shard else \
            "%s.%d-%d" % (self.name, self.shard, self.session)
        self.log = os.path.join(self.logdir, tag + ".log")
        prog = [self.binary] if self.binary else [sys.executable, os.path.join(HERE, "run.py"),
                                                  "fuzz", self.name]
        cmd = prog + ["-runs=%d" % remaining,
               "-seed=%d" % (self.seed + self.session + 1000 * self.shard),
               "-max_total_time=%d" % min(budget, self.chunk), "-print_final_stats=1",
               "-rss_limit_mb=%d" % self.rss_limit_mb,
               "-artifact_prefix=%s/" % self.findings, "-print_pcs=0", "-reload=0"]
        cmd += self.extra + [self.corpus]
        self.stats = os.path.join(self.logdir, tag + ".stats")
        self.session += 1
        env = dict(os.environ, BMXNET_FUZZ_KNOWN=self.known, PYTHONHASHSEED="0",
                   BMXNET_FUZZ_STATS=self.stats)
        env.setdefault("OMP_NUM_THREADS", "1")  # one core per target; no OpenMP spinning
        if self.structured is not None:
            env["BMXNET_FUZZ_STRUCTURED"] = str(self.structured)
        self.t0 = time.time()
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)

    def poll(self):
        """True when the child ended (and the target is either restarted or done)."""
        pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
        if pid == 0:
            return False
        rc = os.waitstatus_to_exitcode(status)
        self.logf.close()
        self.seconds += time.time() - self.t0
        self.cpu += usage.ru_utime + usage.ru_stime
        with open(self.log, errors="replace") as f:
            log = f.read()
        self.executions += _executions(log)
        stats = []
        if os.path.isfile(self.stats):
            with open(self.stats) as f:
                stats = re.findall(STATS_TAG + r" accepted=(\d+) refused=(\d+)", f.read())
        if stats:
            self.accepted += int(stats[-1][0])
            self.refused += int(stats[-1][1])
        if rc != 0:
            kind = _kind(log, rc)
            artifacts = [p for p in _ARTIFACT.findall(log) if os.path.exists(p)]
            artifact = artifacts[-1] if artifacts else "-"
            if artifact != "-":
                shutil.copy(self.log, artifact + ".log")
            peak = _replay_peak_mb(self.name, artifact) if kind == "out-of-memory" else None
            if peak is not None and peak < self.rss_limit_mb / 2:
                # Not this input: MXNet's memory grew over the run (it keeps some memory per
                # symbol call). Noted, not a crash; the child restarts fresh on the corpus.
                self.memory_notes.append("rss over %d MB after %d executions; the input alone "
                                         "peaks at %d MB" % (self.rss_limit_mb, _executions(log),
                                                             peak))
                os.rename(artifact, artifact.replace("oom-", "growth-"))
                kind = None
            else:
                self.crashes.append((kind, artifact))
        if rc != 0 and kind is not None:
            if kind.startswith("python: "):
                with open(self.known, "a") as f:
                    f.write(kind[len("python: "):] + "\n")
            self.restarts += 1
            if self.restarts > self.max_restarts:
                self.done, self.note = True, "stopped after %d restarts" % self.max_restarts
                return True
            if self.total() < self.runs and self.seconds < self.time_share - 5:
                self.start()
                return False
        elif self.total() < self.runs and self.seconds < self.time_share - 5:
            self.start()  # end of a chunk (or of a memory-growth stop): a fresh process
            return False
        self.done = True
        if self.total() < self.runs:
            self.note = self.note or "time share used up (%ds)" % self.seconds
        return True

    def summary(self):
        """One line for the target, its shards added up (seconds: the first run's wall time;
        execs_per_s: executions per second of that span)."""
        group = self.group
        crashes = [c for t in group for c in t.crashes]
        kinds = sorted({k for k, _ in crashes})
        executions, cpu = self.total(), sum(t.cpu for t in group)
        rate = executions / self.seconds if self.seconds else 0
        cpu_rate = executions / cpu if cpu else 0
        note = "; ".join(t.note for t in group if t.note)
        return ("FUZZ SUMMARY target=%s executions=%d crashes=%d distinct=%d execs_per_s=%.0f "
                "execs_per_cpu_s=%.0f seconds=%.0f cpu_seconds=%.0f accepted=%d refused=%d "
                "processes=%d reached=%s%s" % (
                    self.name, executions, len(crashes), len(kinds), rate, cpu_rate,
                    self.seconds, cpu, sum(t.accepted for t in group),
                    sum(t.refused for t in group), len(group),
                    "yes" if executions >= self.runs else "no",
                    (" note=%r" % note) if note else "")) + \
            ("".join("\nFUZZ MEMORY target=%s %s" % (self.name, m)
                     for t in group for m in t.memory_notes))


def cmd_campaign(args):
    binaries = {}
    if args.attrs_binary:
        if os.path.isfile(args.attrs_binary) and os.access(args.attrs_binary, os.X_OK):
            binaries["attrs"] = os.path.abspath(args.attrs_binary)
        else:
            print("attrs: no binary at %s (tests/fuzz/build_attrs_fuzz.sh needs clang); the "
                  "attribute parser is not fuzzed this time" % args.attrs_binary)
    # The slowest target (convert) first, so that it runs the whole campaign long.
    names = args.targets.split(",") if args.targets else \
        ["convert"] + list(binaries) + [n for n in TARGET_NAMES if n != "convert"]
    for n in names:
        if n not in TARGET_NAMES and n not in binaries:
            sys.exit("unknown target %r; targets: %s" % (n, ", ".join(TARGET_NAMES + list(
                binaries))))
    out = args.out or tempfile.mkdtemp(prefix="bmxnet-fuzz-campaign-")
    if args.fresh and os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    # A campaign keeps the corpora of earlier ones (a head start), not their verdicts: every
    # finding is reported again until it is fixed.
    for name in os.listdir(out):
        if name.startswith("known-"):
            os.remove(os.path.join(out, name))
    shutil.rmtree(os.path.join(out, "logs"), ignore_errors=True)
    # A target that starts gets an equal share of the time left, times the parallel jobs: a
    # fast target that finishes early leaves its time to the slower ones.
    deadline = time.time() + args.max_time if args.max_time else None
    running, finished = [], []

    def share(target):
        if deadline is None:
            return 10 ** 9
        waiting = len(pending) + len(running) + (target not in running)
        return max(10.0, (deadline - time.time()) * min(args.jobs, waiting) / waiting)

    extra = ["-%s" % e.lstrip("-") for e in (args.libfuzzer or [])]
    pending = [TargetRun(n, out, args.runs, args.seed, share, args.max_restarts, extra,
                         args.structured, args.chunk, binaries.get(n)) for n in names]
    print("fuzz campaign: targets %s, %d runs each, seed %d, %d at a time, out %s"
          % (",".join(names), args.runs, args.seed, args.jobs, out), flush=True)
    while pending or running:
        while pending and len(running) < args.jobs:
            t = pending.pop(0)
            t.start()
            running.append(t)
        if not pending and len(running) < args.jobs:
            # A free core and nothing waiting: a Python target still far from its runs gets
            # one more child on it (the native one is fast enough alone).
            behind = [t for t in running if not t.binary and t.runs - t.total() > 10 * 1000
                      and (deadline is None or deadline - time.time() > 60)]
            if behind:
                lead = max(behind, key=lambda t: t.runs - t.total()).group[0]
                t = TargetRun(lead.name, out, args.runs, args.seed, share, args.max_restarts,
                              extra, args.structured, args.chunk, parent=lead)
                t.start()
                running.append(t)
                print("  %s: one more process on the free core" % t.name, flush=True)
        time.sleep(0.2)
        for t in list(running):
            if t.poll():
                running.remove(t)
                finished.append(t)
                print("  %s%s done: %d executions in %.0fs, %d crash(es)"
                      % (t.name, ".%d" % t.shard if t.shard else "", t.executions, t.seconds,
                         len(t.crashes)), flush=True)
    print()
    for t in finished:
        for kind, artifact in t.crashes:
            print("FUZZ FINDING target=%s kind=%r input=%s" % (t.name, kind, artifact))
    leads = [t for t in finished if not t.shard]
    for t in sorted(leads, key=lambda t: names.index(t.name)):
        print(t.summary())
    ok = all(not t.crashes for t in finished) and all(t.total() >= args.runs for t in leads)
    print("FUZZ RESULT %s (logs and findings in %s)" % ("PASS" if ok else "FAIL", out))
    return 0 if ok else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fuzz")
    p.add_argument("target", choices=TARGET_NAMES)
    p.add_argument("libfuzzer", nargs=argparse.REMAINDER)
    p = sub.add_parser("replay")
    p.add_argument("target", choices=TARGET_NAMES)
    p.add_argument("files", nargs="+")
    p = sub.add_parser("seeds")
    p.add_argument("target", choices=TARGET_NAMES + NATIVE_TARGETS)
    p.add_argument("dir")
    p = sub.add_parser("campaign")
    p.add_argument("--targets", default="")
    p.add_argument("--runs", type=int, default=1000000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--max-time", type=int, default=0, help="wall-clock budget in seconds")
    p.add_argument("--max-restarts", type=int, default=20)
    p.add_argument("--attrs-binary", default="",
                   help="the libFuzzer binary of the operators' attribute parser, if built")
    p.add_argument("--chunk", type=int, default=300,
                   help="seconds per child process: MXNet's memory grows with every symbol "
                        "call, so a long campaign runs in fresh processes on the shared corpus")
    p.add_argument("--out", default="")
    p.add_argument("--fresh", action="store_true", help="delete OUT first")
    p.add_argument("--libfuzzer", action="append", help="extra libFuzzer flag, e.g. timeout=5")
    p.add_argument("--structured", type=float, default=None,
                   help="share of mutations that are structure-aware (default 0.75): they keep "
                        "the input valid and reach deep (slow) code; the rest are libFuzzer's "
                        "byte mutations, mostly refused early (fast)")
    args = parser.parse_args(argv)
    return {"fuzz": cmd_fuzz, "replay": cmd_replay, "seeds": cmd_seeds,
            "campaign": cmd_campaign}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main() or 0)
