"""A per-user cache of what KVM_GET_SUPPORTED_CPUID says on this host, this boot.

It costs about a millisecond (KVM executes CPUID for every leaf, which is slow in a
nested VM) and never changes between starts.  It lives in ``$XDG_CACHE_HOME/kontain``
(``~/.cache/kontain``), written atomically, keyed by a format version and the boot.

The file is the user's, so a guest of that user can rewrite it: it then only changes
the CPU features later VMs of that user see (as it could sabotage that user's other
processes anyway).  Nothing the monitor's safety rests on comes from here: the page
tables, which once came from such a file, are built in each km's own memory.

Caching is an optimization only: when the directory cannot be written, everything is
built in memory as if there were no cache.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

VERSION = 1
_CHOSEN: list[str] = []  # a directory chosen by km's caller instead (``use``)


def use(directory: str | None) -> None:
    """Keep the cache in ``directory`` (None: the user's again).  km in a container uses
    the one krun prepared in its runtime (kontain/oci/runtime.py): the container's home
    directory is the image's, and nothing of km's may appear in it."""
    _CHOSEN[:] = [directory] if directory else []


def directory() -> str | None:
    if _CHOSEN:
        return _CHOSEN[0]
    base = os.environ.get("XDG_CACHE_HOME") or (os.path.join(os.environ["HOME"], ".cache") if "HOME" in os.environ else "")
    if not base:
        return None
    return os.path.join(base, "kontain")


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip().decode()
    except OSError:
        return "unknown"


def path(name: str, build: Callable[[], bytes], *, prune: str | None = None) -> str | None:
    """The path of cache file ``name`` holding ``build()``; built on first use.  None when
    there is no usable cache directory.  ``prune``: a name prefix of older files to
    remove when a new one is written (stale boots)."""
    d = directory()
    if d is None:
        return None
    p = os.path.join(d, f"v{VERSION}-{name}")
    if os.path.exists(p):
        return p
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        tmp = f"{p}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(build())
        os.rename(tmp, p)
        if prune:
            for other in os.listdir(d):
                if other.startswith(f"v{VERSION}-{prune}") and os.path.join(d, other) != p:
                    os.unlink(os.path.join(d, other))
    except OSError:
        return None
    return p


def read(name: str, build: Callable[[], bytes], *, prune: str | None = None) -> bytes:
    """``build()``, from the cache when possible."""
    p = path(name, build, prune=prune)
    if p is not None:
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError:
            pass
    return build()
