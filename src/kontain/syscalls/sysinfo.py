"""Resource limits: the ones the monitor must keep for the guest rather than give to
the host process (which is also the monitor's)."""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EFAULT, EINVAL, EPERM
from kontain.abi.structs import rlimit, rusage
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, s32, u32

SYS_getrlimit, SYS_setrlimit, SYS_prlimit64 = 97, 160, 302
# Kept by the monitor: NOFILE (the monitor's descriptors live above the guest's limit),
# AS and DATA (the host process holds the guest window and the monitor's own memory),
# SIGPENDING (the host's would also bound the real-time signal that interrupts a vCPU
# thread's blocking call: kernel/signals.py _Queued, which enforces the program's).
EMULATED = (F.RLIMIT_NOFILE, F.RLIMIT_AS, F.RLIMIT_DATA, F.RLIMIT_SIGPENDING)
INF = F.RLIM_INFINITY


def _get(t, resource: int) -> tuple[int, int]:
    if resource == F.RLIMIT_NOFILE:
        return t.fds.soft, t.fds.hard
    return t.process.rlimits.get(resource, (INF, INF))


def _set(t, resource: int, soft: int, hard: int) -> None:
    if soft > hard:
        raise GuestError(EINVAL)
    if resource == F.RLIMIT_NOFILE:
        t.fds.set_nofile(soft, hard)
        return
    old_hard = _get(t, resource)[1]
    if hard > old_hard and not native.capable(F.CAP_SYS_RESOURCE):
        raise GuestError(EPERM)
    t.process.rlimits[resource] = (soft, hard)


def prlimit64(t, pid, resource, new, old, *_):
    pid, resource = s32(pid), u32(resource)
    if pid not in (0, os.getpid()) or resource not in EMULATED:
        return native.syscall(SYS_prlimit64, pid, resource, ptr(t, new, 16), ptr(t, old, 16))
    if resource >= F.RLIM_NLIMITS:
        raise GuestError(EINVAL)
    value = rlimit.unpack(t.mem.read(new, 16)) if new else None
    if old:
        t.mem.write(old, rlimit.pack(*_get(t, resource)))
    if value is not None:
        _set(t, resource, *value)
    return 0


def getrlimit(t, resource, rlim, *_):
    """As Linux: a bad resource is EINVAL, then the limit is written (EFAULT, for NULL too)."""
    if u32(resource) >= F.RLIM_NLIMITS:
        raise GuestError(EINVAL)
    if not rlim:
        raise GuestError(EFAULT)
    return prlimit64(t, 0, resource, 0, rlim)


def setrlimit(t, resource, rlim, *_):
    if not rlim:
        raise GuestError(EFAULT)
    return prlimit64(t, 0, resource, rlim, 0)



# -- getrusage ------------------------------------------------------------------------
#
# The host counts the monitor's memory in ru_maxrss, the peak resident set of the km
# process (and of its children, each a km): km takes its own resident memory out of it
# (kernel/procfs.py, monitor_rss), so that a program that touches 100 MiB reads about
# 100 MiB, for itself and for its waited-for children.  The times still count the
# monitor's (docs/known-issues.md).
SYS_getrusage = 98
_MAXRSS = rusage.offsets["ru_maxrss"]


def getrusage(t, who, usage, *_):
    buf = bytearray(rusage.size)
    r = native.syscall(SYS_getrusage, s32(who), native.address_of(buf))
    if r < 0:
        return r
    program_maxrss(t, buf)
    t.mem.write(usage, bytes(buf))
    return 0


def program_maxrss_at(t, addr: int) -> None:
    """The same for a struct rusage a host call wrote in guest memory (wait4, waitid)."""
    buf = bytearray(t.mem.read(addr + _MAXRSS, 8))
    program_maxrss(t, buf, -_MAXRSS)
    t.mem.write(addr + _MAXRSS, bytes(buf))


def program_maxrss(t, buf: bytearray, offset: int = 0) -> None:
    """A struct rusage the host filled (at ``offset`` in ``buf``): ru_maxrss without the
    monitor's memory."""
    at = offset + _MAXRSS
    maxrss = int.from_bytes(buf[at:at + 8], "little", signed=True)
    if maxrss > 0:
        struct.pack_into("<q", buf, at, max(maxrss - t.process.procfs.monitor_rss(), 0))
