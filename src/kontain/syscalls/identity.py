"""Users and groups: all pass through (the host process is the program's identity);
only the group list needs its length turned into a buffer size."""

from __future__ import annotations

from kontain import native
from kontain.abi.errno import EINVAL
from kontain.errors import GuestError
from kontain.syscalls.common import s32

SYS_getgroups, SYS_setgroups = 115, 116
NGROUPS_MAX = 65536


def getgroups(t, size, lst, *_):
    size = s32(size)
    if size < 0:
        raise GuestError(EINVAL)
    return native.syscall(SYS_getgroups, size, t.mem.host(lst, 4 * size) if size else 0)


def setgroups(t, size, lst, *_):
    size = s32(size)
    if size < 0 or size > NGROUPS_MAX:
        raise GuestError(EINVAL)
    return native.syscall(SYS_setgroups, size, t.mem.host(lst, 4 * size) if size else 0)
