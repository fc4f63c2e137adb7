"""Signals: dispositions, pending sets, delivery to handlers, and the host's signals.

The program's signals are the monitor's to deliver.  It keeps the per-process
sigactions and shared pending set, and per-thread masks and pending sets (in Task), and
delivers a signal by writing Linux's rt_sigframe on the program's stack (or sigaltstack)
and pointing the thread at its handler (``deliver``); rt_sigreturn undoes it
(``sigreturn``).  Delivery happens where Linux does it: on the way back to user mode
after a syscall, after a fault, or when a thread is kicked out of KVM_RUN.

Signals from outside reach km as host signals.  Every host thread of km blocks them; one
monitor thread collects them with rt_sigtimedwait and posts them to the program
(``HostSignals``).  A thread that must notice a signal now (blocked in a host call, or
running guest code) is kicked: its flag and ``immediate_exit`` on its vCPU are set, and
SIG_KICK (the last real-time signal, reserved for km) interrupts whatever it is doing.
A kick is never lost and never repeated: KVM_RUN does not start with immediate_exit
set, and a blocking host call does not start with the flag set (native.blocking).  SIGSEGV,
SIGBUS, SIGILL, SIGFPE and SIGTRAP sent from outside are forwarded like the others:
blocking them costs km nothing, because a fault of km itself forces its signal through
a blocked mask (the kernel's force_sig_fault unblocks it and takes the default action).

A program that dies of a signal makes km print one line and then end by the same signal,
so that its parent sees exactly what the program's parent would (128+n in a shell).
"""

from __future__ import annotations

import _signal as _host  # the C module: `signal` imports enum (~5 ms)
import _thread
import os
import resource
import struct
import sys

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EINVAL
from kontain.abi.signals import siginfo
from kontain.abi.structs import SIGINFO_SIZE, k_sigaction
from kontain.abi.syscalls import NR
from kontain.errors import GuestError, say
from kontain.kernel.timers import TimerInfo, stamp

SIGSET_SIZE = 8
SIG_KICK = S.SIGRTMAX  # reserved for the monitor
# synchronous signals first, as Linux's next_signal picks them
SYNCHRONOUS = (1 << (S.SIGSEGV - 1)) | (1 << (S.SIGBUS - 1)) | (1 << (S.SIGILL - 1)) | (1 << (S.SIGTRAP - 1)) | \
    (1 << (S.SIGFPE - 1)) | (1 << (S.SIGSYS - 1))
# every signal but SIGKILL, SIGSTOP and SIG_KICK reaches the program through the signal thread
FORWARDED = [s for s in range(1, S.NSIG) if s not in (S.SIGKILL, S.SIGSTOP, SIG_KICK)]
_FORWARDED_MASK = sum(1 << (s - 1) for s in FORWARDED)
_RAISED_BY_KM = (1 << (S.SIGPIPE - 1)) | (1 << (S.SIGXFSZ - 1))  # the host's copies stay on the thread (collect)


def sigbit(sig: int) -> int:
    return 1 << (sig - 1)


class SignalActions:
    """The per-process table of sigactions (kernel layout: handler, flags, restorer, mask)."""

    def __init__(self) -> None:
        self._table: list[tuple[int, int, int, int]] = [(S.SIG_DFL, 0, 0, 0)] * (S.NSIG + 1)

    def get(self, sig: int) -> tuple[int, int, int, int]:
        return self._table[sig]

    def handler(self, sig: int) -> int:
        return self._table[sig][0]

    def set(self, sig: int, action: tuple[int, int, int, int]) -> None:
        if sig < 1 or sig > S.NSIG or sig in (S.SIGKILL, S.SIGSTOP):
            raise GuestError(EINVAL)
        handler, flags, restorer, mask = action
        self._table[sig] = (handler, flags, restorer, mask & ~S.UNBLOCKABLE)
        if sig == S.SIGCHLD:
            mirror_sigchld(handler, flags)

    def ignored(self, sig: int) -> bool:
        """Would a signal arriving now be discarded (ignored, explicitly or by default)?"""
        h = self._table[sig][0]
        return h == S.SIG_IGN or (h == S.SIG_DFL and S.default_action(sig) in (S.IGNORE, S.CONT))

    def inherit(self, ignored: list[int]) -> None:
        """Start with the signals km's own caller ignored ignored, as execve would."""
        for sig in ignored:
            self._table[sig] = (S.SIG_IGN, 0, 0, 0)

    def reset_for_exec(self) -> None:
        """Caught signals go back to SIG_DFL (execve); ignored ones stay ignored."""
        for sig in range(1, S.NSIG + 1):
            handler = self._table[sig][0]
            self._table[sig] = (S.SIG_IGN if handler == S.SIG_IGN else S.SIG_DFL, 0, 0, 0)
        mirror_sigchld(self._table[S.SIGCHLD][0], 0)

    def save(self) -> list[tuple[int, int, int, int]]:
        return list(self._table)

    def restore(self, state: list[tuple[int, int, int, int]]) -> None:
        if len(state) != S.NSIG + 1:
            raise ValueError("a signal action table of the wrong size")
        self._table = [tuple(a) for a in state]  # type: ignore[misc]
        mirror_sigchld(self._table[S.SIGCHLD][0], self._table[S.SIGCHLD][1])

    @staticmethod
    def read(mem, addr: int) -> tuple[int, int, int, int]:
        return k_sigaction.unpack(mem.read(addr, k_sigaction.size))

    @staticmethod
    def pack(action: tuple[int, int, int, int]) -> bytes:
        return k_sigaction.pack(*action)


# km's own bound on the siginfos one process keeps queued, whatever RLIMIT_SIGPENDING
# says (Linux lets kill() and the kernel pass that limit; km's memory is not the guest's
# to fill).  Past it a signal is queued as when Linux's allocation fails: see Pending.add.
QUEUE_MAX = 1 << 16


class _Queued:
    """How many siginfos the process holds queued (its pending sets together), as
    Linux's per-user sigpending count that RLIMIT_SIGPENDING limits.  km counts one
    process's signals only: each guest process is a km of its own.  Guarded by the
    process lock, like the pending sets."""

    count = 0
    process = None  # the Process: its RLIMIT_SIGPENDING is the monitor's record (syscalls/sysinfo.py)

    def take(self, override: bool) -> bool:
        """Room for one more siginfo (Linux's __sigqueue_alloc)?  ``override``: the
        signal may pass RLIMIT_SIGPENDING (a standard signal from kill() or the kernel).
        The limit is the program's, which km keeps rather than give to its host process:
        there it would also bound SIG_KICK, the real-time signal that interrupts a
        blocking host call (at 0, a program's blocked read was never interrupted)."""
        limit = QUEUE_MAX
        if not override:
            soft = self.process.rlimits[F.RLIMIT_SIGPENDING][0] if self.process else \
                resource.getrlimit(resource.RLIMIT_SIGPENDING)[0]
            if 0 <= soft < limit:
                limit = soft
        if self.count >= limit:
            return False
        self.count += 1
        return True


QUEUED = _Queued()


def _counted(info: bytes) -> bool:
    """A POSIX timer's siginfo is the timer's own, never allocated or counted (Linux
    preallocates it with the timer)."""
    return info[8:12] != _SI_TIMER


_SI_TIMER = S.SI_TIMER.to_bytes(4, "little", signed=True)
_SI_USER = S.SI_USER.to_bytes(4, "little", signed=True)


class Pending:
    """A pending set: a bitmask, plus the siginfo of each pending signal (real-time
    signals queue; a standard signal pending twice is one signal)."""

    __slots__ = ("mask", "infos", "held", "host")

    def __init__(self) -> None:
        self.mask = 0
        self.infos: dict[int, list[bytes]] = {}
        # the process's set: standard signals that came again from the host while pending
        # here, left there (``hold_standard``), and the HostSignals that holds them
        self.held = 0
        self.host: HostSignals | None = None

    def hold_standard(self, sig: int) -> None:
        """A standard ``sig`` came from the host while pending here, and is one signal
        with it: the host keeps the next ones (it merges them itself) until this one is
        taken, when they are dropped (HostSignals.drop_held).  Taken from the host at
        once, a 1 us interval timer's SIGALRM, blocked, kept the signal thread on a CPU
        and each of the program's calls waiting for the interpreter lock."""
        bit = sigbit(sig)
        if self.host is not None and not self.held & bit and sig not in _NEVER_HELD:
            self.held |= bit
            self.host.hold(sig)

    def _gone(self, sig: int) -> None:
        """``sig`` is pending here no more: what the host held of it came meanwhile."""
        bit = sigbit(sig)
        self.mask &= ~bit
        if self.held & bit:
            self.held &= ~bit
            self.host.drop_held(sig)

    def add(self, sig: int, info: bytes) -> bool:
        """Make ``sig`` pending with ``info``, as Linux's __send_signal_locked: False when
        the sender must fail with EAGAIN (a real-time signal finding no room for its
        siginfo, unless kill() sent it).  A signal that finds no room otherwise is
        pending without its siginfo, as on Linux when the allocation fails."""
        bit = sigbit(sig)
        if sig < S.SIGRTMIN and self.mask & bit:
            return True  # a standard signal pending already: one signal (legacy_queue)
        if type(info) is TimerInfo:
            info.where = self
        if not _counted(info) or QUEUED.take(sig < S.SIGRTMIN and int.from_bytes(info[8:12], "little",
                                                                                 signed=True) >= 0):
            self.infos.setdefault(sig, []).append(info)
        elif sig >= S.SIGRTMIN and info[8:12] != _SI_USER:
            return False
        self.mask |= bit
        return True

    def take(self, sig: int) -> bytes:
        """The siginfo of the next ``sig`` (Linux's collect_signal: a signal pending
        without one gets SI_USER, no sender); the bit stays while more are queued."""
        q = self.infos.get(sig)
        if q:
            info = q.pop(0)
            if type(info) is TimerInfo:
                info.timer.taken(info)
                info = bytes(info)
            elif _counted(info):
                QUEUED.count -= 1
        else:
            info = siginfo(sig, S.SI_USER)
        if not q:
            self._gone(sig)
            self.infos.pop(sig, None)
        return info

    def discard(self, sig: int) -> None:
        self._gone(sig)
        for info in self.infos.pop(sig, ()):
            if type(info) is TimerInfo:
                info.timer.queued = None
                info.release()
            elif _counted(info):
                QUEUED.count -= 1

    def save(self) -> dict:
        """The set as plain data: a timer's siginfo is marked, for ``restore`` to give it
        back to its timer."""
        return {"mask": self.mask,
                "infos": {sig: [(bytes(i), type(i) is TimerInfo) for i in q] for sig, q in self.infos.items()}}

    def since(self, saved: dict) -> list[tuple[int, bytes]]:
        """What this set holds beyond ``saved``, its ``save()`` of earlier: the signals
        posted since, as (signal, siginfo), in their order.  A paused program takes none
        of its signals, so these are what a restore in place would otherwise discard
        (Process.restore: one posted between --pause-check's save and its restore)."""
        posted = []
        had = saved["infos"]
        for sig, q in self.infos.items():
            posted += [(sig, bytes(info)) for info in q[len(had.get(sig, ())):]]
        mask = self.mask & ~saved["mask"]
        while mask:
            sig = (mask & -mask).bit_length()
            mask &= mask - 1
            if sig not in self.infos:  # (pending without its siginfo: Pending.add)
                posted.append((sig, siginfo(sig, S.SI_USER)))
        return posted

    def restore(self, state: dict, timers) -> None:
        """Take ``save()``'s data back; ``timers`` (kernel/timers.py) are the process's,
        restored already: a timer's pending siginfo is its own again.  The process's
        count of queued siginfos follows."""
        self.discard_all()
        self.mask = state["mask"]
        for sig, q in state["infos"].items():
            infos = self.infos[sig] = []
            for data, is_timer in q:
                if is_timer:
                    info = timers.pending_again(data, self)
                else:
                    info = bytes(data)
                    if _counted(info):
                        QUEUED.count += 1
                infos.append(info)

    def discard_all(self) -> None:
        for sig in list(self.infos):
            self.discard(sig)
        self.mask = 0

    def drop(self, sig: int, info: TimerInfo) -> None:
        """A timer's pending siginfo goes (the timer was set again, or deleted)."""
        q = self.infos.get(sig, [])
        if info in q:
            q.remove(info)
        if not q:
            self._gone(sig)
            self.infos.pop(sig, None)


# job control's, whose arrival km acts on at once (kernel/jobctl.py), and SIGURG, which
# also carries `km snapshot PID`'s requests (Process.post)
_NEVER_HELD = (S.SIGCONT, S.SIGTSTP, S.SIGTTIN, S.SIGTTOU, S.SIGURG)


def pick(ready: int) -> int:
    """The signal Linux delivers first among ``ready``: synchronous ones, then the lowest."""
    sync = ready & SYNCHRONOUS
    bits = sync or ready
    return (bits & -bits).bit_length()


class FairLock:
    """A lock that a thread waiting for it gets before a thread that has just let it go
    takes it again.  The signal thread lets ``HostSignals.posting`` go and takes it
    again a few microseconds later, for as long as signals keep coming (a timer that
    fires every nanosecond keeps them coming for good); a futex waiter woken in between
    took tens of microseconds to run and found it taken every time, and timer_settime
    never returned.  Here each taker first passes a turnstile, which a waiter holds:
    the next taker queues there until the waiter has had the lock."""

    __slots__ = ("_turn", "_held", "flag")

    def __init__(self) -> None:
        self._turn = _thread.allocate_lock()
        self._held = _thread.allocate_lock()
        self.flag = bytearray(8)  # 1 while held: what ``busy`` says, for the native poller (nativepoll.c)

    def __enter__(self) -> None:
        with self._turn:
            self._held.acquire()
        self.flag[0] = 1

    def busy(self) -> bool:
        return self._held.locked()

    def __exit__(self, *exc) -> None:
        self.flag[0] = 0
        self._held.release()


class HostSignals:
    """km's own host signal handling: everything forwarded to the program through one
    monitor thread, SIG_KICK to interrupt a vCPU thread.

    The signal thread waits on a signalfd of the forwarded signals, which becomes
    readable without taking anything, and then takes every pending one (COLLECT_MAX
    at a time) with rt_sigtimedwait and posts it (``collect``), all under a lock.  So another thread
    that takes the lock and collects too knows that every host signal sent to km
    before that moment is the program's now: a wait that reports a child delivers its
    SIGCHLD (``child_reported``), and a signal that another process has sent is pending
    when the program looks (``sync``), as on Linux when kill() has returned."""

    def __init__(self, post, fd_floor: int) -> None:
        self._post = post  # post(sig, siginfo bytes)
        self._floor = fd_floor  # km's own descriptors go at or above it
        self.ident = 0
        self.tid = 0
        # held from a host signal's dequeue to its post: who holds it knows that no host
        # signal is in flight (taken from the host, not yet the program's); take it
        # before the process lock, as ``collect`` does
        self.posting = FairLock()
        self._started = _thread.allocate_lock()  # held until the signal thread knows its tid
        self._started.acquire()
        self._mask = bytearray(struct.pack("<Q", _FORWARDED_MASK))  # what the signal thread takes
        self._info = bytearray(SIGINFO_SIZE)
        self._holds = [0] * (S.NSIG + 1)  # per signal: the timers and pending sets holding it (``hold``)
        self._taken = _FORWARDED_MASK & ~_RAISED_BY_KM  # what other threads take (``collect``), as a number
        self._mask_here = bytearray(struct.pack("<Q", self._taken))
        self._pending = bytearray(SIGSET_SIZE)
        self._pending_at = native.address_of(self._pending)

    def install(self) -> None:
        """Call in the main thread before any other thread exists: threads inherit the mask.
        (Also in a forked child, whose pending sets start empty: so does its count.)"""
        global _signalfd
        QUEUED.count = 0
        keep_mask_across_thread_starts()
        # km's threads get a fixed stack, not one as large as RLIMIT_STACK says (the C
        # library's default): a container's 9 GiB RLIMIT_STACK with a 5 GiB RLIMIT_DATA
        # left km unable to start its signal thread
        _thread.stack_size(THREAD_STACK)
        native.install_kick_handler(SIG_KICK)
        from kontain.arch.x86_64 import hostcode

        for sig in (32, 33):  # (the C library's: unblocked in a new thread until it blocks them itself)
            native.install_code_handler(sig, hostcode.RESERVED, hostcode.RESERVED_RESTORER)
        # broken pipes and file size limits: the monitor raises SIGPIPE/SIGXFSZ for the
        # program itself when a write fails with EPIPE/EFBIG.  Never set again where they
        # are ignored already (a forked child: inherited): setting SIG_IGN discards a
        # pending one, and a SIGPIPE sent to a child right after its fork, blocked until
        # now, was lost (the child never died: LTP kill11)
        for sig in (S.SIGPIPE, S.SIGXFSZ):
            if _host.getsignal(sig) != _host.SIG_IGN:
                _host.signal(sig, _host.SIG_IGN)
        _host.signal(S.SIGINT, _host.SIG_DFL)
        # (rt_sigprocmask directly: glibc's sigset functions refuse 32 and 33, which
        # it reserves for itself, but a program may use them)
        block_forwarded()
        if _signalfd >= 0:
            os.close(_signalfd)  # a forked child's copy of its parent's
        fd = native.syscall(NR["signalfd4"], -1, native.address_of(self._mask), SIGSET_SIZE,
                            _SFD_CLOEXEC | _SFD_NONBLOCK)
        _signalfd = native.dup_at_least(fd, self._floor)
        os.close(fd)
        _thread.start_new_thread(self._loop, (_signalfd,))

    def _loop(self, fd: int) -> None:
        block_forwarded()
        native.name_thread(b"km-signals")
        self.ident = _thread.get_ident()
        self.tid = native.syscall(NR["gettid"])  # F_SETOWN_EX aims a thread's SIGIO here (syscalls/fs.py)
        self._started.release()
        pfd = bytearray(struct.pack("<ihh", fd, _POLLIN, 0))
        while True:
            native.syscall(NR["poll"], native.address_of(pfd), 1, -1)  # readable: a signal is pending
            try:
                self.collect()
            except BaseException as e:  # the signal thread must survive anything
                say(f"internal error delivering a signal: {e!r} (please report it)")

    def signal_thread_tid(self) -> int:
        """The signal thread's tid, once it has one (it has just been started)."""
        with self._started:
            return self.tid

    def collect(self) -> None:
        """Post to the program every forwarded signal the host holds for km (those sent
        to the process, and to the calling thread), or COLLECT_MAX of them: a timer
        that fires every nanosecond has a new signal on the host after each one taken
        (its next expiry is already past), and the lock must not stay held for good
        (timer_settime waits for it).  The signal thread then comes back for more."""
        # Another thread than the signal thread takes what the host holds for the process
        # and for itself, but never SIGPIPE or SIGXFSZ: the host sends those to the thread
        # whose write failed (blocked, so queued although ignored), and km raises them for
        # the program itself (Task.after_syscall, take_xfsz); taken here as well, a handled
        # SIGPIPE ran twice (LTP's pipe08 and write05).  One another process sends is the
        # process's, and the signal thread's to take.
        mask = self._mask if _thread.get_ident() == self.ident else self._mask_here
        with self.posting:
            info = self._info
            for _ in range(COLLECT_MAX):
                sig = _take_now(mask, info)
                if sig <= 0:
                    return
                self._post(sig, bytes(info))

    def hold(self, sig: int) -> None:
        """Leave ``sig`` on the host until ``unhold``: a timer's signal is pending in the
        program, and the timer has expired again.  On Linux the timer is not armed again
        until its signal is taken, and the expirations meanwhile are that signal's
        overruns.  Taken from the host at once, a timer of a short interval (shorter than
        km's turn-around) had its next signal there at once, for as long as the program
        left its signal pending: the signal thread spent a CPU on them, and the program's
        calls waited for the interpreter lock, ~15 ms each.  Left on the host, the host
        counts the overruns, and ``unhold`` adds them to the program's signal.  (Other
        signals ``sig`` wait with it: a standard one is pending already; a real-time one
        queues behind the timer's, in order.)  Called with the process lock held."""
        self._holds[sig] += 1
        if self._holds[sig] == 1:
            self._narrow()

    def unhold(self, sig: int, timerid: int) -> int:
        """The timer ``timerid``'s pending signal is the program's no more (taken or
        dropped): the expirations the host counted meanwhile, which its signal on the
        host carries (0 without one).  The host's ``sig`` are taken from it in order up
        to the timer's, and those not the timer's are queued to km again, for the signal
        thread, which takes ``sig`` again from here (a standard signal's are dropped:
        they came while the timer's was pending).  Called with the process lock held."""
        info = bytearray(SIGINFO_SIZE)
        only = bytearray(struct.pack("<Q", sigbit(sig)))
        expired = 0
        others = []
        while _take_now(only, info) == sig:
            if info[8:12] == _SI_TIMER and struct.unpack_from("<i", info, 16)[0] == timerid:
                # (and no further: taking it armed the timer again, whose next signal
                # may be there already)
                expired = 1 + max(struct.unpack_from("<i", info, 20)[0], 0)
                break
            others.append(bytearray(info))
        if sig >= S.SIGRTMIN:  # (a standard one came while the timer's was pending: one signal, as on Linux)
            pid = os.getpid()
            for data in others:
                if data[8:12] == _SI_TIMER:
                    stamp(data)
                native.syscall(NR["rt_sigqueueinfo"], pid, sig, native.address_of(data))
        self._holds[sig] -= 1
        if not self._holds[sig]:
            self._narrow()
        return expired

    def drop_held(self, sig: int) -> None:
        """The standard ``sig`` pending in the program is taken or discarded: what the
        host held of it (Pending.hold_standard) came while it was pending, and goes.
        (At most one from the process's queue and one from the calling thread's; a
        timer's, taken, arms its timer again, whose next one stays.)  Called with the
        process lock held."""
        info = bytearray(SIGINFO_SIZE)
        only = bytearray(struct.pack("<Q", sigbit(sig)))
        for _ in range(2):
            if _take_now(only, info) != sig:
                break
        self._holds[sig] -= 1
        if not self._holds[sig]:
            self._narrow()

    def flush(self, sig: int) -> None:
        """Post now the ``sig`` the host holds (``hold``), before a real-time ``sig`` that
        km posts itself (the program's sigqueue to itself), which would pass them: its
        queue keeps the order the signals came in.  Each timer's once more at most
        (taking one arms its timer again, and a short interval has the next there at
        once)."""
        only = bytearray(struct.pack("<Q", sigbit(sig)))
        seen = set()
        with self.posting:
            info = self._info
            while _take_now(only, info) == sig:
                self._post(sig, bytes(info))
                if info[8:12] == _SI_TIMER:
                    timerid = struct.unpack_from("<i", info, 16)[0]
                    if timerid in seen:
                        break
                    seen.add(timerid)

    def holds(self, sig: int) -> bool:
        return self._holds[sig] > 0

    def _narrow(self) -> None:
        """The signal thread's set (its waits and its signalfd's) without the held signals.
        The signalfd wakes its poller when its set changes."""
        held = 0
        for sig in range(1, S.NSIG + 1):
            if self._holds[sig]:
                held |= sigbit(sig)
        struct.pack_into("<Q", self._mask, 0, _FORWARDED_MASK & ~held)
        self._taken = _FORWARDED_MASK & ~held & ~_RAISED_BY_KM
        struct.pack_into("<Q", self._mask_here, 0, self._taken)
        if _signalfd >= 0:
            native.syscall(NR["signalfd4"], _signalfd, native.address_of(self._mask), SIGSET_SIZE, 0)

    def child_reported(self, pid: int) -> None:
        """A wait just reported child ``pid``: its SIGCHLD must be the program's now.

        On Linux the SIGCHLD is queued before the child can be waited for, and it is
        delivered on the way out of the wait that reaps it.  Here the host's SIGCHLD was
        queued for km before the wait saw the child: collecting takes it if it is still
        on the host, and waits for the signal thread if that has it in hand."""
        self.collect()

    sync = collect  # a signal another process sent is pending in the program from here on

    def in_flight_words(self) -> tuple[bytearray, bytearray]:
        """What the native poller reads to know whether a host signal may be on its way to
        the program (as ``after_wait`` looks): the posting lock's flag, and the signals
        other threads take (a u64 mask, updated in place)."""
        return self.posting.flag, self._mask_here

    def after_wait(self) -> None:
        """A call that may have waited returns to the program (Task.blocking): a signal
        another process sent before it did what ended the call (kill, then a write to the
        pipe the program reads) must be pending in the program first, as on Linux, where
        kill() queued it and the way out of the read delivers it.  The signal thread could
        still have it in hand, and the program went on without it: a child that read the
        byte and then restored SIG_DFL was killed by the SIGUSR1 its handler should have
        had (CPython's test suite; ~1 round in 50 of a C loop).  Cheap when nothing is in
        flight: one rt_sigpending, and a look at the lock the signal thread holds from a
        signal's dequeue to its post."""
        if self.posting.busy() or (native.syscall(_SYS_rt_sigpending, self._pending_at, SIGSET_SIZE) == 0
                                   and int.from_bytes(self._pending, "little") & self._taken):
            self.collect()


_signalfd = -1  # km's signalfd of the forwarded signals (the signal thread polls it)
_SYS_rt_sigpending = NR["rt_sigpending"]
COLLECT_MAX = 256  # signals posted under one hold of HostSignals.posting
_SFD_CLOEXEC, _SFD_NONBLOCK, _POLLIN = 0o2000000, 0o4000, 1
_NO_WAIT = bytearray(16)  # a zero timespec


def _take_now(mask: bytearray, info: bytearray) -> int:
    """Take one signal of ``mask`` from the host without waiting (rt_sigtimedwait): its
    number, its siginfo in ``info``; 0 or -errno when there is none."""
    return native.syscall(NR["rt_sigtimedwait"], native.address_of(mask), native.address_of(info),
                          native.address_of(_NO_WAIT), SIGSET_SIZE)


def inherited_state() -> tuple[int, list[int]]:
    """The signal mask and the ignored signals km was started with, which execve passes
    on and the program must find (``nohup km PROGRAM`` ignores SIGHUP; a blocked mask
    stays blocked).  Call before km changes either.  SIGPIPE and SIGXFSZ are left out:
    the Python interpreter ignores them for itself before km runs, so what km was given
    is lost (the program starts with them at SIG_DFL, the usual case)."""
    old = bytearray(SIGSET_SIZE)
    native.syscall(14, 0, 0, native.address_of(old), SIGSET_SIZE)  # rt_sigprocmask(SIG_BLOCK, NULL, &old)
    mask = struct.unpack("<Q", old)[0] & ~S.UNBLOCKABLE
    act = bytearray(k_sigaction.size)
    ignored = []
    for sig in range(1, S.NSIG + 1):
        if sig in (S.SIGKILL, S.SIGSTOP, S.SIGPIPE, S.SIGXFSZ):
            continue
        if native.syscall(13, sig, 0, native.address_of(act), SIGSET_SIZE) == 0 and \
                k_sigaction.unpack(act)[0] == S.SIG_IGN:  # rt_sigaction(sig, NULL, &act)
            ignored.append(sig)
    return mask, ignored


def mirror_sigchld(handler: int, flags: int) -> None:
    """Give km's own SIGCHLD the program's reaping behaviour: with SIGCHLD ignored or
    SA_NOCLDWAIT, the host kernel reaps the children (wait then fails with ECHILD, as on
    Linux); SA_NOCLDSTOP spares the stop and continue notifications.  The action stays
    SIG_DFL otherwise: SIGCHLD is blocked in km and forwarded by the signal thread."""
    act = bytearray(k_sigaction.pack(S.SIG_IGN if handler == S.SIG_IGN else S.SIG_DFL,
                                     flags & (S.SA_NOCLDSTOP | S.SA_NOCLDWAIT), 0, 0))
    native.syscall(13, S.SIGCHLD, native.address_of(act), 0, SIGSET_SIZE)  # rt_sigaction


def block_forwarded() -> None:
    """Block every forwarded signal in the calling thread.  Each km thread calls it
    first: the C library unblocks the two signals it reserves (32 and 33) in the threads
    it creates, and those would otherwise take their default action (ending km) when the
    program uses them, as musl's and glibc's timer threads do.  (rt_sigprocmask itself:
    the C library's sigprocmask refuses 32 and 33.)"""
    mask = bytearray(struct.pack("<Q", _FORWARDED_MASK))
    native.syscall(14, 0, native.address_of(mask), 0, SIGSET_SIZE)  # rt_sigprocmask(SIG_BLOCK)


_start_new_thread = _thread.start_new_thread


THREAD_STACK = 8 << 20  # each km thread's host stack (the program's threads run on their own, in the VM)


def _start_thread(function, args, kwargs=None):
    """``_thread.start_new_thread`` for km: glibc's pthread_create gives the thread that
    creates a thread its signal mask back without 32 and 33, which it reserves for
    itself, and the new thread's without 32.  There the kernel may pick that thread for
    a 32 or 33 sent to the process: the program's kill(0, 32) ended km instead of
    reaching the program's handler.  So they are blocked again at once in both."""
    ident = _start_new_thread(_blocked_first, (function, args, kwargs or {}))
    block_forwarded()
    return ident


def _blocked_first(function, args, kwargs) -> None:
    """A new km thread's first act: block what km forwards (the C library left 32
    unblocked in it; hostcode.RESERVED catches one that lands before this), whatever the
    thread is for (the decoder's loader did not)."""
    block_forwarded()
    function(*args, **kwargs)


def keep_mask_across_thread_starts() -> None:
    """Make every thread start in km (the signal thread, vCPU threads, the poller) go
    through ``_start_thread``."""
    _thread.start_new_thread = _start_thread


def block_kick(on: bool) -> None:
    _host.pthread_sigmask(_host.SIG_BLOCK if on else _host.SIG_UNBLOCK, [SIG_KICK])


def kick(ident: int) -> None:
    """SIG_KICK to host thread ``ident``: out of KVM_RUN, or out of a host call (its
    handler is native.install_kick_handler's; the kicker sets the task's flag first)."""
    try:
        _host.pthread_kill(ident, SIG_KICK)
    except (ProcessLookupError, OSError):
        pass


def reset_host_dispositions() -> None:
    """Undo what CPython does at start-up (SIGINT raises KeyboardInterrupt)."""
    _host.signal(S.SIGINT, _host.SIG_DFL)


_SEGV_CODES = {S.SEGV_MAPERR: "address not mapped", S.SEGV_ACCERR: "invalid permissions"}
_FPE_CODES = {S.FPE_INTDIV: "integer divide by zero", S.FPE_INTOVF: "integer overflow",
              S.FPE_FLTDIV: "floating-point divide by zero", S.FPE_FLTOVF: "floating-point overflow",
              S.FPE_FLTUND: "floating-point underflow", S.FPE_FLTRES: "inexact floating-point result",
              S.FPE_FLTINV: "invalid floating-point operation"}
_BUS_CODES = {S.BUS_ADRALN: "misaligned address", S.BUS_ADRERR: "nonexistent physical address",
              S.BUS_OBJERR: "object-specific hardware error"}
_ILL_CODES = {S.ILL_ILLOPC: "illegal opcode", S.ILL_ILLOPN: "illegal operand", S.ILL_PRVOPC: "privileged opcode"}


def namespace_init() -> bool:
    """Is this process the first of its pid namespace (a container's, under krun)?  Linux
    then discards every signal it has no handler for (SIGNAL_UNKILLABLE), but the CPU's
    faults; SIGKILL and SIGSTOP from an ancestor namespace reach km itself."""
    return os.getpid() == 1


def describe(sig: int, code: int | None = None, addr: int | None = None) -> str:
    """'SIGSEGV at 0x10 (address not mapped)' and the like, for km's last line."""
    text = S.name(sig)
    if addr is not None:
        text += f" at {addr:#x}"
    reason = {S.SIGSEGV: _SEGV_CODES, S.SIGFPE: _FPE_CODES, S.SIGBUS: _BUS_CODES, S.SIGILL: _ILL_CODES}.get(sig, {}).get(code)
    if sig == S.SIGSEGV and code == S.SI_KERNEL:
        reason = "general protection fault"
    if sig == S.SIGTRAP and code == S.SI_KERNEL:
        reason = "breakpoint"
    if reason:
        text += f" ({reason})"
    return text


def stop_by_signal(sig: int) -> None:
    """Stop km by ``sig`` (SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP) as the program would stop:
    the parent's wait sees WSTOPSIG == sig.  The signal, directed at this thread and
    unblocked here only, takes its default action on the way out of tgkill."""
    if sig == S.SIGSTOP:
        os.kill(os.getpid(), sig)
        return
    _host.pthread_sigmask(_host.SIG_UNBLOCK, [sig])
    try:
        native.syscall(234, os.getpid(), native.syscall(186), sig)  # tgkill(getpid(), gettid(), sig)
    finally:
        _host.pthread_sigmask(_host.SIG_BLOCK, [sig])


def die_by_signal(sig: int) -> None:
    """End this process by ``sig`` with its default action, as the program would have.
    Never with a core dump of km itself: a core of the Python process is of no use to
    the program's user (``km --core`` writes the program's, kernel/coredump.py)."""
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    except (ValueError, OSError):
        pass
    if sig not in (S.SIGKILL, S.SIGSTOP):
        # rt_sigaction itself: any thread of the program may be the one that dies, and
        # CPython's signal.signal works only in the main thread
        dfl = bytearray(k_sigaction.pack(S.SIG_DFL, 0, 0, 0))
        native.syscall(NR["rt_sigaction"], sig, native.address_of(dfl), 0, SIGSET_SIZE)
        _host.pthread_sigmask(_host.SIG_UNBLOCK, [sig])
    # to this thread: a process-directed signal could be taken by the signal thread
    native.syscall(234, os.getpid(), native.syscall(186), sig)  # tgkill(getpid(), gettid(), sig)
    # a signal whose default is to stop or be ignored does not end us: fall back
    os._exit(128 + sig)
