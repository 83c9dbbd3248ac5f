# The two commands of the README:
#   make demo   fresh clone -> .venv, build, train a binary LeNet on real digits, convert it,
#               run the packed model, print both accuracies and the file sizes
#   make test   the same environment, then the whole test suite
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed

.PHONY: demo test build bench clean fuzz

$(DEPS): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -r requirements.txt
	touch $@

build: $(DEPS)
	$(VPY) -m pip install --quiet --no-build-isolation --no-deps -e .

demo: build
	$(VPY) smd_hpi_examples/binary_mnist/demo.py --out-dir demo_output

test: build
	$(VPY) -m pytest -q tests

# At least 1,000,000 executions of each fuzz target, within an hour on 2 cores: first the
# standalone runtime's loader (mobile/runtime/fuzz/run.sh: libFuzzer + ASan + UBSan, 3-9
# minutes), then the Python readers' targets (tests/fuzz/run.py: two processes at a time, one per
# core; when the fast targets are done the slowest gets both; one FUZZ SUMMARY line per target;
# findings and logs in build/fuzz/; the C++ attribute parser's libFuzzer target is built when
# clang is there). The campaign gets what is left of 58 minutes.
fuzz: build
	start=$$(date +%s); \
	PYTHON=$(VPY) mobile/runtime/fuzz/run.sh 1000000 && \
	{ tests/fuzz/build_attrs_fuzz.sh build/fuzz $(VPY) || true; } && \
	$(VPY) tests/fuzz/run.py campaign --runs 1000000 --jobs 2 --structured 0.1 \
		--max-time $$((3480 - $$(date +%s) + start)) --attrs-binary build/fuzz/attrs_fuzz \
		--out build/fuzz

bench: build
	$(VPY) bench/bench_train_step.py
	$(VPY) bench/bench_runtime.py

clean:
	rm -rf build bmxnet/lib/*.so demo_output *.egg-info
