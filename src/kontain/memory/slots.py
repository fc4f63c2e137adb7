"""KVM memslots for the guest window: what the guest can touch, at what permission.

A guest access to an address with no memslot exits to the monitor as MMIO with the exact
address (the SIGSEGV and its si_addr); a write to a ``KVM_MEM_READONLY`` slot exits the
same way with ``is_write`` set.  So memslots carry the guest's page protections, not the
page tables, which are static (PVM never sees edits to live page tables).

Slots are a partition of the accessible parts of the window that is split as mappings
change, never merged afterwards: each mapping operation creates slots for exactly what it
mapped, and removing or re-protecting part of a slot recreates only the pieces that
remain.  A slot costs KVM metadata in proportion to its size, so merging neighbours would
make every later change inside the merged slot pay for all of it.

Merged at the start only, in two places where many slots are made at once and a KVM_SET_USER_MEMORY_REGION costs
more than any later split of them (each waits for KVM's SRCU readers: 10-20 us on a quiet
host, 0.7-1.5 ms on this loaded 2-CPU one, where they were ~60% of a fork+exec child's
time): a *batch* (``begin_batch``: exec emptying the address space and loading the next
program, the first program's load) registers its new slots only at its end, neighbours
of the same protection and contiguous host memory as one slot (a static program's
headers, code and read-only data; the vDSO's three parts); and a forked child's new VM
(``rebind``) registers each of its parent's slots, merged the same way, when the child first
touches it (``ensure``: the access exits as in a hole, or as a fetch KVM cannot emulate, and
runs again), the code it returns to and its stack at once.  Merged slots are at most
MERGE_MAX bytes, so that a later change inside one pays for little.

A munmap of exactly one slot *parks* it instead (``park``): the slot stays registered
over host memory that is PROT_NONE now, and a mapping of the same range again, as
programs do in loops of mmap and munmap, takes the slot back without a
KVM_SET_USER_MEMORY_REGION (100-200 us each on this host, and a deletion waits for KVM's
SRCU readers).  A guest access to a parked range fails in KVM with EFAULT, without the
address (this KVM does not fill KVM_EXIT_MEMORY_FAULT for it): km then makes every
slot exact (``exact``) and lets the access run again, to exit as in any hole with its
address.  At most PARK_MAX slots are parked, the oldest deleted first.

*Loose* slots generalise parking to the changes that take access away.  The host mapping
under a slot always has the program's own protection (memory/mm.py ``host_prot``), and
KVM maps a guest page only as the host allows: a write where the host mapping is read-only,
or any access where it is PROT_NONE, fails in KVM with EFAULT, RIP at the instruction, and
runs again once the slot is right (../shared/PVM.md, "Write to an mprotect'ed host page").
So a change that leaves the slots allowing *more* than the mapping (read-only over a
writable slot: the dynamic loader's RELRO; PROT_NONE inside a slot: its holes, a thread
stack's guard) changes no slot; a new read-only mapping gets a writable slot, so that the
loader's data and bss over part of its read-only reservation of a library, and its RELRO
after, change none either; the range is remembered (``_loose``).  At the EFAULT, ``exact``
makes those ranges' slots what the mappings allow, and the access runs again, to exit
with its address (a write to a read-only slot, a hole) as without loose slots.  Each
KVM_SET_USER_MEMORY_REGION these save cost ~50-250 us here (a deletion the most: it
waits for KVM's SRCU readers and zaps the slot's shadow pages); a library's load made
~4 of them.  A caller whose host mapping allows more than the program's protection
(km's trampoline pages, a debugger's watchpoints) asks for ``strict`` access.  At most
LOOSE_MAX ranges are remembered, then all are made exact.
"""

from __future__ import annotations

import bisect

from kontain.abi.errno import ENOMEM
from kontain.errors import GuestError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

READ_ONLY = 2  # KVM_MEM_READONLY
PARK_MAX = 16
LOOSE_MAX = 256  # ranges whose slots allow more than their mappings, remembered at most
MERGE_MAX = 64 << 20  # the largest slot a batch or a rebind makes of neighbours
PENDING = -1  # the slot id of a slot a batch has not registered yet


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
        self._next = self._first = first
        self._limit = limit
        self._batch = 0  # nesting depth of ``batch``: while > 0, new slots wait (PENDING)
        self._parked: dict[int, tuple[int, int, int, int, int]] = {}  # start -> slot, oldest first
        self._loose: list[tuple[int, int, str]] = []  # (start, end, "ro" or "none"): slots allow more there
        self.generation = 0  # counts the changes of access asked for (Task.on_host_fault)

    def __len__(self) -> int:
        return len(self._slots) - len(self._parked)

    def __iter__(self):
        return (slot for slot in self._slots if self._parked.get(slot[0]) != slot)

    def save(self) -> dict:
        """The slots as plain data (host addresses absolute: a restore in another process
        maps the window at the same place first)."""
        self.ensure_all()
        return {"slots": list(self._slots), "free": list(self._free), "next": self._next,
                "parked": list(self._parked), "loose": list(self._loose)}

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back, and make KVM's slots match it: the slots that
        differ are deleted, then the saved ones registered (none, when nothing changed)."""
        slots = [tuple(x) for x in state["slots"]]
        now = {x[3]: x for x in self._slots}
        then = {x[3]: x for x in slots}
        for sid, (start, _end, _flags, _sid, _hva) in now.items():
            if then.get(sid) != now[sid]:
                self._set(sid, 0, start, 0, 0)
        for sid, (start, end, flags, _sid, hva) in then.items():
            if now.get(sid) != then[sid]:
                self._set(sid, flags, start, end - start, hva)
        self._slots = sorted(slots)  # type: ignore[arg-type]
        self._starts = [x[0] for x in self._slots]
        self._free, self._next = list(state["free"]), state["next"]
        by_start = {x[0]: x for x in self._slots}
        self._parked = {start: by_start[start] for start in state["parked"]}
        self._loose = [(s, e, a) for s, e, a in state.get("loose", ())]

    def _new_id(self) -> int:
        if self._free:
            return self._free.pop()
        if self._next >= self._limit:
            raise GuestError(ENOMEM)
        self._next += 1
        return self._next - 1

    def add(self, start: int, end: int, read_only: bool, hva: int | None = None) -> None:
        """Make [start, end) accessible (it must not overlap any slot but parked ones).
        ``hva``: host memory other than the window's own (the host's vDSO)."""
        if start >= end:
            return
        flags = READ_ONLY if read_only else 0
        hva = self._base + start if hva is None else hva
        parked = self._parked.get(start)
        if parked is not None and parked[1] == end and parked[2] == flags and parked[4] == hva:
            del self._parked[start]  # the same slot again: KVM still has it
            return
        for p in [p for p in self._parked.values() if p[0] < end and p[1] > start]:
            self.remove(p[0], p[1])
        if self._batch:
            sid = PENDING  # registered at the batch's end, perhaps with its neighbours
        else:
            sid = self._new_id()
            self._set(sid, flags, start, end - start, hva)
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._slots.insert(i, (start, end, flags, sid, hva))

    def remove(self, start: int, end: int) -> None:
        """Make [start, end) inaccessible; parts of slots outside it stay as they were."""
        self.generation += 1
        self._unloose(start, end)
        i = self._first_meeting(start)
        keep: list[tuple[int, int, bool, int]] = []
        while i < len(self._slots) and self._slots[i][0] < end:
            s, e, flags, sid, hva = self._slots.pop(i)
            self._starts.pop(i)
            if sid != PENDING:
                self._set(sid, 0, s, 0, 0)  # delete
                self._free.append(sid)
            if self._parked.pop(s, None) is not None:
                continue  # all of it goes: nothing of a parked slot is accessible
            if s < start:
                keep.append((s, start, bool(flags & READ_ONLY), hva))
            if e > end:
                keep.append((end, e, bool(flags & READ_ONLY), hva + (end - s)))
        for s, e, ro, hva in keep:
            self.add(s, e, ro, hva)

    def _first_meeting(self, start: int) -> int:
        """The index of the first slot that ends past ``start``."""
        i = bisect.bisect_right(self._starts, start) - 1
        return i + 1 if i < 0 or self._slots[i][1] <= start else i

    def set_access(self, start: int, end: int, access: str, strict: bool = False) -> None:
        """access: "rw", "ro" or "none" for all of [start, end), whose host mapping has
        that protection, unless ``strict`` (the host allows more: the slots must not)."""
        self.generation += 1
        self._unloose(start, end)
        parked = self._parked.get(start)
        loose = not strict and access != "rw"
        if access != "none" and parked is not None and parked[1] == end:
            # the parked slot back (loose: as it was), or replaced if it does not fit
            self.add(start, end, access == "ro" and not (loose and parked[2] == 0))
            self._note_loose(start, end, access)
            return
        if loose:
            gaps = self._gaps(start, end)
            if gaps is not None:
                for s, e in gaps if access == "ro" else ():  # (a new read-only mapping: a writable slot)
                    self.add(s, e, False)
                self._note_loose(start, end, access)
                return
        if access != "none" and self._covered(start, end, READ_ONLY if access == "ro" else 0):
            return
        self.remove(start, end)
        if access != "none":
            self.add(start, end, access == "ro")

    def _gaps(self, start: int, end: int) -> list[tuple[int, int]] | None:
        """The parts of [start, end) no slot covers, if every slot that meets it is one
        over the window's own host memory and not parked; else None."""
        i = self._first_meeting(start)
        gaps = []
        at = start
        while i < len(self._slots) and self._slots[i][0] < end:
            s, e, _f, _sid, hva = self._slots[i]
            if hva != self._base + s or self._parked.get(s) is not None:
                return None
            if s > at:
                gaps.append((at, s))
            at = e
            i += 1
        if at < end:
            gaps.append((at, end))
        return gaps

    def _note_loose(self, start: int, end: int, access: str) -> None:
        """Remember [start, end) as allowing only ``access`` while a slot there allows
        more (nothing to remember where the slots are exact already)."""
        if access == "rw":
            return
        i = self._first_meeting(start)
        while i < len(self._slots) and self._slots[i][0] < end:
            if access == "none" or not self._slots[i][2] & READ_ONLY:
                self._loose.append((start, end, access))
                if len(self._loose) > LOOSE_MAX:
                    self._tighten()
                return
            i += 1

    def _unloose(self, start: int, end: int) -> None:
        """[start, end) gets its access anew: no longer remembered as loose."""
        if not self._loose:
            return
        out = []
        for s, e, access in self._loose:
            if e <= start or s >= end:
                out.append((s, e, access))
                continue
            if s < start:
                out.append((s, start, access))
            if e > end:
                out.append((end, e, access))
        self._loose = out

    def _tighten(self) -> bool:
        """Make the loose ranges' slots exactly what their mappings allow."""
        loose, self._loose = self._loose, []
        for start, end, access in loose:
            self.remove(start, end)
            if access == "ro":
                self.add(start, end, True)
        return bool(loose)

    def exact(self) -> bool:
        """Slots exactly what the mappings allow: loose ranges made exact, parked slots
        deleted (KVM_RUN failed with EFAULT: the access runs again to exit with its
        address).  True when anything changed."""
        tightened = self._tighten()
        return self.drop_parked() > 0 or tightened

    def _covered(self, start: int, end: int, flags: int) -> bool:
        """Do slots with ``flags`` over the window's own host memory cover all of [start,
        end) already?  Then a mapping replaced there (a MAP_FIXED over part of a larger
        one of the same access: the dynamic loader's code and read-only data over its
        reservation of a library) needs no slot change: a slot names host addresses,
        not mappings, and the host's MMU notifier drops KVM's view of the pages that
        went.  Each KVM_SET_USER_MEMORY_REGION costs ~50-150 us here."""
        i = bisect.bisect_right(self._starts, start) - 1
        if i < 0:
            return False
        at = start
        while at < end:
            if i >= len(self._slots):
                return False
            s, e, f, _sid, hva = self._slots[i]
            if s > at or e <= at or f != flags or hva != self._base + s or self._parked.get(s) is not None:
                return False
            at = e
            i += 1
        return True

    def park(self, start: int, end: int) -> None:
        """[start, end) was unmapped (its host memory is PROT_NONE now): park the slot if
        it is exactly this range (see the module's docstring), else remove it."""
        self.generation += 1
        self._unloose(start, end)
        i = bisect.bisect_left(self._starts, start)
        if (i == len(self._slots) or self._slots[i][0] != start or self._slots[i][1] != end
                or start in self._parked or self._slots[i][4] != self._base + start
                or self._slots[i][3] == PENDING):
            self.remove(start, end)
            return
        self._parked[start] = self._slots[i]
        if len(self._parked) > PARK_MAX:
            oldest = next(iter(self._parked.values()))
            self.remove(oldest[0], oldest[1])

    def rebind(self, set_region: _SetRegion) -> None:
        """The slots again, for a new VM (a forked child's), each registered when the
        child first touches it (``ensure``: its access exits as one in a hole would),
        neighbours merged (see the module's docstring): a child that execs at once, as
        most do, touches few of its parent's (a Python parent's child registered 14 and
        deleted 4 at its exec, 0.3-10 ms); parked ones are forgotten (it would not reuse
        them)."""
        for start, _end, _flags, _sid, _hva in list(self._parked.values()):
            i = bisect.bisect_left(self._starts, start)
            del self._starts[i], self._slots[i]
        self._parked.clear()
        self._set = set_region
        self._slots = [(s, e, flags, PENDING, hva) for s, e, flags, _sid, hva in self._slots]
        self._free, self._next = [], self._first
        self.generation += 1

    def ensure(self, addr: int) -> bool:
        """Register the slot at ``addr`` if it is not yet (a forked child's, ``rebind``),
        with its unregistered neighbours of the same kind up to MERGE_MAX; True if so."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if self._batch or i < 0 or self._slots[i][1] <= addr or self._slots[i][3] != PENDING:
            return False
        slots = self._slots
        lo = hi = i
        while lo > 0 and self._joins(slots[lo - 1], slots[lo]) and slots[hi][1] - slots[lo - 1][0] <= MERGE_MAX:
            lo -= 1
        while hi + 1 < len(slots) and self._joins(slots[hi], slots[hi + 1]) and slots[hi + 1][1] - slots[lo][0] <= MERGE_MAX:
            hi += 1
        s, e, flags, hva = self._slots[lo][0], self._slots[hi][1], self._slots[lo][2], self._slots[lo][4]
        sid = self._new_id()
        self._set(sid, flags, s, e - s, hva)
        self._slots[lo:hi + 1] = [(s, e, flags, sid, hva)]
        self._starts[lo:hi + 1] = [s]
        self.generation += 1
        return True

    @staticmethod
    def _joins(a: tuple[int, int, int, int, int], b: tuple[int, int, int, int, int]) -> bool:
        """Can unregistered ``a`` and the next slot ``b`` be registered as one slot?"""
        return (a[3] == PENDING and b[3] == PENDING and a[1] == b[0] and a[2] == b[2]
                and a[4] + (a[1] - a[0]) == b[4])

    def ensure_all(self) -> bool:
        """Register every slot not registered yet (``rebind``); True if there was one."""
        if self._batch or not any(slot[3] == PENDING for slot in self._slots):
            return False
        self._register_pending()
        self.generation += 1
        return True

    def begin_batch(self) -> None:
        """Slots made from here to ``end_batch`` are registered there, neighbours merged
        (exec, the first load: nothing runs in the guest meanwhile).  Nests."""
        self._batch += 1

    def end_batch(self) -> None:
        self._batch -= 1
        if not self._batch:
            self._register_pending()

    def _register_pending(self) -> None:
        """Register the PENDING slots, each run of neighbours with the same flags and
        contiguous host memory (up to MERGE_MAX) as one."""
        out: list[tuple[int, int, int, int, int]] = []
        for slot in self._slots:
            if slot[3] != PENDING:
                out.append(slot)
                continue
            if out:
                s, e, flags, sid, hva = out[-1]
                if self._joins(out[-1], slot) and slot[1] - s <= MERGE_MAX:
                    out[-1] = (s, slot[1], flags, PENDING, hva)
                    continue
            out.append(slot)
        done = []
        for s, e, flags, sid, hva in out:
            if sid == PENDING:
                sid = self._new_id()
                self._set(sid, flags, s, e - s, hva)
            done.append((s, e, flags, sid, hva))
        self._slots = done
        self._starts = [x[0] for x in done]

    def drop_parked(self) -> int:
        """Delete every parked slot; returns how many there were."""
        parked = list(self._parked.values())
        for start, end, _flags, _sid, _hva in parked:
            self.remove(start, end)
        return len(parked)

    def lookup(self, addr: int) -> tuple[int, int, int, int, int] | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._slots[i][1] > addr and self._parked.get(self._slots[i][0]) != self._slots[i]:
            return self._slots[i]
        return None
