"""Signal syscalls: dispositions, masks, the alternate stack, waiting for signals, and
returning from a handler.  Delivery itself is kernel/task.py's (and kernel/signals.py)."""

from __future__ import annotations

import struct

from kontain.abi import signals as S
from kontain.abi.errno import EAGAIN, EBADF, EINTR, EINVAL, ERESTARTNOINTR
from kontain.abi.structs import stack_t
from kontain.errors import GuestError
from kontain.kvm import abi as k
from kontain.syscalls.common import s32, u64

SIGSET_SIZE = 8


def rt_sigaction(t, sig, act, oact, sigsetsize, *_):
    """As Linux: the size, the new action read (EFAULT), the signal (EINVAL), the change,
    then the old action written; an EFAULT there leaves the change made."""
    sig = s32(sig)
    if u64(sigsetsize) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    actions = t.process.actions
    new = actions.read(t.mem, act) if act else None
    if sig < 1 or sig > S.NSIG or new is not None and sig in (S.SIGKILL, S.SIGSTOP):
        raise GuestError(EINVAL)
    old = actions.get(sig)
    if new is not None:
        actions.set(sig, new)
        if actions.ignored(sig):
            t.process.discard_pending(sig)  # as Linux: an ignored signal does not stay pending
    if oact:
        t.mem.write(oact, actions.pack(old))
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
    if old & ~mask:
        t.process.host_signals.sync()  # what another process has sent is pending: unblocked, it runs now
    t.sigmask = mask & ~S.UNBLOCKABLE  # newly unblocked pending signals: delivered on the way out
    return 0


def rt_sigpending(t, set_addr, sigsetsize, *_):
    size = u64(sigsetsize)
    if size > SIGSET_SIZE:
        raise GuestError(EINVAL)
    t.process.host_signals.sync()  # what another process has sent is pending, as on Linux once kill returned
    t.mem.write(set_addr, struct.pack("<Q", (t.pending.mask | t.shared.mask) & t.sigmask)[:size])
    return 0


def sigaltstack(t, ss, old_ss, *_):
    rsp = t.q[k.RSP] & 0xFFFFFFFFFFFFFFFF
    sp, _flags, size = t.altstack
    old = stack_t.pack(sp, t.altstack_flags(rsp), size)
    if ss:
        err = t.set_altstack(*stack_t.unpack(t.mem.read(ss, stack_t.size)), rsp)
        if err:
            return err
    if old_ss:
        t.mem.write(old_ss, old)
    return 0


def rt_sigreturn(t, *_):
    return t.sigreturn()


def _wait_handled(t) -> None:
    """Wait until a signal that will run a handler (or end the program) is pending and
    unblocked; ignored ones are discarded on the way, as Linux does while waiting."""
    def ready() -> bool:
        while t.has_signals():
            with t.process.lock:
                ready_mask = (t.pending.mask | t.shared.mask) & ~t.sigmask
                sig = (ready_mask & -ready_mask).bit_length()
                if not sig or not t.process.actions.ignored(sig):
                    return True
                (t.pending if t.pending.mask & (1 << (sig - 1)) else t.shared).discard(sig)
        return False

    t.process.host_signals.sync()
    t.process.wait_for(t, ready)


def with_sigmask(t, mask: bytes | None, wait, poll_now) -> int:
    """ppoll, pselect6, epoll_pwait and epoll_pwait2 with a signal mask: as Linux's
    set_user_sigmask and restore_saved_sigmask_unless.  The mask is the guest's, so it
    is the monitor's to apply (the host call gets none: km's threads keep their own).
    ``wait()`` makes the host call (Task.blocking: not made once the thread is
    kicked); ``poll_now()`` makes it with a zero timeout, kicked or not, for when a
    signal the mask lets through is pending (the call then reports ready descriptors,
    or EINTR).  Interrupted by such a signal, the call fails with
    EINTR and the old mask stays saved, for the handler's frame (as sigsuspend); in
    every other case the old mask is back before the call returns."""
    if mask is None:  # (poll, select, epoll_wait: a kick before the wait, what is ready or EINTR)
        r = wait()
        if r == -ERESTARTNOINTR:
            r = poll_now()
            return -EINTR if r == 0 else r
        return r
    old = t.sigmask
    t.saved_mask = old
    t.sigmask = struct.unpack("<Q", mask[:SIGSET_SIZE])[0] & ~S.UNBLOCKABLE
    try:
        r = -ERESTARTNOINTR if t.has_signals() else wait()
        if r in (-EINTR, -ERESTARTNOINTR) and t.has_signals():
            r = poll_now()  # a signal it lets through: what is ready is reported, else EINTR
            if r == 0:
                return -EINTR  # delivered on the way out: Task.after_syscall
    except BaseException:
        t.sigmask, t.saved_mask = old, None
        raise
    t.sigmask, t.saved_mask = old, None
    return r


def rt_sigsuspend(t, mask_addr, sigsetsize, *_):
    if u64(sigsetsize) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    mask = struct.unpack("<Q", t.mem.read(mask_addr, 8))[0]
    t.saved_mask = t.sigmask
    t.sigmask = mask & ~S.UNBLOCKABLE
    _wait_handled(t)
    return -EINTR  # the handler runs on the way out; the frame holds the old mask


def pause(t, *_):
    _wait_handled(t)
    return -EINTR


def rt_sigtimedwait(t, set_addr, info_addr, timeout, sigsetsize, *_):
    if u64(sigsetsize) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    wanted = struct.unpack("<Q", t.mem.read(set_addr, 8))[0] & ~S.UNBLOCKABLE
    timeout_ns = None
    if timeout:
        sec, nsec = struct.unpack("<qq", t.mem.read(timeout, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise GuestError(EINVAL)
        timeout_ns = sec * 10**9 + nsec
    p = t.process

    def ready() -> bool:
        return bool((t.pending.mask | t.shared.mask) & wanted) or bool(t.has_signals() & ~wanted)

    p.host_signals.sync()
    t.waiting = wanted  # (as Linux's real_blocked: a signal in ``wanted`` comes to this thread)
    try:
        if not p.wait_for(t, ready, timeout_ns):
            raise GuestError(EAGAIN)
    finally:
        t.waiting = 0
    with p.lock:
        chosen = (t.pending.mask | t.shared.mask) & wanted
        if not chosen:
            return -EINTR  # another signal, to be delivered on the way out
        sig = (chosen & -chosen).bit_length()
        info = (t.pending if t.pending.mask & (1 << (sig - 1)) else t.shared).take(sig)
    if info_addr:
        t.mem.write(info_addr, info)
    return sig


# -- signalfd ------------------------------------------------------------------------
_SFD_CLOEXEC, _SFD_NONBLOCK = 0o2000000, 0o4000


def signalfd4(t, fd, mask_addr, sizemask, flags, *_):
    flags = s32(flags)
    if u64(sizemask) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    mask = struct.unpack("<Q", t.mem.read(mask_addr, 8))[0] & ~S.UNBLOCKABLE  # (Linux: the mask, then the flags)
    if flags & ~(_SFD_CLOEXEC | _SFD_NONBLOCK):
        raise GuestError(EINVAL)
    sfds = t.process.signalfds
    fd = s32(fd)
    if fd == -1:
        return sfds.create(mask, bool(flags & _SFD_CLOEXEC), bool(flags & _SFD_NONBLOCK))
    f = sfds.find(t.fds.check(fd))
    if f is None:
        import os

        try:
            os.fstat(fd)
        except OSError:
            raise GuestError(EBADF) from None
        raise GuestError(EINVAL)  # open, but not a signalfd
    f.mask = mask
    sfds.update()
    return fd


def signalfd(t, fd, mask_addr, sizemask, *_):
    return signalfd4(t, fd, mask_addr, sizemask, 0)
