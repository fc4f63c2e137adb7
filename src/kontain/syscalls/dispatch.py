"""The one place that turns a syscall exit into a handler call and a result in RAX.

``make_dispatcher(task)`` returns the task's ``on_syscall``: read the number and the six
argument registers from the synced registers, call the handler from the table, write
the result (or ``-errno`` from a GuestError) back, mark the registers dirty.  Numbers
without a handler get ENOSYS.  With ``--strace`` a tracing variant prints every call.
"""

from __future__ import annotations

import os

from kontain.abi.errno import ENOSYS, EPIPE
from kontain.abi.flags import MAX_RW_COUNT, MSG_NOSIGNAL
from kontain.abi.syscalls import KM_SNAPSHOT, NR, SIGPIPE
from kontain.arch.x86_64 import guest_code as G
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError, OwnThread, messages_fd, say
from kontain.kvm import abi as k
from kontain.syscalls import table

RAX, RDI, RSI, RDX, R10, R8, R9 = k.RAX, k.RDI, k.RSI, k.RDX, k.R10, k.R8, k.R9
ARITH = 0x8D5  # CF PF AF ZF SF OF: the flags the poll stub changes (and gives back from R11)
DIRTY, SYNC_REGS = k.Q_DIRTY_REGS, k.KVM_SYNC_X86_REGS
SYS_sendto, SYS_writev = NR["sendto"], NR["writev"]


def make_dispatcher(task, *, strace: bool = False, poller=None):
    if strace:
        return _make_tracing(task)
    slot = poller.attach(task) if poller is not None else None
    if slot is not None:
        return _make_polled(task, _make_plain(task), poller, slot)
    return _make_plain(task)


_HANDLERS, _FLAGS, _MSG_FLAGS_ARG = table.HANDLERS, table.FLAGS, table.MSG_FLAGS_ARG
_N = len(_HANDLERS)


def invoke(task, nr: int, a0: int, a1: int, a2: int, a3: int, a4: int, a5: int) -> int:
    """Call ``nr``'s handler: its result, or -errno.  The one place a handler is called
    (from a vCPU's exit, --strace, or the polling tier's thread)."""
    h = _HANDLERS[nr] if 0 <= nr < _N else None
    if h is None:
        if nr == KM_SNAPSHOT:  # km's own call (abi/syscalls.py)
            from kontain.syscalls.snapshot import km_snapshot

            return km_snapshot(task, a0, a1)
        return -ENOSYS
    p = task.process
    p.epoch[0] += 1  # (before: a handler may raise, execve's among them)
    try:
        r = h(task, a0, a1, a2, a3, a4, a5)
    except GuestError as e:
        r = -e.errno
    except OwnThread:
        raise  # (the poller gives the call back to the thread that made it)
    except Exception as e:  # a bug in km: loud, and the program stops
        internal_error(nr, e)
        raise  # (not reached: internal_error raises)
    if p.own_signals:  # (a dnotify or SIGIO signal this call caused is pending when it returns)
        p.host_signals.sync()
    return r


def invoke_own(task, nr: int, own: int, a1: int, a2: int, a3: int) -> int:
    """``invoke`` for the polling tier's read and write family calls of a regular file,
    made on ``own``, the monitor's duplicate of the program's descriptor (rw.on_own)."""
    from kontain.syscalls import rw

    try:
        return rw.on_own(task, nr, own, a1, a2, a3)
    except GuestError as e:
        return -e.errno
    except Exception as e:  # a bug in km, as in invoke
        internal_error(nr, e)
        raise


def finish(task, nr: int, res: int, args) -> None:
    """After the call, on the way back to the program: a kick's EINTR, SIGPIPE, SIGXFSZ,
    signals to deliver (Task.after_syscall), as the call's row says (restart, SIGPIPE
    unless its MSG_* flags say MSG_NOSIGNAL)."""
    flags = _FLAGS[nr] if 0 <= nr < _N else 0
    if flags & SIGPIPE and res == -EPIPE:
        i = _MSG_FLAGS_ARG[nr]
        if i >= 0 and args[i] & MSG_NOSIGNAL:
            flags &= ~SIGPIPE
    task.after_syscall(nr, res, flags)


def _make_plain(task):
    q = task.q
    pending = task.pending
    shared = task.shared
    rw = task.process.rewriter
    if rw is not None:
        return _make_rewriting(task, rw)

    def on_syscall() -> None:
        nr = q[RAX] & 0xFFFFFFFF
        res = invoke(task, nr, q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9])
        q[RAX] = res
        q[DIRTY] = SYNC_REGS
        # EINTR or ERESTARTNOINTR (a kick), EPIPE (SIGPIPE), EFBIG (SIGXFSZ), pending signals, or
        # rt_sigreturn (stop != SYSCALL), a debugger stepping over the call (kernel/gdbstub.py)
        if res == -4 or res == -513 or res == -32 or res == -27 or (pending.mask | shared.mask) & ~task.sigmask or \
                task.stop or task.gdb_step_syscall:
            finish(task, nr, res, (q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9]))

    return on_syscall


def _make_rewriting(task, rw):
    """``on_syscall`` while syscall sites are rewritten (kernel/rewrite.py): each exit
    first tells the rewriter where it came from (a site may turn hot and be rewritten)."""
    q = task.q
    pending = task.pending
    shared = task.shared
    trap = rw.trap
    RCX = k.RCX

    def on_syscall() -> None:
        trap(task, q[RCX])
        nr = q[RAX] & 0xFFFFFFFF
        res = invoke(task, nr, q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9])
        q[RAX] = res
        q[DIRTY] = SYNC_REGS
        if res == -4 or res == -513 or res == -32 or res == -27 or (pending.mask | shared.mask) & ~task.sigmask or \
                task.stop:
            finish(task, nr, res, (q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9]))

    return on_syscall


def _make_polled(task, plain, poller, slot):
    """``on_syscall`` of a task whose `syscall` enters the poll stub (kernel/poll.py):
    every exit from there gets RFLAGS back from R11 (the stub's compares change the
    flags); an exit after an answered call (DONE_EXIT) only finishes it (signals); and
    bursts of calls the poller could have served switch the slot on."""
    q = task.q
    done_exit = L.poll_stub(task.vcpu.id) + G.POLL_DONE_RETURN  # RIP at the exit after an answered call
    pollable = poller.pollable
    RIP, RFLAGS, R11 = k.RIP, k.RFLAGS, k.R11
    from kontain.kernel.poll import ARG0, BY_FILE, IDLE, MISSES, NR, ON, STATE

    burst = poller.burst
    back = poller.back
    natively = poller.declined_natively
    sq = slot.q
    rw = task.process.rewriter
    # descriptor -> is it a regular file (Poller.regular): an fstat at each read's exit cost
    # the TCP echo ~4%, so the answer is kept for up to ``burst`` other calls (a descriptor
    # closed and opened again as another kind is counted wrongly meanwhile: only counted)
    kinds: dict[int, bool] = {}

    def on_syscall() -> None:
        # (the arithmetic flags: a rewritten site's R11 has no DF, AC..., which the stub never changes)
        q[RFLAGS] = q[R11] & ARITH | q[RFLAGS] & ~ARITH
        if q[RIP] == done_exit:
            slot.u32[STATE] = IDLE
            q[DIRTY] = SYNC_REGS
            if rw is not None:
                # a polled site may have turned hot (Rewriter.answered): examined here, which
                # takes milliseconds the first time.  Away meanwhile, so that the poller parks
                # with the slot on rather than finding no request for IDLE_NS and switching
                # it off: the next BURST calls exited then (file I/O 64 MiB, BURST 64: 65 exits, ~7 ms)
                slot.away = True
                try:
                    rw.hot(task, q[k.RCX])
                finally:
                    back(slot)
            # (a host signal on its way may be why: nativepoll.c signals_in_flight)
            task.process.host_signals.after_wait()
            finish(task, sq[NR], q[RAX], tuple(sq[ARG0 + i] for i in range(6)))
            return
        nr = q[RAX]
        declined = slot.declined  # the poller handed it on (it would block): not a call it missed
        if declined:
            slot.declined = False
        else:
            declined, carry = natively(slot)  # (the native poller's: a socket's or pipe's read that would wait)
            if carry:  # a write a socket or pipe took part of: this thread writes the rest, waiting
                slot.away = True
                try:
                    _carried(task, nr, carry)
                finally:
                    back(slot)
                return
        if not declined and nr in BY_FILE:
            fd = q[RDI] & 0xFFFFFFFF
            regular = kinds.get(fd)
            if regular is None:
                regular = kinds[fd] = poller.regular(fd)
            declined = not regular  # a read or write of a socket, pipe...: the poller would hand it on
        if not declined and 0 <= nr < 512 and pollable[nr] and nr not in slot.cleared:
            slot.count += 1
            if slot.count >= burst or slot.count >= MISSES and slot.u32[ON]:
                slot.count = slot.others = 0
                poller.consider(slot)
        else:
            slot.others += 1
            if slot.others >= burst:  # (the thread's calls are mostly ones that exit anyway)
                slot.count = slot.others = 0
                kinds.clear()
        if not slot.u32[ON]:
            plain()
            return
        # a call that exits (it may block: a read the poller declined...): the poller
        # need not spin for this thread meanwhile
        slot.away = True
        try:
            plain()
        finally:
            back(slot)

    return on_syscall


def _carried(task, nr: int, carry: int) -> None:
    """Finish a write (``nr``: write, writev, or a send: sendto with no address) of a
    socket or pipe the native poller began (kernel/nativepoll.c ``stream_call``): ``carry``
    bytes were taken without waiting, the rest is written here as the blocking call goes
    on.  The result counts both; an error or a signal after the first part ends the call
    with that part, as Linux's write returns what it sent."""
    q = task.q
    if nr == SYS_writev:
        from kontain.syscalls.rw import writev_rest

        fd, iov, count = q[RDI], q[RSI], q[RDX]
        res = writev_rest(task, fd, iov, count, carry)
        args = (fd, iov, count, 0, 0, 0)
    else:
        fd, buf, count, flags = q[RDI], q[RSI], min(q[RDX], MAX_RW_COUNT), q[R10] if nr == SYS_sendto else 0
        res = invoke(task, nr, fd, buf + carry, max(count - carry, 0), flags, 0, 0)
        args = (fd, buf, count, flags, 0, 0)
    res = carry + res if res >= 0 else carry
    q[RAX] = res
    q[DIRTY] = SYNC_REGS
    finish(task, nr, res, args)


INTERNAL_ERROR = 70  # km's exit status when it stops a program because of its own bug (EX_SOFTWARE)


def internal_error(nr: int, e: Exception) -> None:
    """A bug in km serving call ``nr``: say so, and end the program (raises ProcessExit).
    Going on would hand the program a made-up answer from a monitor in an unknown state;
    a bug must be loud (and a test must fail), never a silent errno."""
    from kontain.errors import ProcessExit

    where = ""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" at {tb.tb_frame.f_code.co_filename.rsplit('/', 2)[-1]}:{tb.tb_lineno}"
    say(f"internal error in {table.name(nr)}: {type(e).__name__}: {e}{where} (please report it)")
    raise ProcessExit(status=INTERNAL_ERROR)


def _trace_line(text: str) -> None:
    """One --strace line, on km's stderr (which the program cannot close: errors.say)."""
    data = (text + "\n").encode("utf-8", "surrogateescape")
    try:
        os.write(messages_fd(), data)
    except OSError:
        pass


def _make_tracing(task, out=_trace_line):
    from kontain.syscalls import strace

    q = task.q

    def on_syscall() -> None:
        nr = q[RAX] & 0xFFFFFFFF
        args = (q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9])
        try:
            res = invoke(task, nr, *args)
        except BaseException:
            out(f"[{task.tid}] {strace.format_call(task, nr, args, None)}")  # (the call did not return)
            raise
        q[RAX] = res
        q[DIRTY] = SYNC_REGS
        note = "" if 0 <= nr < _N and _HANDLERS[nr] is not None else " (not supported by km)"
        out(f"[{task.tid}] {strace.format_call(task, nr, args, res)}{note}")
        if res == -4 or res == -513 or res == -32 or res == -27 or task.has_signals() or task.stop or \
                task.gdb_step_syscall:
            finish(task, nr, res, args)

    return on_syscall
