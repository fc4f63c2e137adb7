"""Removing km runtimes nothing uses any more (``krun prune-runtimes``).

Every version of km assembles a runtime of its own (oci/runtime.py, ~60 MB), and a
container keeps the one it started with for as long as it lives.  A runtime may go when

* it is not the runtime of the km that prunes (the one the next ``krun create`` uses),
* no mount table on the host references it: a container bind-mounts its runtime
  (``/proc/PID/mountinfo`` shows the runtime's path, relative to its file system, as the
  mount's root: ``254:0 /var/cache/kontain/runtime-KEY /dev/.kontain ...``), in state
  "created" as much as "running"; a container that stopped has no mount namespace left,
* and it was not used for ``max_age`` (a day): ``runtime.ensure`` touches its USED file
  when that is older than ``runtime.TOUCH`` (an hour), so a runtime some other
  installation of km still starts containers with stays recent without a write at each
  create.

Why the check cannot race with a ``krun create`` that picks the runtime: the create
touches USED under a shared lock on ``DIR/.lock`` whenever USED is older than an hour,
and the prune checks age and mounts and renames the runtime away under the exclusive
lock.  So either the create's touch comes first (the prune then sees a recent runtime and
keeps it), or the rename does (the create then finds no runtime and assembles it again).
A create that found USED younger than an hour takes no lock: such a runtime is at least
``max_age - TOUCH`` (23 hours) away from being pruned, far longer than crun needs to
mount it.  Hence ``max_age`` must exceed ``TOUCH``; a smaller one is raised to it.

Removal renames first (``.runtime-pruned-KEY-...``), then deletes: no krun ever sees
half a runtime.  Temporaries (``.runtime-*``: an assembly or a prune that was
interrupted) go when they are older than an hour.
"""

from __future__ import annotations

import os
import time

from kontain.oci import KrunError

DAY = 24 * 3600
TEMPORARY_AGE = 3600  # (an assembly takes seconds: an hour-old temporary is a leftover)
LOCK = ".lock"


def lock(directory: str, exclusive: bool, wait: bool = True) -> int | None:
    """An flock on ``DIR/.lock`` (the descriptor, to close), or None when ``wait`` is
    False and another holds it."""
    import fcntl

    fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def last_used(root: str) -> float:
    """When the runtime at ``root`` was last used: its USED file's time, or the
    directory's (a runtime assembled before USED existed)."""
    from kontain.oci import runtime

    try:
        return os.stat(os.path.join(root, runtime.USED)).st_mtime
    except OSError:
        return os.stat(root).st_mtime


def mounted(directory: str) -> set[str]:
    """The names of the entries of ``directory`` (runtime-KEY) that some mount table on
    the host uses as a mount's root or source: the runtimes containers have mounted."""
    try:
        st = os.stat(directory)
    except OSError:
        return set()
    device = f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    names: set[str] = set()
    seen: set[str] = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            ns = os.readlink(f"/proc/{pid}/ns/mnt")
            if ns in seen:
                continue
            with open(f"/proc/{pid}/mountinfo") as f:
                table = f.read()
        except OSError:
            continue  # (gone meanwhile, or not ours to read)
        seen.add(ns)
        for line in table.splitlines():
            fields = line.split(" ")
            if len(fields) < 5:
                continue
            source = line.partition(" - ")[2].split(" ")
            # the root of a mount of the cache's file system, or a source that names a path
            paths = [fields[3] if fields[2] == device else "", source[1] if len(source) > 1 else ""]
            names.update(part for p in paths for part in p.split("/") if part.startswith("runtime-"))
    return names


def _size(path: str) -> int:
    total = 0
    seen = set()
    for d, _dirs, files in os.walk(path):
        for f in [".", *files]:
            try:
                st = os.lstat(os.path.join(d, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def candidates(directory: str, current: str | None, max_age: float, now: float | None = None) -> list[str]:
    """The entries of ``directory`` a prune removes now (see the module's docstring)."""
    from kontain.oci import runtime

    now = time.time() if now is None else now
    max_age = max(max_age, runtime.TOUCH + 60)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    in_use = None
    out = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            if not os.path.isdir(path) or os.path.islink(path):
                continue
            if name.startswith(".runtime-"):
                if now - os.stat(path).st_mtime > TEMPORARY_AGE:
                    out.append(name)
                continue
            if not name.startswith("runtime-") or name == current or now - last_used(path) <= max_age:
                continue
        except OSError:
            continue
        if in_use is None:
            in_use = mounted(directory)
        if name not in in_use:
            out.append(name)
    return out


def prune(directory: str | None = None, max_age: float = DAY, dry_run: bool = False,
          wait: bool = True) -> list[tuple[str, int]] | None:
    """Remove the runtimes in ``directory`` nothing uses; [(name, bytes freed)], or None
    when ``wait`` is False and a krun holds the lock."""
    import shutil
    import tempfile

    from kontain.oci import runtime

    directory = directory or runtime.default_directory()
    if not os.path.isdir(directory):
        return []
    current = f"runtime-{runtime.key()}"
    try:
        fd = lock(directory, exclusive=True, wait=wait)
    except OSError as e:
        raise KrunError(f"cannot lock {directory}: {e.strerror} (prune as the cache's owner)") from None
    if fd is None:
        return None
    removed = []
    try:
        for name in candidates(directory, current, max_age):
            path = os.path.join(directory, name)
            size = _size(path)
            if not dry_run:
                try:
                    gone = tempfile.mkdtemp(prefix=f".runtime-pruned-{name}-", dir=directory)
                    os.rename(path, os.path.join(gone, name))
                except OSError as e:
                    raise KrunError(f"cannot remove {path}: {e.strerror}") from None
                removed.append((name, size, gone))
            else:
                removed.append((name, size, ""))
    finally:
        os.close(fd)
    for *_, gone in removed:  # (out of the lock: renamed, no krun can pick them)
        if gone:
            shutil.rmtree(gone, ignore_errors=True)
    return [(name, size) for name, size, _gone in removed]


def in_background(directory: str) -> None:
    """Prune in a process of its own (after a new runtime was assembled: the create that
    assembled it does not wait for the old ones to be deleted)."""
    import subprocess
    import sys

    code = ("import sys; sys.path[:] = " + repr(sys.path) + "; from kontain.oci import prune; "
            f"prune.prune({directory!r}, wait=False)")
    try:
        subprocess.Popen([sys.executable, "-I", "-S", "-c", code], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        pass  # (nothing is lost: the next assembly, or krun prune-runtimes, prunes)


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(args: list[str]) -> int:
    """krun prune-runtimes [--dry-run]"""
    import sys

    dry_run = False
    for a in args:
        if a in ("--dry-run", "-n"):
            dry_run = True
        elif a in ("-h", "--help"):
            sys.stdout.write("usage: krun prune-runtimes [--dry-run]\n\nremove the km runtimes in "
                             "/var/cache/kontain (or $KONTAIN_CACHE) no container has mounted\n"
                             "and no krun used for a day, except the current one\n")
            return 0
        else:
            raise KrunError(f"prune-runtimes: unexpected argument {a} (usage: krun prune-runtimes [--dry-run])", 1)
    from kontain.oci import runtime

    directory = runtime.default_directory()
    removed = prune(directory, dry_run=dry_run) or []
    verb = "would remove" if dry_run else "removed"
    for name, size in removed:
        sys.stdout.write(f"{verb} {os.path.join(directory, name)} ({_human(size)})\n")
    total = sum(size for _name, size in removed)
    sys.stdout.write(f"{'would free' if dry_run else 'freed'} {_human(total)} "
                     f"({len(removed)} {'entry' if len(removed) == 1 else 'entries'})\n")
    return 0
