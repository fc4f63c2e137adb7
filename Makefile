# The two commands that do everything on a fresh Debian machine:
#   make demo   installs what it needs, then runs a real program in a VM
#   make test   installs what it needs, then runs the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KM := $(VENV)/bin/km
STAMP := $(VENV)/.installed

.PHONY: demo test unit guest lint compat bench deps deps-bench clean guest-code

demo: deps $(STAMP)
	@echo "== km /bin/busybox uname -sm  (busybox runs in its own KVM virtual machine)"
	@$(KM) /bin/busybox uname -sm
	@echo "== km --strace on a static hello world"
	@$(KM) --strace tests/programs/build/demo-hello 2>&1 || { mkdir -p tests/programs/build && \
	  musl-gcc -static -O2 -o tests/programs/build/demo-hello tests/programs/hello.c && \
	  $(KM) --strace tests/programs/build/demo-hello; }

test: deps $(STAMP)
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

guest: deps $(STAMP)
	$(PY) -m pytest -q tests/guest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools

compat: $(STAMP)
	$(PY) -m kontain.syscalls.table > docs/compat.md

guest-code:
	$(PYTHON) tools/gen_guest_code.py

bench: deps deps-bench $(STAMP)
	$(PY) bench/bench.py

deps:
	@tools/install-deps.sh test

deps-bench:
	@tools/install-deps.sh bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

clean:
	rm -rf $(VENV) tests/programs/build build dist src/*.egg-info
