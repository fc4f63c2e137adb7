"""POSIX per-process timers: timer_create and its family.

The guest's timers are km's own host timers (km makes none of its own, so the timer ids
the host hands out are the guest's).  A timer signal reaches km like any other signal and
the signal thread forwards it with the host's siginfo (SI_TIMER, si_timerid, si_overrun,
si_value).

What needs the monitor:

- overruns.  The host counts an overrun when the timer expires while its signal is still
  pending on the host, which km's signal thread never leaves it for long; the program's
  signal is pending in km.  So km does what Linux does with the timer's one siginfo: while
  it is pending in the program, a later expiration adds to its si_overrun instead of
  queueing another (``Timers.arrived``); when it is taken, that count is what
  timer_getoverrun reports (``Timer.taken``); timer_settime starts the count again and,
  as Linux since 6.13, drops a signal of the old setting that is still pending.
- SIGEV_THREAD_ID names a guest thread, whose host thread keeps every forwarded signal
  blocked, so the host timer signals the process and the monitor redirects its signals
  to the guest thread (``Timers.target``, kernel/timers.py's host_sigevent).
- execve deletes the timers, which the host does not do for an exec that happens in place.
"""

from __future__ import annotations

from kontain import native
from kontain.abi import signals as S
from kontain.abi.errno import EINVAL, EPERM
from kontain.abi.flags import ITIMER_PROF, ITIMER_VIRTUAL
from kontain.abi.structs import sigevent
from kontain.abi.syscalls import NR
from kontain.errors import GuestError
from kontain.kernel.timers import SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID, Timer, host_sigevent
from kontain.syscalls.common import passthrough, ptr, s32

# the signal a timer cannot carry: km's kick
_REFUSED = (S.SIGRTMAX,)


def timer_create(t, clockid, sevp, timerid_ptr, *_):
    p = t.process
    host_ev = event = None
    target = 0
    if sevp:  # (NULL: SIGEV_SIGNAL with SIGALRM and the timer id as value, as the host does)
        value, signo, notify, tid, _ = sigevent.unpack(t.mem.read(sevp, sigevent.size))
        notify = s32(notify)
        if notify == SIGEV_THREAD:
            # the C library's business (a thread it starts), the kernel's a signal: the
            # raw call takes it as SIGEV_SIGNAL (LTP's timer_create01 makes it so)
            notify = SIGEV_SIGNAL
        if notify not in (SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID):
            raise GuestError(_clock_first(clockid))
        if notify != SIGEV_NONE and (signo < 1 or signo > S.NSIG or signo in _REFUSED):
            raise GuestError(_clock_first(clockid))  # see known-issues.md for the refused one
        if notify == SIGEV_THREAD_ID:
            if tid not in p.tasks:
                raise GuestError(_clock_first(clockid))
            target = tid
        host_ev = host_sigevent(value, signo, notify)
        event = (value, signo, notify, target)
    r = native.syscall(222, s32(clockid), native.address_of(host_ev) if host_ev else 0, ptr(t, timerid_ptr, 4))
    if r == 0:
        timerid = int.from_bytes(t.mem.read(timerid_ptr, 4), "little", signed=True)
        p.timers.targets[timerid] = target
        p.timers.timers[timerid] = Timer(s32(clockid), event)
    return r


_NONE_EVENT = bytearray(sigevent.pack(0, 0, SIGEV_NONE, 0, b""))


def _clock_first(clockid: int) -> int:
    """The errno of a timer_create whose sigevent km refuses (EINVAL): Linux looks at the
    clock before the sigevent (EINVAL, EOPNOTSUPP) and makes the timer (EAGAIN), so the
    host is asked with a sigevent it takes.  (EPERM, an alarm clock without
    CAP_WAKE_ALARM, comes after the sigevent on Linux.)"""
    made = bytearray(4)
    r = native.syscall(222, s32(clockid), native.address_of(_NONE_EVENT), native.address_of(made))
    if r == 0:
        native.syscall(226, int.from_bytes(made, "little", signed=True))  # timer_delete
    return -r if r < 0 and r != -EPERM else EINVAL


SYS_timer_settime, SYS_timer_delete = NR["timer_settime"], NR["timer_delete"]
_timer_getoverrun = passthrough(225, "i")
_setitimer = passthrough(38, "i p32 p32")
_alarm = passthrough(37, "x")


def setitimer(t, which, new, old, *_):
    """setitimer, then a SIGALRM (SIGVTALRM, SIGPROF) the old setting already sent is
    pending in the program before the call returns, as on Linux, where it was queued when
    the timer expired: a program that turns its timer off and then restores SIG_DFL was
    killed by a signal still in flight from the host (CPython's test_eintr, ~1 run in 14;
    an interval of 100 us, every run)."""
    r = _setitimer(t, which, new, old)
    t.process.host_signals.sync()
    if r == 0 and new and s32(which) in (ITIMER_VIRTUAL, ITIMER_PROF):
        t.process.cpu_timer_set()
    return r


def alarm(t, seconds, *_):
    """alarm, with setitimer's care for a SIGALRM already sent."""
    r = _alarm(t, seconds)
    t.process.host_signals.sync()
    return r


def timer_delete(t, timerid, *_):
    p = t.process
    with p.host_signals.posting, p.lock:  # (as timer_settime's)
        r = native.syscall(SYS_timer_delete, s32(timerid))
        if r == 0:
            p.timers.targets.pop(s32(timerid), None)
            timer = p.timers.timers.pop(s32(timerid), None)
            if timer is not None:
                timer.drop()
    return r


def timer_settime(t, timerid, flags, new, old, *_):
    """The host call and the drop of a signal of the old setting pending in the program
    are one step, with no host signal in flight (HostSignals.posting) and the process
    lock held: a signal of the old setting the signal thread had taken from the host is
    the program's before the drop, and one of the new setting after it (a timer set to
    expire at once lost its first signal when the drop came after the call, and the
    program read the overrun count of a later one: LTP timer_settime03).  The host drops
    a signal of the old setting it still holds (Linux 6.13 and later)."""
    p = t.process
    host_new, host_old = ptr(t, new, 32), ptr(t, old, 32)
    with p.host_signals.posting, p.lock:
        r = native.syscall(SYS_timer_settime, s32(timerid), s32(flags), host_new, host_old)
        timer = p.timers.timers.get(s32(timerid))
        if r == 0 and timer is not None:
            timer.drop()
    return r


def timer_getoverrun(t, timerid, *_):
    r = _timer_getoverrun(t, timerid)  # (EINVAL for a timer that does not exist)
    timer = t.process.timers.timers.get(s32(timerid))
    return timer.overrun_last if r >= 0 and timer is not None else r
