"""A snapshot's timers (kernel/snapshot.py, kernel/resume.py): setitimer's three and the
program's POSIX timers, taken along with the time each had left and its interval, and
armed again on resume, counted from then.

The guest's timers are km's host timers (syscalls/timer.py), so the host tells what is
left (getitimer, timer_gettime); km knows how each POSIX timer was made (its clock and
sigevent: kernel/timers.py).  A program knows its POSIX timers by the ids the host gave
them, so a resume makes each under the same id (prctl PR_TIMER_CREATE_RESTORE_IDS,
which recent kernels have: where it is missing, such a snapshot is refused at resume
time).  A timer's signal that is pending is part of the signal state (its siginfo,
overruns included), saved already.

Refused at snapshot time: a POSIX timer on a clock a resume cannot arm again the same way
(a thread's CPU time, another process's, the alarm clocks), and POSIX timers on a kernel
without PR_TIMER_CREATE_RESTORE_IDS (its resumes could not give them their ids back).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.structs import itimerspec, itimerval
from kontain.kernel.snapfile import Refused, SnapshotError
from kontain.kernel.timers import SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD_ID, Timer, host_sigevent

_CLOCKS = (F.CLOCK_REALTIME, F.CLOCK_MONOTONIC, F.CLOCK_PROCESS_CPUTIME_ID, F.CLOCK_BOOTTIME, F.CLOCK_TAI)
_NOTIFY = (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID)  # (the only ones km makes)
_CLOCK_NAMES = {3: "a thread's CPU time", 8: "CLOCK_REALTIME_ALARM", 9: "CLOCK_BOOTTIME_ALARM"}
_MAX_TIMERS = 1 << 16


def describe(p) -> dict:
    """The program's timers as plain data: ``itimers`` (ITIMER_REAL, VIRTUAL, PROF: each
    (interval, value) in microseconds) and ``posix`` (id -> clock, sigevent, interval,
    value, each time (seconds, nanoseconds)).  Refused for a timer that cannot come back."""
    itimers = []
    for which in range(3):
        buf = bytearray(itimerval.size)
        if native.syscall(36, which, native.address_of(buf)) < 0:  # getitimer
            raise Refused(f"snapshot: cannot read the program's interval timer {which} (getitimer)")
        isec, iusec, vsec, vusec = struct.unpack("<4q", buf)
        itimers.append((isec * 1_000_000 + iusec, vsec * 1_000_000 + vusec))
    posix = {}
    if p.timers.timers and native.syscall(157, F.PR_TIMER_CREATE_RESTORE_IDS, F.PR_TIMER_CREATE_RESTORE_IDS_GET,
                                          0, 0, 0) < 0:
        raise Refused("snapshot: the program has POSIX timers, and this kernel cannot make them again under their "
                      "ids (no prctl PR_TIMER_CREATE_RESTORE_IDS)")
    for timerid, timer in sorted(p.timers.timers.items()):
        if timer.clock not in _CLOCKS:
            what = _CLOCK_NAMES.get(timer.clock, f"clock {timer.clock}")
            raise Refused(f"snapshot: the program's POSIX timer {timerid} counts {what}, which a resume cannot "
                          "count the same way")
        spec = bytearray(itimerspec.size)
        if native.syscall(224, timerid, native.address_of(spec)) < 0:  # timer_gettime
            raise Refused(f"snapshot: cannot read the program's POSIX timer {timerid} (timer_gettime)")
        isec, insec, vsec, vnsec = struct.unpack("<4q", spec)
        posix[timerid] = (timer.clock, timer.event, (isec, insec), (vsec, vnsec))
    with p.lock:  # (a pending signal whose timer's next ones wait on the host: their count is its, saved with it)
        for timer in p.timers.timers.values():
            if timer.queued is not None:
                timer.queued.fold()
    return {"itimers": itimers, "posix": posix}


def restore(p, saved, tids: set, path: str) -> None:
    """The timers of ``describe`` armed again (after ``Timers.restore``: each POSIX timer
    gets its clock and sigevent back for a later snapshot), before any thread runs;
    ``tids``: the program's threads (a timer may signal one)."""
    if saved is None and not p.timers.targets:  # (a snapshot of km before timers were taken along)
        return
    if type(saved) is not dict or type(saved.get("itimers")) is not list or len(saved["itimers"]) != 3 or \
            type(saved.get("posix")) is not dict or len(saved["posix"]) > _MAX_TIMERS:
        raise SnapshotError(f"{path}: not a km snapshot, or a damaged one (its timers)")
    for which, entry in enumerate(saved["itimers"]):
        if not (type(entry) is tuple and len(entry) == 2 and all(type(x) is int and 0 <= x < 1 << 50 for x in entry)):
            raise SnapshotError(f"{path}: not a km snapshot, or a damaged one (its interval timers)")
        interval, value = entry
        if value:
            buf = bytearray(struct.pack("<4q", *divmod(interval, 1_000_000), *divmod(value, 1_000_000)))
            if native.syscall(38, which, native.address_of(buf), 0) < 0:  # setitimer
                raise SnapshotError(f"{path}: cannot arm the program's interval timer {which} again")
    posix = saved["posix"]
    if set(posix) != set(p.timers.targets):
        raise SnapshotError(f"{path}: not a km snapshot, or a damaged one (its POSIX timers)")
    if not posix:
        return
    if native.syscall(157, F.PR_TIMER_CREATE_RESTORE_IDS, F.PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) < 0:
        raise SnapshotError(f"{path}: the program has POSIX timers, and this kernel cannot make them again under "
                            "their ids (prctl PR_TIMER_CREATE_RESTORE_IDS): resume it on a newer kernel")
    try:
        for timerid, entry in sorted(posix.items()):
            _make(p, timerid, entry, tids, path)
    finally:
        native.syscall(157, F.PR_TIMER_CREATE_RESTORE_IDS, F.PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0)


def _make(p, timerid, entry, tids: set, path: str) -> None:
    bad = SnapshotError(f"{path}: not a km snapshot, or a damaged one (POSIX timer {timerid})")
    if type(timerid) is not int or not 0 <= timerid < 1 << 31 or type(entry) is not tuple or len(entry) != 4:
        raise bad
    clock, event, interval, value = entry
    if clock not in _CLOCKS or not all(type(t) is tuple and len(t) == 2 and type(t[0]) is int and
                                       type(t[1]) is int and 0 <= t[0] < 1 << 40 and 0 <= t[1] < 1_000_000_000
                                       for t in (interval, value)):
        raise bad
    host_ev = None
    if event is not None:
        if not (type(event) is tuple and len(event) == 4 and all(type(x) is int for x in event)):
            raise bad
        sival, signo, notify, target = event
        if notify not in _NOTIFY or not 0 <= sival < 1 << 64 or not 0 <= signo <= 64 or \
                target != p.timers.targets[timerid]:
            raise bad
        if notify == SIGEV_THREAD_ID and target not in tids:  # SIGEV_THREAD_ID: km redirects its signals to the thread
            raise bad
        host_ev = host_sigevent(sival, signo, notify)
    made = bytearray(struct.pack("<i", timerid))
    r = native.syscall(222, clock, native.address_of(host_ev) if host_ev is not None else 0,
                       native.address_of(made))  # timer_create, under the id given
    if r < 0 or struct.unpack("<i", made)[0] != timerid:
        raise SnapshotError(f"{path}: cannot make the program's POSIX timer {timerid} again "
                            f"({os.strerror(-r) if r < 0 else 'another id'})")
    if value != (0, 0):
        spec = bytearray(struct.pack("<4q", *interval, *value))
        if native.syscall(223, timerid, 0, native.address_of(spec), 0) < 0:  # timer_settime
            raise SnapshotError(f"{path}: cannot arm the program's POSIX timer {timerid} again")
    timer = p.timers.timers.get(timerid)
    if timer is None:
        timer = p.timers.timers[timerid] = Timer()
    timer.clock, timer.event = clock, event
