"""The guest's memory window in the host, and checked access to it.

The window is one host reservation: guest address ``a`` lives at host address
``base + a`` for every ``a`` in ``[0, size)``.  The whole reservation is always mapped
in the host, either as guest memory or as ``PROT_NONE`` (nothing else, like a Python
allocation, can ever land inside it), and a ``PROT_NONE`` guard follows it.

This is the security boundary of memory (DESIGN.md 2.3): every guest address that
reaches a host call goes through :meth:`host`, and every monitor-side access through the
read/write helpers here.  :meth:`host` maps an address inside the window to its host
address, and any other address to a "poison" address inside the guard, so the host call
fails with EFAULT exactly where and when Linux would: after its other checks (a bad
descriptor is still EBADF), and only if it touches the memory.  The guard is larger
than any length the monitor passes to the host (MAX_RW_COUNT), so a range that starts
in the window or the guard ends in the window or the guard.  Holes inside the window are
``PROT_NONE`` on the host and fail the same way.  Monitor-side copies use
process_vm_readv/writev, which fail with EFAULT instead of crashing the monitor.
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.abi.errno import EFAULT, ENAMETOOLONG
from kontain.abi.flags import PAGE_SIZE, PATH_MAX
from kontain.errors import GuestError

_PROT_NONE = 0
_MAP_PRIVATE_ANON_NORESERVE = 0x02 | 0x20 | 0x4000
_MAP_FIXED = 0x10
GUARD = 4 << 30  # > MAX_RW_COUNT: costs address space only
USER_LIMIT = 0x7FFFFFFFF000  # Linux's TASK_SIZE on x86-64 (4-level paging)
NONCANONICAL = 1 << 63
_ALIGN = 1 << 30  # host base aligned so that guest and host 2 MiB pages coincide

_U64 = struct.Struct("<Q")
_EFAULT = GuestError(EFAULT)


def _as_limit() -> str:
    """Why a reservation failed, when RLIMIT_AS is the reason: what to do about it."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard == resource.RLIM_INFINITY:
        return ""
    return (f" (RLIMIT_AS is {hard >> 20} MiB: km holds the program to its RLIMIT_AS itself, but its own "
            "process needs the room; raise the hard limit, e.g. ulimit -Hv unlimited, or use km --rlimit AS=SOFT:HARD)")


class GuestMemory:
    """A reserved host range that backs guest addresses ``[0, size)``."""

    def __init__(self, size: int):
        total = size + GUARD + _ALIGN
        raw = native.mmap(0, total, _PROT_NONE, _MAP_PRIVATE_ANON_NORESERVE)
        if raw < 0:
            raise MemoryError(f"cannot reserve {size >> 30} GiB of address space for the guest{_as_limit()}")
        base = (raw + _ALIGN - 1) & ~(_ALIGN - 1)
        # give back the alignment slack on both sides
        if base > raw:
            native.munmap(raw, base - raw)
        end = base + size + GUARD
        if raw + total > end:
            native.munmap(end, raw + total - end)
        self.base = base
        self.size = size

    # -- translation ---------------------------------------------------------------
    def host(self, addr: int, length: int = 0) -> int:
        """The host address a host call may use for guest range [addr, addr+length):
        inside the window, its host address; otherwise a poison address in the guard
        (same offset in its page, so alignment checks come out as on Linux)."""
        if length > GUARD:
            raise _EFAULT
        if 0 <= addr < self.size:
            return self.base + addr
        if 0 <= addr < USER_LIMIT:
            return self.base + self.size + (addr & 0xFFF)
        # not a user address on Linux at all: the host rejects it up front (access_ok),
        # as Linux would; a non-canonical address can be no host's memory
        return NONCANONICAL | (addr & 0xFFF)

    def host_user(self, addr: int, count: int, length: int) -> int:
        """``host(addr, length)`` for a call that first checks, as Linux's read and write
        do (access_ok), that all of [addr, addr+count) is user address space with the
        ``count`` the program gave, before capping it at ``length``: a range past the
        user limit (or wrapping) becomes a non-canonical address, which the host call
        refuses with EFAULT after its descriptor checks, as Linux does."""
        if count and addr + count > USER_LIMIT:
            return NONCANONICAL | (addr & 0xFFF)
        return self.host(addr, length)

    def contains(self, addr: int, length: int = 0) -> bool:
        return 0 <= addr and 0 <= length and addr + length <= self.size

    # -- monitor-side copies ---------------------------------------------------------
    def read(self, addr: int, length: int) -> bytes:
        data = native.read_mem(self.host(addr, length), length)
        if isinstance(data, int):
            raise _EFAULT
        return data

    def write(self, addr: int, data: bytes) -> None:
        if native.write_mem(self.host(addr, len(data)), data) < 0:
            raise _EFAULT

    def read_u64(self, addr: int) -> int:
        return _U64.unpack(self.read(addr, 8))[0]

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def cstr(self, addr: int, limit: int = PATH_MAX, too_long: int = ENAMETOOLONG) -> bytes:
        """A NUL-terminated string of at most ``limit`` bytes with its NUL (like the
        kernel's strncpy_from_user): EFAULT on a bad page before the NUL, ``too_long``
        when there is no NUL within ``limit``."""
        out = b""
        while len(out) < limit:
            chunk = min(PAGE_SIZE - (addr + len(out)) % PAGE_SIZE, limit - len(out))
            data = self.read(addr + len(out), chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul]
            out += data
        raise GuestError(too_long)
