"""Opening a path for the program, with the monitor out of its reach.

The host kernel opens the program's paths in km's own process, where /proc/self is km's
and /proc/self/fd/N reaches km's descriptors, and where a new descriptor lands at the
lowest free number: another thread of the program could use it (read it, dup it, map
it) before km has looked at what it is.  So an open goes in steps:

1. The path is looked up as an O_PATH descriptor (which can neither read, write nor
   map) and moved above the program's range at once, out of its reach.  Magic links
   (/proc/*/fd/N, exe, cwd, root) are refused in this lookup (RESOLVE_NO_MAGICLINKS);
   only when the path has one is it looked up again with them, and the file it reaches
   compared with the monitor's own descriptors.
2. kernel/procfs.py ``vet``s the file: a /proc file of this process may be refused,
   hidden, or replaced by km's version.
3. The real open is a reopen of that very file, through km's own descriptor of a
   procfs root (``self/fd/M``), so the descriptor the program gets is the one that was
   looked at.

A create cannot be split that way, so it is made exclusive: O_CREAT|O_EXCL (and
O_TMPFILE) can only give a file that did not exist, never one of the monitor's; a
plain O_CREAT is an open of the existing file or, when there is none, an exclusive
create (retried as an open when one appears meanwhile).

Calls that look at a path without opening it (stat, access, readlink, chdir) are
checked after the fact: when what they reached is on procfs, the path is looked up the
same way and vetted (``check_path``).
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EACCES, EEXIST, EISDIR, ELOOP, ENOENT, ENOTDIR, ETXTBSY
from kontain.errors import OwnThread
from kontain.loader import textbusy

SYS_openat, SYS_openat2, SYS_newfstatat, SYS_readlinkat = 257, 437, 262, 267
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
NO_MAGIC = RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_IN_ROOT  # each forbids them
O_FASYNC = 0o20000
VALID_OPEN_FLAGS = (F.O_ACCMODE | F.O_CREAT | F.O_EXCL | F.O_NOCTTY | F.O_TRUNC | F.O_APPEND | F.O_NONBLOCK |
                    F.O_DSYNC | O_FASYNC | F.O_DIRECT | F.O_LARGEFILE | F.O_DIRECTORY | F.O_NOFOLLOW | F.O_NOATIME |
                    F.O_CLOEXEC | F.O_PATH | F.O_TMPFILE | F.O_SYNC)
O_PATH_FLAGS = F.O_DIRECTORY | F.O_NOFOLLOW | F.O_PATH | F.O_CLOEXEC
_O_TMPFILE_BIT = F.O_TMPFILE & ~F.O_DIRECTORY
_S_IFMT, _S_IFLNK, _S_IFSOCK = 0o170000, 0o120000, 0o140000
# what an open never waits for (Opener._finish)
_OPEN_NEVER_WAITS = (F.S_IFREG, F.S_IFDIR)
MAX_LINKS = 40  # Linux's MAXSYMLINKS
_F_DUPFD = 0
EXE = 1  # check_path: the path is this process's /proc/<pid>/exe (the program, for the program)


def open_how(flags: int, mode: int) -> tuple[int, int]:
    """(flags, mode) as open and openat make them (Linux's build_open_how): unknown
    flags dropped, O_LARGEFILE forced, O_PATH keeping only its own flags, a mode only
    for a create."""
    flags = (flags & VALID_OPEN_FLAGS) | F.O_LARGEFILE
    if flags & F.O_PATH:
        flags &= O_PATH_FLAGS
    mode = mode & 0o7777 if flags & (F.O_CREAT | _O_TMPFILE_BIT) else 0
    return flags, mode


def openat2(dirfd: int, path: int, flags: int, mode: int, resolve: int) -> int:
    how = bytearray(struct.pack("<QQQ", flags, mode, resolve))
    return native.syscall(SYS_openat2, dirfd, path, native.address_of(how), len(how))


class _CStr:
    """``data`` + NUL in monitor memory, and its address (the object must live until the
    call that uses the address returns: an address keeps nothing alive)."""

    __slots__ = ("buf", "addr")

    def __init__(self, data: bytes):
        self.buf = bytearray(data + b"\0")
        self.addr = native.address_of(self.buf)


_EMPTY = _CStr(b"")


class Opener:
    """The program's opens, for one process."""

    def __init__(self, process):
        self.p = process

    @property
    def procfd(self) -> int:
        return self.p.procfd

    # -- open ------------------------------------------------------------------------------
    def open(self, dirfd: int, path: int, flags: int, mode: int, resolve: int = 0, polled: bool = False) -> int:
        """open/openat/openat2 for the program: a descriptor in its range, or -errno.
        ``path`` is a host address (the guest's string, checked by the caller, or km's).
        The program's own RLIMIT_NOFILE is the caller's business (FdTable.new)."""
        magic_ok = not resolve & NO_MAGIC
        if flags & _O_TMPFILE_BIT or flags & F.O_CREAT and flags & F.O_EXCL:
            return self._new_file(dirfd, path, flags, mode, resolve, magic_ok)
        links = 0
        keep: list[bytearray] = []
        while True:
            r = openat2(dirfd, path, F.O_PATH | F.O_CLOEXEC | (flags & (F.O_NOFOLLOW | F.O_DIRECTORY)), 0,
                        resolve | RESOLVE_NO_MAGICLINKS)
            magic = False
            if r == -ELOOP and magic_ok:
                r = openat2(dirfd, path, F.O_PATH | F.O_CLOEXEC | (flags & (F.O_NOFOLLOW | F.O_DIRECTORY)), 0, resolve)
                magic = True
            if r == -ENOENT and flags & F.O_CREAT:
                c = self._new_file(dirfd, path, flags | F.O_EXCL, mode, resolve, magic_ok)
                if c != -EEXIST:
                    return c
                # it exists after all: created meanwhile, or a dangling symlink (whose
                # target is what O_CREAT creates)
                target = self._dangling(dirfd, path, resolve)
                if target is not None:
                    links += 1
                    if links > MAX_LINKS:
                        return -ELOOP
                    dirfd, buf = target
                    keep.append(buf)
                    path = native.address_of(buf)
                continue
            if r < 0:
                return r
            m = self.above(r)
            if m < 0:
                return m
            try:
                return self._finish(m, flags, magic, polled)
            finally:
                os.close(m)

    def _new_file(self, dirfd: int, path: int, flags: int, mode: int, resolve: int, magic_ok: bool) -> int:
        """A create that cannot give an existing file (O_EXCL, O_TMPFILE)."""
        r = openat2(dirfd, path, flags, mode, resolve | RESOLVE_NO_MAGICLINKS)
        if r == -ELOOP and magic_ok:
            r = openat2(dirfd, path, flags, mode, resolve)
        return r

    def _dangling(self, dirfd: int, path: int, resolve: int) -> tuple[int, bytearray] | None:
        """When ``path``'s last component is a symlink to nothing: (dirfd, its target as
        a path to create, relative to the link's directory)."""
        link = openat2(dirfd, path, F.O_PATH | F.O_NOFOLLOW | F.O_CLOEXEC, 0, resolve | RESOLVE_NO_MAGICLINKS)
        if link < 0:
            return None
        try:
            st = bytearray(144)
            if native.syscall(SYS_newfstatat, link, _EMPTY.addr, native.address_of(st), F.AT_EMPTY_PATH) != 0 or \
                    struct.unpack_from("<I", st, 24)[0] & _S_IFMT != _S_IFLNK:
                return None
            buf = bytearray(4096)
            n = native.syscall(SYS_readlinkat, link, _EMPTY.addr, native.address_of(buf), len(buf))
            if n <= 0:
                return None
            target = bytes(buf[:n])
            if not target.startswith(b"/"):
                # relative to the link's directory: the link's own path, without its name
                name = _CStr(b"self/fd/%d" % link)
                n = native.syscall(SYS_readlinkat, self.procfd, name.addr, native.address_of(buf), len(buf))
                if n <= 0:
                    return None
                target = bytes(buf[:n]).rsplit(b"/", 1)[0] + b"/" + target
            return F.AT_FDCWD, bytearray(target + b"\0")
        finally:
            os.close(link)

    def above(self, fd: int) -> int:
        """The monitor's copy of ``fd``, above the program's range (and ``fd`` closed)."""
        m = native.dup_at_least(fd, self.p.fds.floor)
        os.close(fd)
        return m

    def _finish(self, m: int, flags: int, magic: bool, polled: bool) -> int:
        """The program's descriptor for the file the monitor holds as ``m`` (O_PATH)."""
        p = self.p
        if magic and self.monitor_file(m):
            return -ENOENT  # one of km's own descriptors, reached through /proc/.../fd/N
        # the polling tier's thread (kernel/poll.py) opens only what the program's own would
        # open alike and without waiting: not on procfs (/proc/thread-self, and the files
        # km generates, are the calling thread's), and only regular files and directories
        # (a FIFO's open waits for its other end, a device's may do anything).  What it did
        # so far, O_PATH looks, changed nothing: the program's thread does it all again.
        if polled and p.procfs.on_procfs(m):
            raise OwnThread()
        verdict = p.procfs.vet(m)
        if verdict.errno:
            return -verdict.errno
        if magic and not flags & F.O_PATH and self._same_file(m, b"self/exe"):
            # /proc/self/exe reached by a path no literal check saw: the program, not km
            return self.open(F.AT_FDCWD, native.address_of(p.exe_path_buf), flags, 0)
        if verdict.name is not None and not flags & F.O_PATH:
            if flags & F.O_ACCMODE != F.O_RDONLY:
                return -EACCES  # these files are read-only
            return p.procfs.generate(verdict, flags)
        if flags & F.O_NOFOLLOW and not flags & F.O_PATH and self._kind(m) == _S_IFLNK:
            return -ELOOP
        if flags & F.O_PATH:
            return native.syscall(72, m, 1030 if flags & F.O_CLOEXEC else _F_DUPFD, 0)  # fcntl(F_DUPFD[_CLOEXEC])
        if flags & F.O_DIRECTORY and self._kind(m) != 0o040000:
            return -ENOTDIR
        if flags & F.O_CREAT and self._kind(m) == 0o040000:
            return -EISDIR  # (an existing directory: the reopen, without O_CREAT, would open it)
        if (flags & F.O_ACCMODE or flags & F.O_TRUNC) and textbusy.busy(m, self.procfd, p.fds.floor):
            return -ETXTBSY  # a program some km runs (loader/textbusy.py)
        if polled and self._kind(m) not in _OPEN_NEVER_WAITS:
            raise OwnThread()
        reopen = flags & ~(F.O_CREAT | F.O_EXCL | F.O_NOFOLLOW)
        name = _CStr(b"self/fd/%d" % m)
        return native.syscall(SYS_openat, self.procfd, name.addr, reopen, 0)

    def _kind(self, fd: int) -> int:
        st = bytearray(144)
        if native.syscall(SYS_newfstatat, fd, _EMPTY.addr, native.address_of(st), F.AT_EMPTY_PATH) != 0:
            return 0
        return struct.unpack_from("<I", st, 24)[0] & _S_IFMT

    @staticmethod
    def _identity(fd: int, name: bytes = b"", at: int = 0) -> tuple[int, int, int] | None:
        st = bytearray(144)
        path = _CStr(name)
        if native.syscall(SYS_newfstatat, fd, path.addr, native.address_of(st), at) != 0:
            return None
        dev, ino = struct.unpack_from("<QQ", st, 0)
        mode = struct.unpack_from("<I", st, 24)[0]
        return dev, ino, mode

    def _same_file(self, m: int, name: bytes) -> bool:
        a = self._identity(m, b"", F.AT_EMPTY_PATH)
        return a is not None and a == self._identity(self.procfd, name, 0)

    def monitor_file(self, m: int) -> bool:
        """Is the file of ``m`` (reached through a magic link) one that a monitor
        descriptor holds: /dev/kvm, a pipe or socket of km's, km's own /proc?  Files of
        the anon inode share one inode, so those are told by name: KVM's (the VM, the
        vCPUs) and a signalfd (the signal thread's) are the monitor's (the program cannot
        make any: its signalfds are sockets, kernel/signalfd.py)."""
        mine = self._identity(m, b"", F.AT_EMPTY_PATH)
        if mine is None:
            return True
        if mine[2] & _S_IFMT == 0:
            buf = bytearray(64)
            name = _CStr(b"self/fd/%d" % m)
            n = native.syscall(SYS_readlinkat, self.procfd, name.addr, native.address_of(buf), len(buf))
            return n < 0 or bytes(buf[:n]).startswith((b"anon_inode:kvm", b"anon_inode:[signalfd]"))
        floor = self.p.fds.floor
        name = _CStr(b"self/fd")
        listing = native.syscall(SYS_openat, self.procfd, name.addr, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        if listing < 0:
            return True
        try:
            names = _dirent_names(listing)
        finally:
            os.close(listing)
        for name in names:
            if not name.isdigit() or int(name) < floor or int(name) == m:
                continue
            other = self._identity(int(name), b"", F.AT_EMPTY_PATH)
            if other is not None and other[:2] == mine[:2]:
                return True
        return False

    # -- looking without opening ------------------------------------------------------------
    def check_path(self, dirfd: int, path: int, nofollow: bool) -> int:
        """After a call that looked at a path and reached a file on procfs: 0 when the
        program may know of it, -ENOENT when it is one of km's threads or descriptors,
        EXE when it is this process's exe link (``nofollow``)."""
        if _thread.get_ident() not in self.p.thread_idents():
            raise OwnThread()  # (a monitor thread: /proc/thread-self would be its own)
        flags = F.O_PATH | F.O_CLOEXEC | (F.O_NOFOLLOW if nofollow else 0)
        r = openat2(dirfd, path, flags, 0, RESOLVE_NO_MAGICLINKS)
        magic = r == -ELOOP
        if magic:
            r = openat2(dirfd, path, flags, 0, 0)
        if r < 0:
            return 0  # gone meanwhile: the call's own answer stands
        m = self.above(r)
        if m < 0:
            return 0
        try:
            if magic and self.monitor_file(m):
                return -ENOENT
            verdict = self.p.procfs.vet(m)
            if verdict.errno == ENOENT:
                return -ENOENT
            return EXE if verdict.entry == b"exe" and nofollow else 0
        finally:
            os.close(m)


def _dirent_names(fd: int) -> list[bytes]:
    names = []
    buf = bytearray(32768)
    addr = native.address_of(buf)
    while True:
        n = native.syscall(217, fd, addr, len(buf))  # getdents64
        if n <= 0:
            return names
        pos = 0
        while pos < n:
            reclen = struct.unpack_from("<H", buf, pos + 16)[0]
            names.append(bytes(buf[pos + 19:pos + reclen]).split(b"\0", 1)[0])
            pos += reclen
