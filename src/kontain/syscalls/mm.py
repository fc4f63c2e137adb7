"""Memory: brk, mmap, munmap, mprotect, mremap, madvise and friends.

The address space itself (memory/mm.py) does the work; these handlers convert the
registers and check the descriptor of a file mapping.
"""

from __future__ import annotations

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EAGAIN, EINVAL, ENODEV, ENOMEM, EPERM
from kontain.errors import GuestError
from kontain.kernel.fdtable import posix_locked
from kontain.kvm import abi as k
from kontain.memory.mm import VM_SPECIAL
from kontain.syscalls.common import file_type, s32, u64

SYS_msync, SYS_mincore, SYS_mlock, SYS_munlock, SYS_mlock2 = 26, 27, 149, 150, 325
MLOCK_ONFAULT = 1
CAP_IPC_LOCK = 14
_U64 = (1 << 64) - 1
STACK_LOCK_BELOW = 128 << 10
PAGE = F.PAGE_SIZE


def brk(t, addr, *_):
    mm = t.mm
    old = mm.brk_end
    new = mm.brk(u64(addr))
    if mm.lock_future >= 0 and new > old:
        start, end = (old + PAGE - 1) & ~(PAGE - 1), (new + PAGE - 1) & ~(PAGE - 1)
        if end > start and native.syscall(SYS_mlock2, t.mem.base + start, end - start, mm.lock_future) < 0:
            return mm.brk(old)  # (it cannot be locked: the break stays)
    return new


def mlockall(t, flags, *_):
    """Locks the program's memory (every mapping of its window on the host), never the
    monitor's; MCL_FUTURE locks what it maps later (``_lock_new``)."""
    flags = s32(flags)
    if not flags or flags & ~(F.MCL_CURRENT | F.MCL_FUTURE | F.MCL_ONFAULT) or flags == F.MCL_ONFAULT:
        raise GuestError(EINVAL)
    how = MLOCK_ONFAULT if flags & F.MCL_ONFAULT else 0
    # Linux's checks first (the host's would see one mapping at a time): the right to
    # lock, and all of the program's memory within RLIMIT_MEMLOCK for MCL_CURRENT
    with t.mm.lock:
        ranges = [] if not flags & F.MCL_CURRENT else \
            [(_lock_start(t, v), v.end) for v in t.mm if not v.flags & VM_SPECIAL]
        refused = _may_lock(sum(end - start for start, end in ranges))
        if refused:
            return refused
        t.mm.lock_future = how if flags & F.MCL_FUTURE else -1
        for start, end in ranges:
            # each is locked; a failure to fault one in (PROT_NONE) is ignored, as
            # Linux's mlockall ignores its populate's
            native.syscall(SYS_mlock2, t.mem.base + start, end - start, how)
    return 0


def _lock_start(t, v) -> int:
    """Where mlockall locks a mapping from: its start, but for the stack, which km maps
    whole (8 MiB) at once where Linux's grows as it is used, the part in use and a little
    below, as much as Linux has.  (The host's vDSO pages, VM_SPECIAL, are left out by the
    caller: Linux leaves them unlocked too.)"""
    if v.name == "[stack]":
        return max(v.start, (t.q[k.RSP] & ~(PAGE - 1)) - STACK_LOCK_BELOW)
    return v.start


def munlockall(t, *_):
    t.mm.lock_future = -1
    with t.mm.lock:
        for v in list(t.mm):
            native.syscall(SYS_munlock, t.mem.base + v.start, v.end - v.start)
    return 0


def _changing(t, start: int, length: int, keeps: bool) -> None:
    """Tell the syscall-site rewriter (kernel/rewrite.py) that [start, start+length) is
    about to be unmapped or replaced (``keeps`` False), or made writable or moved."""
    rw = t.process.rewriter
    if rw is not None and (rw.patched or keeps):
        start = u64(start) & ~(PAGE - 1)
        end = start + ((u64(length) + PAGE - 1) & ~(PAGE - 1))
        if start < end <= t.mm.window:
            rw.changing(t, start, end, keeps=keeps)


def mmap(t, addr, length, prot, flags, fd, offset):
    flags = s32(flags)
    if flags & F.MAP_FIXED:
        _changing(t, addr, length, False)
    if flags & F.MAP_ANONYMOUS:
        r = t.mm.mmap(u64(addr), u64(length), s32(prot), flags, fd, u64(offset))
    else:
        # the file is looked at and mapped through a descriptor of the monitor's: the
        # program cannot swap what its number refers to in between.  Not for a file the
        # program holds POSIX locks on: closing that descriptor would drop them; its own
        # number then (a swap meanwhile by another thread maps what that thread put there)
        fd = t.fds.check(fd)
        locked = bool(t.process.posix_locked) and posix_locked(t.process, fd)
        own = fd if locked else native.dup_at_least(fd, t.fds.floor)
        if own < 0:
            return own
        try:
            if file_type(own) == 0:
                raise GuestError(ENODEV)  # nothing the program may map (KVM's vCPUs and VM among them)
            r = t.mm.mmap(u64(addr), u64(length), s32(prot), flags, own, u64(offset))
        finally:
            if not locked:
                native.syscall(3, own)  # close
    if t.mm.lock_future >= 0:
        _lock_new(t, r, u64(length))
    return r


def _lock_new(t, addr: int, length: int) -> None:
    """mlockall(MCL_FUTURE): a new mapping is locked, or undone (EAGAIN, as Linux)."""
    size = (length + PAGE - 1) & ~(PAGE - 1)
    if native.syscall(SYS_mlock2, t.mem.base + addr, size, t.mm.lock_future) < 0:
        t.mm.munmap(addr, size)
        raise GuestError(EAGAIN)


def munmap(t, addr, length, *_):
    _changing(t, addr, length, False)
    t.mm.munmap(u64(addr), u64(length))
    return 0


def mprotect(t, addr, length, prot, *_):
    if s32(prot) & F.PROT_WRITE:
        _changing(t, addr, length, True)
    t.mm.mprotect(u64(addr), u64(length), s32(prot))
    return 0


def mremap(t, old, old_len, new_len, flags, new_addr, *_):
    _changing(t, old, old_len, True)
    if s32(flags) & F.MREMAP_FIXED:
        _changing(t, new_addr, new_len, False)
    r = t.mm.mremap(u64(old), u64(old_len), u64(new_len), s32(flags), u64(new_addr))
    if t.process.aio:  # (an AIO ring moved whole: its context follows, kernel/aio.py)
        from kontain.kernel import aio

        aio.moved(t.process, u64(old), r, u64(old_len), u64(new_len))
    return r


def madvise(t, addr, length, advice, *_):
    t.mm.madvise(u64(addr), u64(length), s32(advice))
    return 0


def mseal(t, addr, length, flags, *_):
    """mseal(2): km's mappings remember the seal (AddressSpace.mseal), and km's own
    changes to the address space are refused as Linux refuses them (LTP's mseal01-02:
    ENOSYS)."""
    t.mm.mseal(u64(addr), u64(length), u64(flags))
    return 0


def _range(t, addr: int, length: int) -> tuple[int, int]:
    """A page-aligned range that must lie in the window (ENOMEM otherwise, as Linux)."""
    addr, length = u64(addr), u64(length)
    if addr & (PAGE - 1):
        raise GuestError(EINVAL)
    size = (length + PAGE - 1) & ~(PAGE - 1)
    if not t.mem.contains(addr, size):
        raise GuestError(ENOMEM)
    return t.mem.base + addr, size


def msync(t, addr, length, flags, *_):
    """The host checks the flags and syncs; a range with unmapped pages then fails with
    ENOMEM, as Linux's, which syncs the mapped parts first (the host's reservation
    around the program's mappings is no mapping of the program's)."""
    host, size = _range(t, addr, length)
    r = native.syscall(SYS_msync, host, size, s32(flags))
    if r == 0 and t.mm.first_gap(u64(addr), u64(addr) + size) is not None:
        return -ENOMEM
    return r


def mincore(t, addr, length, vec, *_):
    """As Linux: the pages before the first unmapped one are reported, then ENOMEM."""
    host, size = _range(t, addr, length)
    gap = t.mm.first_gap(u64(addr), u64(addr) + size)
    if gap is not None:
        size = gap - u64(addr)
        if size == 0:
            return -ENOMEM
    r = native.syscall(SYS_mincore, host, size, t.mem.host(vec, size // PAGE))
    return -ENOMEM if r == 0 and gap is not None else r


def _lock(nr: int, t, addr, length, *rest) -> int:
    """mlock, munlock and mlock2 as Linux's do_mlock: flags, then (to lock) the caller's
    right and RLIMIT_MEMLOCK, then the range.  Over a range with a hole the mappings
    before the hole are done and the call fails with ENOMEM; the host would see one
    range there (km's reservation fills the program's holes), so km finds the hole."""
    addr, length = u64(addr), u64(length)
    if nr == SYS_mlock2 and rest[0] & ~MLOCK_ONFAULT & 0xFFFFFFFF:
        return -EINVAL
    start = addr & ~(PAGE - 1)
    size = (length + (addr - start) + PAGE - 1) & ~(PAGE - 1) & _U64  # (PAGE_ALIGN wraps as the kernel's)
    end = start + size
    gap = None if end > 1 << 64 else t.mm.first_gap(start, end) if t.mem.contains(start, size) else start
    if gap is None and end <= 1 << 64:
        return native.syscall(nr, t.mem.base + start, size, *rest)
    if nr != SYS_munlock:
        refused = _may_lock(size)
        if refused:
            return refused
    if end > 1 << 64:
        return -EINVAL
    if gap > start:
        native.syscall(nr, t.mem.base + start, gap - start, *rest)
    return -ENOMEM


def _may_lock(size: int) -> int:
    """Linux's can_do_mlock and RLIMIT_MEMLOCK check for ``size`` bytes more: 0, or the
    error (what the host would answer, asked for a range it must not see)."""
    if native.capable(CAP_IPC_LOCK):
        return 0
    import resource

    soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
    if soft == 0:
        return -EPERM
    return -ENOMEM if soft != resource.RLIM_INFINITY and size > soft else 0


def mlock(t, addr, length, *_):
    return _lock(SYS_mlock, t, addr, length)


def munlock(t, addr, length, *_):
    return _lock(SYS_munlock, t, addr, length)


def mlock2(t, addr, length, flags, *_):
    return _lock(SYS_mlock2, t, addr, length, s32(flags))
