"""Memory: brk, mmap, munmap, mprotect, mremap, madvise and friends.

The address space itself (memory/mm.py) does the work; these handlers convert the
registers and check the descriptor of a file mapping.
"""

from __future__ import annotations

import os

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EINVAL, ENOMEM, EPERM
from kontain.errors import GuestError
from kontain.syscalls.common import s32, u64

SYS_msync, SYS_mincore, SYS_mlock, SYS_munlock, SYS_mlock2, SYS_mlockall = 26, 27, 149, 150, 325, 151
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = F.MCL_CURRENT, F.MCL_FUTURE, F.MCL_ONFAULT
PAGE = F.PAGE_SIZE


def brk(t, addr, *_):
    return t.mm.brk(u64(addr))


def mmap(t, addr, length, prot, flags, fd, offset):
    flags = s32(flags)
    if not flags & F.MAP_ANONYMOUS:
        fd = t.fds.check(fd)
    return t.mm.mmap(u64(addr), u64(length), s32(prot), flags, fd, u64(offset))


def munmap(t, addr, length, *_):
    t.mm.munmap(u64(addr), u64(length))
    return 0


def mprotect(t, addr, length, prot, *_):
    t.mm.mprotect(u64(addr), u64(length), s32(prot))
    return 0


def mremap(t, old, old_len, new_len, flags, new_addr, *_):
    return t.mm.mremap(u64(old), u64(old_len), u64(new_len), s32(flags), u64(new_addr))


def madvise(t, addr, length, advice, *_):
    t.mm.madvise(u64(addr), u64(length), s32(advice))
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
    host, size = _range(t, addr, length)
    return native.syscall(SYS_msync, host, size, s32(flags))


def mincore(t, addr, length, vec, *_):
    host, size = _range(t, addr, length)
    out = t.mem.host(vec, size // PAGE)
    return native.syscall(SYS_mincore, host, size, out)


def _lock(nr: int, t, addr, length, *rest) -> int:
    addr, length = u64(addr), u64(length)
    start = addr & ~(PAGE - 1)
    if not t.mem.contains(start, length + (addr - start)):
        raise GuestError(ENOMEM)
    return native.syscall(nr, t.mem.base + addr, length, *rest)


def mlock(t, addr, length, *_):
    return _lock(SYS_mlock, t, addr, length)


def munlock(t, addr, length, *_):
    return _lock(SYS_munlock, t, addr, length)


def mlock2(t, addr, length, flags, *_):
    if u64(flags) & ~F.MLOCK_ONFAULT & 0xFFFFFFFF:
        raise GuestError(EINVAL)  # as Linux, the flags before the range
    return _lock(SYS_mlock2, t, addr, length, s32(flags))


def mlockall(t, flags, *_):
    """MCL_CURRENT goes to the host (locking the monitor's memory along with the
    program's: for a user without CAP_IPC_LOCK that is more than RLIMIT_MEMLOCK, and
    fails with ENOMEM as the program's own would, mostly).  MCL_FUTURE is checked and
    accepted but not given to the host: there it would lock every allocation km makes
    from then on, a thread's stack, the interpreter's memory, and those fail once they
    pass RLIMIT_MEMLOCK (a guest thread could not be made: an internal error in clone)."""
    flags = s32(flags)
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or flags == MCL_ONFAULT:
        raise GuestError(EINVAL)
    if flags & MCL_CURRENT:
        return native.syscall(SYS_mlockall, flags & (MCL_CURRENT | MCL_ONFAULT))
    import resource

    if resource.getrlimit(resource.RLIMIT_MEMLOCK)[0] == 0 and os.geteuid() != 0:
        raise GuestError(EPERM)  # as Linux's can_do_mlock (CAP_IPC_LOCK: root, here)
    return 0
