"""ioctl: only requests known to be safe pass through, with their argument checked.

An ioctl argument can be a pointer to anything, so the monitor must know each request
it lets through: terminals, FIONREAD and friends, a timerfd's TFD_IOC_SET_TICKS, a
file's attributes (FS_IOC_GETFLAGS and FS_IOC_SETFLAGS, chattr's), a few device
getters (RNDGETENTCNT, TUNGETFEATURES).  Everything else fails with ENOTTY (and shows in
--strace), as for a descriptor that does not support the request.
Network interfaces can be looked at (the SIOCGIF* getters), never changed.  A device's
private requests (SIOCDEVPRIVATE and the 15 after it, ``ip tunnel``'s) carry a structure
km cannot check: ENODEV when the device does not exist, as Linux answers before it looks
at that structure, else ENOTTY.

Requests of one kind of file only (a namespace file's NS_GET_*, a pidfd's
PIDFD_GET_INFO) pass only for a descriptor of that file system (``_OF_FS``), where
their meaning, and so the memory the host may write, is known; on any other descriptor
they are ENOTTY, as Linux answers them there.

PROCMAP_QUERY of the program's own /proc/self/maps (km's copy, a memfd: procfs.py) is
answered from the program's mappings as they are at the call, as Linux answers it
(``_procmap_query``); the host would describe km's.
"""

from __future__ import annotations

import os
import stat
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import E2BIG, EBADF, EINVAL, EMFILE, ENAMETOOLONG, ENODEV, ENOENT, ENOTTY
from kontain.errors import GuestError, OwnThread
from kontain.kernel.fdtable import fs_type
from kontain.syscalls.common import not_open, polled, ptr, u32

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
    F.RNDGETENTCNT: _INT, F.TUNGETFEATURES: _INT, F.SIOCATMARK: _INT,
}
# the requests the polling tier makes (common.polled): getters and flag changes that never
# wait (a terminal's TCSETSW waits for its output to drain, TCSBRK sends a break...)
POLLED = frozenset((F.TCGETS, F.TCGETS2, F.TCGETA, F.TIOCGWINSZ, F.TIOCGPGRP, F.TIOCGSID, F.TIOCOUTQ,
                    F.FIONREAD, F.FIONBIO, F.FIOCLEX, F.FIONCLEX, F.FIGETBSZ))
NEW_FD = -2  # the request makes a descriptor (no argument)
# request -> (file system, size as above, or NEW_FD)
_OF_FS: dict[int, tuple[int, int]] = {
    F.NS_GET_USERNS: (F.NSFS_MAGIC, NEW_FD), F.NS_GET_PARENT: (F.NSFS_MAGIC, NEW_FD),
    F.NS_GET_NSTYPE: (F.NSFS_MAGIC, NONE), F.NS_GET_OWNER_UID: (F.NSFS_MAGIC, _INT),
}
_IOC_SIZE_SHIFT, _IOC_SIZE_MASK = 16, 0x3FFF
_IFCONF = struct.Struct("<i4xQ")
SIOCDEVPRIVATE = 0x89F0
IFNAMSIZ = 16


def ioctl(t, fd, request, arg, *_):
    fd = t.fds.check(fd)
    request = u32(request)
    if request not in POLLED and polled(t):
        raise OwnThread()
    size = REQUESTS.get(request)
    if size is None:
        if request == F.SIOCGIFCONF:
            return _ifconf(t, fd, arg)
        if request in (F.FICLONE, F.FICLONERANGE):
            return _clone(t, fd, request, arg)
        if request == F.PROCMAP_QUERY and t.process.procfs.generated_maps(fd):
            return _procmap_query(t, arg)
        if SIOCDEVPRIVATE <= request <= SIOCDEVPRIVATE + 15:
            _device_private(t, fd, arg)
        return _of_fs(t, fd, request, arg)
    if size == NONE:
        arg = 0
    elif size != VALUE:
        arg = ptr(t, arg, size)
    if request == F.FIOASYNC:
        t.process.take_own_signals()  # (as fcntl's O_ASYNC)
    return native.syscall(SYS_ioctl, fd, request, arg)


def _device_private(t, fd: int, arg: int) -> None:
    """SIOCDEVPRIVATE..+15 on a socket: Linux reads the struct ifreq and fails with ENODEV
    when no device has its name, before the device's own code reads ``ifr_data`` (Go's
    net TestPointToPointInterface tells "no gre0 device" by it).  km asks the host for the
    device's index with a copy of the name alone; otherwise the request is refused as
    one km does not know (ENOTTY).  Another descriptor: ENOTTY as on Linux, EBADF first."""
    if not_open(fd):
        raise GuestError(EBADF)
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        raise GuestError(ENOTTY)
    ifr = bytearray(F.IFREQ_SIZE)
    ifr[:IFNAMSIZ - 1] = t.mem.read(arg, IFNAMSIZ)[:IFNAMSIZ - 1]  # (EFAULT; Linux ends the name at 15)
    r = native.syscall(SYS_ioctl, fd, F.SIOCGIFINDEX, native.address_of(ifr))
    raise GuestError(ENODEV if r == -ENODEV else ENOTTY)


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


_PROCMAP_QUERY = struct.Struct("<QQQQQQQQQIIIIQQ")  # struct procmap_query (104 bytes)
_PROCMAP_FLAGS = 0x3F  # the query flags Linux 6.11 knows


def _procmap_query(t, arg: int) -> int:
    """PROCMAP_QUERY, as Linux's do_procmap_query: the struct's size first (E2BIG past a
    page or with nonzero bytes this kernel does not know, EINVAL below its 104), the
    flags, the name and build id buffers given both or neither; then the first mapping
    at or after query_addr that has the asked permissions (COVERING_OR_NEXT_VMA: the
    next one that does), ENOENT if none.  Its name (a file's path, [heap], [stack]...)
    goes into the program's buffer if it fits (ENAMETOOLONG).  A build id is never
    found (build_id_size 0, which Linux answers for a file without one)."""
    usize = struct.unpack("<Q", t.mem.read(arg, 8))[0]
    if usize > F.PAGE_SIZE:
        raise GuestError(E2BIG)
    if usize < F.PROCMAP_QUERY_SIZE:
        raise GuestError(EINVAL)
    raw = t.mem.read(arg, usize)
    if any(raw[F.PROCMAP_QUERY_SIZE:]):
        raise GuestError(E2BIG)
    q = list(_PROCMAP_QUERY.unpack_from(raw))
    flags, addr, name_size, build_id_size, name_addr, build_id_addr = q[1], q[2], q[11], q[12], q[13], q[14]
    if flags & ~_PROCMAP_FLAGS or bool(name_size) != bool(name_addr) or bool(build_id_size) != bool(build_id_addr):
        raise GuestError(EINVAL)
    v = _matching_vma(t, addr, flags)
    file_backed = _file_backed(v)
    vma_flags = (v.prot & 7) | (F.PROCMAP_QUERY_VMA_SHARED if v.shared else 0)  # (PROT_READ/WRITE/EXEC: 1, 2, 4)
    q[3:11] = [v.start, v.end, vma_flags, F.PAGE_SIZE, v.offset if file_backed else 0, v.ino if file_backed else 0,
               os.major(v.dev) if file_backed else 0, os.minor(v.dev) if file_backed else 0]
    q[12] = 0
    name = v.name.encode("utf-8", "surrogateescape") + b"\0" if v.name else b""
    if name_size:
        if len(name) > name_size:
            raise GuestError(ENAMETOOLONG)
        q[11] = len(name)
    if q[11]:
        t.mem.write(name_addr, name)
    t.mem.write(arg, _PROCMAP_QUERY.pack(*q))
    return 0


def _file_backed(v) -> bool:
    """Has the mapping a file on Linux?  A file's, and shared anonymous memory (shmem's
    "/dev/zero (deleted)", whose inode km does not know: 0, as its maps line shows)."""
    return bool(v.ino) or v.anonymous and v.shared


def _matching_vma(t, addr: int, flags: int):
    """Linux's query_matching_vma over the program's mappings."""
    next_ok = flags & F.PROCMAP_QUERY_COVERING_OR_NEXT_VMA
    for v in t.mm:
        if v.end <= addr:
            continue
        fits = (not flags & F.PROCMAP_QUERY_FILE_BACKED_VMA or _file_backed(v)) and \
            (v.prot & flags & 7) == flags & 7 and (not flags & F.PROCMAP_QUERY_VMA_SHARED or v.shared)
        if fits and (next_ok or v.start <= addr):
            return v
        if not next_ok:
            break
    raise GuestError(ENOENT)


def _clone(t, fd: int, request: int, arg: int) -> int:
    """FICLONE and FICLONERANGE name the source by its descriptor (the argument; in
    FICLONERANGE's struct, copied first, so another thread cannot change it after the
    check): one of the monitor's becomes one no process has open (EBADF)."""
    if request == F.FICLONE:
        return native.syscall(SYS_ioctl, fd, request, t.fds.host(arg))
    copy = bytearray(t.mem.read(arg, F.FILE_CLONE_RANGE_SIZE))
    src = struct.unpack_from("<Q", copy)[0]
    struct.pack_into("<q", copy, 0, t.fds.host(src))  # (the kernel takes its low 32 bits: so does host())
    return native.syscall(SYS_ioctl, fd, request, native.address_of(copy))


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
