"""KVM memslots for the guest window: what the guest can touch, at what permission.

A guest access to an address with no memslot exits to the monitor as MMIO with the exact
address (the SIGSEGV and its si_addr); a write to a ``KVM_MEM_READONLY`` slot exits the
same way with ``is_write`` set.  So memslots carry the guest's page protections, not the
page tables, which are static (PVM never sees edits to live page tables).

Slots are a partition of the accessible parts of the window that is only ever split,
never merged: each mapping operation creates slots for exactly what it mapped, and
removing or re-protecting part of a slot recreates only the pieces that remain.  A slot
costs KVM metadata in proportion to its size, so merging neighbours would make every
later change inside the merged slot pay for all of it.
"""

from __future__ import annotations

import bisect

from kontain.abi.errno import ENOMEM
from kontain.errors import GuestError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

READ_ONLY = 2  # KVM_MEM_READONLY


if TYPE_CHECKING:
    from collections.abc import Callable

    _SetRegion = Callable[[int, int, int, int, int], None]  # KVM_SET_USER_MEMORY_REGION


class SlotMap:
    """The memslots of one VM's window, first slot number ``first``."""

    def __init__(self, set_region: _SetRegion, host_base: int, first: int, limit: int):
        self._set = set_region
        self._base = host_base
        self._starts: list[int] = []
        self._slots: list[tuple[int, int, int, int, int]] = []  # (start, end, flags, slot id, host address)
        self._free: list[int] = []
        self._next = first
        self._limit = limit

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self):
        return iter(self._slots)

    def _new_id(self) -> int:
        if self._free:
            return self._free.pop()
        if self._next >= self._limit:
            raise GuestError(ENOMEM)
        self._next += 1
        return self._next - 1

    def add(self, start: int, end: int, read_only: bool, hva: int | None = None) -> None:
        """Make [start, end) accessible (it must not overlap any slot).  ``hva``: host
        memory other than the window's own (the host's vDSO)."""
        if start >= end:
            return
        sid = self._new_id()
        flags = READ_ONLY if read_only else 0
        hva = self._base + start if hva is None else hva
        self._set(sid, flags, start, end - start, hva)
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._slots.insert(i, (start, end, flags, sid, hva))

    def remove(self, start: int, end: int) -> None:
        """Make [start, end) inaccessible; parts of slots outside it stay as they were."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0 or self._slots[i][1] <= start:
            i += 1
        keep: list[tuple[int, int, bool, int]] = []
        while i < len(self._slots) and self._slots[i][0] < end:
            s, e, flags, sid, hva = self._slots.pop(i)
            self._starts.pop(i)
            self._set(sid, 0, s, 0, 0)  # delete
            self._free.append(sid)
            if s < start:
                keep.append((s, start, bool(flags & READ_ONLY), hva))
            if e > end:
                keep.append((end, e, bool(flags & READ_ONLY), hva + (end - s)))
        for s, e, ro, hva in keep:
            self.add(s, e, ro, hva)

    def set_access(self, start: int, end: int, access: str) -> None:
        """access: "rw", "ro" or "none" for all of [start, end)."""
        self.remove(start, end)
        if access != "none":
            self.add(start, end, access == "ro")

    def rebind(self, set_region: _SetRegion) -> None:
        """Register every slot again with a new VM (a forked child's)."""
        self._set = set_region
        for start, end, flags, sid, hva in self._slots:
            set_region(sid, flags, start, end - start, hva)

    def lookup(self, addr: int) -> tuple[int, int, int, int, int] | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._slots[i][1] > addr:
            return self._slots[i]
        return None
