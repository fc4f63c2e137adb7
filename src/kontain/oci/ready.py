"""``krun start`` returns once the program runs, not once km does.

crun's ``start`` returns as soon as it has released the container's process, which
under krun is km: km then needs ~20-30 ms (much more on a loaded machine) before the
program's first instruction.  An engine that signals the container as soon as
``start`` returned (runtime-tools' ``killsig``, ``podman run`` then ``podman stop`` at
once) would reach km, or a program that has not installed its handlers yet.

So ``krun create`` makes a FIFO, ``ROOT/.krun-ready-ID`` (beside crun's state
directory ``ROOT/ID``, which does not exist yet: crun makes it), opens it read-write
(which never blocks) and hands that descriptor to the container's process as one
more preserved descriptor, the first past the ones the engine asked crun to preserve
(``--preserve-fds`` and LISTEN_FDS), with ``km --ready-fd N``.  km closes it once the
program has started up: every thread of it waits in a system call, it ended, or it ran 100 ms
(kernel/readyfd.py); the program never sees it.
``krun start`` (here, and launcher.c for krun-native) opens the FIFO's read end,
removes its name, runs crun's start and, if that succeeded, waits until no writer is
left: km closed it (the program runs) or km died (its descriptors closed with
it; the state then says stopped, as crun's would).  No writer is left behind by
anyone else: crun's create exits, and the container's process is km itself.  The wait
has only a safety limit against a km that hangs before its program (WAIT_LIMIT): then
``start`` still succeeds.

A container krun created before this existed, or crun's own, has no FIFO: ``start``
is crun's alone.  ``krun delete`` removes a FIFO a create left (a create that failed,
a container deleted without being started), and each create removes those of failed
creates whose ids the engine never deletes (``sweep``).  ``krun run`` and ``krun exec`` do not wait
(docs/containers.md says why): crun's own process stays in the foreground of a ``run``,
and ``exec`` has no start.
"""

from __future__ import annotations

import os

WAIT_LIMIT = 120.0  # seconds: a safety limit only, against a km that hangs before its program
PREFIX = ".krun-ready-"
STALE = 600.0  # seconds: a FIFO this old without crun's state directory is a failed create's (``sweep``)


def fifo_path(root: str, container_id: str) -> str | None:
    """The FIFO of container ``container_id`` in krun's state directory ``root``; None for
    an id crun refuses anyway (a path of its own)."""
    if not container_id or "/" in container_id or container_id in (".", "..") or "\0" in container_id:
        return None
    return os.path.join(root, PREFIX + container_id)


def make(root: str, container_id: str, at: int) -> int | None:
    """The FIFO's write end at descriptor ``at`` (inheritable): None when the id has no
    FIFO or ``at`` is taken already (a descriptor the engine passed: left alone, and the
    container starts without the wait)."""
    path = fifo_path(root, container_id)
    if path is None:
        return None
    try:
        os.fstat(at)  # (not fcntl's F_GETFD: importing fcntl costs each create more than this)
        return None  # (taken)
    except OSError:
        pass
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        sweep(root)
        try:
            os.unlink(path)  # (a create of the same id that failed before)
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o600)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None  # (crun says what is wrong with the state directory)
    if fd != at:
        os.dup2(fd, at, inheritable=True)
        os.close(fd)
    else:
        os.set_inheritable(at, True)
    return at


def sweep(root: str, now: float | None = None) -> None:
    """Remove the FIFOs that failed creates left in ``root``: a create that crun refused
    (a configuration it rejects, a hook that failed) leaves its FIFO behind, as krun has
    become crun by then, and an engine deletes nothing it could not create
    (runtime-tools' validation left two in each run, one id each, for good).  A FIFO is
    a failed create's when crun has no state directory for its id and it is older than
    STALE: a create in progress has its directory milliseconds after its FIFO (crun makes
    it first), a created container keeps its FIFO until start or delete.  One scan of the
    state directory per create."""
    import time

    now = time.time() if now is None else now
    try:
        names = [e.name for e in os.scandir(root) if e.name.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        try:
            if os.path.lexists(os.path.join(root, name[len(PREFIX):])) or now - os.lstat(path).st_mtime < STALE:
                continue
            os.unlink(path)
        except OSError:
            pass


def open_reader(root: str, container_id: str) -> int | None:
    """The FIFO's read end (non-blocking), its name removed; None when the container has
    none."""
    path = fifo_path(root, container_id)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        os.unlink(path)
    except OSError:
        pass
    return fd


def wait(fd: int, limit: float = WAIT_LIMIT) -> None:
    """Wait until the FIFO has no writer (km closed it or died), at most ``limit``."""
    import select
    import time

    deadline = time.monotonic() + limit
    try:
        while True:
            try:
                if os.read(fd, 64) == b"":
                    return  # no writer: km closed it, or died
            except BlockingIOError:
                pass  # a writer, and nothing written: wait for it to go
            left = deadline - time.monotonic()
            if left <= 0:
                return
            p = select.poll()
            p.register(fd, select.POLLIN)
            p.poll(int(min(left, 3600) * 1000) + 1)
    finally:
        os.close(fd)


def remove(root: str, container_id: str) -> None:
    """Remove a container's FIFO, if a create left one (krun delete)."""
    path = fifo_path(root, container_id)
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass
