"""poll, ppoll, select, pselect6.

The descriptor sets are data the host kernel acts on, so they are copied into monitor
memory and checked there: a monitor descriptor is, for the guest, one it does not have
(poll reports POLLNVAL for it, select fails with EBADF), exactly as Linux treats a
descriptor above the limit.  The copy is what the host sees, then results go back.
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi.errno import EINVAL
from kontain.abi.flags import POLLNVAL
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, s32, timeout_arg, u32, u64
from kontain.syscalls.signal import with_sigmask

SYS_poll, SYS_select, SYS_pselect6, SYS_ppoll = 7, 23, 270, 271
SIGSET_SIZE = 8


def _poll_common(t, fds_addr, nfds, call) -> int:
    nfds = u32(nfds)  # (an unsigned int: the high half is not looked at)
    if nfds > t.fds.soft:
        raise GuestError(EINVAL)
    if nfds == 0:
        return call(0, 0)
    raw = bytearray(t.mem.read(fds_addr, 8 * nfds))
    hidden = []
    floor = t.fds.floor
    for i in range(nfds):
        fd = struct.unpack_from("<i", raw, 8 * i)[0]
        if fd >= floor:
            hidden.append(i)
            struct.pack_into("<i", raw, 8 * i, -1)  # the host ignores it; we report POLLNVAL
    r = call(native.address_of(raw), nfds)
    if r < 0:
        return r
    for i in hidden:
        struct.pack_into("<h", raw, 8 * i + 6, POLLNVAL)
        r += 1
    # write back only revents, keeping the program's fd and events as they are now
    out = t.mem.read(fds_addr, 8 * nfds)
    merged = bytearray(out)
    for i in range(nfds):
        merged[8 * i + 6:8 * i + 8] = raw[8 * i + 6:8 * i + 8]
    t.mem.write(fds_addr, bytes(merged))
    return r


def poll(t, fds_addr, nfds, timeout, *_):
    def call(timeout: int, sc) -> int:
        return _poll_common(t, fds_addr, nfds, lambda a, n: sc(SYS_poll, a, n, timeout))

    return with_sigmask(t, None, lambda: call(s32(timeout), t.blocking), lambda: call(0, native.syscall))


def _sigmask_copy(t, mask_addr, size) -> bytearray | None:
    """The guest's sigset argument of ppoll or pselect6 (checked: the size must be 8)."""
    if not mask_addr:
        return None
    if u64(size) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    return bytearray(t.mem.read(mask_addr, SIGSET_SIZE))


_ZERO_TS = bytearray(16)  # a zero timeout: "poll now" (syscalls.signal.with_sigmask)


def ppoll(t, fds_addr, nfds, tsp, sigmask, sigsetsize, *_):
    timeout_arg(t, tsp)  # (Linux: the timeout, the mask, then the descriptors)
    ts, _kept = _timeout_ptr(t, tsp)
    mask = _sigmask_copy(t, sigmask, sigsetsize)

    def call(timeout: int, sc) -> int:
        return _poll_common(t, fds_addr, nfds, lambda a, n: sc(SYS_ppoll, a, n, timeout, 0, SIGSET_SIZE))

    return with_sigmask(t, mask, lambda: call(ts, t.blocking), lambda: call(native.address_of(_ZERO_TS), native.syscall))


STICKY_TIMEOUTS = 0x4000000  # personality(2): select, pselect6 and ppoll leave the timeout as it was


def _timeout_ptr(t, addr: int) -> tuple[int, bytearray | None]:
    """The host address of a select/pselect6/ppoll timeout (16 bytes, NULL for NULL),
    where the host writes the time left, as Linux does; under the STICKY_TIMEOUTS
    personality (which km records but the host thread does not have) a copy of it, which
    the caller keeps alive for the call, so that the program's stays untouched (LTP's
    personality02 found it changed)."""
    host = ptr(t, addr, 16)
    if not addr or not t.process.personality & STICKY_TIMEOUTS:
        return host, None
    copy = bytearray(t.mem.read(addr, 16))
    return native.address_of(copy), copy


def _fdset_copies(t, nfds: int, sets: tuple[int, int, int]) -> tuple[list[bytearray | None], int]:
    """Copies of the sets, as many bits as the program's descriptor table has: Linux
    caps nfds at its table's size and ignores the bits past it (FdTable.table_size),
    so no nfds makes km copy more than that."""
    if nfds < 0:
        raise GuestError(EINVAL)
    nfds = min(nfds, t.fds.table_size())
    size = (nfds + 63) // 64 * 8
    copies: list[bytearray | None] = []
    for addr in sets:
        if not addr or size == 0:
            copies.append(None)
            continue
        copies.append(bytearray(t.mem.read(addr, size)))
    return copies, nfds


def _select_common(t, nfds, r_addr, w_addr, e_addr, call) -> int:
    nfds = s32(nfds)
    copies, nfds_host = _fdset_copies(t, nfds, (r_addr, w_addr, e_addr))
    args = [native.address_of(c) if c is not None else 0 for c in copies]
    r = call(nfds_host, *args)
    if r >= 0:
        for addr, c in zip((r_addr, w_addr, e_addr), copies):
            if c is not None:
                t.mem.write(addr, bytes(c))
    return r


def _timeval_arg(t, addr: int) -> None:
    """select's timeout, read and checked before anything else, as Linux's kern_select
    (EFAULT, then EINVAL for a time before zero: C's division and remainder)."""
    if addr:
        sec, usec = struct.unpack("<qq", t.mem.read(addr, 16))
        carry = -(-usec // 1_000_000) if usec < 0 else usec // 1_000_000
        if sec + carry < 0 or usec - carry * 1_000_000 < 0:
            raise GuestError(EINVAL)


def select(t, nfds, r_addr, w_addr, e_addr, tv, *_):
    _timeval_arg(t, tv)
    tvp, _kept = _timeout_ptr(t, tv)
    def call(tv: int, sc) -> int:
        return _select_common(t, nfds, r_addr, w_addr, e_addr,
                              lambda n, r, w, e: sc(SYS_select, n, r, w, e, tv))

    return with_sigmask(t, None, lambda: call(tvp, t.blocking), lambda: call(native.address_of(_ZERO_TS), native.syscall))


def pselect6(t, nfds, r_addr, w_addr, e_addr, tsp, sig):
    # Linux: the {sigset pointer, size} pair, the timeout, the mask, then nfds and the sets
    pair = struct.unpack("<QQ", t.mem.read(sig, 16)) if sig else None
    timeout_arg(t, tsp)
    ts, _kept = _timeout_ptr(t, tsp)
    mask = _sigmask_copy(t, *pair) if pair else None

    def call(timeout: int, sc) -> int:
        return _select_common(t, nfds, r_addr, w_addr, e_addr,
                              lambda n, r, w, e: sc(SYS_pselect6, n, r, w, e, timeout, 0))

    return with_sigmask(t, mask, lambda: call(ts, t.blocking), lambda: call(native.address_of(_ZERO_TS), native.syscall))
