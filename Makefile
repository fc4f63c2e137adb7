# The two commands that do everything on a fresh Debian machine:
#   make demo   installs what it needs, then runs a real program in a VM
#   make test   installs what it needs, then runs the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KM := $(VENV)/bin/km
STAMP := $(VENV)/.installed

.PHONY: demo test unit guest lint compat bench bench-containers deps deps-bench clean guest-code bytecode fuzz

DEMO_HELLO := tests/programs/build/demo/hello

demo: deps $(STAMP) bytecode $(DEMO_HELLO)
	@echo "== km --strace $(DEMO_HELLO)   (a static musl program in its own KVM virtual machine)"
	@$(KM) --strace $(DEMO_HELLO)
	@echo "== busybox applets, each in a VM of its own"
	@$(KM) /bin/busybox uname -sm
	@$(KM) /bin/busybox ls -l /bin/busybox
	@printf 'b\na\nc\n' | $(KM) /bin/busybox sort
	@echo "== a shell pipeline: every process it starts is a VM of its own"
	@$(KM) /bin/busybox sh -c 'echo one two three | tr " " "\n" | sort -r | head -2'
	@echo "== python3 (Debian's, dynamic) in a VM"
	@$(KM) /usr/bin/python3 -c 'import json, hashlib; print(json.dumps({"sha256": hashlib.sha256(b"km").hexdigest()[:16]}))'
	@echo "== server mode: a warm km keeps VMs ready; its native client starts programs in milliseconds"
	@d=$$(mktemp -d); $(KM) --serve $$d/km.sock 2>/dev/null & s=$$!; \
	  for i in $$(seq 100); do [ -x $$d/km ] && [ -S $$d/km.sock ] && break; sleep 0.1; done; \
	  $$d/km $(DEMO_HELLO); $$d/km /bin/busybox sh -c 'echo "pid $$$$ in a worker of the server"'; \
	  kill $$s; rm -rf $$d

$(DEMO_HELLO): tests/programs/hello.c
	@mkdir -p $(dir $@)
	musl-gcc -static -O2 -o $@ $<

test: deps $(STAMP) bytecode
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

guest: deps $(STAMP)
	$(PY) -m pytest -q tests/guest

# The long form of the system call fuzzer (tests/guest/test_fuzz.py is the short one):
# FUZZ_SEEDS seeds from FUZZ_FIRST, FUZZ_CALLS calls each, natively and under km as user
# nobody, FUZZ_JOBS at a time; a summary of every seed where km failed at the end.
FUZZ_SEEDS ?= 200
FUZZ_CALLS ?= 20000
FUZZ_FIRST ?= 1
FUZZ_JOBS ?= 2
fuzz: deps $(STAMP) bytecode
	$(PY) tools/fuzz.py --seeds $(FUZZ_SEEDS) --calls $(FUZZ_CALLS) --first $(FUZZ_FIRST) --jobs $(FUZZ_JOBS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench tools

compat: $(STAMP)
	$(PY) -m kontain.syscalls.table > docs/compat.md

guest-code:
	$(PYTHON) tools/gen_guest_code.py

bench: deps deps-bench $(STAMP) bytecode
	$(PY) bench/bench.py

bench-containers: deps deps-bench $(STAMP) bytecode
	$(PY) bench/containers.py

deps:
	@tools/install-deps.sh test

deps-bench:
	@tools/install-deps.sh bench

$(STAMP): pyproject.toml bin/km-python bin/krun  # (pip copies the scripts: a change needs a new install)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Byte-compile the sources: an editable install has no .pyc files, and with
# PYTHONDONTWRITEBYTECODE set Python would recompile every module on every km start.
# Then the bundle of km's start-up modules (src/kontain/bundle.py), and krun-native
# (src/kontain/oci/launcher.c: crun's verbs without a Python start), and the native km
# front end over the km script (src/kontain/cli/front.py: the user's server, else km-python).
bytecode: $(STAMP)
	@$(PY) -m compileall -q src
	@$(PY) -m kontain.bundle >/dev/null
	@$(VENV)/bin/km-python --native >/dev/null || echo "no native km (no C compiler?): km is the Python one, slower to start"
	@$(VENV)/bin/krun launcher >/dev/null || echo "no krun-native (no C compiler?): engines run the Python krun, slower to start"

clean:
	rm -rf $(VENV) tests/programs/build build dist src/*.egg-info
