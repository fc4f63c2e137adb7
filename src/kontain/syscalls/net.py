"""Sockets.

Most socket calls pass through with their buffers translated.  The message calls carry
structures full of guest pointers (msghdr -> name, iovec array, control buffer), so they
are rebuilt in monitor memory: every pointer checked and translated, the iovec array
and control buffer copied.  Control messages carry descriptors (SCM_RIGHTS): those the
program sends must be its own (never the monitor's), and those it receives must fit
under its RLIMIT_NOFILE, or they are closed and MSG_CTRUNC is set, as Linux does.
"""

from __future__ import annotations

import os
import stat
import struct

from kontain import native
from kontain.abi.errno import EBADF, EFAULT, EINVAL, EMFILE, EMSGSIZE, ENOBUFS, ENOTSOCK
from kontain.errors import GuestError
from kontain.syscalls.common import POLLIN, POLLOUT, buffer, fd_pair, io_call, not_open, ptr, s32, timeout_arg, u32
from kontain.syscalls.rw import UIO_MAXIOV, host_iovec

SOCK_CLOEXEC, SOCK_NONBLOCK = 0o2000000, 0o4000

SYS_sendmsg, SYS_recvmsg, SYS_socketpair, SYS_recvmmsg, SYS_sendmmsg = 46, 47, 53, 299, 307
SYS_accept, SYS_accept4, SYS_recvfrom, SYS_getsockopt = 43, 288, 45, 55
SOL_SOCKET, SCM_RIGHTS = 1, 1
MSG_CTRUNC, MSG_CMSG_COMPAT = 0x8, 0x80000000
SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage): the kernel never writes more
RECV_CONTROL_MAX = 4096  # more control data than one message carries (SCM_RIGHTS: 253 descriptors, 1 KiB)
MSGHDR = struct.Struct("<QI4xQQQQi4x")  # name, namelen, iov, iovlen, control, controllen, flags
MMSGHDR_SIZE = MSGHDR.size + 8  # struct mmsghdr: msghdr, unsigned msg_len (+ padding)
CMSGHDR = struct.Struct("<Qii")  # cmsg_len, cmsg_level, cmsg_type


def _cmsg_align(n: int) -> int:
    return (n + 7) & ~7


_OPTMEM = []


def _optmem_max() -> int:
    """net.core.optmem_max: the most control data the host accepts in one message."""
    if not _OPTMEM:
        try:
            with open("/proc/sys/net/core/optmem_max", "rb") as f:
                _OPTMEM.append(int(f.read()))
        except (OSError, ValueError):
            _OPTMEM.append(20480)  # the kernel's default
    return _OPTMEM[0]


def _check_rights(t, control: bytes) -> None:
    """The descriptors in SCM_RIGHTS messages the program sends must be its own."""
    pos = 0
    while pos + CMSGHDR.size <= len(control):
        length, level, typ = CMSGHDR.unpack_from(control, pos)
        if length < CMSGHDR.size or pos + length > len(control):
            return  # the host kernel rejects a malformed header itself (EINVAL)
        if level == SOL_SOCKET and typ == SCM_RIGHTS:
            for i in range((length - CMSGHDR.size) // 4):
                fd = struct.unpack_from("<i", control, pos + CMSGHDR.size + 4 * i)[0]
                if fd < 0 or fd >= t.fds.floor:
                    raise GuestError(EBADF)
        pos += _cmsg_align(length)


def _accept_rights(t, control: bytearray, used: int) -> tuple[int, bool]:
    """Received descriptors above the program's limit are closed and their message cut,
    as Linux does when it cannot install them.  Returns (control length, truncated)."""
    pos = 0
    truncated = False
    while pos + CMSGHDR.size <= used:
        length, level, typ = CMSGHDR.unpack_from(control, pos)
        if length < CMSGHDR.size:
            break
        if level == SOL_SOCKET and typ == SCM_RIGHTS:
            n = (min(length, used - pos) - CMSGHDR.size) // 4
            fds = [struct.unpack_from("<i", control, pos + CMSGHDR.size + 4 * i)[0] for i in range(n)]
            if any(fd >= t.fds.soft for fd in fds):
                for fd in fds:
                    os.close(fd)
                return pos, True
            for fd in fds:
                t.fds.seen(fd)
        pos += _cmsg_align(length)
    return used, truncated


class _HostMsg:
    """A host copy of one guest msghdr (and what it points to)."""

    __slots__ = ("buf", "keep", "control", "control_addr", "control_len", "name_addr")

    def __init__(self, t, raw: bytes, sending: bool):
        name, namelen, iov, iovlen, control, controllen, _flags = MSGHDR.unpack(raw)
        if name and namelen & 0x80000000:
            raise GuestError(EINVAL)  # msg_namelen is an int: negative is EINVAL, before the iovec count
        if iovlen > UIO_MAXIOV:
            raise GuestError(EMSGSIZE)
        hv, n = host_iovec(t, iov, iovlen)
        self.keep = [hv]
        self.name_addr = name
        self.control_addr = control
        self.control = None
        host_control = 0
        if sending:
            # Linux copies the control data into a kernel buffer of at most optmem_max
            # bytes (ENOBUFS past it): so does km, never more
            self.control_len = controllen
            if controllen > min(_optmem_max(), 0x7FFFFFFF):
                raise GuestError(ENOBUFS)
        else:
            # Linux writes what it has straight to the program's buffer; km gives it
            # one as large as any message's control data can be
            self.control_len = min(controllen, RECV_CONTROL_MAX)
        if control and controllen:
            if sending:
                self.control = bytearray(t.mem.read(control, controllen))
                _check_rights(t, self.control)
            else:
                self.control = bytearray(self.control_len)
            host_control = native.address_of(self.control)
        self.buf = bytearray(MSGHDR.pack(ptr(t, name, min(u32(namelen), SOCKADDR_MAX)) if name else 0, namelen,
                                         native.address_of(hv), n, host_control, self.control_len if host_control else 0, 0))

    @property
    def address(self) -> int:
        return native.address_of(self.buf)

    def finish_receive(self, t, guest_hdr: int) -> None:
        """Copy back what recvmsg wrote: control data, and namelen/controllen/flags."""
        _name, namelen, _iov, _iovlen, _control, controllen, flags = MSGHDR.unpack(self.buf)
        if self.control is not None:
            controllen, truncated = _accept_rights(t, self.control, controllen)
            if truncated:
                flags |= MSG_CTRUNC
            t.mem.write(self.control_addr, bytes(self.control[:controllen]))
        hdr = bytearray(t.mem.read(guest_hdr, MSGHDR.size))
        struct.pack_into("<I", hdr, 8, namelen)
        struct.pack_into("<Q", hdr, 40, controllen if self.control is not None else 0)
        struct.pack_into("<i", hdr, 48, flags)
        t.mem.write(guest_hdr, bytes(hdr))


def _socket_errors_first(fd: int, flags: int) -> None:
    """Linux checks the flags (MSG_CMSG_COMPAT is not for 64-bit programs) and the
    descriptor before it reads a msghdr: when the copy of one failed, those errors win."""
    if flags & MSG_CMSG_COMPAT:
        raise GuestError(EINVAL)
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        raise GuestError(EBADF) from None
    if not stat.S_ISSOCK(mode):
        raise GuestError(ENOTSOCK)


def _host_msg(t, fd: int, msg: int, flags: int, sending: bool) -> _HostMsg:
    try:
        return _HostMsg(t, t.mem.read(msg, MSGHDR.size), sending)
    except GuestError:
        _socket_errors_first(fd, flags)
        raise


def sendmsg(t, fd, msg, flags, *_):
    fd = t.fds.check(fd)
    m = _host_msg(t, fd, msg, u32(flags), sending=True)
    return io_call(t, fd, POLLOUT, SYS_sendmsg, m.address, s32(flags))


def recvmsg(t, fd, msg, flags, *_):
    fd = t.fds.check(fd)
    m = _host_msg(t, fd, msg, u32(flags), sending=False)
    r = io_call(t, fd, POLLIN, SYS_recvmsg, m.address, s32(flags))
    if r >= 0:
        m.finish_receive(t, msg)
    return r


def _mmsg(t, fd: int, flags: int, vec: int, vlen: int, sending: bool) -> tuple[list[_HostMsg], bytearray, int]:
    vlen = min(u32(vlen), UIO_MAXIOV)
    try:
        raw = t.mem.read(vec, MMSGHDR_SIZE * vlen) if vlen else b""
        msgs = [_HostMsg(t, raw[i * MMSGHDR_SIZE:i * MMSGHDR_SIZE + MSGHDR.size], sending) for i in range(vlen)]
    except GuestError:
        _socket_errors_first(fd, flags)
        raise
    arr = bytearray(b"".join(bytes(m.buf) + bytes(8) for m in msgs))
    return msgs, arr, vlen


def _mmsg_finish(t, vec: int, msgs: list[_HostMsg], arr: bytearray, count: int, receiving: bool) -> None:
    for i in range(count):
        base = i * MMSGHDR_SIZE
        msgs[i].buf[:] = arr[base:base + MSGHDR.size]
        t.mem.write(vec + base + MSGHDR.size, bytes(arr[base + MSGHDR.size:base + MSGHDR.size + 4]))  # msg_len
        if receiving:
            msgs[i].finish_receive(t, vec + base)


def sendmmsg(t, fd, vec, vlen, flags, *_):
    """One message at a time, as Linux's loop does (so that km never holds more than one
    message's copies): stops at the first error, which it returns only if nothing was
    sent."""
    fd = t.fds.check(fd)
    vlen = min(u32(vlen), UIO_MAXIOV)
    if not vlen:
        _socket_errors_first(fd, u32(flags))  # (Linux looks at the descriptor first, even for no message)
        return 0
    flags = s32(flags)
    sent = 0
    for i in range(vlen):
        hdr = vec + i * MMSGHDR_SIZE
        try:
            m = _host_msg(t, fd, hdr, u32(flags), sending=True)
            r = io_call(t, fd, POLLOUT, SYS_sendmsg, m.address, flags)
        except GuestError as e:
            r = -e.errno
        if r < 0:
            return sent if sent else r
        try:
            t.mem.write(hdr + MSGHDR.size, struct.pack("<I", r))  # msg_len
        except GuestError:
            return sent if sent else -EFAULT
        sent += 1
    return sent


def recvmmsg(t, fd, vec, vlen, flags, timeout, *_):
    if u32(flags) & MSG_CMSG_COMPAT:
        raise GuestError(EINVAL)  # (Linux: the flags, the timeout, then the descriptor)
    timeout_arg(t, timeout)
    fd = t.fds.check(fd)
    msgs, arr, n = _mmsg(t, fd, u32(flags), vec, vlen, sending=False)
    r = io_call(t, fd, POLLIN, SYS_recvmmsg, native.address_of(arr) if n else 0, n, s32(flags), ptr(t, timeout, 16))
    if r > 0:
        _mmsg_finish(t, vec, msgs, arr, r, receiving=True)
    return r


_SOCK_TYPE_MASK, _SOCK_CLOEXEC, _SOCK_NONBLOCK = 0xF, 0o2000000, 0o4000


def socketpair(t, domain, typ, protocol, sv, *_):
    # Linux writes the two descriptor numbers to sv before it makes the sockets: after
    # the flags, a bad sv is EFAULT whatever the family or protocol
    if s32(typ) & ~(_SOCK_TYPE_MASK | _SOCK_CLOEXEC | _SOCK_NONBLOCK):
        raise GuestError(EINVAL)
    t.mem.write(sv, t.mem.read(sv, 8))
    return fd_pair(t, SYS_socketpair, (s32(domain), s32(typ), s32(protocol)), (), sv)


def _accept(t, nr: int, fd, addr, addrlen, *flags) -> int:
    fd = t.fds.host(fd)  # (the host says EBADF where Linux does: accept4's flags come first)
    if t.process.signalfds.files and t.process.signalfds.find(fd) is not None:
        # km's signalfd is a listening socket (kernel/signalfd.py): accept would wait for,
        # or take, the connection that makes it readable; Linux's is no socket
        raise GuestError(ENOTSOCK)
    if not t.fds.room():
        # Linux takes the new descriptor's number before it takes a connection (EMFILE
        # leaves it queued), after checking the flags and the descriptor
        if flags and flags[0] & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
            raise GuestError(EINVAL)
        raise GuestError(EBADF if not_open(fd) else EMFILE)
    r = io_call(t, fd, POLLIN, nr, ptr(t, addr, SOCKADDR_MAX), ptr(t, addrlen, 4), *flags)
    return t.fds.new(r) if r >= 0 else r


def accept(t, fd, addr, addrlen, *_):
    return _accept(t, SYS_accept, fd, addr, addrlen)


def accept4(t, fd, addr, addrlen, flags, *_):
    return _accept(t, SYS_accept4, fd, addr, addrlen, s32(flags))


def recvfrom(t, fd, buf, length, flags, addr, addrlen):
    fd = t.fds.host(fd)  # (the host says EBADF where Linux does: after the buffer's access_ok)
    host, n = buffer(t, buf, length)
    return io_call(t, fd, POLLIN, SYS_recvfrom, host, n, s32(flags), ptr(t, addr, SOCKADDR_MAX), ptr(t, addrlen, 4))


def getsockopt(t, fd, level, optname, optval, optlen, *_):
    # the kernel writes at most *optlen bytes (capped by the option's size) at optval
    fd = t.fds.check(fd)
    return native.syscall(SYS_getsockopt, fd, s32(level), s32(optname), ptr(t, optval), ptr(t, optlen, 4))


def listen(t, fd, backlog, *_):
    """listen(2), passed through; with --snapshot-on-listen the program's first listen
    (a server ready for its clients) is when km snapshots it (syscalls/snapshot.py)."""
    r = native.syscall(50, t.fds.check(fd), s32(backlog))
    if r == 0 and t.process.spec.snapshot_on_listen:
        from kontain.syscalls.snapshot import on_listen

        on_listen(t)
    return r
