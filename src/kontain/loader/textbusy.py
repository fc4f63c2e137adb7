"""ETXTBSY both ways: Linux refuses to execute a file that is open for writing, and to
open for writing (or truncate) a file that a process is running.  The host kernel knows
neither for km's programs, which km reads and maps but never executes.

* Before an exec: a read lease (F_SETLEASE F_RDLCK) is granted only on a file that nobody
  has open for writing, so km asks for one on the file it is about to run and gives it
  back at once.  A lease needs the file to be the caller's, or CAP_LEASE: otherwise km
  cannot tell, and the exec goes on.
* While a program runs: its km holds an OFD read lock on the program's file, on one byte
  far past any file's end, for as long as it runs it.  The lock belongs to an open file
  that no descriptor holds, only a PROT_NONE mapping in km's memory (so that no monitor
  descriptor names the program's file, kernel/paths.py): unmapping it drops the lock, and
  a forked child, which runs the same file, shares it.  An open for writing and a
  truncate look for such a lock first, in /proc/locks (not through an open of the file,
  which a watch or a lease on it would see).  Every km on the host takes it, whoever
  runs it; the lock is visible to the program's own fcntl locks (a lock of the whole
  file conflicts with it).  A file run by a process
  that is not a km the host protects itself.
"""

from __future__ import annotations

import os

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EAGAIN
from kontain.abi.structs import flock

SYS_fcntl, SYS_fstat, SYS_openat, SYS_faccessat2 = 72, 5, 257, 439
AT_EACCESS = 0x200
RUNNING = F.OFFSET_MAX - 1  # the byte a running program's km locks
_S_IFMT, _S_IFREG = 0o170000, 0o100000


def open_for_writing(fd: int) -> bool:
    """Does anyone have the file of ``fd`` (a read-only descriptor) open for writing?"""
    r = native.syscall(SYS_fcntl, fd, F.F_SETLEASE, F.F_RDLCK)
    if r == 0:
        native.syscall(SYS_fcntl, fd, F.F_SETLEASE, F.F_UNLCK)
        return False
    return r == -EAGAIN


def hold(fd: int, floor: int) -> int:
    """A mapping (its address, in km's memory) of the file of ``fd`` that says "running"
    while it exists (``release``); 0 when the lock cannot be had."""
    mine = native.dup_at_least(fd, floor)
    if mine < 0:
        return 0
    try:
        lock = _lock(F.F_RDLCK)  # (alive until the call returns)
        if native.syscall(SYS_fcntl, mine, F.F_OFD_SETLK, native.address_of(lock)) != 0:
            return 0
        addr = native.mmap(0, F.PAGE_SIZE, F.PROT_NONE, F.MAP_PRIVATE, mine, 0)
        return addr if addr > 0 else 0
    finally:
        os.close(mine)


def release(addr: int) -> None:
    """The program of ``hold``'s mapping no longer runs here."""
    if addr:
        native.munmap(addr, F.PAGE_SIZE)


def busy(path_fd: int, procfd: int, floor: int) -> bool:
    """Must a write to the file of ``path_fd`` (an O_PATH descriptor) fail with ETXTBSY:
    is it a program some km runs, which the caller could otherwise write?  (Linux checks
    the permission first: EACCES comes before ETXTBSY.)  Only an executable regular file
    is looked at further: km runs no other (one made non-executable since it started is
    missed)."""
    st = bytearray(144)
    if native.syscall(SYS_fstat, path_fd, native.address_of(st)) != 0:
        return False
    mode = int.from_bytes(st[24:28], "little")
    if mode & _S_IFMT != _S_IFREG or not mode & 0o111:
        return False
    empty = bytearray(1)
    if native.syscall(SYS_faccessat2, path_fd, native.address_of(empty), os.W_OK, F.AT_EMPTY_PATH | AT_EACCESS):
        return False
    return running(path_fd, procfd, floor)


def running(path_fd: int, procfd: int, floor: int) -> bool:
    """Is the file of ``path_fd`` (an O_PATH descriptor) a program some km runs: does
    /proc/locks (read through km's ``procfd``, above ``floor``) show a km's lock on it?
    Without opening the file: an open to ask F_OFD_GETLK was seen by the program's
    inotify watches (IN_OPEN, IN_CLOSE_*: LTP's inotify01 and inotify05), and broke a
    lease on the file as a reader's open does before the caller's write could, which
    let the lease's holder keep a read lease Linux takes away (LTP's fcntl33)."""
    st = bytearray(144)
    if native.syscall(SYS_fstat, path_fd, native.address_of(st)) != 0:
        return False
    dev, ino = int.from_bytes(st[0:8], "little"), int.from_bytes(st[8:16], "little")
    # "N: OFDLCK ADVISORY  READ -1 MAJ:MIN:INODE START END" (fs/locks.c, lock_get_status)
    held = b" %02x:%02x:%d %d %d\n" % (os.major(dev), os.minor(dev), ino, RUNNING, RUNNING)
    return held in _read_locks(procfd, floor)


def _read_locks(procfd: int, floor: int) -> bytes:
    name = bytearray(b"locks\0")
    low = native.syscall(SYS_openat, procfd, native.address_of(name), os.O_RDONLY | os.O_CLOEXEC)
    if low < 0:
        return b""
    fd = native.dup_at_least(low, floor)  # (out of the program's range at once)
    os.close(low)
    if fd < 0:
        return b""
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _lock(kind: int) -> bytearray:
    return bytearray(flock.pack(kind, os.SEEK_SET, RUNNING, 1, 0))
