"""The modules km imports only when first needed, and ``preload`` that imports them all.

km starts on every container start, and Python spends most of km's start-up importing
km itself; so code that many programs never reach (sockets, epoll, signalfd, fork,
exec, /proc/self, core dumps, --strace, ...) is imported at its first use.

Two moments forbid a later import: the OCI runtime entering a container root that holds
no Python, and a guest's ``chroot`` (passed through, so it moves the monitor's root too).
Before either, ``preload()`` imports every module named here.  tests/unit/test_lazy.py
checks that every ``import`` of a kontain module inside a function names one of these.

The start-up's other economy: km's launchers turn the garbage collector off on their
first line, and ``started()`` turns it on again once the program runs.
"""

from __future__ import annotations

import sys

MODULES = (
    # the syscall families (syscalls/table.py defers each handler to its first call)
    "kontain.syscalls.aio",
    "kontain.syscalls.epoll",
    "kontain.syscalls.fs",
    "kontain.syscalls.futex",
    "kontain.syscalls.identity",
    "kontain.syscalls.ioctl",
    "kontain.syscalls.ipc",
    "kontain.syscalls.mm",
    "kontain.syscalls.net",
    "kontain.syscalls.ns",
    "kontain.syscalls.poll",
    "kontain.syscalls.prio",
    "kontain.syscalls.process",
    "kontain.syscalls.rw",
    "kontain.syscalls.signal",
    "kontain.syscalls.sysinfo",
    "kontain.syscalls.timer",
    "kontain.syscalls.strace",
    "kontain.syscalls.snapshot",
    # the process model's rarer paths
    "kontain.kernel.exec",
    "kontain.kernel.fork",
    "kontain.kernel.vforkmem",
    "kontain.kernel.procfs",
    "kontain.kernel.paths",
    "kontain.kernel.signalfd",
    "kontain.kernel.jobctl",
    "kontain.kernel.coredump",
    "kontain.kernel.poll",
    "kontain.kernel.snapshot",
    "kontain.cli.snapctl",
    "kontain.kernel.snapfile",
    "kontain.kernel.snapfds",
    "kontain.kernel.snapsock",
    "kontain.kernel.snaptimers",
    "kontain.kernel.resume",
    "kontain.kernel.gdbstub",
    "kontain.loader.elf",
    "kontain.arch.x86_64.decode",  # (iced-x86 itself only with preload(decoder=True): see the module)
    "kontain.loader.funcstarts",  # (the syscall-site rewriter, once a site is hot)
    "kontain.kernel.faultpc",  # (a store that faulted)
    "kontain.kernel.aio",  # (a forked child of a program with AIO contexts)
    "kontain.kernel.sitecache",  # (proofs of earlier runs: options.spec, Process)
    "kontain.kernel.nativepoll",  # (the polling tier's native half; the server loads it for its workers)
    "kontain.kernel.readyfd",  # (km --ready-fd: krun start)
    "kontain.lifecycle",
)

# the families of the calls a program makes first (memory, files, /proc, ids, signals,
# I/O, terminals): imported before `krun start` is told the program runs (lifecycle.ready)
FIRST_CALLS = ("kontain.syscalls.fs", "kontain.syscalls.mm", "kontain.syscalls.process", "kontain.syscalls.signal",
               "kontain.syscalls.rw", "kontain.syscalls.sysinfo", "kontain.syscalls.identity",
               "kontain.syscalls.ioctl")


def threaded() -> None:
    """A program is about to run a second thread (Process.clone_thread): import the syscall
    families it has not used yet, now, while its only thread waits in clone.  An import
    opens files (and directories) in the descriptor table km shares with the program, each
    taking the lowest free number for a moment, and a thread of the program that opened a
    descriptor meanwhile got the next number instead of the lowest, which Linux guarantees
    (polled.c renumber under load: the main thread's first futex imported its family while
    the second thread's socketpair took 8 and 9, one of them the number the program then
    dup2'd over).  ~2 ms, once; the rarer paths' modules (procfs, fork, signalfd...) still
    come at first use: docs/known-issues.md."""
    for name in MODULES:
        if name.startswith("kontain.syscalls.") and name not in sys.modules:
            __import__(name)


def started() -> None:
    """km's start-up is over: the garbage collector back on (km's launchers turn it off
    on their first line: bin/km-python, oci/entry.py).  Start-up makes tens of thousands
    of objects and next to no garbage, and the collections their allocations set off took
    ~2.5 ms of a container's hello (5% of km's run).  The start-up's objects are frozen
    first: they live as long as km, so no later collection need walk them."""
    import gc

    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def package_dir(name: str) -> str | None:
    """The directory of the top-level package ``name`` where the import system would
    find it first (importlib.util costs milliseconds: sys.path is searched here), or
    None."""
    import os

    for entry in sys.path:
        where = os.path.join(entry or os.curdir, name)
        if os.path.isfile(os.path.join(where, "__init__.py")):
            return os.path.abspath(where)
    return None


def preload(decoder: bool = False) -> None:
    """Import every lazily imported module now (before the monitor's root changes).
    ``decoder``: load the syscall-site rewriter's decoder too (arch/x86_64/decode.py's
    core, ~2 ms), for a program that may no longer reach it later (chroot, credentials
    given up) and for the server, whose workers inherit it."""
    for name in MODULES:
        if name not in sys.modules:
            __import__(name)
    if decoder:
        sys.modules["kontain.arch.x86_64.decode"]._core()
