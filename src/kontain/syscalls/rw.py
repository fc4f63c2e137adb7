"""read/write family: the I/O path, zero-copy.

A checked guest buffer is a host address inside the window, so the host kernel reads
or writes guest memory directly.  iovec arrays hold guest pointers: they are copied into
monitor memory, each entry checked and translated, and the copy is what the host sees
(a racing guest thread cannot swap a pointer after the check).
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi.errno import EBADF, EINVAL, EIO
from kontain.abi.flags import F_GETFL, O_ACCMODE, O_PATH, O_WRONLY, SEEK_HOLE
from kontain.errors import GuestError
from kontain.syscalls.common import MAX_RW_COUNT, POLLIN, POLLOUT, io_call, passthrough, ptr, s32, u32, u64

UIO_MAXIOV = 1024
_sc4 = native.sc4
_errno = native.get_errno
SYS_read, SYS_write, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev = 0, 1, 17, 18, 19, 20
SYS_lseek, SYS_sendfile, SYS_preadv, SYS_pwritev, SYS_preadv2, SYS_pwritev2 = 8, 40, 295, 296, 327, 328


def _ret(r: int) -> int:
    return -_errno() if r == -1 else r


def rw_buffer(t, addr: int, count: int) -> tuple[int, int]:
    """(host address, length) of read's, write's, pread64's or pwrite64's buffer: the
    whole range as the program gave it must be user memory (EFAULT, at the host call,
    after the descriptor checks), then the length is capped (common.buffer)."""
    count = u64(count)
    length = min(count, MAX_RW_COUNT)
    return t.mem.host_user(addr, count, length), length


def read(t, fd, buf, count, *_):
    fd = t.fds.check(fd)
    host, n = rw_buffer(t, buf, count)
    r = io_call(t, fd, POLLIN, SYS_read, host, n)
    if r == -EINVAL and t.process.signalfds.files:  # a listening socket: a signalfd? (kernel/signalfd.py)
        f = t.process.signalfds.find(fd)
        if f is not None:
            return t.process.signalfds.read(t, f, fd, buf, n)
    elif r == -EIO:  # perhaps a background read of the terminal (kernel/jobctl.py)
        return t.process.background_read(t, fd)
    return r


def write(t, fd, buf, count, *_):
    fd = t.fds.check(fd)
    host, n = rw_buffer(t, buf, count)
    return io_call(t, fd, POLLOUT, SYS_write, host, n)


def _offset(offset: int, current_ok: bool = False) -> None:
    """Linux refuses a negative offset (EINVAL) before it looks at the descriptor; -1 is
    the current position for preadv2 and pwritev2."""
    if offset >> 63 and not (current_ok and offset == 0xFFFFFFFFFFFFFFFF):
        raise GuestError(EINVAL)


def pread64(t, fd, buf, count, offset, *_):
    _offset(u64(offset))
    fd = t.fds.check(fd)
    host, n = rw_buffer(t, buf, count)
    return _ret(_sc4(SYS_pread64, fd, host, n, offset))


def pwrite64(t, fd, buf, count, offset, *_):
    _offset(u64(offset))
    fd = t.fds.check(fd)
    host, n = rw_buffer(t, buf, count)
    return _ret(_sc4(SYS_pwrite64, fd, host, n, offset))


def on_own(t, nr: int, own: int, a1: int, a2: int, a3: int) -> int:
    """read, write, pread64, pwrite64, readv or writev (``nr``) of a regular file, made
    on ``own``: the monitor's duplicate of the program's descriptor (the polling tier's:
    kernel/poll.py), so that another thread of the program closing or dup2'ing over its
    number meanwhile (a pipe's, whose read would block) changes nothing here.  The
    checks are the handlers' above, in Linux's order."""
    if nr == SYS_pread64 or nr == SYS_pwrite64:
        _offset(u64(a3))
    if nr == SYS_readv or nr == SYS_writev:
        return _vec_on(nr, t, own, a1, a2)
    host, n = rw_buffer(t, a1, a2)
    return native.syscall(nr, own, host, n, a3)


def lseek(t, fd, offset, whence, *_):
    fd = t.fds.check(fd)
    whence &= 0xFFFFFFFF
    if whence > SEEK_HOLE:
        if native.syscall(72, fd, 1, 0) < 0:  # fcntl(F_GETFD): Linux looks at the descriptor first
            raise GuestError(EBADF)
        raise GuestError(EINVAL)
    return native.syscall3(SYS_lseek, fd, offset, whence)


def host_iovec(t, addr: int, count: int) -> tuple[bytearray, int]:
    """A host copy of the guest's iovec array, every buffer checked and translated:
    each must be user memory with the length the program gave (access_ok, an empty one's
    address too: EFAULT at the host call), then the lengths are capped at MAX_RW_COUNT
    in all, as Linux's import_iovec does."""
    count &= 0xFFFFFFFFFFFFFFFF
    if count > UIO_MAXIOV:
        raise GuestError(EINVAL)
    if count == 0:
        return bytearray(16), 0
    raw = t.mem.read(addr, 16 * count)
    vec = struct.unpack(f"<{2 * count}Q", raw)
    out = []
    total = 0
    for i in range(0, 2 * count, 2):
        base, length = vec[i], vec[i + 1]
        if length >= 1 << 63:
            raise GuestError(EINVAL)
        capped = min(length, MAX_RW_COUNT - total)
        total += capped
        out += (t.mem.host_user(base, length, capped), capped)
    return bytearray(struct.pack(f"<{2 * count}Q", *out)), count


def _vec_call(nr: int, t, fd, iov, count, *rest, events: int = 0) -> int:
    # (the host says EBADF where Linux does: vmsplice's flags come first)
    return _vec_on(nr, t, t.fds.host(fd), iov, count, *rest, events=events)


def _vec_on(nr: int, t, fd: int, iov, count, *rest, events: int = 0) -> int:
    """An iovec call on host descriptor ``fd`` (the program's, or the poller's own)."""
    try:
        hv, n = host_iovec(t, iov, count)
    except GuestError:
        # Linux looks at the descriptor (not open, not readable or writable, not
        # seekable for preadv) before the iovec: the host says what it says with none,
        # which reads or writes nothing
        r = native.syscall(nr, fd, 0, 0, *rest)
        if r < 0:
            return r
        raise
    if events:
        return io_call(t, fd, events, nr, native.address_of(hv), n, *rest)
    return native.syscall(nr, fd, native.address_of(hv), n, *rest)


def readv(t, fd, iov, count, *_):
    return _vec_call(SYS_readv, t, fd, iov, count, events=POLLIN)


def writev_rest(t, fd, iov, count, done: int) -> int:
    """The rest of a writev of a socket or pipe the native poller began (``done`` bytes
    taken: syscalls/dispatch.py ``_carried``), written as the blocking call goes on:
    the program's iovecs read again, the first ``done`` bytes left out."""
    try:
        fd = t.fds.check(fd)
        hv, n = host_iovec(t, iov, count)
    except GuestError as e:  # (another thread changed the array or the descriptor meanwhile)
        return -e.errno
    vec = list(struct.unpack(f"<{2 * n}Q", hv[:16 * n]))
    i = 0
    while i < n and done >= vec[2 * i + 1]:
        done -= vec[2 * i + 1]
        i += 1
    if i == n:
        return 0
    vec[2 * i] += done
    vec[2 * i + 1] -= done
    rest = bytearray(struct.pack(f"<{2 * (n - i)}Q", *vec[2 * i:]))
    return io_call(t, fd, POLLOUT, SYS_writev, native.address_of(rest), n - i)


def writev(t, fd, iov, count, *_):
    return _vec_call(SYS_writev, t, fd, iov, count, events=POLLOUT)


def preadv(t, fd, iov, count, pos_l, pos_h, *_):
    _offset(u64(pos_l))  # (on x86-64 the offset is pos_l whole)
    return _vec_call(SYS_preadv, t, fd, iov, count, pos_l, pos_h)


def pwritev(t, fd, iov, count, pos_l, pos_h, *_):
    _offset(u64(pos_l))
    return _vec_call(SYS_pwritev, t, fd, iov, count, pos_l, pos_h)


def preadv2(t, fd, iov, count, pos_l, pos_h, flags):
    _offset(u64(pos_l), current_ok=True)
    return _vec_call(SYS_preadv2, t, fd, iov, count, pos_l, pos_h, s32(flags))


def pwritev2(t, fd, iov, count, pos_l, pos_h, flags):
    _offset(u64(pos_l), current_ok=True)
    return _vec_call(SYS_pwritev2, t, fd, iov, count, pos_l, pos_h, s32(flags))


def sendfile(t, out_fd, in_fd, offset, count, *_):
    """The host makes every check, in Linux's order (the offset is read first, then the
    input descriptor is looked at, then the output one)."""
    return io_call(t, t.fds.host(out_fd), POLLOUT, SYS_sendfile, t.fds.host(in_fd), ptr(t, offset, 8), count)


SYS_vmsplice = 278


def vmsplice(t, fd, iov, count, flags, *_):
    return _vec_call(SYS_vmsplice, t, fd, iov, count, u32(flags), events=POLLOUT)



SYS_splice, SYS_fcntl = 275, 72
SPLICE_F_ALL = 0xF  # MOVE, NONBLOCK, MORE, GIFT
_splice = passthrough(SYS_splice, "f p8 f p8 u x", blocking=True)


def splice(t, fd_in, off_in, fd_out, off_out, length, flags, *_):
    """splice; into a signalfd EINVAL, as on Linux, where km's signalfd, a listening
    socket underneath (kernel/signalfd.py), would wait for data."""
    if length and not u32(flags) & ~SPLICE_F_ALL and t.process.signalfds.files and \
            t.process.signalfds.find(t.fds.check(fd_out)) is not None:
        mode = native.syscall(SYS_fcntl, t.fds.check(fd_in), F_GETFL, 0)
        if mode < 0 or mode & O_PATH or mode & O_ACCMODE == O_WRONLY:
            raise GuestError(EBADF)  # (Linux looks at the descriptors' modes first)
        raise GuestError(EINVAL)
    return _splice(t, fd_in, off_in, fd_out, off_out, length, flags)
