"""The one place that turns a syscall exit into a handler call and a result in RAX.

``make_dispatcher(task)`` returns the task's ``on_syscall``: read the number and the six
argument registers from the synced registers, call the handler from the table, write
the result (or ``-errno`` from a GuestError) back, mark the registers dirty.  Numbers
without a handler get ENOSYS.  With ``--strace`` a tracing variant prints every call.
"""

from __future__ import annotations

import sys

from kontain.abi.errno import ENOSYS
from kontain.arch.x86_64 import guest_code as G
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError
from kontain.kvm import abi as k
from kontain.syscalls import table

RAX, RDI, RSI, RDX, R10, R8, R9 = k.RAX, k.RDI, k.RSI, k.RDX, k.R10, k.R8, k.R9
DIRTY, SYNC_REGS = k.Q_DIRTY_REGS, k.KVM_SYNC_X86_REGS


def make_dispatcher(task, *, strace: bool = False, poller=None):
    if strace:
        return _make_tracing(task)
    slot = poller.attach(task) if poller is not None else None
    if slot is not None:
        return _make_polled(task, _make_plain(task), poller, slot)
    return _make_plain(task)


def _make_plain(task):
    q = task.q
    handlers = table.HANDLERS
    n = len(handlers)
    pending = task.pending
    shared = task.shared

    def on_syscall() -> None:
        nr = q[RAX] & 0xFFFFFFFF
        h = handlers[nr] if nr < n else None
        if h is None:
            res = -ENOSYS
        else:
            try:
                res = h(task, q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9])
            except GuestError as e:
                res = -e.errno
            except Exception as e:  # a bug in a handler must not take the monitor down
                res = internal_error(nr, e)
        q[RAX] = res
        q[DIRTY] = SYNC_REGS
        # EINTR (a kick), EPIPE (SIGPIPE), EFBIG (SIGXFSZ), pending signals, or rt_sigreturn (stop != SYSCALL)
        if res == -4 or res == -32 or res == -27 or (pending.mask | shared.mask) & ~task.sigmask or task.stop:
            task.after_syscall(nr, res)

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
    from kontain.kernel.poll import IDLE, MISSES, NR, ON, STATE

    burst = poller.burst

    def on_syscall() -> None:
        q[RFLAGS] = q[R11]
        if q[RIP] == done_exit:
            slot.u32[STATE] = IDLE
            q[DIRTY] = SYNC_REGS
            task.after_syscall(slot.q[NR], q[RAX])
            return
        nr = q[RAX]
        if 0 <= nr < 512 and pollable[nr] and nr not in slot.cleared:
            slot.count += 1
            if slot.count >= burst or slot.count >= MISSES and slot.u32[ON]:
                slot.count = 0
                poller.consider(slot)
        plain()

    return on_syscall


def internal_error(nr: int, e: Exception) -> int:
    name = table.name(nr)
    sys.stderr.write(f"km: internal error in {name}: {type(e).__name__}: {e} (please report it)\n")
    return -ENOSYS


def _make_tracing(task, out=sys.stderr):
    from kontain.syscalls import strace

    q = task.q
    handlers = table.HANDLERS
    n = len(handlers)

    def on_syscall() -> None:
        nr = q[RAX] & 0xFFFFFFFF
        args = (q[RDI], q[RSI], q[RDX], q[R10], q[R8], q[R9])
        h = handlers[nr] if nr < n else None
        if h is None:
            res = -ENOSYS
        else:
            try:
                res = h(task, *args)
            except GuestError as e:
                res = -e.errno
            except Exception as e:
                res = internal_error(nr, e)
            except BaseException:
                out.write(f"[{task.tid}] {strace.format_call(task, nr, args, None)}\n")
                out.flush()
                raise
        q[RAX] = res
        q[DIRTY] = SYNC_REGS
        note = "" if h is not None else " (not supported by km)"
        out.write(f"[{task.tid}] {strace.format_call(task, nr, args, res)}{note}\n")
        out.flush()
        if res == -4 or res == -32 or res == -27 or task.has_signals() or task.stop:
            task.after_syscall(nr, res)

    return on_syscall
