# Two entry points that set everything up on a fresh machine:
#   make demo   - the main job: function search on a few HumanEval problems
#   make test   - the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: setup demo test bench-exec clean system-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

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

demo: setup
	$(BIN)/assay demo

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench-exec: setup
	$(BIN)/python benches/exec_throughput.py

clean:
	rm -rf $(VENV) runs .assay-cache
