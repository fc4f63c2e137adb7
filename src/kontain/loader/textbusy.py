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
  truncate look for such a lock first.  Every km on the host takes it, whoever runs it;
  what km cannot see is a file it may not read, and the lock is visible to the program's
  own fcntl locks (a lock of the whole file conflicts with it).  A file run by a process
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


def busy(path_fd: int, procfd: int, floor: int, nonblock: bool = False) -> bool:
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
    return running(path_fd, procfd, floor, nonblock)


def running(path_fd: int, procfd: int, floor: int, nonblock: bool = False) -> bool:
    """Is the file of ``path_fd`` (an O_PATH descriptor) a program some km runs?  (Looked
    at through a descriptor of its own, above ``floor``, opened for writing as the caller
    is about to, and waiting as it would (``nonblock``: the caller's O_NONBLOCK) for a
    lease on the file to be broken: a probe that only started the break (O_RDONLY or
    O_NONBLOCK) let the lease's holder keep a read lease before the caller's own write
    began, which Linux refuses (LTP's fcntl33).  F_OFD_GETLK needs no particular access.)"""
    name = bytearray(b"self/fd/%d\0" % path_fd)
    low = native.syscall(SYS_openat, procfd, native.address_of(name),
                         os.O_WRONLY | (os.O_NONBLOCK if nonblock else 0) | os.O_CLOEXEC)
    if low < 0:
        return False
    fd = native.dup_at_least(low, floor)
    os.close(low)
    if fd < 0:
        return False
    try:
        probe = _lock(F.F_WRLCK)
        if native.syscall(SYS_fcntl, fd, F.F_OFD_GETLK, native.address_of(probe)) != 0:
            return False
        return flock.unpack(probe)[0] != F.F_UNLCK
    finally:
        os.close(fd)


def _lock(kind: int) -> bytearray:
    return bytearray(flock.pack(kind, os.SEEK_SET, RUNNING, 1, 0))
