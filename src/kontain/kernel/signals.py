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
running guest code) is kicked: ``immediate_exit`` is set on its vCPU and SIG_KICK (the
last real-time signal, reserved for km) interrupts whatever it is doing.  The signals a
monitor fault raises (SIGSEGV, SIGBUS, ...) keep their default action: a crash of km
itself is not the program's to catch.

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
import time

from kontain import native
from kontain.abi import signals as S
from kontain.abi.errno import EINVAL
from kontain.abi.signals import siginfo
from kontain.abi.structs import SIGINFO_SIZE, k_sigaction
from kontain.errors import GuestError

SIGSET_SIZE = 8
SIG_KICK = S.SIGRTMAX  # reserved for the monitor
# synchronous signals first, as Linux's next_signal picks them
SYNCHRONOUS = (1 << (S.SIGSEGV - 1)) | (1 << (S.SIGBUS - 1)) | (1 << (S.SIGILL - 1)) | (1 << (S.SIGTRAP - 1)) | \
    (1 << (S.SIGFPE - 1)) | (1 << (S.SIGSYS - 1))
# host signals that stay with their default action in km: the monitor's own faults
HOST_FAULTS = (S.SIGSEGV, S.SIGBUS, S.SIGILL, S.SIGFPE, S.SIGTRAP)
FORWARDED = [s for s in range(1, S.NSIG) if s not in (S.SIGKILL, S.SIGSTOP, *HOST_FAULTS)]
_FORWARDED_MASK = sum(1 << (s - 1) for s in FORWARDED)


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

    @staticmethod
    def read(mem, addr: int) -> tuple[int, int, int, int]:
        return k_sigaction.unpack(mem.read(addr, k_sigaction.size))

    @staticmethod
    def pack(action: tuple[int, int, int, int]) -> bytes:
        return k_sigaction.pack(*action)


class Pending:
    """A pending set: a bitmask, plus the siginfo of each pending signal (real-time
    signals queue; a standard signal pending twice is one signal)."""

    __slots__ = ("mask", "infos")

    def __init__(self) -> None:
        self.mask = 0
        self.infos: dict[int, list[bytes]] = {}

    def add(self, sig: int, info: bytes) -> None:
        q = self.infos.setdefault(sig, [])
        if sig >= S.SIGRTMIN or not q:
            q.append(info)
        self.mask |= sigbit(sig)

    def take(self, sig: int) -> bytes:
        q = self.infos.get(sig)
        info = q.pop(0) if q else siginfo(sig, S.SI_KERNEL)
        if not q:
            self.mask &= ~sigbit(sig)
            self.infos.pop(sig, None)
        return info

    def discard(self, sig: int) -> None:
        self.mask &= ~sigbit(sig)
        self.infos.pop(sig, None)


def pick(ready: int) -> int:
    """The signal Linux delivers first among ``ready``: synchronous ones, then the lowest."""
    sync = ready & SYNCHRONOUS
    bits = sync or ready
    return (bits & -bits).bit_length()


class HostSignals:
    """km's own host signal handling: everything forwarded to the program through one
    monitor thread, SIG_KICK to interrupt a vCPU thread.

    A kick can arrive while its target runs monitor code just before a blocking host
    call; the call would then not see it and block.  So a kick is repeated every
    millisecond until the target acknowledges it (``Task.kicked`` goes back to False):
    the signal thread keeps the list (``rekick``)."""

    REKICK_NS = 1_000_000

    def __init__(self, post, rekick) -> None:
        self._post = post  # post(sig, siginfo bytes), called in the signal thread
        self._rekick = rekick  # () -> bool: resend kicks not acknowledged; True if any is left
        self.ident = 0
        self.tid = 0
        self._lock = _thread.allocate_lock()
        self._children: dict[int, int] = {}  # pid -> SIGCHLDs forwarded and not yet waited for

    def install(self) -> None:
        """Call in the main thread before any other thread exists: threads inherit the mask."""
        keep_mask_across_thread_starts()
        _host.signal(SIG_KICK, _kicked)
        # broken pipes and file size limits: the monitor raises SIGPIPE/SIGXFSZ for the
        # program itself when a write fails with EPIPE/EFBIG
        _host.signal(S.SIGPIPE, _host.SIG_IGN)
        _host.signal(S.SIGXFSZ, _host.SIG_IGN)
        _host.signal(S.SIGINT, _host.SIG_DFL)
        # (rt_sigprocmask directly: glibc's sigset functions refuse 32 and 33, which
        # it reserves for itself, but a program may use them)
        block_forwarded()
        _thread.start_new_thread(self._loop, ())

    def _loop(self) -> None:
        block_forwarded()
        native.name_thread(b"km-signals")
        self.ident = _thread.get_ident()
        self.tid = native.syscall(186)  # gettid: timers aim SIGEV_THREAD_ID signals here
        block_kick(True)  # here SIG_KICK only wakes this thread up (``wake``)
        mask = bytearray(struct.pack("<Q", sum(sigbit(s) for s in FORWARDED) | sigbit(SIG_KICK)))
        info = bytearray(SIGINFO_SIZE)
        ts = bytearray(struct.pack("<qq", 0, self.REKICK_NS))
        maddr, iaddr, taddr = native.address_of(mask), native.address_of(info), native.address_of(ts)
        pending_kicks = False
        while True:
            sig = native.syscall(128, maddr, iaddr, taddr if pending_kicks else 0, SIGSET_SIZE)  # rt_sigtimedwait
            try:
                if sig > 0 and sig != SIG_KICK:
                    self._forward(sig, info)
                pending_kicks = self._rekick()
            except BaseException as e:  # the signal thread must survive anything
                os.write(2, f"km: internal error delivering signal {sig}: {e!r}\n".encode())

    def child_reported(self, pid: int) -> None:
        """A wait just reported child ``pid``: make sure its SIGCHLD has been posted.

        On Linux the SIGCHLD is queued before the child can be waited for, and it is
        delivered on the way out of the wait that reaps it.  Here the signal thread
        forwards it, and could do so late enough to interrupt the program's next
        blocking call.  So the waiting thread takes the signal itself if it is still
        pending, or waits (briefly) for the signal thread to have posted it.  Two exits
        close together can share one SIGCHLD, hence the bound on the wait."""
        mask = bytearray(struct.pack("<Q", sigbit(S.SIGCHLD)))
        info = bytearray(SIGINFO_SIZE)
        zero = bytearray(16)
        got = native.syscall(128, native.address_of(mask), native.address_of(info), native.address_of(zero),
                             SIGSET_SIZE)  # rt_sigtimedwait, no waiting
        if got == S.SIGCHLD:
            self._forward(got, info)
        for _ in range(20):
            with self._lock:
                n = self._children.pop(pid, 0)
                if n > 1:
                    self._children[pid] = n - 1
            if n:
                return
            time.sleep(0.0001)  # lets the signal thread run

    def _forward(self, sig: int, info: bytearray) -> None:
        self._post(sig, bytes(info))
        if sig == S.SIGCHLD:
            pid = int.from_bytes(info[16:20], "little", signed=True)
            with self._lock:
                self._children[pid] = self._children.get(pid, 0) + 1
                if len(self._children) > 4096:  # children nobody waits for
                    self._children.clear()

    def wake(self) -> None:
        """Make the signal thread look at the kicks to repeat."""
        if self.ident and self.ident != _thread.get_ident():
            kick(self.ident)


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


def _start_thread(function, args, kwargs=None):
    """``_thread.start_new_thread`` for km: glibc's pthread_create gives the thread that
    creates a thread its signal mask back without 32 and 33, which it reserves for
    itself.  There they are at their default action (to end km), and the kernel may
    pick that thread for a 32 or 33 sent to the process: the program's kill(0, 32) ended
    km instead of reaching the program's handler.  So they are blocked again at once."""
    ident = _start_new_thread(function, args, kwargs) if kwargs else _start_new_thread(function, args)
    block_forwarded()
    return ident


def keep_mask_across_thread_starts() -> None:
    """Make every thread start in km (the signal thread, vCPU threads, the poller) go
    through ``_start_thread``."""
    _thread.start_new_thread = _start_thread


def _kicked(signum, frame) -> None:
    """SIG_KICK's handler: it exists only so that the signal interrupts KVM_RUN and host calls."""


def block_kick(on: bool) -> None:
    _host.pthread_sigmask(_host.SIG_BLOCK if on else _host.SIG_UNBLOCK, [SIG_KICK])


def kick(ident: int) -> None:
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
        _host.signal(sig, _host.SIG_DFL)
        _host.pthread_sigmask(_host.SIG_UNBLOCK, [sig])
    # to this thread: a process-directed signal could be taken by the signal thread
    native.syscall(234, os.getpid(), native.syscall(186), sig)  # tgkill(getpid(), gettid(), sig)
    # a signal whose default is to stop or be ignored does not end us: fall back
    os._exit(128 + sig)
