"""ioctl: only requests known to be safe pass through, with their argument checked.

An ioctl argument can be a pointer to anything, so the monitor must know each request
it lets through: terminals, FIONREAD and friends, a timerfd's TFD_IOC_SET_TICKS, a
file's attributes (FS_IOC_GETFLAGS and FS_IOC_SETFLAGS, chattr's), a few device
getters (RNDGETENTCNT, TUNGETFEATURES).  Everything else fails with ENOTTY (and shows in
--strace), as for a descriptor that does not support the request.
Network interfaces can be looked at (the SIOCGIF* getters), never changed.

Requests of one kind of file only (a namespace file's NS_GET_*, a pidfd's
PIDFD_GET_INFO) pass only for a descriptor of that file system (``_OF_FS``), where
their meaning, and so the memory the host may write, is known; on any other descriptor
they are ENOTTY, as Linux answers them there.
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EBADF, EMFILE, ENOTTY
from kontain.errors import GuestError
from kontain.kernel.fdtable import fs_type
from kontain.syscalls.common import not_open, ptr, u32

SYS_ioctl = 16
_TERMIOS, _TERMIOS2, _INT = 36, 44, 4
NONE, VALUE = -1, 0
# request -> size of the structure the argument points to; VALUE: the argument is a
# number; NONE: no argument
REQUESTS: dict[int, int] = {
    F.TCGETS: _TERMIOS, F.TCSETS: _TERMIOS, F.TCSETSW: _TERMIOS, F.TCSETSF: _TERMIOS,
    F.TCGETS2: _TERMIOS2, F.TCSETS2: _TERMIOS2, F.TCSETSW2: _TERMIOS2, F.TCSETSF2: _TERMIOS2,
    F.TCGETA: 18, F.TCSETA: 18, F.TCSETAW: 18, F.TCSETAF: 18,
    F.TCSBRK: VALUE, F.TCSBRKP: VALUE, F.TCXONC: VALUE, F.TCFLSH: VALUE,
    F.TIOCGWINSZ: 8, F.TIOCSWINSZ: 8,
    F.TIOCGPGRP: _INT, F.TIOCSPGRP: _INT, F.TIOCGSID: _INT, F.TIOCOUTQ: _INT, F.FIONREAD: _INT,
    F.FIONBIO: _INT, F.FIOASYNC: _INT, F.TIOCGPTN: _INT, F.TIOCSPTLCK: _INT, F.TIOCGDEV: _INT,
    F.TIOCMGET: _INT, F.TIOCMSET: _INT, F.TIOCMBIS: _INT, F.TIOCMBIC: _INT, F.TIOCGETD: _INT,
    F.TIOCSETD: _INT, F.FIGETBSZ: _INT, F.TIOCGLCKTRMIOS: _TERMIOS, F.TIOCSLCKTRMIOS: _TERMIOS,
    F.FS_IOC_GETFLAGS: _INT, F.FS_IOC_SETFLAGS: _INT,
    F.TIOCSCTTY: VALUE, F.TIOCNOTTY: NONE, F.TIOCEXCL: NONE, F.TIOCNXCL: NONE,
    F.TIOCSBRK: NONE, F.TIOCCBRK: NONE, F.FIOCLEX: NONE, F.FIONCLEX: NONE,
    F.TIOCSTI: 1, F.FIOQSIZE: 8, F.BLKGETSIZE64: 8, F.TFD_IOC_SET_TICKS: 8,
    F.SIOCGIFNAME: F.IFREQ_SIZE, F.SIOCGIFFLAGS: F.IFREQ_SIZE, F.SIOCGIFADDR: F.IFREQ_SIZE,
    F.SIOCGIFDSTADDR: F.IFREQ_SIZE, F.SIOCGIFBRDADDR: F.IFREQ_SIZE, F.SIOCGIFNETMASK: F.IFREQ_SIZE,
    F.SIOCGIFMETRIC: F.IFREQ_SIZE, F.SIOCGIFMTU: F.IFREQ_SIZE, F.SIOCGIFHWADDR: F.IFREQ_SIZE,
    F.SIOCGIFINDEX: F.IFREQ_SIZE, F.SIOCGIFTXQLEN: F.IFREQ_SIZE,
    F.RNDGETENTCNT: _INT, F.TUNGETFEATURES: _INT,
}
NEW_FD = -2  # the request makes a descriptor (no argument)
# request -> (file system, size as above, or NEW_FD)
_OF_FS: dict[int, tuple[int, int]] = {
    F.NS_GET_USERNS: (F.NSFS_MAGIC, NEW_FD), F.NS_GET_PARENT: (F.NSFS_MAGIC, NEW_FD),
    F.NS_GET_NSTYPE: (F.NSFS_MAGIC, NONE), F.NS_GET_OWNER_UID: (F.NSFS_MAGIC, _INT),
}
_IOC_SIZE_SHIFT, _IOC_SIZE_MASK = 16, 0x3FFF
_IFCONF = struct.Struct("<i4xQ")


def ioctl(t, fd, request, arg, *_):
    fd = t.fds.check(fd)
    request = u32(request)
    size = REQUESTS.get(request)
    if size is None:
        if request == F.SIOCGIFCONF:
            return _ifconf(t, fd, arg)
        return _of_fs(t, fd, request, arg)
    if size == NONE:
        arg = 0
    elif size != VALUE:
        arg = ptr(t, arg, size)
    if request == F.FIOASYNC:
        t.process.own_signals = True  # (as fcntl's O_ASYNC: syscalls/dispatch.invoke)
    return native.syscall(SYS_ioctl, fd, request, arg)


def _of_fs(t, fd: int, request: int, arg: int) -> int:
    """A request that one kind of file answers (``_OF_FS``; PIDFD_GET_INFO of any size
    the request encodes), on a descriptor of that kind; else ENOTTY (EBADF for one that
    is not open: Linux looks at the descriptor first)."""
    fs, size = _OF_FS.get(request, (0, 0))
    if request & ~(_IOC_SIZE_MASK << _IOC_SIZE_SHIFT) == F.PIDFD_GET_INFO_NR & ~(_IOC_SIZE_MASK << _IOC_SIZE_SHIFT):
        fs, size = F.PIDFS_MAGIC, (request >> _IOC_SIZE_SHIFT) & _IOC_SIZE_MASK  # (the host: EINVAL if too small)
    if not fs or fs_type(fd) != fs:
        raise GuestError(EBADF if not_open(fd) else ENOTTY)
    if size == NEW_FD:
        if not t.fds.room():  # (Linux takes the number first: open_related_ns)
            raise GuestError(EMFILE)
        r = native.syscall(SYS_ioctl, fd, request, 0)
        return t.fds.new(r) if r >= 0 else r
    return native.syscall(SYS_ioctl, fd, request, 0 if size == NONE else ptr(t, arg, size))


def _ifconf(t, fd: int, arg: int) -> int:
    """SIOCGIFCONF: struct ifconf holds a pointer to the buffer.  The host call gets a
    copy of the structure, so another guest thread cannot swap the pointer after the
    check; a NULL buffer asks for the length needed."""
    length, buf = _IFCONF.unpack(t.mem.read(arg, _IFCONF.size))
    if length < 0:
        length = 0
    copy = bytearray(_IFCONF.pack(length, ptr(t, buf, length) if buf else 0))
    r = native.syscall(SYS_ioctl, fd, F.SIOCGIFCONF, native.address_of(copy))
    if r >= 0:
        t.mem.write(arg, bytes(copy[:4]))
    return r
