"""futex: passes through on the host address of the futex word, which is the same
memory the guest sees, so host threads block and wake exactly as guest threads would.

Which arguments are pointers depends on the operation: the timeout (WAIT, WAIT_BITSET,
LOCK_PI...) or a number (REQUEUE's count), and a second futex word (REQUEUE, WAKE_OP).
"""

from __future__ import annotations

from kontain import native
from kontain.abi.errno import ENOSYS
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, u32

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
