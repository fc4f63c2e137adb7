"""crun, which krun hands every verb to (docs/containers.md: why crun).

krun replaces itself with crun (``execute``): the engine then talks to crun directly,
which writes the pid file, answers the console socket, waits in the foreground for
``run``, exits with its own status and writes its own errors; nothing of krun stays
between the engine and the container (the runc shim reaps the pid it finds in the pid
file as its own descendant).  A configuration krun rewrote reaches crun as an
inherited memory file, ``/proc/self/fd/N``, which crun reads before anything else and
which crun closes in the container; so krun writes nothing on disk and has nothing to
clean up.
"""

from __future__ import annotations

import os

from kontain.oci import KrunError

if False:  # (typing costs krun milliseconds at every start: for type checkers only)
    from typing import NoReturn

CANDIDATES = ("/usr/bin/crun", "/usr/local/bin/crun", "/usr/sbin/crun", "/bin/crun")


def path() -> str:
    """crun's path: $KRUN_CRUN, else crun on PATH, else where packages put it."""
    chosen = os.environ.get("KRUN_CRUN")
    if chosen:
        return chosen
    for d in os.environ.get("PATH", "").split(os.pathsep):  # (shutil.which: shutil costs milliseconds)
        c = os.path.join(d, "crun")
        if d and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    for c in CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    raise KrunError("crun not found (krun runs containers with crun: apt-get install crun, or set KRUN_CRUN)")


def execute(argv: list[str]) -> NoReturn:
    """Become crun with ``argv`` (its arguments)."""
    crun = path()
    import _signal

    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):  # (ignored by Python's start-up, not by the engine: crun
        _signal.signal(sig, _signal.SIG_DFL)       # would inherit that, and live past a hook that reads nothing)
    try:
        os.execv(crun, [crun, *argv])
    except OSError as e:
        raise KrunError(f"cannot run {crun}: {e.strerror}") from None


def memory_file(data: dict, lowest: int) -> str:
    """``data`` as JSON in a memory file inherited by crun, at descriptor ``lowest`` or
    above (below it are the descriptors crun passes on to the container); its path."""
    from kontain.oci import fastjson as json

    fd = os.memfd_create("krun-config", 0)
    os.write(fd, json.dumps(data).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return f"/proc/self/fd/{high}"


def stored_config(root: str, container_id: str) -> dict | None:
    """The configuration crun keeps for a container it created (its state directory),
    None if there is none."""
    if "/" in container_id or container_id in ("", ".", ".."):
        return None
    from kontain.oci import fastjson as json

    try:
        with open(os.path.join(root, container_id, "config.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def init_pid(root: str, container_id: str) -> int:
    """The pid of a container's first process, from crun's state, if it still runs (the
    same pid and start time); 0 otherwise."""
    if "/" in container_id or container_id in ("", ".", ".."):
        return 0
    from kontain.oci import fastjson as json

    try:
        with open(os.path.join(root, container_id, "status")) as f:
            status = json.load(f)
        pid = int(status.get("pid", 0))
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().rpartition(")")[2].split()[19])
    except (OSError, ValueError, TypeError, IndexError, AttributeError):
        return 0
    return pid if pid > 0 and start == status.get("process-start-time") else 0
