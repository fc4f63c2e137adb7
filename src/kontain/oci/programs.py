"""Finding a container's program as the runtime would, for the runtime's errors.

crun looks the program up inside the container before ``create`` (or ``exec``)
succeeds, and an engine tells "not found" (127) and "cannot execute" (126) from its
message.  Under krun the container's executable is km's loader, which always exists;
km would find a missing program only after ``start``, too late for the same error.  So
krun looks it up first, in a view of the container's file system made of what it can
see from the host:

* for ``create``: the bundle's root and the configuration's bind mounts (the longest
  destination prefix wins); a path under any other mount (tmpfs, a volume of another
  kind) is not checked here, and km reports it after ``start``;
* for ``exec``: the running container's root, ``/proc/PID/root``, with its mounts.

Symbolic links are followed inside the view (an absolute target is the container's
root, not the host's), at most 40 of them, as the kernel does.
"""

from __future__ import annotations

import os
import stat

from kontain.oci import KrunError

_MAX_LINKS = 40


class Unknown(Exception):
    """The path leaves what the view can see (a mount krun cannot look into)."""


class View:
    """The container's file system as the host sees it: ``root``, and host directories
    bind-mounted at container paths."""

    def __init__(self, root: str, binds: dict[str, str] | None = None, opaque: tuple[str, ...] = ()):
        self.root = root
        self.binds = binds or {}  # container path -> host path
        self.opaque = opaque  # container paths of mounts that cannot be seen from here

    @classmethod
    def of_config(cls, config: dict, bundle: str) -> View:
        root = config.get("root", {}).get("path", "rootfs")
        binds, opaque = {}, []
        for m in config.get("mounts", []):
            dest = os.path.normpath("/" + m.get("destination", "").lstrip("/"))
            options = m.get("options") or []
            if m.get("type") == "bind" or "bind" in options or "rbind" in options:
                binds[dest] = os.path.join(bundle, m.get("source", ""))
            else:
                opaque.append(dest)
        return cls(os.path.join(bundle, root), binds, tuple(opaque))

    def host(self, path: str) -> str:
        """The host path of normalized container path ``path`` (no links followed)."""
        best = ""
        for dest in [*self.binds, *self.opaque]:
            if (path == dest or path.startswith(dest.rstrip("/") + "/")) and len(dest) > len(best):
                best = dest
        if not best:
            return self.root + path
        if best in self.opaque or best not in self.binds:
            raise Unknown(path)
        return self.binds[best] + path[len(best):]

    def resolve(self, path: str) -> str:
        """Follow the links of absolute container path ``path``; its host path."""
        links = 0
        done = "/"
        todo = [p for p in path.split("/") if p]
        while todo:
            part = todo.pop(0)
            if part == ".":
                continue
            if part == "..":
                done = os.path.dirname(done)
                continue
            candidate = os.path.join(done, part)
            host = self.host(candidate)
            try:
                target = os.readlink(host)
            except OSError:
                done = candidate
                continue
            links += 1
            if links > _MAX_LINKS:
                raise OSError(40, "Too many levels of symbolic links")
            todo = [p for p in target.split("/") if p] + todo
            done = "/" if target.startswith("/") else done
        return self.host(done)


def check(view: View, proc: dict, status: int = 1) -> None:
    """Fail as crun does when ``proc``'s program cannot be found or executed in ``view``
    (with ``status``: crun's create fails with 1, its exec with 255)."""
    args = proc.get("args") or []
    if not args:
        return
    name = args[0]
    env = dict(e.split("=", 1) for e in proc.get("env") or [] if "=" in e)
    cwd = proc.get("cwd") or "/"
    if "/" in name:
        candidates = [name if name.startswith("/") else os.path.join(cwd, name)]
    else:
        candidates = [os.path.join(d if d.startswith("/") else os.path.join(cwd, d), name)
                      for d in env["PATH"].split(":")] if "PATH" in env else []  # (crun has no default)
    for c in candidates:
        try:
            st = os.stat(view.resolve(os.path.normpath(c)))
        except Unknown:
            return  # km will tell
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            if "/" in name:
                raise KrunError("open executable: Operation not permitted", status)
            continue
        if not st.st_mode & 0o111:
            raise KrunError("open executable: Permission denied", status)
        return
    raise KrunError(f"executable file `{name}` not found in $PATH: No such file or directory", status)
