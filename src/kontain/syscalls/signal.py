"""Signals, the bookkeeping half: dispositions, the signal mask, the alternate stack.

Delivery of signals to handlers is not here yet (docs/known-issues.md): a fault ends the
program with the default action, and a signal sent from outside does to km what its
default or ignored disposition says (kernel/signals.py mirrors those on the host).
"""

from __future__ import annotations

import struct

from kontain.abi import signals as S
from kontain.abi.errno import EINVAL, ENOMEM
from kontain.abi.structs import stack_t
from kontain.errors import GuestError, ProcessExit
from kontain.syscalls.common import s32, u64

SIGSET_SIZE = 8


def rt_sigaction(t, sig, act, oact, sigsetsize, *_):
    sig = s32(sig)
    if u64(sigsetsize) != SIGSET_SIZE or sig < 1 or sig > S.NSIG:
        raise GuestError(EINVAL)
    actions = t.process.actions
    new = actions.read(t.mem, act) if act else None
    if new is not None and sig in (S.SIGKILL, S.SIGSTOP):
        raise GuestError(EINVAL)
    old = actions.get(sig)
    if new is not None:
        actions.set(sig, new)
        if t.pending:
            t.take_pending()  # setting SIG_IGN discards a pending signal
    if oact:
        try:
            t.mem.write(oact, actions.pack(old))
        except GuestError:
            if new is not None:
                actions.set(sig, old)
            raise
    return 0


def rt_sigprocmask(t, how, set_addr, oset, sigsetsize, *_):
    how = s32(how)
    if u64(sigsetsize) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    old = t.sigmask
    if set_addr:
        new = struct.unpack("<Q", t.mem.read(set_addr, 8))[0]
        if how == S.SIG_BLOCK:
            mask = old | new
        elif how == S.SIG_UNBLOCK:
            mask = old & ~new
        elif how == S.SIG_SETMASK:
            mask = new
        else:
            raise GuestError(EINVAL)
    else:
        mask = old
    if oset:
        t.mem.write(oset, struct.pack("<Q", old))
    t.sigmask = mask & ~S.UNBLOCKABLE
    if t.pending & ~t.sigmask:
        t.take_pending()
    return 0


def rt_sigpending(t, set_addr, sigsetsize, *_):
    size = u64(sigsetsize)
    if size > SIGSET_SIZE:
        raise GuestError(EINVAL)
    t.mem.write(set_addr, struct.pack("<Q", t.pending & t.sigmask)[:size])
    return 0


def sigaltstack(t, ss, old_ss, *_):
    sp, flags, size = t.altstack
    if ss:
        nsp, nflags, nsize = stack_t.unpack(t.mem.read(ss, stack_t.size))
        nflags &= 0xFFFFFFFF
        mode = nflags & ~S.SS_AUTODISARM
        if mode not in (0, S.SS_ONSTACK, S.SS_DISABLE):
            raise GuestError(EINVAL)
        if mode == S.SS_DISABLE:
            new = (0, S.SS_DISABLE, 0)
        else:
            if nsize < S.MINSIGSTKSZ:
                raise GuestError(ENOMEM)
            new = (nsp, nflags & S.SS_AUTODISARM, nsize)
    if old_ss:
        t.mem.write(old_ss, stack_t.pack(sp, flags, size))
    if ss:
        t.altstack = new
    return 0


def rt_sigreturn(t, *_):
    # No signal frame can exist before delivery does: like Linux with a bad frame.
    raise ProcessExit(signal=S.SIGSEGV, message=f"{t.process.name}: killed by SIGSEGV (rt_sigreturn without a signal frame)")

