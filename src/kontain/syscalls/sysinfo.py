"""Resource limits: the ones the monitor must keep for the guest rather than give to
the host process (which is also the monitor's)."""

from __future__ import annotations

import os

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EFAULT, EINVAL, EPERM
from kontain.abi.structs import rlimit
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, s32, u32

SYS_getrlimit, SYS_setrlimit, SYS_prlimit64 = 97, 160, 302
# Kept by the monitor: NOFILE (the monitor's descriptors live above the guest's limit),
# AS and DATA (the host process holds the guest window and the monitor's own memory),
# SIGPENDING (the host's limit would stop the real-time signal that interrupts a vCPU
# thread's blocking call: at 0, a program's blocking read was never interrupted).
EMULATED = (F.RLIMIT_NOFILE, F.RLIMIT_AS, F.RLIMIT_DATA, F.RLIMIT_SIGPENDING)
INF = F.RLIM_INFINITY


def _get(t, resource: int) -> tuple[int, int]:
    if resource == F.RLIMIT_NOFILE:
        return t.fds.soft, t.fds.hard
    if resource not in t.process.rlimits:  # what km was given, and the program inherited
        import resource as host

        return tuple(v if v != host.RLIM_INFINITY else INF for v in host.getrlimit(resource))
    return t.process.rlimits[resource]


def _set(t, resource: int, soft: int, hard: int) -> None:
    if soft > hard:
        raise GuestError(EINVAL)
    if resource == F.RLIMIT_NOFILE:
        t.fds.set_nofile(soft, hard)
        return
    old_hard = _get(t, resource)[1]
    if hard > old_hard and os.geteuid() != 0:
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
    return prlimit64(t, 0, resource, 0, rlim)


def setrlimit(t, resource, rlim, *_):
    if not rlim:
        raise GuestError(EFAULT)
    return prlimit64(t, 0, resource, rlim, 0)

