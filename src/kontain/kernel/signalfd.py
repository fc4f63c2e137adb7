"""signalfd: signals read from a descriptor.

The program's pending signals live in the monitor (``Pending`` sets), so the host's
signalfd cannot serve them.  A signalfd is therefore made of a host object that behaves
like one towards poll, select and epoll, and that the monitor recognises whenever the
program reads it:

- the program's descriptor is a listening Unix socket (bound to an automatic abstract
  address, backlog 1).  It polls readable exactly when a connection is pending, which the
  monitor arranges while a signal of the file's mask is pending (``SignalFile.ready``);
- ``read`` on a listening Unix socket fails with EINVAL, whatever descriptor number the
  program reaches it by (dup, fork, SCM_RIGHTS...).  Only on that error does ``read``
  look the socket up here (by inode), and only while signalfds exist: ordinary reads pay nothing.

What differs from Linux: fstat and /proc/self/fd show a socket, not an anon inode;
write, readv and the socket calls on it fail as on a listening socket.
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import signals as S
from kontain.abi.errno import EAGAIN, EINTR, EINVAL
from kontain.abi.structs import signalfd_siginfo
from kontain.kernel.signals import pick

_AF_UNIX, _SOCK_STREAM, _SOCK_NONBLOCK, _SOCK_CLOEXEC = 1, 1, 0o4000, 0o2000000
_F_GETFL = 3
_O_NONBLOCK = 0o4000
SIGINFO_RECORD = signalfd_siginfo.size  # 128


class SignalFile:
    """One signalfd: its mask and the monitor's handles on its socket."""

    __slots__ = ("ino", "mask", "listener", "peer", "address", "floor")

    def __init__(self, ino: int, mask: int, listener: int, address: bytes, floor: int):
        self.ino = ino
        self.mask = mask
        self.listener = listener  # the monitor's own descriptor of the listening socket
        self.peer = -1  # the monitor's pending connection while the file is readable
        self.address = address
        self.floor = floor  # the monitor's descriptors live from here up (kernel/fdtable.py)

    def ready(self, on: bool) -> None:
        # socket() and accept4() make a descriptor at the lowest free number, in the
        # program's range, and this may run in the signal thread while a thread of the
        # program closes descriptors: such a transient one is moved or closed at once, and
        # with the raw close, whose EBADF (the program closed it first) is nothing to
        # report.  (What cannot be helped: a program that closes numbers it never opened
        # may see them taken for that moment, as by any other thread of its own.)
        if on and self.peer < 0:
            s = native.syscall(41, _AF_UNIX, _SOCK_STREAM | _SOCK_NONBLOCK | _SOCK_CLOEXEC, 0)  # socket
            if s < 0:
                return
            # out of the program's range: there it would take the number of the program's
            # next descriptor, and the program could close it or put another file there
            high = native.dup_at_least(s, self.floor)
            native.syscall(3, s)  # close
            if high < 0:
                return
            addr = bytearray(self.address)
            if native.syscall(42, high, native.address_of(addr), len(addr)) < 0:  # connect
                os.close(high)
                return
            self.peer = high
        elif not on and self.peer >= 0:
            os.close(self.peer)
            self.peer = -1
            # take the pending connection off the listening socket (poll first: the
            # socket's blocking mode is the program's, shared by this descriptor)
            pfd = bytearray(struct.pack("<ihh", self.listener, 1, 0))  # POLLIN
            while native.syscall(7, native.address_of(pfd), 1, 0) == 1:  # poll, no waiting
                c = native.syscall(288, self.listener, 0, 0, _SOCK_CLOEXEC)  # accept4
                if c < 0:
                    break
                native.syscall(3, c)  # close

    def close(self) -> None:
        self.ready(False)
        os.close(self.listener)


class SignalFds:
    """The process's signalfds, by socket inode."""

    def __init__(self, process) -> None:
        self.process = process
        self.files: dict[int, SignalFile] = {}
        # Readiness changes come from any thread (a signal posted by the signal thread, or
        # by a vCPU thread's kill): one at a time, or two could close the same
        # connection, the second one getting EBADF or closing a file just given that number.
        self._lock = _thread.allocate_lock()

    # -- signalfd4 -----------------------------------------------------------------------
    def create(self, mask: int, cloexec: bool, nonblock: bool) -> int:
        """A new signalfd for the guest: its descriptor or -errno."""
        p = self.process
        self._collect()
        flags = _SOCK_STREAM | (_SOCK_CLOEXEC if cloexec else 0) | (_SOCK_NONBLOCK if nonblock else 0)
        fd = native.syscall(41, _AF_UNIX, flags, 0)
        if fd < 0:
            return fd
        fd = p.fds.new(fd)
        if fd < 0:
            return fd
        family = bytearray(struct.pack("<H", _AF_UNIX))  # autobind: an abstract address of its own
        named = bytearray(110)
        size = bytearray(struct.pack("<I", len(named)))
        r = native.syscall(49, fd, native.address_of(family), 2)  # bind
        if r == 0:
            r = native.syscall(50, fd, 1)  # listen
        if r == 0:
            r = native.syscall(51, fd, native.address_of(named), native.address_of(size))  # getsockname
        listener = native.dup_at_least(fd, p.fds.floor) if r == 0 else r
        if listener < 0:
            os.close(fd)
            return listener
        n = struct.unpack("<I", size)[0]
        ino = os.fstat(fd).st_ino
        self.files[ino] = SignalFile(ino, mask, listener, bytes(named[:n]), p.fds.floor)
        self.update()
        return fd

    def find(self, fd: int) -> SignalFile | None:
        """The signalfd behind guest descriptor ``fd``, if it is one."""
        if not self.files:
            return None
        try:
            return self.files.get(os.fstat(fd).st_ino)
        except OSError:
            return None

    def _collect(self) -> None:
        """Forget the signalfds the program no longer has a descriptor for."""
        if not self.files:
            return
        alive = set()
        try:
            for name in os.listdir("/proc/self/fd"):
                fd = int(name)
                if fd < self.process.fds.floor:
                    link = os.readlink(f"/proc/self/fd/{fd}")
                    if link.startswith("socket:["):
                        alive.add(int(link[8:-1]))
        except OSError:
            return
        with self._lock:
            for ino in [i for i in self.files if i not in alive]:
                self.files.pop(ino).close()

    # -- readiness -------------------------------------------------------------------------
    def pending(self) -> int:
        """Signals pending anywhere in the process (for poll readiness)."""
        p = self.process
        mask = p.shared_pending.mask
        for t in list(p.tasks.values()):
            mask |= t.pending.mask
        return mask

    def update(self) -> None:
        """Make each signalfd readable exactly while one of its signals is pending."""
        with self._lock:
            pending = self.pending()
            for f in list(self.files.values()):
                f.ready(bool(pending & f.mask))

    # -- read --------------------------------------------------------------------------------
    def read(self, t, f: SignalFile, fd: int, buf: int, count: int) -> int:
        """read(2) on a signalfd: one signalfd_siginfo per pending signal of its mask that
        fits, the calling thread's own signals first; waits if none (unless non-blocking)."""
        if count < SIGINFO_RECORD:
            return -EINVAL
        p = self.process
        out = bytearray()
        while True:
            with p.lock:
                while len(out) + SIGINFO_RECORD <= count:
                    ready = (t.pending.mask | t.shared.mask) & f.mask
                    if not ready:
                        break
                    sig = pick(ready)
                    src = t.pending if t.pending.mask & (1 << (sig - 1)) else t.shared
                    out += record(src.take(sig))
            if out:
                break
            if native.syscall(72, fd, _F_GETFL, 0) & _O_NONBLOCK:
                self.update()
                return -EAGAIN
            t.waiting = f.mask
            try:
                p.wait_for(t, lambda: bool((t.pending.mask | t.shared.mask) & f.mask) or bool(t.has_signals()))
            finally:
                t.waiting = 0
            if not (t.pending.mask | t.shared.mask) & f.mask:
                return -EINTR  # a signal to deliver: EINTR or a restart, as its SA_RESTART says
        self.update()
        t.mem.write(buf, bytes(out))
        return len(out)


def record(info: bytes) -> bytes:
    """A siginfo as a signalfd_siginfo: the fields its layout has, as Linux's
    signalfd_copyinfo copies them."""
    signo, errno_, code = struct.unpack_from("<iii", info)
    pid = uid = fd = tid = band = overrun = status = sival = utime = stime = addr = lsb = call = nr = arch = 0
    if code == S.SI_TIMER:
        tid, overrun, sival = struct.unpack_from("<iiQ", info, 16)
    elif code == S.SI_SIGIO:
        band, fd = struct.unpack_from("<qi", info, 16)
    elif code < 0:  # queued and tkill'd signals: sender and value
        pid, uid, sival = struct.unpack_from("<iIQ", info, 16)
    elif code == 0:
        pid, uid = struct.unpack_from("<iI", info, 16)
    elif signo == S.SIGCHLD:
        pid, uid, status, utime, stime = struct.unpack_from("<iIi4xqq", info, 16)
    elif signo in (S.SIGSEGV, S.SIGBUS, S.SIGILL, S.SIGFPE, S.SIGTRAP):
        addr, lsb = struct.unpack_from("<QH", info, 16)
    elif signo == S.SIGIO:
        band, fd = struct.unpack_from("<qi", info, 16)
    elif signo == S.SIGSYS:
        call, nr, arch = struct.unpack_from("<QiI", info, 16)
    else:
        pid, uid = struct.unpack_from("<iI", info, 16)
    sival_int = (sival & 0xFFFFFFFF) - ((sival & 0x80000000) << 1)
    return signalfd_siginfo.pack(signo, errno_, code, pid & 0xFFFFFFFF, uid, fd, tid & 0xFFFFFFFF, band & 0xFFFFFFFF,
                                 overrun & 0xFFFFFFFF, 0, status, sival_int, sival, utime, stime, addr, lsb, 0, nr,
                                 call, arch, b"")
