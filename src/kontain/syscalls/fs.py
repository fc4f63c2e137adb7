"""Files and descriptors: open, close, dup, fcntl, pipes, directories, links.

Most file system calls pass straight through (see table.py); the handlers here are the
ones that make or destroy descriptors (the monitor's must stay out of reach, and a new
descriptor must respect the guest's RLIMIT_NOFILE), take commands with pointers in
them (fcntl), or name the program itself (/proc/self/exe names the program, not km).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EFAULT, EINVAL
from kontain.errors import GuestError
from kontain.syscalls.common import buffer, dirfd, path, ptr, s32, u32

SYS_open, SYS_close, SYS_dup, SYS_dup2, SYS_fcntl, SYS_openat, SYS_dup3, SYS_pipe2 = 2, 3, 32, 33, 72, 257, 292, 293
SYS_readlinkat, SYS_close_range = 267, 436
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4


def _proc_self_exe(t, addr: int) -> bool:
    """Does the path at ``addr`` name this process's executable through /proc?"""
    if addr == 0:
        return False
    p = t.mem.cstr(addr)
    if not p.startswith(b"/proc/"):
        return False
    return p in (b"/proc/self/exe", b"/proc/thread-self/exe", f"/proc/{os.getpid()}/exe".encode())


def openat(t, dfd, pathname, flags, mode, *_):
    flags = s32(flags)
    if _proc_self_exe(t, pathname):
        r = native.syscall(SYS_openat, F.AT_FDCWD, native.address_of(bytearray(t.process.exe_path + b"\0")),
                           flags, u32(mode))
    else:
        r = native.syscall(SYS_openat, dirfd(t, dfd), path(t, pathname), flags, u32(mode))
    return t.fds.new(r) if r >= 0 else r


def open(t, pathname, flags, mode, *_):
    return openat(t, F.AT_FDCWD, pathname, flags, mode)


def creat(t, pathname, mode, *_):
    return openat(t, F.AT_FDCWD, pathname, F.O_CREAT | F.O_WRONLY | F.O_TRUNC, mode)


def close(t, fd, *_):
    return native.syscall1(SYS_close, t.fds.check(fd))


def close_range(t, first, last, flags, *_):
    first, last, flags = u32(first), u32(last), u32(flags)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise GuestError(EINVAL)
    last = min(last, t.fds.floor - 1)
    if first > last:
        return 0
    return native.syscall(SYS_close_range, first, last, flags)


def dup(t, fd, *_):
    r = native.syscall1(SYS_dup, t.fds.check(fd))
    return t.fds.new(r) if r >= 0 else r


def dup2(t, old, new, *_):
    old = t.fds.check(old)
    new = t.fds.dup_target(new)
    return native.syscall(SYS_dup2, old, new)


def dup3(t, old, new, flags, *_):
    old = t.fds.check(old)
    new = t.fds.dup_target(new)
    return native.syscall(SYS_dup3, old, new, s32(flags))


_FCNTL_VALUE = {F.F_GETFD, F.F_SETFD, F.F_GETFL, F.F_SETFL, F.F_SETOWN, F.F_GETOWN, F.F_SETSIG, F.F_GETSIG,
                F.F_SETLEASE, F.F_GETLEASE, F.F_NOTIFY, F.F_SETPIPE_SZ, F.F_GETPIPE_SZ, F.F_ADD_SEALS,
                F.F_GET_SEALS}
_FLOCK_SIZE = 32  # struct flock: l_type, l_whence (shorts), l_start, l_len, l_pid
_FCNTL_POINTER = {F.F_GETLK: _FLOCK_SIZE, F.F_SETLK: _FLOCK_SIZE, F.F_SETLKW: _FLOCK_SIZE,
                  F.F_OFD_GETLK: _FLOCK_SIZE, F.F_OFD_SETLK: _FLOCK_SIZE, F.F_OFD_SETLKW: _FLOCK_SIZE,
                  F.F_GETOWN_EX: 8, F.F_SETOWN_EX: 8, 1035: 8, 1036: 8}  # F_GET/SET_RW_HINT


def fcntl(t, fd, cmd, arg, *_):
    fd = t.fds.check(fd)
    cmd = u32(cmd)
    if cmd in (F.F_DUPFD, F.F_DUPFD_CLOEXEC):
        low = u32(arg)
        if low >= t.fds.soft:
            raise GuestError(EINVAL)
        r = native.syscall(SYS_fcntl, fd, cmd, low)
        return t.fds.new(r) if r >= 0 else r
    if cmd in _FCNTL_VALUE:
        return native.syscall(SYS_fcntl, fd, cmd, arg)
    size = _FCNTL_POINTER.get(cmd)
    if size is None:
        raise GuestError(EINVAL)
    return native.syscall(SYS_fcntl, fd, cmd, ptr(t, arg, size))


def pipe2(t, fds_addr, flags, *_):
    buf = bytearray(8)
    r = native.syscall(SYS_pipe2, native.address_of(buf), s32(flags))
    if r < 0:
        return r
    rfd, wfd = struct.unpack("<ii", buf)
    for fd in (rfd, wfd):
        if fd >= t.fds.soft:
            os.close(rfd)
            os.close(wfd)
            return -24  # EMFILE
    try:
        t.mem.write(fds_addr, bytes(buf))
    except GuestError:
        os.close(rfd)
        os.close(wfd)
        raise
    return 0


def pipe(t, fds_addr, *_):
    return pipe2(t, fds_addr, 0)


def readlinkat(t, dfd, pathname, buf, size, *_):
    size = s32(size)
    if size <= 0:
        raise GuestError(EINVAL)
    if _proc_self_exe(t, pathname):
        target = t.process.exe_path[:size]
        t.mem.write(buf, target)
        return len(target)
    host, n = buffer(t, buf, size)
    if n == 0 and buf:
        raise GuestError(EFAULT)
    return native.syscall(SYS_readlinkat, dirfd(t, dfd), path(t, pathname), host, n)


def readlink(t, pathname, buf, size, *_):
    return readlinkat(t, F.AT_FDCWD, pathname, buf, size)
