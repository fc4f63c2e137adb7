"""What a dynamic ELF file needs to load: its interpreter and its shared libraries.

Both users of this module copy a program's loading closure into a root file system of
their own: the km runtime that krun mounts into every container (oci/runtime.py: the
Python interpreter that runs km, its extension modules and their libraries) and the
images ``km image`` writes (oci/image.py).  Who decides which file a name resolves to
is the file's own dynamic loader (RUNPATH, ld.so.cache, hwcaps subdirectories, its
default directories), so this module asks it (``ld.so --list``, which glibc's and
musl's loaders both answer without running the program) rather than imitating it.  A
static executable (no PT_INTERP) needs nothing.
"""

from __future__ import annotations

import os
import subprocess

from kontain.loader import elf


class DepsError(Exception):
    """The file's loading closure cannot be determined (one line for the user)."""


def interpreter(path: str) -> str | None:
    """The PT_INTERP of executable ``path`` (None for a static program)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise DepsError(f"{path}: {e.strerror}") from None
    try:
        return elf.parse(head, size).interp
    except elf.ElfError as e:
        raise DepsError(f"{path}: {e}") from None


def libraries(path: str, loader: str) -> dict[str, str]:
    """The shared libraries ``path`` (an executable or a shared object) loads, as
    ``loader`` resolves them on this host: {name it is asked for: host path}.  The
    loader itself and the vDSO are left out."""
    try:
        r = subprocess.run([loader, "--list", path], capture_output=True, text=True, env={}, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DepsError(f"{loader} --list {path}: {e}") from None
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()
        raise DepsError(f"{path}: {why[-1] if why else f'{loader} --list failed'}")
    found = {}
    loader_real = os.path.realpath(loader)
    for line in r.stdout.splitlines():
        parts = line.split()
        if "=>" not in parts:
            continue  # the loader itself, the vDSO
        i = parts.index("=>")
        if i + 1 >= len(parts) or not parts[i + 1].startswith("/"):
            if parts[i + 1:i + 2] == ["not"]:
                raise DepsError(f"{path}: {parts[0]} not found")
            continue  # (the vDSO: "linux-vdso.so.1 => (0x...)" with older loaders)
        if os.path.realpath(parts[i + 1]) == loader_real:
            continue  # musl's libc is its loader
        found[parts[0]] = parts[i + 1]
    return found


def closure(paths: list[str], loader: str) -> dict[str, str]:
    """The shared libraries all of ``paths`` load with ``loader``, together."""
    out: dict[str, str] = {}
    for p in paths:
        out.update(libraries(p, loader))
    return out
