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
# AS and DATA (the host process holds the guest window and the monitor's own memory).
EMULATED = (F.RLIMIT_NOFILE, F.RLIMIT_AS, F.RLIMIT_DATA)
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

