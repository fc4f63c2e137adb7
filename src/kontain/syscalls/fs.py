"""Files and descriptors: open, close, dup, fcntl, pipes, directories, links.

Most file system calls pass straight through (see table.py); the handlers here are the
ones that make or destroy descriptors (the monitor's must stay out of reach, and a new
descriptor must respect the guest's RLIMIT_NOFILE), take commands with pointers in
them (fcntl), or name the program itself (/proc/self/exe names the program, not km).
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EFAULT, EINVAL, ENOENT
from kontain.errors import GuestError
from kontain.syscalls.common import buffer, dirfd, fd_pair, passthrough, path, ptr, s32, u32, u64

SYS_open, SYS_close, SYS_dup, SYS_dup2, SYS_fcntl, SYS_openat, SYS_dup3, SYS_pipe2 = 2, 3, 32, 33, 72, 257, 292, 293
SYS_readlinkat, SYS_close_range = 267, 436
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4


def proc_name(t, addr: int) -> bytes | None:
    """If the path at ``addr`` names a file in this process's /proc directory, its name
    there (``exe``, ``maps``, ``fd/3``...).  Only absolute /proc paths are read."""
    if addr == 0 or not t.mem.contains(addr, 1):
        return None
    try:
        p = t.mem.cstr(addr)
    except GuestError:
        return None  # the host call will say what is wrong with it
    return t.process.procfs.name(p)


def _exe_path(t) -> int:
    """A host copy of the program's path, as a path argument (kept alive on the task)."""
    buf = t.process.exe_path_buf
    return native.address_of(buf)


def _proc_path(t, addr: int, follow: bool = True) -> int:
    """A path argument, with this process's /proc/self/exe meaning the program (when the
    call follows the link) and the monitor's descriptors under fd/ not existing."""
    name = proc_name(t, addr)
    if name is not None:
        if t.process.procfs.hides(name):
            raise GuestError(ENOENT)
        if name == b"exe" and follow:
            return _exe_path(t)
    return path(t, addr)


def _open_generated(t, pathname: int, flags: int) -> int | None:
    """A /proc/self file the monitor generates (or hides): its new descriptor or -errno;
    None for any other path."""
    name = proc_name(t, pathname)
    if name is None:
        return None
    procfs = t.process.procfs
    if procfs.hides(name):
        raise GuestError(ENOENT)
    fd = procfs.open_generated(name, flags)
    if fd is None:
        return None
    return t.fds.new(fd) if fd >= 0 else fd


def openat(t, dfd, pathname, flags, mode, *_):
    flags = s32(flags)
    fd = _open_generated(t, pathname, flags)
    if fd is not None:
        return fd
    r = native.syscall(SYS_openat, dirfd(t, dfd), _proc_path(t, pathname, not flags & F.O_NOFOLLOW), flags, u32(mode))
    if r < 0:
        return r
    r = t.process.procfs.check_opened(r)
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
    return fd_pair(t, SYS_pipe2, (), (s32(flags),), fds_addr)


def pipe(t, fds_addr, *_):
    return pipe2(t, fds_addr, 0)


def readlinkat(t, dfd, pathname, buf, size, *_):
    size = s32(size)
    if size <= 0:
        raise GuestError(EINVAL)
    name = proc_name(t, pathname)
    if name is not None:
        if t.process.procfs.hides(name):
            raise GuestError(ENOENT)
        if name == b"exe":
            target = t.process.exe_path[:size]
            t.mem.write(buf, target)
            return len(target)
    host, n = buffer(t, buf, size)
    if n == 0 and buf:
        raise GuestError(EFAULT)
    return native.syscall(SYS_readlinkat, dirfd(t, dfd), path(t, pathname), host, n)


def readlink(t, pathname, buf, size, *_):
    return readlinkat(t, F.AT_FDCWD, pathname, buf, size)


SYS_stat, SYS_lstat, SYS_access, SYS_newfstatat, SYS_faccessat, SYS_statx, SYS_faccessat2 = 4, 6, 21, 262, 269, 332, 439
SYS_getdents64 = 217


def stat(t, pathname, statbuf, *_):
    return native.syscall(SYS_stat, _proc_path(t, pathname), ptr(t, statbuf, 144))


def lstat(t, pathname, statbuf, *_):
    return native.syscall(SYS_lstat, _proc_path(t, pathname, follow=False), ptr(t, statbuf, 144))


def newfstatat(t, dfd, pathname, statbuf, flags, *_):
    flags = s32(flags)
    p = _proc_path(t, pathname, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    return native.syscall(SYS_newfstatat, dirfd(t, dfd), p, ptr(t, statbuf, 144), flags)


def statx(t, dfd, pathname, flags, mask, statxbuf, *_):
    flags = s32(flags)
    p = _proc_path(t, pathname, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    return native.syscall(SYS_statx, dirfd(t, dfd), p, flags, u32(mask), ptr(t, statxbuf, 256))


def access(t, pathname, mode, *_):
    return native.syscall(SYS_access, _proc_path(t, pathname), s32(mode))


def faccessat(t, dfd, pathname, mode, *_):
    return native.syscall(SYS_faccessat, dirfd(t, dfd), _proc_path(t, pathname), s32(mode))


def faccessat2(t, dfd, pathname, mode, flags, *_):
    flags = s32(flags)
    p = _proc_path(t, pathname, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    return native.syscall(SYS_faccessat2, dirfd(t, dfd), p, s32(mode), flags)


def getdents64(t, fd, dirp, count, *_):
    fd = t.fds.check(fd)
    host, n = buffer(t, dirp, count)
    r = native.syscall(SYS_getdents64, fd, host, n)
    procfs = t.process.procfs
    while r > 0 and procfs.is_fd_dir(fd):
        kept = procfs.filter_dirents(t.mem.read(dirp, r))
        if kept:
            t.mem.write(dirp, kept)
            return len(kept)
        r = native.syscall(SYS_getdents64, fd, host, n)  # everything here was the monitor's: read on
    return r


SYS_openat2 = 437
OPEN_HOW_MIN = 24  # struct open_how: flags, mode, resolve (u64 each)


def openat2(t, dfd, pathname, how, size, *_):
    size = u64(size)
    if size < OPEN_HOW_MIN or size > 4096:
        raise GuestError(EINVAL)
    raw = bytearray(t.mem.read(how, size))
    flags = struct.unpack_from("<Q", raw, 0)[0]
    fd = _open_generated(t, pathname, flags)
    if fd is not None:
        return fd
    r = native.syscall(SYS_openat2, dirfd(t, dfd), _proc_path(t, pathname, not flags & F.O_NOFOLLOW),
                       native.address_of(raw), size)
    if r < 0:
        return r
    r = t.process.procfs.check_opened(r)
    return t.fds.new(r) if r >= 0 else r


_chroot = passthrough(161, "s")


def chroot(t, path_addr, *_):
    """Passed through, so the monitor's root moves too: whatever km would import later
    must be imported while Python's files are still reachable (kontain/lazy.py)."""
    from kontain import lazy

    lazy.preload()
    return _chroot(t, path_addr)
