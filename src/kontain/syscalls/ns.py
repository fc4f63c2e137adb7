"""Namespaces and mounts: unshare, setns, mount, umount2, pivot_root.

Network, UTS and IPC namespaces the host keeps per thread, and every call that depends
on them (socket, uname, sethostname, the System V calls) km makes on the program
thread's own host thread.  So unshare and setns of those pass through on the calling
thread: the host kernel checks the privilege (CAP_SYS_ADMIN) and the limits, and only
that thread, and what it forks or starts after, is in the new namespace, as on Linux.
A thread that changed namespace changes its "credentials" for the polling tier too
(Task.credentials_changed): no monitor thread in other namespaces serves its calls.

The other namespaces (mount, pid, user, cgroup, time) the host gives only to a whole
single-threaded process, and km's host process always has several threads (the signal
thread, the vCPUs); a mount would be the monitor's.  So km answers those itself and
never passes them to the host (its seccomp filter refuses them there,
kontain/confine.py): it checks the arguments as Linux does, in Linux's order (EINVAL,
EFAULT, EBADF, the path's lookup), then answers as Linux answers a caller without
CAP_SYS_ADMIN: EPERM.  unshare of what a single-threaded process does not share (its
descriptor table, its file-system context, its System V semaphore undo list) changes
nothing, as on Linux.  With more threads, the file-system context (cwd, root, umask)
is the host thread's, so unshare(CLONE_FS) passes through on the calling thread, which
the polling tier then treats as a change of credentials (Task.fs_own): Go's
runtime.LockOSThread tests do it.  A descriptor table or undo list of one thread's own
km cannot give (the monitor's descriptors are in the one table): EINVAL.
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EINVAL, EPERM
from kontain.errors import GuestError
from kontain.syscalls import fs
from kontain.syscalls.common import s32, u64

SYS_ioctl, SYS_fstatfs, SYS_newfstatat, SYS_readlinkat, SYS_unshare, SYS_setns = 16, 138, 262, 267, 272, 308
SERVED = F.CLONE_NEW_SERVED
_UNSHARE_FLAGS = F.CLONE_THREAD | F.CLONE_FS | F.CLONE_SIGHAND | F.CLONE_VM | F.CLONE_FILES | F.CLONE_SYSVSEM | \
    F.CLONE_NEW_ANY
_THREAD_GROUP = F.CLONE_THREAD | F.CLONE_SIGHAND | F.CLONE_VM
_PER_PROCESS = F.CLONE_FILES | F.CLONE_SYSVSEM
_UMOUNT_FLAGS = F.MNT_FORCE | F.MNT_DETACH | F.MNT_EXPIRE | F.UMOUNT_NOFOLLOW
_STATFS_SIZE, _STAT_SIZE = 120, 144
_EPERM = GuestError(EPERM)


def unshare(t, flags, *_):
    flags = u64(flags)
    # the flags each one implies (Linux's ksys_unshare)
    if flags & F.CLONE_NEWUSER:
        flags |= F.CLONE_THREAD | F.CLONE_FS
    if flags & F.CLONE_VM:
        flags |= F.CLONE_SIGHAND
    if flags & F.CLONE_SIGHAND:
        flags |= F.CLONE_THREAD
    if flags & F.CLONE_NEWNS:
        flags |= F.CLONE_FS
    if flags & ~_UNSHARE_FLAGS:
        raise GuestError(EINVAL)
    threads = len(t.process.tasks)
    if flags & _THREAD_GROUP and threads > 1:
        raise GuestError(EINVAL)
    if flags & F.CLONE_NEW_ANY & ~SERVED:
        raise _EPERM
    if flags & _PER_PROCESS and threads > 1:
        raise GuestError(EINVAL)  # km cannot give one thread a table of its own
    host = flags & (SERVED | (F.CLONE_FS if threads > 1 else 0))
    if host:
        r = native.syscall(SYS_unshare, host)
        if r == 0 and host & F.CLONE_FS:
            t.fs_own = t.tid
        _enter(t, r)
    return 0


def _enter(t, r: int) -> None:
    """After the host's unshare or setns on this thread: its error, or the thread's
    new namespaces recorded."""
    if r < 0:
        raise GuestError(-r)
    t.credentials_changed()


def setns(t, fd, nstype, *_):
    fd, nstype = t.fds.check(fd), s32(nstype)
    kind = _ns_type(fd)
    if kind:  # a namespace file (/proc/PID/ns/*): nstype 0 or its own type
        if nstype and nstype != kind:
            raise GuestError(EINVAL)
        nstype = kind
    elif _is_pidfd(t, fd):  # a process's namespaces, those nstype names
        if not nstype or nstype & ~F.CLONE_NEW_ANY:
            raise GuestError(EINVAL)
    else:
        raise GuestError(EINVAL)
    if nstype & F.CLONE_NEWUSER and (len(t.process.tasks) > 1 or _own_user_ns(t, fd, kind)):
        raise GuestError(EINVAL)  # a thread of many, or the namespace it is in: no gain
    if nstype & ~SERVED:
        raise _EPERM
    _enter(t, native.syscall(SYS_setns, fd, nstype))
    return 0


def _ns_type(fd: int) -> int:
    """The CLONE_NEW* type of a namespace file, else 0.  (The type ioctl is asked only of a
    file known to be on nsfs: on another file the request could mean something else.)"""
    buf = bytearray(_STATFS_SIZE)
    r = native.syscall(SYS_fstatfs, fd, native.address_of(buf))
    if r < 0:
        raise GuestError(-r)  # EBADF
    if struct.unpack_from("<q", buf, 0)[0] != F.NSFS_MAGIC:
        return 0
    return max(native.syscall(SYS_ioctl, fd, F.NS_GET_NSTYPE, 0), 0)


def _is_pidfd(t, fd: int) -> bool:
    return _link(t, b"self/fd/%d" % fd) == b"anon_inode:[pidfd]"


def _own_user_ns(t, fd: int, kind: int) -> bool:
    """Is the user namespace ``fd`` names (a namespace file; a pidfd: its process's) the
    caller's own?"""
    if not kind:  # a pidfd: the processes km's program can have one of share its user namespace
        return True
    return _identity(fd, b"", F.AT_EMPTY_PATH) == _identity(t.process.procfd, b"self/ns/user", 0)


def _identity(dirfd: int, name: bytes, flags: int) -> tuple[int, int] | None:
    st = bytearray(_STAT_SIZE)
    path = bytearray(name + b"\0")
    if native.syscall(SYS_newfstatat, dirfd, native.address_of(path), native.address_of(st), flags) != 0:
        return None
    return struct.unpack_from("<QQ", st, 0)


def _link(t, name: bytes) -> bytes:
    buf = bytearray(256)
    path = bytearray(name + b"\0")
    n = native.syscall(SYS_readlinkat, t.process.procfd, native.address_of(path), native.address_of(buf), len(buf))
    return bytes(buf[:max(n, 0)])


def mount(t, source, target, fstype, flags, data, *_):
    # Linux's order: the strings are copied (EFAULT), the target looked up, then the checks
    for addr in (fstype, source):
        if addr:
            t.mem.cstr(addr, F.PATH_MAX, EINVAL)
    if data:
        _first_byte(t, data)
    _lookup(t, target, follow=True)
    if u64(flags) & F.MS_NOUSER:
        raise GuestError(EINVAL)
    raise _EPERM


def umount2(t, target, flags, *_):
    flags = s32(flags)
    if flags & ~_UMOUNT_FLAGS:
        raise GuestError(EINVAL)
    _lookup(t, target, follow=not flags & F.UMOUNT_NOFOLLOW)
    raise _EPERM


def pivot_root(t, new_root, put_old, *_):
    raise _EPERM  # Linux checks the privilege before anything else


def _first_byte(t, addr: int) -> None:
    """mount's data: Linux copies up to a page of it, and fails only when not even its
    first byte can be read."""
    t.mem.read(addr, 1)


def _lookup(t, addr: int, follow: bool) -> None:
    """The path's lookup, for its errors (ENOENT, ENOTDIR, EACCES, ELOOP, ENAMETOOLONG,
    EFAULT)."""
    r = fs.look_up(t, F.AT_FDCWD, addr, follow)
    if r < 0:
        raise GuestError(-r)
