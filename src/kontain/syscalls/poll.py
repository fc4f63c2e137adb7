"""poll, ppoll, select, pselect6.

The descriptor sets are data the host kernel acts on, so they are copied into monitor
memory and checked there: a monitor descriptor is, for the guest, one it does not have
(poll reports POLLNVAL for it, select fails with EBADF), exactly as Linux treats a
descriptor above the limit.  The copy is what the host sees, then results go back.
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi.errno import EBADF, EINVAL
from kontain.abi.flags import POLLNVAL
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, s32, sigmask_arg, u64, with_sigmask

SYS_poll, SYS_select, SYS_pselect6, SYS_ppoll = 7, 23, 270, 271


def _poll_common(t, fds_addr, nfds, call) -> int:
    nfds = u64(nfds)
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
    return _poll_common(t, fds_addr, nfds, lambda a, n: native.syscall(SYS_poll, a, n, s32(timeout)))


def ppoll(t, fds_addr, nfds, tsp, sigmask, sigsetsize, *_):
    ts = ptr(t, tsp, 16)
    mask = sigmask_arg(t, sigmask, sigsetsize)  # the program's, not the host thread's (common.with_sigmask)
    return _poll_common(t, fds_addr, nfds,
                        lambda a, n: with_sigmask(t, mask, lambda: native.syscall(SYS_ppoll, a, n, ts, 0, 0)))


def _table_size(t) -> int:
    """What Linux's select takes as the end of the descriptor table (fdt->max_fds) for
    the program: 64 at first, then 128 times a power of two, enough for its highest
    descriptor (the host's table also holds the monitor's, at the floor and above)."""
    try:
        highest = max((fd for fd in map(int, os.listdir("/proc/self/fd")) if fd < t.fds.floor), default=0)
    except OSError:
        return t.fds.floor
    if highest < 64:
        return 64
    return 128 << ((highest // 128).bit_length())


def _fdset_copies(t, nfds: int, sets: tuple[int, int, int]) -> tuple[list[bytearray | None], int]:
    if nfds < 0:
        raise GuestError(EINVAL)
    # as Linux, the sets are read only as far as the descriptor table goes, however
    # large nfds is (it was read whole: 256 MiB for INT_MAX, EFAULT or MemoryError)
    if nfds > 64:
        nfds = min(nfds, _table_size(t))
    floor = t.fds.floor
    size = (nfds + 63) // 64 * 8
    copies: list[bytearray | None] = []
    for addr in sets:
        if not addr or size == 0:
            copies.append(None)
            continue
        buf = bytearray(t.mem.read(addr, size))
        # bits at or above the floor name monitor descriptors: the guest has no such fd
        for fd in range(floor, nfds):
            if buf[fd >> 3] >> (fd & 7) & 1:
                raise GuestError(EBADF)
        copies.append(buf)
    return copies, min(nfds, floor)


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


def select(t, nfds, r_addr, w_addr, e_addr, tv, *_):
    tvp = ptr(t, tv, 16)
    return _select_common(t, nfds, r_addr, w_addr, e_addr,
                          lambda n, r, w, e: native.syscall(SYS_select, n, r, w, e, tvp))


def pselect6(t, nfds, r_addr, w_addr, e_addr, tsp, sig):
    ts = ptr(t, tsp, 16)
    mask = None
    if sig:  # a pointer to {sigset pointer, size}
        mask_addr, size = struct.unpack("<QQ", t.mem.read(sig, 16))
        mask = sigmask_arg(t, mask_addr, size)
    return _select_common(t, nfds, r_addr, w_addr, e_addr,
                          lambda n, r, w, e: with_sigmask(t, mask, lambda: native.syscall(SYS_pselect6, n, r, w, e, ts, 0)))
