"""File descriptors: guest fd = host fd, and the monitor's own descriptors out of reach.

The guest owns descriptors ``[0, floor)``; the monitor keeps its own (``/dev/kvm``, the
VM, vCPUs) at ``floor`` and above, close-on-exec.  The guest sees RLIMIT_NOFILE with a
hard limit of ``floor``, so an fd at or above ``floor`` is, for the guest, exactly what
Linux says it is: not open (EBADF), and never returned by a call that makes a new
descriptor.  Inside ``[0, floor)`` the guest's own soft limit is enforced here, because
the host's soft limit is set high enough for the monitor's descriptors.
"""

from __future__ import annotations

import os
import resource

from kontain import native
from kontain.abi.errno import EBADF, EINVAL, EMFILE, EPERM
from kontain.abi.flags import AT_FDCWD, CAP_SYS_RESOURCE, O_CLOEXEC, O_PATH
from kontain.errors import GuestError, KmError
from kontain.kernel.fdreserve import guest_limit

_TABLE_CAP = 1 << 16  # the monitor's fds never go higher: the kernel sizes fd tables by the highest fd
_EBADF = GuestError(EBADF)
SYS_openat, SYS_fstatfs = 257, 138
_ROOT = bytearray(b"/\0")  # what ``room`` opens to see the lowest free number
NEVER_OPEN = 0x7FFFFFFF  # above the highest fs.nr_open allows (and not -1, which some calls take as "none")


class FdTable:
    """The guest's view of the descriptor space of this process."""

    def __init__(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        top = min(hard if hard != resource.RLIM_INFINITY else _TABLE_CAP, _TABLE_CAP)
        self.floor = guest_limit(top)  # first monitor fd; the guest's hard limit
        self._high = -1  # one past the highest descriptor the program has had (-1: not looked yet)
        self.soft = min(soft, self.floor)
        self.hard = self.floor
        if soft < top:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
            except (ValueError, OSError):
                pass

    def check(self, fd: int) -> int:
        """``fd`` as the kernel reads an ``unsigned int fd`` argument; EBADF for the
        monitor's descriptors (the host call itself reports EBADF for closed ones)."""
        fd &= 0xFFFFFFFF
        if fd >= self.floor:
            raise _EBADF
        return fd

    def host(self, fd: int) -> int:
        """``fd`` for a host call that only hands it on: one of the monitor's becomes a
        number no process can have open, so the host kernel says EBADF at the point where
        Linux looks at the descriptor, after whatever it checks first (``check`` refuses
        at once, before the call's other arguments)."""
        fd &= 0xFFFFFFFF
        return fd if fd < self.floor else NEVER_OPEN

    def allowed(self, fd: int) -> bool:
        return 0 <= fd < self.floor

    def new(self, fd: int) -> int:
        """Accept a descriptor a host call just made for the guest (pass-through result):
        above the guest's soft limit it is closed again and the call fails with EMFILE."""
        if fd >= self.soft:
            os.close(fd)
            return -EMFILE
        if fd >= self._high:
            self._high = fd + 1
        return fd

    def room(self) -> bool:
        """Is there a free descriptor below the guest's soft limit?  Linux takes the new
        descriptor's number before an open, mq_open or accept does anything else, so at
        the limit it fails with EMFILE having created, truncated or accepted nothing
        (``new`` closes the extra descriptor only after the host call did it all: LTP's
        mq_open01 found its queue made by the EMFILE case).  Known at once while the
        highest descriptor the program has had is below the limit; otherwise the lowest
        free number is looked at with a descriptor of km's, open for that moment (another
        thread's open at that instant gets the next number, as kernel/paths.py's do)."""
        if 0 <= self._high < self.soft:
            return True
        probe = native.syscall(SYS_openat, AT_FDCWD, native.address_of(_ROOT), O_PATH | O_CLOEXEC, 0)
        if probe < 0:
            return True  # (cannot tell: the call itself will say)
        os.close(probe)
        return probe < self.soft

    def dup_target(self, fd: int) -> int:
        """The ``newfd`` of dup2/dup3, or the minimum of F_DUPFD: must be below the limit."""
        fd &= 0xFFFFFFFF
        if fd >= self.soft:
            raise GuestError(EBADF)
        if fd >= self._high:
            self._high = fd + 1
        return fd

    def seen(self, fd: int) -> None:
        """The program has descriptor ``fd`` now (received, or made two at a time)."""
        if fd >= self._high:
            self._high = fd + 1

    def table_size(self) -> int:
        """How many descriptors Linux's table would have room for, given the highest the
        program has had (fs/file.c alloc_fdtable: 64, then 128 times a power of two):
        select looks at no more bits than that, and neither does km."""
        if self._high < 0:  # the first time: what km was started with
            try:
                self._high = max((int(n) + 1 for n in os.listdir("/proc/self/fd") if int(n) < self.floor), default=0)
            except OSError:
                self._high = self.floor
        high = max(self._high, 1) - 1
        if high < 64:
            return 64
        return min(128 * (1 << (high // 128).bit_length()), self.floor)

    def save(self) -> dict:
        """The table as plain data: its limits, and which file each of the program's
        descriptors is (device, inode, its open flags), for ``restore`` to check."""
        return {"floor": self.floor, "high": self._high, "limits": (self.soft, self.hard), "open": _describe(self.floor)}

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back.  The descriptors are the host's and stay open
        meanwhile: each must still be the file it was (KmError otherwise: a restore over
        a table that changed would hand the program other files under the same numbers)."""
        if state["floor"] != self.floor:
            raise KmError(f"restore: the descriptor floor was {state['floor']}, it is {self.floor} now")
        now = _describe(self.floor)
        for fd, what in state["open"].items():
            if now.get(fd) != what:
                raise KmError(f"restore: descriptor {fd} is not the file it was when saved")
        self._high = state["high"]
        self.soft, self.hard = state["limits"]

    def set_nofile(self, soft: int, hard: int) -> None:
        """setrlimit(RLIMIT_NOFILE) for the guest."""
        if soft > hard:
            raise GuestError(EINVAL)
        if hard > self.floor or hard > self.hard and not native.capable(CAP_SYS_RESOURCE):
            raise GuestError(EPERM)  # (the floor is the program's nr_open)
        self.soft, self.hard = soft, hard


def fs_type(fd: int) -> int:
    """The file system type of host descriptor ``fd`` (fstatfs's f_type, the first field
    of struct statfs: MQUEUE_MAGIC, NSFS_MAGIC...), or 0."""
    buf = bytearray(120)
    if native.syscall(SYS_fstatfs, fd, native.address_of(buf)) != 0:
        return 0
    return int.from_bytes(buf[:8], "little")


LOCKED_MAX = 32  # files with POSIX locks listed for the native poller at most (kernel/nativepoll.py)


def file_key(fd: int) -> tuple[int, int]:
    """(st_dev, st_ino): which file descriptor ``fd`` is of (OSError when it is none)."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def posix_locked(p, fd: int) -> bool:
    """Is descriptor ``fd`` (the program's) of a file it took POSIX locks on (True when it
    cannot be told)?  Linux drops all of a process's locks on a file as the process closes
    any descriptor of it: km makes no duplicate of such a file that it would close."""
    try:
        key = file_key(fd)
    except OSError:
        return True
    return key in p.posix_locked or len(p.posix_locked) > LOCKED_MAX


def _describe(floor: int) -> dict[int, tuple[int, int, int]]:
    """Each open descriptor below ``floor``: (device, inode, open flags)."""
    import fcntl

    out = {}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= floor:
            continue
        try:
            st = os.fstat(fd)
            out[fd] = (st.st_dev, st.st_ino, fcntl.fcntl(fd, fcntl.F_GETFL))
        except OSError:
            continue  # (the listing's own descriptor)
    return out
