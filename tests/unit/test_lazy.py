"""Modules imported at first use are all named in kontain/lazy.py, so that preload()
(before a chroot, or before the OCI runtime enters a container root) gets every one."""

import ast
import subprocess
import sys
from pathlib import Path

from kontain import lazy
from kontain.syscalls import table

SRC = Path(lazy.__file__).resolve().parent
START_UP = {"cli/main.py"}  # its imports run before the program starts
HOST_SIDE = "oci/"  # krun and `km image` run on the host; km's launcher in a container imports at start-up


def _late_imports():
    """(file, module) for every `import` of a kontain module inside a function."""
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel in START_UP or rel.startswith(HOST_SIDE):
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kontain"):
                    for a in node.names:  # `from kontain.kernel import exec` names a module
                        sub = f"{node.module}.{a.name}"
                        is_module = (SRC / Path(*sub.split(".")[1:])).with_suffix(".py").exists()
                        yield rel, sub if is_module else node.module
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        if a.name.startswith("kontain"):
                            yield rel, a.name


def _start_up_modules() -> set[str]:
    code = ("import sys; import kontain.cli.main, kontain.kernel.process, kontain.loader.exec; "
            "print(' '.join(m for m in sys.modules if m.startswith('kontain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_every_late_import_is_preloaded():
    loaded = _start_up_modules() | {"kontain.lazy"}
    missing = sorted({(f, m) for f, m in _late_imports() if m not in lazy.MODULES and m not in loaded})
    assert not missing, f"imported inside a function but not in kontain/lazy.py MODULES: {missing}"


def test_every_deferred_family_is_preloaded():
    families = {e.handler.module for e in table.TABLE if isinstance(e.handler, table.Deferred)}
    assert families and families <= set(lazy.MODULES)


def test_preload_imports_everything():
    code = ("import sys; from kontain import lazy; lazy.preload(); "
            "print(sorted(set(lazy.MODULES) - set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_start_up_imports_no_family_it_does_not_need():
    """Importing the start-up path leaves the families (sockets, epoll, ...) for later."""
    loaded = _start_up_modules()
    for family in ("net", "epoll", "poll", "signal", "futex", "sysinfo", "strace", "fs", "mm", "rw", "ipc"):
        assert f"kontain.syscalls.{family}" not in loaded
    for module in ("kontain.kernel.fork", "kontain.kernel.exec", "kontain.kernel.signalfd", "kontain.kernel.procfs"):
        assert module not in loaded


_COSTLY = {"array", "collections", "re", "typing", "enum", "inspect", "dataclasses", "json", "functools", "signal",
           "importlib.util", "importlib.machinery", "subprocess", "threading", "logging"}


def _imported(statements: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statements``, started as km is in a
    container (-I -S: no site, no environment)."""
    code = f"import sys; sys.path.insert(0, {str(SRC.parent)!r}); {statements}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_start_up_imports_no_costly_standard_module():
    """km's start in a container (-I -S, no site) imports none of the standard library's
    costly modules: array alone imported collections (keyword, operator, reprlib), ~4.5 ms
    of every start; re, typing, enum, inspect, dataclasses and json cost as much."""
    loaded = _imported("import kontain.cli.main, kontain.kernel.process, kontain.loader.exec, kontain.lifecycle, "
                       "kontain.syscalls.dispatch")
    assert not _COSTLY & loaded, sorted(_COSTLY & loaded)


def test_preload_imports_no_costly_standard_module():
    """preload() runs at a program's first fork (and before a chroot): it imported re
    (procfs, for one substitution) and enum (signal, in vforkmem), ~5 ms of that fork."""
    loaded = _imported("import kontain.cli.main, kontain.kernel.process, kontain.lifecycle; "
                       "from kontain import lazy; lazy.preload()")
    assert not _COSTLY & loaded, sorted(_COSTLY & loaded)


def test_a_deferred_handler_replaces_its_own_entry():
    """The first call of a deferred handler puts the function in its own row of HANDLERS
    (and nowhere else), in a fresh interpreter: later calls go straight to it."""
    code = ("from kontain.syscalls import table as t; d = t.HANDLERS[33]; "  # dup2
            "assert isinstance(d, t.Deferred) and d.nr == 33; before = list(t.HANDLERS); fn = d.resolve(); "
            "assert t.HANDLERS[33] is fn and not isinstance(fn, t.Deferred); "
            "print(sum(a is not b for a, b in zip(before, t.HANDLERS)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def test_the_first_families_import_no_regex_engine():
    """The modules a program's first calls import (memory, files, /proc, signals, I/O:
    busybox sh reads /proc/self/exe, then installs its traps) leave ``re`` alone: it costs
    4-8 ms (enum, functools, its compiler), which ran between `krun start` returning and
    the program's handlers, so that a signal sent at once (runtime-tools' killsig) found
    none; procfs imported it for one substitution in /proc/cpuinfo."""
    code = ("import sys; import kontain.cli.main, kontain.kernel.process, kontain.loader.exec; "
            "import kontain.syscalls.mm, kontain.syscalls.process, kontain.syscalls.sysinfo, kontain.syscalls.fs, "
            "kontain.kernel.procfs, kontain.syscalls.signal, kontain.syscalls.rw; print('re' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_cpuinfo_loses_the_flag_as_the_regular_expression_did():
    import re

    from kontain.kernel.procfs import without_word

    for text in (b"flags\t: fpu cpuid_fault vme\n", b"flags\t: fpu cpuid_fault\nbugs\t: x cpuid_fault\n",
                 b"flags\t: cpuid_faults cpuid_fault_x a cpuid_fault", b"a  cpuid_fault  cpuid_fault\n\n", b"",
                 b"cpuid_fault at start cpuid_fault cpuid_fault\n"):
        assert without_word(text, b"cpuid_fault") == re.sub(rb" cpuid_fault(?=[ \n])", b"", text)


def test_a_second_thread_finds_every_syscall_family_imported():
    """Process.clone_thread calls lazy.threaded before a program's second thread runs: every
    syscall family is imported then, so that none is imported (its files opened in the
    descriptor table the program shares) while a thread of the program opens descriptors.
    In a fresh interpreter, as km has them before: the families of the first calls only."""
    code = ("import sys; import kontain.lazy as lazy; lazy.threaded(); "
            "print(sorted(m for m in lazy.MODULES if m.startswith('kontain.syscalls.') and m not in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
