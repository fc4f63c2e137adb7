"""The address space bookkeeping: placement, merging, splitting, and that memslots
always cover exactly the accessible mappings (a recording function stands in for
KVM_SET_USER_MEMORY_REGION; the host reservation is real)."""

import pytest

from kontain.abi import flags as F
from kontain.errors import GuestError
from kontain.memory.mm import AddressSpace
from kontain.memory.slots import SlotMap
from kontain.memory.window import GuestMemory

GIB = 1 << 30
PAGE = 4096
RW = F.PROT_READ | F.PROT_WRITE
ANON = F.MAP_PRIVATE | F.MAP_ANONYMOUS


class Recorder:
    def __init__(self):
        self.slots = {}
        self.calls = 0

    def __call__(self, slot, flags, gpa, size, hva):
        self.calls += 1
        if size == 0:
            del self.slots[slot]
        else:
            assert slot not in self.slots
            self.slots[slot] = (gpa, size, flags)


@pytest.fixture
def space():
    mem = GuestMemory(4 * GIB)
    rec = Recorder()
    mm = AddressSpace(mem, SlotMap(rec, mem.base, 1, 1000), mmap_top=3 * GIB, mmap_min=0x10000)
    mm.rec = rec
    return mm


def check_slots(mm):
    """Slots are disjoint; they allow at least what each mapping allows, more only in a
    loose range (memory/slots.py) or a parked slot; and once the loose ranges are made
    exact (as an EFAULT makes them), they cover, but for parked ones (over unmapped
    ranges), exactly the mappings that are not PROT_NONE."""
    loose = list(mm.slots._loose)
    for v in mm:
        if v.prot:
            for page in range(v.start, v.end, PAGE):
                slot = mm.slots.lookup(page)
                assert slot is not None and not (v.prot & F.PROT_WRITE and slot[2] & 2), (hex(page), v)
    for sid, (g, size, flags) in mm.rec.slots.items():
        for page in range(g, g + size, PAGE):
            v = mm.find(page)
            need = 0 if v is None or not v.prot else (2 if not v.prot & F.PROT_WRITE else 1)
            have = 1 if not flags & 2 else 2
            if need == 0 or (need == 2 and have == 1):  # (the slot allows more)
                assert mm.slots._parked.get(g, (0, 0, 0, -1))[3] == sid or any(
                    s <= page < e for s, e, _ in loose), (hex(page), v)
    mm.slots._tighten()
    mm.slots.ensure_all()  # (a forked child's slots not touched yet: registered as they would be)
    assert not mm.slots._loose
    parked = {p[3]: p for p in mm.slots._parked.values()}
    for start, end, *_ in parked.values():
        assert not mm.overlapping(start, end)
    everything = sorted((g, g + s, f) for g, s, f in mm.rec.slots.values())
    for (_, a1, _), (b0, _, _) in zip(everything, everything[1:]):
        assert a1 <= b0
    covered = sorted((g, g + s, f) for sid, (g, s, f) in mm.rec.slots.items() if sid not in parked)
    for (_, a1, _), (b0, _, _) in zip(covered, covered[1:]):
        assert a1 <= b0
    want = []
    for v in mm:
        if v.prot:
            want.append((v.start, v.end, 0 if v.prot & F.PROT_WRITE else 2))
    def flatten(rs):
        out = []
        for s, e, f in rs:
            if out and out[-1][1] == s and out[-1][2] == f:
                out[-1] = (out[-1][0], e, f)
            else:
                out.append((s, e, f))
        return out
    assert flatten(covered) == flatten(want)


def test_top_down_placement_and_merge(space):
    a = space.mmap(0, PAGE, RW, ANON, -1, 0)
    b = space.mmap(0, PAGE, RW, ANON, -1, 0)
    assert a == 3 * GIB - PAGE and b == a - PAGE
    assert len(list(space)) == 1  # merged like Linux
    check_slots(space)


def test_munmap_middle_splits(space):
    a = space.mmap(0, 10 * PAGE, RW, ANON, -1, 0)
    space.munmap(a + 3 * PAGE, 2 * PAGE)
    assert [(v.start - a, v.end - a) for v in space] == [(0, 3 * PAGE), (5 * PAGE, 10 * PAGE)]
    check_slots(space)
    assert space.find(a + 3 * PAGE) is None


def test_mprotect_and_slots(space):
    a = space.mmap(0, 8 * PAGE, RW, ANON, -1, 0)
    space.mprotect(a + 2 * PAGE, 2 * PAGE, F.PROT_READ)
    space.mprotect(a + 6 * PAGE, PAGE, F.PROT_NONE)
    check_slots(space)
    space.mprotect(a, 8 * PAGE, RW)
    check_slots(space)
    assert len(list(space)) == 1


def test_mprotect_hole_is_enomem(space):
    a = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    space.munmap(a + PAGE, PAGE)
    with pytest.raises(GuestError) as e:
        space.mprotect(a, 4 * PAGE, F.PROT_READ)
    assert e.value.errno == 12


def test_fixed_and_noreplace(space):
    a = space.mmap(0x100000, PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    assert a == 0x100000
    with pytest.raises(GuestError) as e:
        space.mmap(0x100000, PAGE, RW, ANON | F.MAP_FIXED_NOREPLACE, -1, 0)
    assert e.value.errno == 17
    with pytest.raises(GuestError) as e:
        space.mmap(0x1000, PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    assert e.value.errno == 1  # below mmap_min_addr


def test_hint_is_used_when_free(space):
    assert space.mmap(0x200000, PAGE, RW, ANON, -1, 0) == 0x200000
    assert space.mmap(0x200000, PAGE, RW, ANON, -1, 0) != 0x200000


def test_anonymous_mappings_of_eight_pages_or_more_start_at_a_prefetch_group(space):
    """KVM's shadow paging prefetches an aligned group of 8 pages (inside one memslot, or
    nothing): an anonymous mapping of 8 pages or more, where the program names no
    address, starts at such a boundary; smaller ones fill the gaps; a hint is taken."""
    first = space.mmap(0, PAGE, RW, ANON, -1, 0)
    a = space.mmap(0, 16 * PAGE, RW, ANON, -1, 0)
    assert a % (8 * PAGE) == 0 and a + 16 * PAGE < first  # (below the first one, a gap between)
    b = space.mmap(0, 3 * PAGE, RW, ANON, -1, 0)
    assert a + 16 * PAGE <= b and b + 3 * PAGE <= first  # (in that gap)
    assert space.mmap(0x201000, 16 * PAGE, RW, ANON, -1, 0) == 0x201000
    check_slots(space)


def test_mremap_grow_move_shrink(space):
    a = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    grown = space.mremap(a, 4 * PAGE, 8 * PAGE, F.MREMAP_MAYMOVE, 0)
    assert space.find(grown).end >= grown + 8 * PAGE
    check_slots(space)
    space.mmap(grown + 8 * PAGE, PAGE, RW, ANON | F.MAP_FIXED, -1, 0)  # no room to grow in place
    moved = space.mremap(grown, 8 * PAGE, 16 * PAGE, F.MREMAP_MAYMOVE, 0)
    assert moved != grown and space.find(grown) is None
    check_slots(space)
    assert space.mremap(moved, 16 * PAGE, 2 * PAGE, 0, 0) == moved
    assert space.find(moved + 2 * PAGE) is None
    check_slots(space)


def test_brk(space):
    space.set_brk_start(0x1000000)
    assert space.brk(0x1000000 + 5000) == 0x1000000 + 5000
    assert space.brk(0x1000000 + 3 * PAGE) == 0x1000000 + 3 * PAGE
    assert space.brk(0x1000000 + 100) == 0x1000000 + 100
    assert space.brk(0x100) == 0x1000000 + 100
    check_slots(space)


def test_memory_limit(space):
    space.limit = 16 * PAGE
    space.mmap(0, 10 * PAGE, RW, ANON, -1, 0)
    with pytest.raises(GuestError):
        space.mmap(0, 10 * PAGE, RW, ANON, -1, 0)
    space.mmap(0, 100 * PAGE, F.PROT_NONE, ANON, -1, 0)  # reservations cost nothing


def test_window_translation():
    mem = GuestMemory(GIB)
    assert mem.host(0x1000) == mem.base + 0x1000
    assert mem.host(GIB + 0x123) == mem.base + GIB + 0x123  # the guard: faults on use
    assert mem.host(0x7FFF_FFFF_F000 + 5) >> 63 == 1  # not a user address at all
    assert mem.host(-1) >> 63 == 1


def test_munmap_parks_the_slot_and_mmap_takes_it_back(space):
    a = space.mmap(0, 16 * PAGE, RW, ANON, -1, 0)
    calls = space.rec.calls
    space.munmap(a, 16 * PAGE)
    check_slots(space)
    assert space.slots.lookup(a) is None and len(space.slots._parked) == 1
    assert space.mmap(0, 16 * PAGE, RW, ANON, -1, 0) == a
    assert space.rec.calls == calls  # no KVM_SET_USER_MEMORY_REGION for either
    check_slots(space)
    assert space.slots.lookup(a) is not None


def test_a_parked_slot_that_does_not_fit_is_replaced(space):
    a = space.mmap(0, 16 * PAGE, RW, ANON, -1, 0)
    space.munmap(a, 16 * PAGE)
    space.mmap(a, 16 * PAGE, F.PROT_READ, ANON | F.MAP_FIXED, -1, 0)  # read-only now
    check_slots(space)
    space.munmap(a, 16 * PAGE)
    space.mmap(a - 4 * PAGE, 32 * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)  # over it and beyond
    check_slots(space)
    assert not space.slots._parked


def test_parked_slots_are_few(space):
    from kontain.memory.slots import PARK_MAX

    addrs = [space.mmap(0, (i + 1) * PAGE, RW, ANON, -1, 0) for i in range(PARK_MAX + 8)]
    for i, a in enumerate(addrs):
        space.munmap(a, (i + 1) * PAGE)
    assert len(space.slots._parked) == PARK_MAX
    check_slots(space)
    assert space.slots.drop_parked() == PARK_MAX
    assert not space.rec.slots


def test_a_mapping_over_part_of_a_parked_slot_leaves_nothing_of_it(space):
    a = space.mmap(0, 16 * PAGE, RW, ANON, -1, 0)
    space.munmap(a, 16 * PAGE)
    space.mmap(a + 8 * PAGE, 16 * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    check_slots(space)  # no slot left over [a, a + 8 pages), which nothing maps
    space.mmap(a, 8 * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    check_slots(space)


def test_a_forked_child_forgets_parked_slots(space):
    keep = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    gone = space.mmap(0, 8 * PAGE, RW, ANON, -1, 0)
    space.munmap(gone, 8 * PAGE)
    child = Recorder()
    space.slots.rebind(child)
    space.rec = child
    assert not child.slots  # (each registered at its first touch)
    assert space.slots.ensure(keep + PAGE) and not space.slots.ensure(keep)
    assert [(g, s) for g, s, _ in child.slots.values()] == [(keep, 4 * PAGE)]
    check_slots(space)


def test_a_batch_registers_neighbours_as_one_slot(space):
    """exec and the first load (memory/slots.py, begin_batch): what a program's load maps
    gets its slots at the batch's end, neighbours of the same protection merged."""
    base = 0x400000
    space.slots.begin_batch()
    space.mmap(base, 2 * PAGE, F.PROT_READ, ANON | F.MAP_FIXED, -1, 0)
    space.mmap(base + 2 * PAGE, 4 * PAGE, F.PROT_READ | F.PROT_EXEC, ANON | F.MAP_FIXED, -1, 0)
    space.mmap(base + 6 * PAGE, PAGE, F.PROT_READ, ANON | F.MAP_FIXED, -1, 0)
    space.mmap(base + 7 * PAGE, 2 * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    space.mmap(base + 7 * PAGE, PAGE, F.PROT_READ, ANON | F.MAP_FIXED, -1, 0)  # (RELRO-like: part of one)
    assert space.rec.calls == 0
    space.slots.end_batch()
    # (the read-only parts loose: one writable slot, the host's protection holds)
    assert sorted(space.rec.slots.values()) == [(base, 9 * PAGE, 0)]
    assert space.rec.calls == 1
    check_slots(space)  # (made exact: split by protection)
    # a later change inside a merged slot splits it, as for any slot
    space.munmap(base + 3 * PAGE, PAGE)
    space.mprotect(base + PAGE, PAGE, RW)
    check_slots(space)


def test_a_batch_that_empties_the_space_deletes_each_slot_once(space):
    """exec's emptying in a batch: a merged slot is deleted once, not split and
    re-registered piece by piece as its mappings go one by one."""
    base = 0x400000
    space.slots.begin_batch()
    for i in range(4):
        space.mmap(base + i * PAGE, PAGE, F.PROT_READ | (F.PROT_EXEC if i % 2 else 0), ANON | F.MAP_FIXED, -1, 0)
    space.slots.end_batch()
    assert space.rec.calls == 1
    space.slots.begin_batch()
    for v in list(space):
        space.unmap_range(v.start, v.end)
    space.mmap(base, PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    space.slots.end_batch()
    assert space.rec.calls == 3  # one deletion, one new slot
    check_slots(space)


def test_a_forked_childs_slots_are_merged_up_to_a_size(space):
    from kontain.memory import slots

    a = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    space.mprotect(a + PAGE, PAGE, F.PROT_READ)
    space.mprotect(a + PAGE, PAGE, RW)  # (now three RW slots side by side)
    big = slots.MERGE_MAX // PAGE
    b = space.mmap(a - big * PAGE, big * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)  # (right below a)
    child = Recorder()
    space.slots.rebind(child)
    space.rec = child
    assert space.slots.ensure(a + 3 * PAGE)  # (its first touch: its neighbours with it, up to a size)
    assert sorted((g, s) for g, s, _ in child.slots.values()) == [(a, 4 * PAGE)]
    assert space.slots.ensure(b)
    assert sorted((g, s) for g, s, _ in child.slots.values()) == [(b, big * PAGE), (a, 4 * PAGE)]
    check_slots(space)
    space.munmap(a + 2 * PAGE, PAGE)
    check_slots(space)


# -- loose slots: access taken away changes no slot until an EFAULT asks (memory/slots.py)
def test_mprotect_that_takes_access_away_changes_no_slot(space):
    a = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    calls = space.rec.calls
    space.mprotect(a + PAGE, PAGE, F.PROT_READ)  # (a RELRO)
    space.mprotect(a + 2 * PAGE, PAGE, F.PROT_NONE)  # (a guard page)
    assert space.rec.calls == calls
    assert [(s - a, e - a, acc) for s, e, acc in space.slots._loose] == [(PAGE, 2 * PAGE, "ro"),
                                                                         (2 * PAGE, 3 * PAGE, "none")]
    space.mprotect(a + PAGE, 2 * PAGE, RW)  # (given back: nothing loose, no slot changed)
    assert space.rec.calls == calls and not space.slots._loose
    space.mprotect(a, PAGE, F.PROT_READ)
    assert space.slots.exact() and not space.slots.exact()  # (the EFAULT: made exact once)
    assert space.rec.calls > calls
    check_slots(space)


def test_a_read_only_mapping_gets_a_writable_slot(space):
    """The dynamic loader's way with a library: its read-only reservation, data over part
    of it, RELRO over part of that: one slot made, none changed."""
    a = space.mmap(0, 8 * PAGE, F.PROT_READ, ANON, -1, 0)
    calls = space.rec.calls
    assert calls == 1 and space.slots.lookup(a)[2] == 0
    space.mmap(a + 5 * PAGE, 3 * PAGE, RW, ANON | F.MAP_FIXED, -1, 0)
    space.mprotect(a + 5 * PAGE, PAGE, F.PROT_READ)
    assert space.rec.calls == calls
    check_slots(space)


def test_strict_access_is_exact(space):
    """km's trampoline pages: writable on the host, read-only for the program."""
    a = space.find_free(2 * PAGE)
    space.map_km(a, 2 * PAGE, "[km-syscalls]")
    assert space.slots.lookup(a)[2] == 2 and not space.slots._loose
    check_slots(space)


def test_loose_ranges_are_few(space):
    from kontain.memory.slots import LOOSE_MAX

    a = space.mmap(0, 2 * (LOOSE_MAX + 2) * PAGE, RW, ANON, -1, 0)
    for i in range(LOOSE_MAX + 2):
        space.mprotect(a + 2 * i * PAGE, PAGE, F.PROT_READ)
    assert len(space.slots._loose) <= LOOSE_MAX
    check_slots(space)


def test_loose_ranges_survive_save_and_restore(space):
    a = space.mmap(0, 4 * PAGE, RW, ANON, -1, 0)
    space.mprotect(a + PAGE, PAGE, F.PROT_READ)
    state = space.slots.save()
    space.slots._loose = []
    space.slots.restore(state)
    assert space.slots._loose == [(a + PAGE, a + 2 * PAGE, "ro")]
    check_slots(space)


# -- System V shared memory (real host segments; the memslots are recorded) ----------
@pytest.fixture
def segment():
    """A host segment of 4 pages, removed at the end (it lives on while attached)."""
    from kontain import native
    from kontain.abi.syscalls import NR

    shmid = native.syscall(NR["shmget"], F.IPC_PRIVATE, 4 * PAGE, F.IPC_CREAT | 0o600)
    assert shmid >= 0
    yield shmid
    native.syscall(NR["shmctl"], shmid, F.IPC_RMID, 0)


def nattch(shmid: int) -> int:
    from kontain import native
    from kontain.abi.structs import shmid64_ds
    from kontain.abi.syscalls import NR

    buf = bytearray(shmid64_ds.size)
    assert native.syscall(NR["shmctl"], shmid, F.IPC_STAT, native.address_of(buf)) == 0
    return shmid64_ds.unpack(buf)[shmid64_ds.names.index("shm_nattch")]


def host_perms(space, addr: int) -> str:
    """The host's mapping at guest address ``addr``: perms and name from /proc/self/maps."""
    hva = space.mem.base + addr
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= hva < hi:
                return " ".join(line.split()[1:2] + line.split()[5:])
    return ""


def test_shmat_puts_the_segment_in_the_window(space, segment):
    from kontain import native

    a = space.shmat(segment, 0, 0)
    assert a == 3 * GIB - 4 * PAGE and nattch(segment) == 1
    v = space.find(a)
    assert (v.start, v.end, v.prot, v.ino) == (a, a + 4 * PAGE, RW, segment) and v.name == "/SYSV00000000 (deleted)"
    assert host_perms(space, a) == "rw-s /SYSV00000000 (deleted)"
    check_slots(space)
    b = space.shmat(segment, 0, F.SHM_RDONLY)  # a second attachment sees the first one's writes
    assert native.write_mem(space.mem.base + a + 5, b"shared") == 0
    assert native.read_mem(space.mem.base + b + 5, 6) == b"shared" and nattch(segment) == 2
    assert space.find(b).prot == F.PROT_READ
    check_slots(space)  # (read-only slot for SHM_RDONLY)
    space.shmdt(a)
    space.shmdt(b)
    assert nattch(segment) == 0 and not list(space)
    assert host_perms(space, a) == "---p"  # the reservation is back: no hole in the window
    check_slots(space)


def test_shmdt_finds_every_piece_of_the_attachment(space, segment):
    a = space.shmat(segment, 0, 0)
    space.mprotect(a + PAGE, PAGE, F.PROT_READ)
    space.munmap(a + 2 * PAGE, PAGE)
    assert [(v.start - a, v.offset) for v in space] == [(0, 0), (PAGE, PAGE), (3 * PAGE, 3 * PAGE)]
    assert nattch(segment) == 3  # the host counts the pieces, as Linux counts the guest's
    space.mprotect(a + PAGE, PAGE, RW)
    assert len(list(space)) == 3  # pieces of an attachment are not merged again
    with pytest.raises(GuestError) as e:
        space.shmdt(a + PAGE)  # not where the segment starts
    assert e.value.errno == 22
    space.shmdt(a)
    assert not list(space) and nattch(segment) == 0
    check_slots(space)


def test_shmat_where(space, segment):
    fixed = 0x40000000
    assert space.shmat(segment, fixed + 5, F.SHM_RND) == fixed
    for addr, flags, errno in ((fixed, 0, 22), (fixed + 5, 0, 22), (0, F.SHM_REMAP, 22), (5, F.SHM_RND | F.SHM_REMAP, 22),
                               (4 * GIB - PAGE, 0, 12), (0x1000, 0, 1), ((1 << 64) - PAGE, 0, 22)):
        with pytest.raises(GuestError) as e:
            space.shmat(segment, addr, flags)
        assert e.value.errno == errno, (hex(addr), flags)
    assert nattch(segment) == 1  # failed attempts left nothing attached
    assert space.shmat(segment, fixed + PAGE, F.SHM_REMAP) == fixed + PAGE
    assert [(v.start - fixed, v.end - fixed) for v in space] == [(0, PAGE), (PAGE, 5 * PAGE)]
    assert nattch(segment) == 2
    check_slots(space)


def test_shm_counts_against_the_memory_limit(space, segment):
    space.limit = 6 * PAGE
    space.mmap(0, 3 * PAGE, RW, ANON, -1, 0)
    with pytest.raises(GuestError) as e:
        space.shmat(segment, 0, 0)
    assert e.value.errno == 12 and nattch(segment) == 0
    space.limit = 8 * PAGE
    space.shmat(segment, 0, 0)
    assert space.committed == 7 * PAGE


def test_host_memory_copies_and_addresses_without_a_type_per_length():
    """native.read_mem and write_mem copy any length, fail with -EFAULT on a bad page, and
    (like address_of) make no ctypes array type per length (~8 us each: a forked child
    made ~25 of them per fork+exec)."""
    from kontain import native

    buf = bytearray(4096)
    at = native.address_of(buf)
    assert native.address_of(bytearray()) != 0  # (an empty one too: its type made once)
    kinds = len(native._char_arrays)
    for n in (1, 7, 333, 4095):
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert native.write_mem(at, data) == 0 and bytes(buf[:n]) == data
        assert native.read_mem(at, n) == data
        assert native.write_mem(at, bytearray(data)) == 0
    assert native.read_mem(at, 0) == b"" and native.write_mem(at, b"") == 0
    assert native.address_of(bytearray(5)) != 0 and native.address_of(bytearray()) != 0
    assert native.read_mem(8, 16) == -14 and native.write_mem(8, b"x" * 16) == -14
    assert len(native._char_arrays) == kinds
