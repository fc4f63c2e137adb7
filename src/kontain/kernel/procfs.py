"""/proc/self as the program expects it, and out of reach of the program where /proc
would expose the monitor.

The guest's /proc/self is km's (the same process), which is Python's.  So:

* ``exe`` names the program; ``cmdline``, ``environ``, ``auxv`` and ``maps`` are the
  program's, generated from what the monitor knows (served as a memfd, so read, lseek
  and fstat work);
* ``fd/`` and ``fdinfo/`` list only the program's descriptors, and the monitor's do not
  exist there;
* ``mem``, ``pagemap`` and ``map_files/`` would give the program the monitor's memory:
  opening them fails with EACCES.  This is checked on the descriptor the host returned
  (its resolved path), so symlinks or relative paths cannot get around it.

``comm`` and ``stat`` are the host's: km names its thread after the program.  ``status``
is the host's too, with the signal lines (SigPnd, ShdPnd, SigBlk, SigIgn, SigCgt) taken
from the program's own masks and actions: km's would show what the monitor blocks and
ignores for itself.
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import signals as S
from kontain.abi.errno import EACCES, ENOENT

_MFD_CLOEXEC = 1
_O_CLOEXEC = 0o2000000
_SYS_memfd_create = 319
_DIRENT = struct.Struct("<QqHB")


def _number(b: bytes) -> int | None:
    return int(b) if b.isdigit() else None


def split_proc(path: bytes) -> tuple[int, int | None, bytes] | None:
    """``/proc/PID[/task/TID]/REST`` as (PID, TID or None, REST); None for other paths.
    (Plain parsing rather than ``re``: importing re costs km ~10 ms at start-up.)"""
    if not path.startswith(b"/proc/"):
        return None
    parts = path[6:].split(b"/", 3)
    pid = _number(parts[0])
    if pid is None or len(parts) < 2:
        return None
    if parts[1] == b"task" and len(parts) >= 3:
        tid = _number(parts[2])
        if tid is None:
            return None
        return pid, tid, parts[3] if len(parts) > 3 else b""
    return pid, None, b"/".join(parts[1:])


def _is_memory_file(rest: bytes) -> bool:
    """mem, pagemap, map_files and what is under it."""
    return rest in (b"mem", b"pagemap", b"map_files") or rest.startswith(b"map_files/")


class ProcSelf:
    """This process's /proc directory, as the guest sees it."""

    def __init__(self, process):
        self.process = process
        self.pid = os.getpid()
        try:
            self.dev = os.stat("/proc/self").st_dev
        except OSError:
            self.dev = -1
        pid = str(self.pid).encode()
        self._prefixes = (b"/proc/self/", b"/proc/thread-self/", b"/proc/" + pid + b"/")

    # -- which file ----------------------------------------------------------------
    def name(self, path: bytes) -> bytes | None:
        """The part after /proc/<this process>/ (or /proc/self/...), or None."""
        if not path.startswith(b"/proc/"):
            return None
        for prefix in self._prefixes:
            if path.startswith(prefix):
                rest = path[len(prefix):]
                break
        else:
            # /proc/<tid>/... of one of our threads (their directories exist, unlisted)
            parts = split_proc(path)
            tasks = self.process.tasks
            if not parts or parts[0] not in tasks or parts[1] is not None and parts[1] not in tasks:
                return None
            rest = parts[2]
        if rest.startswith(b"task/"):  # /proc/self/task/<tid>/x is x for our threads
            tid, _, inner = rest[5:].partition(b"/")
            if _number(tid) in self.process.tasks and inner:
                rest = inner
        return rest.rstrip(b"/")

    def hides(self, name: bytes) -> bool:
        """A monitor descriptor under fd/ or fdinfo/: for the guest it does not exist."""
        kind, _, fd = name.partition(b"/")
        n = _number(fd)
        return kind in (b"fd", b"fdinfo") and n is not None and n >= self.process.fds.floor

    # -- generated files -------------------------------------------------------------
    def content(self, name: bytes) -> bytes | None:
        p = self.process
        if name == b"cmdline":
            return b"".join(a + b"\0" for a in p.argv)
        if name == b"environ":
            return b"".join(e + b"\0" for e in p.envp)
        if name == b"auxv":
            return p.auxv_bytes
        if name == b"maps":
            return self.maps()
        if name == b"status":
            return self.status()
        return None

    def status(self) -> bytes:
        p = self.process
        task = p.tasks.get(self.pid) or next(iter(p.tasks.values()), None)
        ignored = caught = 0
        for sig in range(1, S.NSIG + 1):
            handler = p.actions.handler(sig)
            if handler == S.SIG_IGN:
                ignored |= 1 << (sig - 1)
            elif handler != S.SIG_DFL:
                caught |= 1 << (sig - 1)
        ours = {
            b"SigPnd": task.pending.mask if task else 0,
            b"ShdPnd": p.shared_pending.mask,
            b"SigBlk": task.sigmask if task else 0,
            b"SigIgn": ignored,
            b"SigCgt": caught,
        }
        try:
            with open("/proc/self/status", "rb") as f:
                lines = f.read().split(b"\n")
        except OSError:
            return b""
        for i, line in enumerate(lines):
            key, sep, _ = line.partition(b":")
            if sep and key in ours:
                lines[i] = b"%s:\t%016x" % (key, ours[key])
        return b"\n".join(lines)

    def maps(self) -> bytes:
        out = []
        for v in self.process.mm:
            perms = ("r" if v.prot & 1 else "-") + ("w" if v.prot & 2 else "-") + ("x" if v.prot & 4 else "-")
            perms += "s" if v.shared and not v.anonymous else "p"
            dev = f"{os.major(v.dev):02x}:{os.minor(v.dev):02x}" if v.dev else "00:00"
            # as the kernel's show_map_vma: a space after the inode, then the name at column 73
            line = f"{v.start:08x}-{v.end:08x} {perms} {v.offset:08x} {dev} {v.ino} "
            if v.name:
                line = line.ljust(72) + " " + v.name
            out.append(line)
        return ("\n".join(out) + "\n").encode("utf-8", "surrogateescape")

    def open_generated(self, name: bytes, flags: int) -> int | None:
        """A memfd holding the file's content (None: not a generated file)."""
        data = self.content(name)
        if data is None:
            return None
        label = bytearray(b"proc-" + name.replace(b"/", b"-") + b"\0")
        fd = native.syscall(_SYS_memfd_create, native.address_of(label), _MFD_CLOEXEC if flags & _O_CLOEXEC else 0)
        if fd < 0:
            return fd
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        return fd

    # -- checks on what the host opened ------------------------------------------------
    def check_opened(self, fd: int) -> int:
        """Refuse a descriptor that turned out to be this process's memory in /proc."""
        try:
            if os.fstat(fd).st_dev != self.dev:
                return fd
            target = os.readlink(f"/proc/self/fd/{fd}").encode()
        except OSError:
            return fd
        parts = split_proc(target)
        if parts and parts[0] == self.pid and _is_memory_file(parts[2]):
            os.close(fd)
            return -EACCES
        return fd

    def is_fd_dir(self, fd: int) -> bool:
        try:
            if os.fstat(fd).st_dev != self.dev:
                return False
            parts = split_proc(os.readlink(f"/proc/self/fd/{fd}").encode())
        except OSError:
            return False
        return bool(parts) and parts[0] == self.pid and parts[2] in (b"fd", b"fdinfo")

    def filter_dirents(self, data: bytes) -> bytes:
        """linux_dirent64 records without the monitor's descriptors."""
        out = bytearray()
        floor = self.process.fds.floor
        pos = 0
        while pos + _DIRENT.size <= len(data):
            _ino, _off, reclen, _type = _DIRENT.unpack_from(data, pos)
            if reclen == 0:
                break
            name = data[pos + _DIRENT.size:pos + reclen].split(b"\0", 1)[0]
            if not (name.isdigit() and int(name) >= floor):
                out += data[pos:pos + reclen]
            pos += reclen
        return bytes(out)


NOT_FOUND = -ENOENT
