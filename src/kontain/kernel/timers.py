"""The process's POSIX timers, as the monitor keeps them (the calls are syscalls/timer.py).

The guest's timers are km's own host timers.  What the monitor keeps about each: its
signal while it is pending in the program (Linux's one preallocated siginfo, whose
si_overrun counts the expirations meanwhile: ``Timers.arrived``), the overrun count of
the last one taken (timer_getoverrun), and the guest thread a SIGEV_THREAD_ID timer
signals (the host timer signals km's process, and km redirects it).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi.signals import KERNEL_SIGINFO_SIZE
from kontain.abi.structs import sigevent

DELAYTIMER_MAX = 0x7FFFFFFF  # overruns are counted up to INT_MAX

# A timer's signal that km takes from the host and sends itself again (HostSignals.unhold:
# another timer's, taken on the way to the one wanted) arrives as a plain queued signal,
# which the host never drops with its timer.  km marks each such copy, past the fields a
# timer's siginfo has, with a token of its own (no other process can send a copy that
# passes for one) and a sequence number, so that one of a timer deleted or set again
# since is dropped when it arrives, as Linux drops the pending signal of such a timer.
_STAMP_AT = KERNEL_SIGINFO_SIZE - 16  # (the host keeps a queued siginfo's first 48 bytes)
_TOKEN = os.urandom(8)
_sent = [0]  # copies sent (the last one's number)


def stamp(info: bytearray) -> None:
    """Mark ``info``, a timer's siginfo km sends itself again."""
    _sent[0] += 1
    info[_STAMP_AT:_STAMP_AT + 16] = _TOKEN + _sent[0].to_bytes(8, "little")


SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4


def host_sigevent(value: int, signo: int, notify: int) -> bytearray:
    """The host timer's sigevent for the program's: a SIGEV_THREAD_ID one signals the
    process, and the monitor gives its signals to the thread (Timers.target).  (Aimed at
    km's signal thread, they could be taken from the host by that thread only;
    HostSignals.unhold takes them in whichever thread takes the program's signal.)"""
    return bytearray(sigevent.pack(value, signo, SIGEV_SIGNAL if notify == SIGEV_THREAD_ID else notify, 0, b""))


class TimerInfo(bytearray):
    """A POSIX timer's siginfo while it is pending: the timer's one (Linux preallocates
    it), so expirations meanwhile add to its si_overrun instead of queueing more.  The
    pending sets (kernel/signals.py, Pending) tell ``timer`` when it is taken and
    record in ``where`` which of them holds it, for a timer_settime or timer_delete
    that drops it."""

    timer: Timer | None = None
    where = None
    held = None  # the HostSignals that holds the timer's next signals on the host (HostSignals.hold)

    def release(self) -> int:
        """The host's signals of this timer flow again (its signal is taken, dropped or
        discarded): the expirations the host counted meanwhile."""
        host = self.held
        if host is None:
            return 0
        self.held = None
        return host.unhold(self[0], struct.unpack_from("<i", self, 16)[0])

    def fold(self) -> None:
        """The expirations the host counted while this signal was pending become its
        overruns, and the host's signals flow again (its signal is taken; a snapshot:
        a resume has no host to count them)."""
        if self.held is not None:
            total = struct.unpack_from("<i", self, 20)[0] + self.release()
            struct.pack_into("<i", self, 20, min(total, DELAYTIMER_MAX))


class Timer:
    """One timer's signal state: its siginfo while pending in the program, and the
    overrun count of the last one taken (timer_getoverrun); and how it was made (its
    clock, and its sigevent as the program gave it: value, signal, notification, target
    thread; None for a NULL one), which a snapshot needs to make it again."""

    __slots__ = ("queued", "overrun_last", "clock", "event", "since")

    def __init__(self, clock: int = 0, event: tuple | None = None) -> None:
        self.queued: TimerInfo | None = None
        self.overrun_last = 0
        self.clock = clock
        self.event = event
        self.since = _sent[0]  # copies of its signals (``stamp``) sent before its setting are not its

    def taken(self, info: TimerInfo) -> None:
        """Its signal was delivered or taken (Pending.take): later ones queue again."""
        self.queued = None
        info.fold()  # (the host's count meanwhile is this signal's too)
        self.overrun_last = struct.unpack_from("<i", info, 20)[0]

    def drop(self) -> None:
        """timer_settime or timer_delete: a signal of the old setting never arrives."""
        q = self.queued
        if q is not None:
            q.release()
            if q.where is not None:
                q.where.drop(struct.unpack_from("<i", q, 0)[0], q)
        self.queued = None
        self.overrun_last = 0
        self.since = _sent[0]


class Timers:
    """The process's timers: host timer id -> guest thread to signal (0: the process),
    and each timer's signal state."""

    __slots__ = ("targets", "timers", "host")

    def __init__(self) -> None:
        self.targets: dict[int, int] = {}
        self.timers: dict[int, Timer] = {}
        self.host = None  # the process's HostSignals, once it has them (HostSignals.hold)

    def target(self, timerid: int) -> int:
        return self.targets.get(timerid, 0)

    def arrived(self, info: bytes) -> bytes | None:
        """A timer's signal from the host (called with the process lock held): the
        siginfo to make pending, or None when the timer's signal is pending already
        (this expiration, and the host's own overruns, become its overruns)."""
        timerid, overrun = struct.unpack_from("<ii", info, 16)
        timer = self.timers.get(timerid)
        if info[_STAMP_AT:_STAMP_AT + 8] == _TOKEN:  # km's copy (``stamp``)
            if timer is None or int.from_bytes(info[_STAMP_AT + 8:_STAMP_AT + 16], "little") <= timer.since:
                return None  # of a timer deleted or set again since
            info = info[:_STAMP_AT] + bytes(16) + info[_STAMP_AT + 16:]
        elif timer is None:
            return info  # not a timer of this program's (sent with rt_sigqueueinfo)
        q = timer.queued
        if q is not None:
            total = struct.unpack_from("<i", q, 20)[0] + 1 + max(overrun, 0)
            struct.pack_into("<i", q, 20, min(total, DELAYTIMER_MAX))
            if q.held is None and self.host is not None:
                q.held = self.host
                self.host.hold(q[0])
            return None
        q = timer.queued = TimerInfo(info)
        q.timer = timer
        return q

    def save(self) -> dict:
        """The bookkeeping as plain data (the host timers themselves are km's: they go on;
        a timer's pending signal is saved with the pending set that holds it)."""
        return {"targets": dict(self.targets), "overruns": {t: v.overrun_last for t, v in self.timers.items()},
                "made": {t: (v.clock, v.event) for t, v in self.timers.items()}}

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back, before the pending sets (Pending.restore)."""
        self.targets = dict(state["targets"])
        self.timers = {}
        made = state.get("made") or {}
        for timerid, overrun in state["overruns"].items():
            timer = self.timers[timerid] = Timer(*made.get(timerid, (0, None)))
            timer.overrun_last = overrun

    def pending_again(self, data: bytes, where) -> bytes:
        """A timer's siginfo as a restored pending set holds it again: the timer's own
        (a plain siginfo when the timer is gone)."""
        timer = self.timers.get(struct.unpack_from("<i", data, 16)[0])
        if timer is None:
            return bytes(data)
        q = TimerInfo(data)
        q.timer, q.where = timer, where
        timer.queued = q
        return q

    def delete_all(self) -> None:
        """execve: the program's timers go away."""
        for timerid in self.targets:
            native.syscall(226, timerid)  # timer_delete
            self.timers[timerid].drop()
        self.targets.clear()
        self.timers.clear()
