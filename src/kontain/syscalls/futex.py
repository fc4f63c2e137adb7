"""futex: passes through on the host address of the futex word, which is the same
memory the guest sees, so host threads block and wake exactly as guest threads would.

Which arguments are pointers depends on the operation: the timeout (WAIT, WAIT_BITSET,
LOCK_PI...) or a number (REQUEUE's count), and a second futex word (REQUEUE, WAKE_OP).
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi.errno import EINVAL, ENOSYS
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, s32, u32

SYS_futex = 202
FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 6, 7, 8, 9, 10
FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2 = 11, 12, 13
_CMD_MASK = 0x7F  # without FUTEX_PRIVATE_FLAG and FUTEX_CLOCK_REALTIME
_TIMEOUT = {FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2}
_WAITS = {FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_WAIT_REQUEUE_PI}
_UADDR2 = {FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP, FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI}


def futex(t, uaddr, op, val, timeout, uaddr2, val3):
    cmd = u32(op) & _CMD_MASK
    if cmd == FUTEX_FD:
        raise GuestError(ENOSYS)
    word = t.mem.host(uaddr, 4)
    arg4 = ptr(t, timeout, 16) if cmd in _TIMEOUT else timeout
    arg5 = t.mem.host(uaddr2, 4) if cmd in _UADDR2 else 0
    if cmd in _WAITS:  # a kick before the wait starts: EINTR (a spurious wake-up to the C library)
        return t.blocking(SYS_futex, word, op, val, arg4, arg5, val3)
    return native.syscall(SYS_futex, word, op, val, arg4, arg5, val3)


# -- futex2: futex_waitv (5.16), futex_wake, futex_wait and futex_requeue (6.7) -------------
#
# Each names its futex words by address, futex_waitv and futex_requeue in an array of
# struct futex_waitv {u64 val; u64 uaddr; u32 flags; u32 __reserved}: the array is copied,
# each uaddr made the host address of the word (as long as its flags say: FUTEX2_SIZE_*,
# twice that with FUTEX2_NUMA's node id after it), and the host checks the rest in its
# own order.  A word outside the program's memory gets an address the host faults on
# (EFAULT, as Linux), with its low bits kept (an unaligned word is EINVAL first).
SYS_futex_waitv, SYS_futex_wake, SYS_futex_wait, SYS_futex_requeue = 449, 454, 455, 456
FUTEX_WAITV_MAX = 128
WAITV = struct.Struct("<QQII")
FUTEX2_SIZE_MASK, FUTEX2_NUMA = 0x3, 0x4
_NOWHERE = 1 << 63  # non-canonical: every host access faults


def _word(t, uaddr: int, flags: int) -> int:
    """The host address of the futex word at ``uaddr`` (its size from ``flags``)."""
    size = (1 << (flags & FUTEX2_SIZE_MASK)) * (2 if flags & FUTEX2_NUMA else 1)
    try:
        return t.mem.host(uaddr, size)
    except GuestError:
        return _NOWHERE | uaddr & 0xFFF


def _waiters(t, addr: int, n: int) -> bytearray:
    """A host copy of the program's array of ``n`` struct futex_waitv, words translated."""
    raw = t.mem.read(addr, n * WAITV.size)  # (EFAULT)
    out = bytearray(len(raw))
    for i in range(n):
        val, uaddr, flags, reserved = WAITV.unpack_from(raw, i * WAITV.size)
        WAITV.pack_into(out, i * WAITV.size, val, _word(t, uaddr, flags), flags, reserved)
    return out


def futex_waitv(t, waiters, nr_futexes, flags, timeout, clockid, *_):
    nr = u32(nr_futexes)
    if u32(flags) or not nr or nr > FUTEX_WAITV_MAX or not waiters:
        raise GuestError(EINVAL)
    ts = ptr(t, timeout, 16)  # (Linux: the timeout before the array)
    host = _waiters(t, waiters, nr)
    return t.blocking(SYS_futex_waitv, native.address_of(host), nr, 0, ts, s32(clockid))


def futex_wake(t, uaddr, mask, nr, flags, *_):
    return native.syscall(SYS_futex_wake, _word(t, uaddr, u32(flags)), mask, s32(nr), u32(flags))


def futex_wait(t, uaddr, val, mask, flags, timeout, clockid):
    ts = ptr(t, timeout, 16)
    return t.blocking(SYS_futex_wait, _word(t, uaddr, u32(flags)), val, mask, u32(flags), ts, s32(clockid))


def futex_requeue(t, waiters, flags, nr_wake, nr_requeue, *_):
    if u32(flags) or not waiters:
        raise GuestError(EINVAL)
    host = _waiters(t, waiters, 2)
    return native.syscall(SYS_futex_requeue, native.address_of(host), u32(flags), s32(nr_wake), s32(nr_requeue))
