# Two entry points that set everything up on a fresh machine:
#   make demo   - the main job: function search on a few HumanEval problems
#   make test   - the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-base
TEST_STAMP := $(VENV)/.installed-test
NVCC_STAMP := $(VENV)/.installed-nvcc
PYTEST_ARGS ?=

.PHONY: setup setup-test demo test bench-exec clean system-deps

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $(STAMP)

# The tests also cover kernel mode on the CPU, so they install the kernels extra (torch,
# triton: about 1.5 minutes and 5 GB from PyPI) besides the test tools.
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[dev,kernels]'
	touch $(STAMP) $(TEST_STAMP)

# CUDA's compiler from PyPI at torch's CUDA version (about 100 MB), so that a test builds a CUDA
# load_inline extension in the sandbox: compile and link only, there is no GPU here.
$(NVCC_STAMP): $(TEST_STAMP)
	@reqs="$$($(BIN)/python -m assay.kernels.toolkit)"; \
	  if [ -n "$$reqs" ]; then echo "pip install $$reqs"; $(BIN)/pip install -q $$reqs; fi
	touch $(NVCC_STAMP)

# bubblewrap is the local sandbox; install it when missing and we may (root + apt).
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap debootstrap >/dev/null; \
	  else echo "bubblewrap (bwrap) is missing: install it with your package manager (e.g. apt-get install bubblewrap)"; exit 2; fi; }
	@command -v debootstrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; fi; } || true

setup: system-deps $(STAMP)

setup-test: system-deps $(TEST_STAMP) $(NVCC_STAMP)

demo: setup
	$(BIN)/assay demo

test: setup-test
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench-exec: setup
	$(BIN)/python benches/exec_throughput.py

clean:
	rm -rf $(VENV) runs .assay-cache
