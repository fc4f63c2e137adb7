"""``km image SNAPSHOT``: what an image that resumes a km snapshot must hold.

A container's program under krun is km, and km resumes a snapshot when its program is
one (``km FILE``); so an image whose entry point is a snapshot file resumes it instead of
starting the program cold.  The snapshot holds the program's memory, threads and
descriptors; a resume also needs what the snapshot refers to by path:

- its working directory (the image's WorkingDir, so it exists);
- the regular files it re-opens (its open descriptors), at the same paths, each checked
  here against the snapshot's record (inode, size, modification time: unchanged since
  it was taken), carried with their modification time, which the resume checks again
  (in the container by size and time only: the image's copy is another inode; krun runs
  km with --image-files for that);
- directories it holds open;
- the files it maps shared and read-only (glibc's gconv-modules.cache, for one),
  checked to be the same inode here.

Character devices under /dev (/dev/null...) are the container's own.  What a container
could not give back is refused here, with one line, rather than at each resume: a
writable shared mapping of a file, other devices.
"""

from __future__ import annotations

import os
import stat


def contents(path: str, at: str) -> tuple[dict[str, str | None], str]:
    """({path in the image: host file, or None for a directory}, working directory)."""
    from kontain.kernel import resume, snapfile
    from kontain.oci.image import ImageError

    try:
        snap = snapfile.read(path)
    except snapfile.SnapshotError as e:
        raise ImageError(str(e)) from None
    try:
        resume.check_state(snap.state, path)
        state, extra = snap.state["process"], snap.state["extra"]
        loads = extra["loads"]
    except (snapfile.SnapshotError, KeyError, TypeError) as e:
        raise ImageError(f"{path}: not a snapshot km can resume ({e})") from None
    finally:
        os.close(snap.fd)
    files: dict[str, str | None] = {at: path}
    cwd = os.fsdecode(extra["cwd"])
    if not cwd.startswith("/"):
        raise ImageError(f"{path}: its working directory {cwd!r} is not an absolute path")
    if cwd != "/":
        files[cwd] = None
    for (_kind, values), load in zip(state["mm"]["vmas"], loads):
        if not (type(load) is tuple and len(load) == 3 and load[2] == "file"):
            continue
        name, prot, dev, ino = values[4], values[2], values[6], values[7]
        if prot & 2:  # (PROT_WRITE: the program's writes would reach the image's copy only)
            raise ImageError(f"{path}: the program maps {name} shared and writable, which an image cannot carry "
                             "(resume it on this host)")
        try:
            st = os.stat(name)
        except OSError as e:
            raise ImageError(f"{path}: the program maps {name}: {e.strerror}") from None
        if (st.st_dev, st.st_ino) != (dev, ino):
            raise ImageError(f"{path}: the program maps {name}, which is another file now: take the snapshot again")
        files[name] = name
    for fd, f in sorted(state["fds"].items()):
        if type(f) is not dict or f.get("kind") != "file":
            continue  # (pipes, sockets, epoll...: made again by the resume itself)
        name = os.fsdecode(f["path"])
        mode = f.get("mode", 0)
        if stat.S_ISCHR(mode) and name.startswith("/dev/"):
            continue  # (the container's own /dev)
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ImageError(f"{path}: descriptor {fd} is {name}, which an image cannot carry (a device)")
        if name == at or any(name.startswith(p + "/") for p in (at,)):
            raise ImageError(f"{path}: descriptor {fd} is {name}, where the snapshot goes (choose --at)")
        if stat.S_ISDIR(mode):
            files[name] = None
            continue
        try:
            st = os.stat(name)
        except OSError as e:
            raise ImageError(f"{path}: descriptor {fd} was {name}: {e.strerror}") from None
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != (f["dev"], f["ino"], f["size"], f["mtime"]):
            raise ImageError(f"{path}: descriptor {fd} was {name}, which has changed since the snapshot (another "
                             "file, size or modification time): take the snapshot again")
        files[name] = name
    return files, cwd
