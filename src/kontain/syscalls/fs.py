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
from kontain.abi.errno import E2BIG, EACCES, EFAULT, EINVAL, EMFILE, ENOENT, EOVERFLOW, EPERM, ETXTBSY
from kontain.errors import GuestError, OwnThread
from kontain.kernel import paths
from kontain.kernel.fdtable import file_key
from kontain.kernel.paths import EXE, open_how
from kontain.loader import textbusy
from kontain.syscalls.common import buffer, dirfd, fd_pair, file_type, passthrough, path, polled, ptr, s32, u32, u64

SYS_open, SYS_close, SYS_dup, SYS_dup2, SYS_fcntl, SYS_openat, SYS_dup3, SYS_pipe2 = 2, 3, 32, 33, 72, 257, 292, 293
SYS_readlinkat, SYS_close_range = 267, 436
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4


def proc_path(t, addr: int) -> bytes | None:
    """The path at ``addr`` when it is a literal /proc path of this process (the
    fast, common case of /proc/self/exe and /proc/self/fd/N), else None."""
    if addr == 0 or not t.mem.contains(addr, 6):
        return None
    try:
        p = t.mem.cstr(addr)
    except GuestError:
        return None  # the host call will say what is wrong with it
    return p if p.startswith(b"/proc/") else None


def _exe_path(t) -> int:
    """A host copy of the program's path, as a path argument (kept alive on the task)."""
    buf = t.process.exe_path_buf
    return native.address_of(buf)


def _proc_path(t, addr: int, follow: bool = True) -> int:
    """A path argument, with this process's /proc/self/exe meaning the program (when the
    call follows the link) and the monitor's threads and descriptors not existing."""
    lit = proc_path(t, addr)
    if lit is not None:
        procfs = t.process.procfs
        if procfs.hidden(lit):
            raise GuestError(ENOENT)
        if follow and procfs.is_exe(lit):
            return _exe_path(t)
    return path(t, addr)


def _open(t, dfd: int, pathname: int, flags: int, mode: int, resolve: int = 0) -> int:
    """Every open of a path (kernel/paths.py says how the monitor stays out of reach)."""
    # (/proc/self/exe is the program only where the open follows magic links: with
    # RESOLVE_NO_MAGICLINKS & co. it stays the link, which the host refuses with ELOOP)
    follow = not flags & F.O_NOFOLLOW and not resolve & paths.NO_MAGIC
    host_dfd, host_path = dirfd(t, dfd), _proc_path(t, pathname, follow)
    if not t.fds.room():  # (after the path's EFAULT, before anything is looked up or made)
        raise GuestError(EMFILE)
    r = t.process.opener.open(host_dfd, host_path, flags, mode, resolve, polled=polled(t))
    return t.fds.new(r) if r >= 0 else r


def openat(t, dfd, pathname, flags, mode, *_):
    flags, mode = open_how(s32(flags), u32(mode))
    if flags & (F.O_CREAT | F.O_DIRECTORY) == F.O_CREAT | F.O_DIRECTORY:
        # EINVAL before any lookup since Linux 6.4 (before, a create or an open): the host
        # says which, for an empty path (ENOENT when it takes the flags)
        empty = bytearray(1)
        check = native.syscall(SYS_openat, F.AT_FDCWD, native.address_of(empty), flags, mode)
        if check != -ENOENT:
            if check >= 0:
                native.syscall(SYS_close, check)
            return check
    return _open(t, dfd, pathname, flags, mode)


def open(t, pathname, flags, mode, *_):
    return openat(t, F.AT_FDCWD, pathname, flags, mode)


def creat(t, pathname, mode, *_):
    return openat(t, F.AT_FDCWD, pathname, F.O_CREAT | F.O_WRONLY | F.O_TRUNC, mode)


# what a close never waits for (a socket's may linger, a terminal's drain its output, a
# device's do anything): regular files, directories, pipes, anonymous inodes, and a bad
# descriptor (EBADF); the polling tier makes only those (common.polled)
_CLOSE_NEVER_WAITS = frozenset((F.S_IFREG, F.S_IFDIR, F.S_IFIFO, 0, -1))


def close(t, fd, *_):
    fd = t.fds.check(fd)
    if polled(t) and file_type(fd) not in _CLOSE_NEVER_WAITS:
        raise OwnThread()
    return native.syscall1(SYS_close, fd)


def close_range(t, first, last, flags, *_):
    """close_range, but never CLOSE_RANGE_UNSHARE on the host: that would give the calling
    vCPU thread a descriptor table of its own, apart from km's other threads (the polling
    tier would then read descriptors the program closed).  With one thread the table is
    not shared with another of the program's, so Linux's unshare changes nothing; with
    more, km cannot give one thread a table of its own (EINVAL, docs/known-issues.md)."""
    first, last, flags = u32(first), u32(last), u32(flags)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise GuestError(EINVAL)
    if flags & CLOSE_RANGE_UNSHARE:
        if len(t.process.tasks) > 1:
            raise GuestError(EINVAL)
        flags &= ~CLOSE_RANGE_UNSHARE
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
                F.F_GET_SEALS, F.F_CREATED_QUERY}
_FLOCK_SIZE = 32  # struct flock: l_type, l_whence (shorts), l_start, l_len, l_pid
_FCNTL_POINTER = {F.F_GETLK: _FLOCK_SIZE, F.F_SETLK: _FLOCK_SIZE, F.F_SETLKW: _FLOCK_SIZE,
                  F.F_OFD_GETLK: _FLOCK_SIZE, F.F_OFD_SETLK: _FLOCK_SIZE, F.F_OFD_SETLKW: _FLOCK_SIZE,
                  F.F_GETOWN_EX: 8, 1035: 8, 1036: 8,  # F_GET/SET_RW_HINT
                  1037: 8, 1038: 8}  # F_GET/SET_FILE_RW_HINT (gone from later kernels: the host says)


_OWN_SIGNALS = frozenset((F.F_NOTIFY, F.F_SETLEASE, F.F_SETSIG, F.F_SETOWN))


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
        r = native.syscall(SYS_fcntl, fd, cmd, arg)
        if r >= 0 and (cmd in _OWN_SIGNALS or cmd == F.F_SETFL and arg & F.O_ASYNC):
            t.process.take_own_signals()
        return r
    if cmd == F.F_SETOWN_EX:
        return _setown_ex(t, fd, arg)
    if cmd == F.F_DUPFD_QUERY:  # is ``arg`` the same open file? (one of the monitor's is not open)
        return native.syscall(SYS_fcntl, fd, cmd, t.fds.check(arg))
    size = _FCNTL_POINTER.get(cmd)
    if size is None:
        raise GuestError(EINVAL)
    if cmd in (F.F_SETLK, F.F_SETLKW):
        posix_locking(t.process, fd)
    if cmd in (F.F_SETLKW, F.F_OFD_SETLKW):  # waits: a kick before it starts makes it fail with EINTR
        return t.blocking(SYS_fcntl, fd, cmd, ptr(t, arg, size))
    r = native.syscall(SYS_fcntl, fd, cmd, ptr(t, arg, size))
    if cmd == F.F_GETOWN_EX and r == 0 and t.process.sigio_owners:
        kind, pid = _OWNER_EX.unpack(t.mem.read(arg, _OWNER_EX.size))
        owner = t.process.sigio_owners.get(file_key(fd))
        if kind == F.F_OWNER_TID and owner is not None and pid == owner[1]:
            t.mem.write(arg, _OWNER_EX.pack(kind, owner[0]))  # (a forked child's too: its parent's thread)
    return r


_OWNER_EX = struct.Struct("<ii")  # struct f_owner_ex: type, pid


def posix_locking(p, fd: int) -> None:
    """The program takes (or releases) a POSIX record lock on ``fd``'s file: from now on
    km makes no duplicate of a descriptor of that file that it would close, as closing
    one drops every such lock the process holds on the file (Linux's rule for POSIX
    locks, which the poller's reads and writes and mmap broke: kernel/poll.py)."""
    try:
        key = file_key(fd)
    except OSError:
        return  # (EBADF: the host's fcntl says so)
    if key not in p.posix_locked:
        p.posix_locked.add(key)
        if p.poller is not None:
            p.poller.posix_locking(key)


def _setown_ex(t, fd: int, arg: int) -> int:
    """F_SETOWN_EX.  A thread of the program as the owner (F_OWNER_TID) cannot be its
    host thread, which keeps every forwarded signal blocked (the signal would stay there,
    never delivered): the host signals km's signal thread instead, and the monitor
    gives the signal to the thread (Process.post,
    by the file in its si_fd; a plain SIGIO, without F_SETSIG, carries no descriptor
    and goes to the process)."""
    kind, pid = _OWNER_EX.unpack(t.mem.read(arg, _OWNER_EX.size))
    p = t.process
    p.take_own_signals()
    if kind == F.F_OWNER_TID and pid in p.tasks:
        signal_thread = p.host_signals.signal_thread_tid()
        host = bytearray(_OWNER_EX.pack(kind, signal_thread))
        r = native.syscall(SYS_fcntl, fd, F.F_SETOWN_EX, native.address_of(host))
        if r == 0:
            p.sigio_owners[file_key(fd)] = (pid, signal_thread)
        return r
    r = native.syscall(SYS_fcntl, fd, F.F_SETOWN_EX, ptr(t, arg, _OWNER_EX.size))
    if r == 0 and p.sigio_owners:
        p.sigio_owners.pop(file_key(fd), None)
    return r


def pipe2(t, fds_addr, flags, *_):
    return fd_pair(t, SYS_pipe2, (), (s32(flags),), fds_addr)


def pipe(t, fds_addr, *_):
    return pipe2(t, fds_addr, 0)


def readlinkat(t, dfd, pathname, buf, size, *_):
    size = s32(size)
    if size <= 0:
        raise GuestError(EINVAL)
    dfd = dirfd(t, dfd)
    host_path = _proc_path(t, pathname, follow=False)
    exe = _is_own_exe(t, pathname)
    if not exe and _on_procfs(t, dfd, host_path, nofollow=True):
        r = t.process.opener.check_path(dfd, host_path, nofollow=True)
        if r < 0:
            return r
        exe = r == EXE
    if exe:
        target = t.process.exe_path[:size]
        t.mem.write(buf, target)
        return len(target)
    host, n = buffer(t, buf, size)
    if n == 0 and buf:
        raise GuestError(EFAULT)
    return native.syscall(SYS_readlinkat, dfd, host_path, host, n)


def readlink(t, pathname, buf, size, *_):
    return readlinkat(t, F.AT_FDCWD, pathname, buf, size)


def _is_own_exe(t, addr: int) -> bool:
    lit = proc_path(t, addr)
    return lit is not None and t.process.procfs.is_exe(lit)


SYS_stat, SYS_lstat, SYS_access, SYS_newfstatat, SYS_faccessat, SYS_statx, SYS_faccessat2 = 4, 6, 21, 262, 269, 332, 439
SYS_getdents64 = 217
_STAT_SIZE, _STATX_SIZE = 144, 256


def _on_procfs(t, dfd: int, host_path: int, nofollow: bool) -> bool:
    """Does this path (host address) reach a file on procfs?  (A look of the monitor's
    own, into a buffer of its own.)"""
    st = bytearray(_STAT_SIZE)
    if native.syscall(SYS_newfstatat, dfd, host_path, native.address_of(st),
                      F.AT_SYMLINK_NOFOLLOW if nofollow else 0) != 0:
        return False
    return t.process.procfs.is_proc_dev(struct.unpack_from("<Q", st, 0)[0])


_S_IFMT, _S_IFCHR, _S_IFIFO, _S_IFSOCK = 0o170000, 0o020000, 0o010000, 0o140000
_MONITOR_KINDS = (0, _S_IFCHR, _S_IFIFO, _S_IFSOCK)  # what km's descriptors are: anon inodes (KVM), /dev/kvm, pipes, sockets


def _looked(t, r: int, dfd: int, host_path: int, nofollow: bool, dev: int | None, mode: int = 0) -> int:
    """After a call that looked at a path: the answer, or ENOENT when what it reached is
    one of km's threads or descriptors (kernel/paths.py, check_path): a file on procfs,
    or one of the kinds km's descriptors are, reached through a magic link."""
    if dev is not None and (t.process.procfs.is_proc_dev(dev) or mode & _S_IFMT in _MONITOR_KINDS):
        checked = t.process.opener.check_path(dfd, host_path, nofollow)
        if checked < 0:
            return checked
    return r


def _stat_dev(t, statbuf: int) -> tuple[int | None, int]:
    """st_dev and st_mode from a struct stat the host just wrote."""
    try:
        dev, _ino, _nlink, mode = struct.unpack("<QQQI", t.mem.read(statbuf, 28))
        return dev, mode
    except GuestError:
        return None, 0


def _stat_call(t, nr: int, dfd: int, pathname: int, statbuf: int, flags: int | None) -> int:
    nofollow = nr == SYS_lstat or bool(flags and flags & F.AT_SYMLINK_NOFOLLOW)
    host_path = _proc_path(t, pathname, follow=not nofollow)
    out = ptr(t, statbuf, _STAT_SIZE)
    if nr == SYS_newfstatat:
        r = native.syscall(nr, dfd, host_path, out, flags)
    else:
        r = native.syscall(nr, host_path, out)
    if r != 0 or flags is not None and flags & F.AT_EMPTY_PATH and _empty(t, pathname):
        return r  # the descriptor itself, which the program got through an open: looked at then
    return _looked(t, r, dfd, host_path, nofollow, *_stat_dev(t, statbuf))


SYS_truncate = 76


def truncate(t, pathname, length, *_):
    """truncate; a program some km runs cannot be truncated (ETXTBSY, loader/textbusy.py)."""
    host_path = _proc_path(t, pathname)
    fd = paths.openat2(F.AT_FDCWD, host_path, F.O_PATH | F.O_CLOEXEC, 0, paths.RESOLVE_NO_MAGICLINKS)
    if fd >= 0:
        p = t.process
        m = p.opener.above(fd)
        if m >= 0:
            try:
                if textbusy.busy(m, p.procfd, p.fds.floor):
                    return -ETXTBSY
            finally:
                os.close(m)
    return native.syscall(SYS_truncate, host_path, length)


def look_up(t, dfd: int, pathname: int, follow: bool) -> int:
    """A path's lookup as the host makes it, for its errors alone (mount and umount2 look
    up their target before they refuse): 0 or -errno, and ENOENT for what the program
    may not know of (one of km's threads or descriptors), as stat would answer."""
    host_path = _proc_path(t, pathname, follow=follow)
    st = bytearray(_STAT_SIZE)
    r = native.syscall(SYS_newfstatat, dfd, host_path, native.address_of(st), 0 if follow else F.AT_SYMLINK_NOFOLLOW)
    if r != 0:
        return r
    dev, _ino, _nlink, mode = struct.unpack_from("<QQQI", st, 0)
    return _looked(t, r, dfd, host_path, not follow, dev, mode)


def _empty(t, addr: int) -> bool:
    try:
        return t.mem.read(addr, 1) == b"\0"
    except GuestError:
        return False


def stat(t, pathname, statbuf, *_):
    return _stat_call(t, SYS_stat, F.AT_FDCWD, pathname, statbuf, None)


def lstat(t, pathname, statbuf, *_):
    return _stat_call(t, SYS_lstat, F.AT_FDCWD, pathname, statbuf, None)


def newfstatat(t, dfd, pathname, statbuf, flags, *_):
    return _stat_call(t, SYS_newfstatat, dirfd(t, dfd), pathname, statbuf, s32(flags))


def statx(t, dfd, pathname, flags, mask, statxbuf, *_):
    flags = s32(flags)
    dfd = dirfd(t, dfd)
    nofollow = bool(flags & F.AT_SYMLINK_NOFOLLOW)
    host_path = _proc_path(t, pathname, follow=not nofollow)
    r = native.syscall(SYS_statx, dfd, host_path, flags, u32(mask), ptr(t, statxbuf, _STATX_SIZE))
    if r != 0:
        return r
    try:
        mode = struct.unpack("<H", t.mem.read(statxbuf + 0x1C, 2))[0]  # stx_mode
        major, minor = struct.unpack("<II", t.mem.read(statxbuf + 0x88, 8))  # stx_dev_major, stx_dev_minor
        dev = os.makedev(major, minor)
    except GuestError:
        dev, mode = None, 0
    return _looked(t, r, dfd, host_path, nofollow, dev, mode)


def _access_call(t, nr: int, dfd: int, pathname: int, mode: int, flags: int) -> int:
    nofollow = bool(flags & F.AT_SYMLINK_NOFOLLOW)
    host_path = _proc_path(t, pathname, follow=not nofollow)
    if nr == SYS_access:
        r = native.syscall(nr, host_path, mode)
    elif nr == SYS_faccessat:
        r = native.syscall(nr, dfd, host_path, mode)
    else:
        r = native.syscall(nr, dfd, host_path, mode, flags)
    if r == 0 or r == -EACCES:
        if _on_procfs(t, dfd, host_path, nofollow):
            checked = t.process.opener.check_path(dfd, host_path, nofollow)
            if checked < 0:
                return checked
    return r


def access(t, pathname, mode, *_):
    return _access_call(t, SYS_access, F.AT_FDCWD, pathname, s32(mode), 0)


def faccessat(t, dfd, pathname, mode, *_):
    return _access_call(t, SYS_faccessat, dirfd(t, dfd), pathname, s32(mode), 0)


def faccessat2(t, dfd, pathname, mode, flags, *_):
    return _access_call(t, SYS_faccessat2, dirfd(t, dfd), pathname, s32(mode), s32(flags))


def getdents64(t, fd, dirp, count, *_):
    fd = t.fds.check(fd)
    host, n = buffer(t, dirp, count)
    r = native.syscall(SYS_getdents64, fd, host, n)
    if r <= 0:
        return r
    procfs = t.process.procfs
    kind = procfs.listing(fd)
    while r > 0 and kind is not None:
        kept = procfs.dirents_filter(t.mem.read(dirp, r), kind)
        if kept:
            t.mem.write(dirp, kept)
            return len(kept)
        r = native.syscall(SYS_getdents64, fd, host, n)  # everything here was the monitor's: read on
    return r


SYS_openat2 = 437
OPEN_HOW_MIN = 24  # struct open_how: flags, mode, resolve (u64 each)


def openat2(t, dfd, pathname, how, size, *_):
    size = u64(size)
    if size < OPEN_HOW_MIN or size > F.PAGE_SIZE:
        raise GuestError(EINVAL if size < OPEN_HOW_MIN else E2BIG)
    raw = bytearray(t.mem.read(how, size))
    if any(raw[OPEN_HOW_MIN:]):
        raise GuestError(E2BIG)  # fields this kernel does not know
    flags, mode, resolve = struct.unpack_from("<QQQ", raw, 0)
    # openat2 is strict where openat is lenient (unknown flags, a mode without O_CREAT):
    # the host says so for the program's exact request, before any lookup
    empty = bytearray(1)
    check = native.syscall(SYS_openat2, F.AT_FDCWD, native.address_of(empty), native.address_of(raw), OPEN_HOW_MIN)
    if check != -ENOENT:
        if check >= 0:
            native.syscall(SYS_close, check)
        return check
    return _open(t, dfd, pathname, flags | F.O_LARGEFILE, mode, resolve)


_chdir = passthrough(80, "s")


def chdir(t, path_addr, *_):
    """chdir, but not into a directory of one of km's threads (the monitor's own /proc)."""
    here = bytearray(b".\0")
    dot = native.address_of(here)
    back = native.syscall(SYS_openat, F.AT_FDCWD, dot, F.O_PATH | F.O_DIRECTORY | F.O_CLOEXEC)
    if back >= 0:
        back = t.process.opener.above(back)
    try:
        r = _chdir(t, path_addr)
        if r == 0 and _on_procfs(t, F.AT_FDCWD, dot, False):
            checked = t.process.opener.check_path(F.AT_FDCWD, dot, False)
            if checked < 0:
                if back >= 0:
                    native.syscall(81, back)  # fchdir: where it was
                return checked
        return r
    finally:
        if back >= 0:
            native.syscall(SYS_close, back)


_chroot = passthrough(161, "s")


def chroot(t, path_addr, *_):
    """Passed through, so the monitor's root moves too: whatever km would import later
    must be imported while Python's files are still reachable (kontain/lazy.py)."""
    from kontain import lazy

    rw = t.process.rewriter
    lazy.preload(decoder=rw is not None)
    r = _chroot(t, path_addr)
    if rw is not None and r == 0:
        rw.cache = None  # (its directory is named from the old root: kernel/sitecache.py)
    return r


SYS_name_to_handle_at = 303
MAX_HANDLE_SZ = 128  # the kernel refuses a larger struct file_handle (EINVAL)
_AT_HANDLE_MNT_ID_UNIQUE = 0x001  # the mount id is a u64


def name_to_handle_at(t, dfd, pathname, handle, mount_id, flags, *_):
    """The host's, through buffers of km's own: the size the kernel may write is a field
    of the program's struct file_handle, which another thread could change between km's
    check and the kernel's read of it.  So km reads it once, lets the kernel fill its
    own buffer, and copies back what the kernel writes (the mount id, the header and, on
    success, the handle).  A handle only names a file; opening one (open_by_handle_at)
    needs CAP_DAC_READ_SEARCH on the host and stays refused."""
    flags = s32(flags)
    buf = bytearray(8 + MAX_HANDLE_SZ)
    mnt = bytearray(8)
    try:
        buf[0:4] = t.mem.read(handle, 4)
        host_handle = native.address_of(buf)
    except GuestError:
        host_handle = 0  # (the kernel's EFAULT, after its checks of the flags and the path, as Linux orders them)
    host_path = _proc_path(t, pathname, follow=bool(flags & F.AT_SYMLINK_FOLLOW))
    r = native.syscall(SYS_name_to_handle_at, dirfd(t, dfd), host_path, host_handle, native.address_of(mnt), flags)
    if r in (0, -EOVERFLOW) and host_handle:
        t.mem.write(mount_id, bytes(mnt[:8 if flags & _AT_HANDLE_MNT_ID_UNIQUE else 4]))
        size = struct.unpack_from("<I", buf)[0] if r == 0 else 0
        t.mem.write(handle, bytes(buf[:8 + min(size, MAX_HANDLE_SZ)]))
    return r


def open_by_handle_at(t, mount_fd, handle, flags, *_):
    """EPERM, as Linux answers a caller without CAP_DAC_READ_SEARCH: a handle opens a file
    past every directory's permissions, and km never passes the call to the host (its
    own seccomp filter refuses it too), so a program falls back as it would there."""
    raise GuestError(EPERM)
