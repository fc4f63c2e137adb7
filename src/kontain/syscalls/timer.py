"""POSIX per-process timers: timer_create and its family.

The guest's timers are km's own host timers (km makes none of its own, so the timer ids
the host hands out are the guest's).  A timer signal reaches km like any other signal and
the signal thread forwards it with the host's siginfo (SI_TIMER, si_timerid, si_overrun,
si_value), which is exactly what the program would have received.

Two things need the monitor: SIGEV_THREAD_ID names a guest thread, whose host thread
keeps every forwarded signal blocked, so the host timer is aimed at the signal thread and
the monitor redirects its signals to the guest thread (``Timers.target``); and execve
deletes the timers, which the host does not do for an exec that happens in place.
"""

from __future__ import annotations

import time

from kontain import native
from kontain.abi import signals as S
from kontain.abi.errno import EINVAL
from kontain.abi.structs import sigevent
from kontain.errors import GuestError
from kontain.syscalls.common import passthrough, ptr, s32

SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
# the signal a timer cannot carry: km's kick
_REFUSED = (S.SIGRTMAX,)


class Timers:
    """The process's timers: host timer id -> guest thread to signal (0: the process)."""

    __slots__ = ("targets",)

    def __init__(self) -> None:
        self.targets: dict[int, int] = {}

    def target(self, timerid: int) -> int:
        return self.targets.get(timerid, 0)

    def delete_all(self) -> None:
        """execve: the program's timers go away."""
        for timerid in self.targets:
            native.syscall(226, timerid)  # timer_delete
        self.targets.clear()


def timer_create(t, clockid, sevp, timerid_ptr, *_):
    p = t.process
    host_ev = None
    target = 0
    if sevp:  # (NULL: SIGEV_SIGNAL with SIGALRM and the timer id as value, as the host does)
        value, signo, notify, tid, _ = sigevent.unpack(t.mem.read(sevp, sigevent.size))
        notify = s32(notify)
        if notify not in (SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID):
            raise GuestError(EINVAL)  # (SIGEV_THREAD is the C library's business)
        if notify != SIGEV_NONE and (signo < 1 or signo > S.NSIG or signo in _REFUSED):
            raise GuestError(EINVAL)  # see known-issues.md for the refused one
        if notify == SIGEV_THREAD_ID:
            if tid not in p.tasks:
                raise GuestError(EINVAL)
            while not p.host_signals.tid:  # (the signal thread is just starting)
                time.sleep(0.0001)
            target, tid = tid, p.host_signals.tid  # the host timer signals the signal thread
        host_ev = bytearray(sigevent.pack(value, signo, notify, tid, b""))
    r = native.syscall(222, s32(clockid), native.address_of(host_ev) if host_ev else 0, ptr(t, timerid_ptr, 4))
    if r == 0:
        timerid = int.from_bytes(t.mem.read(timerid_ptr, 4), "little", signed=True)
        p.timers.targets[timerid] = target
    return r


_timer_delete = passthrough(226, "i")


def timer_delete(t, timerid, *_):
    r = _timer_delete(t, timerid)
    if r == 0:
        t.process.timers.targets.pop(s32(timerid), None)
    return r
