"""The program's address space: its mappings (VMAs), brk, and mmap placement.

Each mapping the program makes is three things kept in step:

* a ``Vma`` here (what /proc/self/maps will show, and where free space is),
* a host mapping at ``base + address`` (anonymous or the program's own file, with the
  program's protection minus PROT_EXEC: the host never executes guest memory),
* KVM memslots (slots.py) that give the vCPU access at that protection.

Host-side, the window never has a hole, not even for a moment: a mapping is replaced by
``mmap(MAP_FIXED)`` (atomic), unmapping is a ``PROT_NONE`` mapping over the range, and
moves use ``mremap(MREMAP_DONTUNMAP)``.  Otherwise another thread of the monitor could
get a host allocation inside the guest's window.
"""

from __future__ import annotations

import _thread
import bisect
import os

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EACCES, EEXIST, EFAULT, EINVAL, ENOMEM, EPERM
from kontain.abi.structs import ipc64_perm, shmid64_ds
from kontain.abi.syscalls import NR
from kontain.errors import GuestError
from kontain.memory.slots import SlotMap
from kontain.memory.window import GuestMemory

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)
if TYPE_CHECKING:
    from collections.abc import Iterator

PAGE = F.PAGE_SIZE
VM_SPECIAL = 1 << 40  # not a mmap flag: a mapping of host kernel pages (the vDSO), never changed
_MAP_TYPES = (F.MAP_SHARED, F.MAP_PRIVATE, F.MAP_SHARED_VALIDATE, F.MAP_DROPPABLE)
# Small writable anonymous mappings are populated on the host at once: a first touch of a
# page costs a host fault plus a shadow-paging fault (12-60 us on PVM), a populated one
# ~2 us (KVM prefetches the shadow entries).  Small ones are mostly touched soon (malloc
# arenas, CPython's 1 MiB ones, buffers); at most this much is populated for nothing.
# (python3 -c 'import json', 25 interleaved runs: 256 KiB 232 ms, 512 KiB 226, 1 MiB 204,
# 2 MiB 220: past 1 MiB the populating costs more than the faults it saves.)
POPULATE_MAX = 1 << 20
# Private writable file mappings (data segments, ld.so's and the program's) are copied on
# the host at once, up to this size: a page read and then written took two shadow faults
# and, at the host's copy-on-write, a TLB flush of every vCPU (the host invalidates the
# file's page it replaces): python3 -c 'import json' 2167 -> 1341 faults, 299 -> 30 flushes.
# The copy is the file as it was at mmap: a page the program has not written no longer
# shows a later change to the file (Linux's does; POSIX leaves it open: known-issues.md).
COPY_MAX = 2 << 20
# ... and KVM's prefetch maps a whole aligned group of 8 pages (its PTE_PREFETCH_NUM) that
# lies inside one memslot, or nothing: anonymous mappings of 8 pages or more are placed at
# such a boundary when the program names no address (16 pages, touched after a mmap: 9
# shadow-paging faults when placed anywhere, 2 aligned).  Linux aligns large anonymous
# mappings too (to 2 MiB, for its huge pages); the gaps cost nothing.
PREFETCH_GROUP = 8 * PAGE


_MAX_MAP_COUNT: list[int] = []


def max_map_count() -> int:
    """vm.max_map_count (read once, when a program first has many mappings)."""
    if not _MAX_MAP_COUNT:
        try:
            with open("/proc/sys/vm/max_map_count", "rb") as f:
                _MAX_MAP_COUNT.append(int(f.read()))
        except (OSError, ValueError):
            _MAX_MAP_COUNT.append(65530)  # Linux's default
    return _MAX_MAP_COUNT[0]
_ZEROING = (4, 24)  # MADV_DONTNEED, MADV_DONTNEED_LOCKED: private anonymous pages read as zeros after
HUGE = 2 << 20  # mappings at least this big get transparent huge pages on the host
HUGETLB_DEFAULT = 2 << 20  # MAP_HUGETLB's page size when the program names none (x86-64's default)
_HOST_PASS = F.MAP_NORESERVE | F.MAP_POPULATE | F.MAP_LOCKED | F.MAP_HUGETLB | (0x3F << 26)  # + huge page size
_RESERVE_FLAGS = F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_NORESERVE | F.MAP_FIXED
_MREMAP_FLAGS = F.MREMAP_MAYMOVE | F.MREMAP_FIXED | F.MREMAP_DONTUNMAP
_PROT_ALL = F.PROT_READ | F.PROT_WRITE | F.PROT_EXEC
_U64 = (1 << 64) - 1
# madvise advice that discards or drops what a mapping holds, which a sealed read-only
# private anonymous mapping refuses (EPERM): FREE, DONTNEED, REMOVE, DONTFORK,
# WIPEONFORK, DONTNEED_LOCKED, GUARD_INSTALL
_DISCARDING = frozenset((8, 4, 9, 10, 18, 24, 102))
_SYS_mremap, _SYS_shmat, _SYS_shmdt, _SYS_shmctl = NR["mremap"], NR["shmat"], NR["shmdt"], NR["shmctl"]
_SYS_fstatfs = NR["fstatfs"]
_HUGETLBFS_MAGIC = 0x958458F6


def page_up(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


def _file_align(fd: int, st: os.stat_result | None) -> int:
    """Where a mapping of file ``fd`` (``st``: its fstat) may start: a hugetlbfs file's (a
    memfd with MFD_HUGETLB too) on a boundary of its page size, which is its st_blksize
    (the host refuses any other address, EINVAL: LTP's memfd_create03); any other file's
    on a page."""
    blksize = st.st_blksize if st is not None else PAGE
    if blksize <= PAGE or blksize & (blksize - 1):
        return PAGE
    buf = bytearray(120)  # struct statfs: f_type first
    if native.syscall(_SYS_fstatfs, fd, native.address_of(buf)) != 0 or \
            int.from_bytes(buf[0:8], "little") != _HUGETLBFS_MAGIC:
        return PAGE
    return blksize


def _file_identity(fd: int, st: os.stat_result | None) -> tuple[int, int, str]:
    """(device, inode, path) of a mapped file (``st``: its fstat), for /proc/self/maps."""
    if st is None:
        return 0, 0, ""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return 0, 0, ""
    return st.st_dev, st.st_ino, path


def _fstat(fd: int) -> os.stat_result | None:
    try:
        return os.fstat(fd)
    except OSError:
        return None  # (the host's mmap says what is wrong with the descriptor)


def _shm_identity(hva: int, shmid: int) -> tuple[int, int, int, str]:
    """(size, device, inode, name) of the host's attachment of segment ``shmid`` at
    ``hva``, for /proc/self/maps and shmdt: as the host's own /proc/self/maps shows it
    (the name keeps the key the segment was created with, even after IPC_RMID made the
    key IPC_PRIVATE); without /proc (after a guest's chroot), from IPC_STAT."""
    prefix = b"%x-" % hva
    try:
        with open("/proc/self/maps", "rb") as f:
            for line in f:
                if line.startswith(prefix):
                    span, _perms, _offset, dev, ino, name = line.split(maxsplit=5)
                    lo, hi = (int(x, 16) for x in span.split(b"-"))
                    major, minor = (int(x, 16) for x in dev.split(b":"))
                    return hi - lo, os.makedev(major, minor), int(ino), name.rstrip(b"\n").decode(errors="surrogateescape")
    except (OSError, ValueError):
        pass
    buf = bytearray(shmid64_ds.size)
    r = native.syscall(_SYS_shmctl, shmid, F.IPC_STAT, native.address_of(buf))
    if r < 0:
        raise GuestError(-r)
    key = ipc64_perm.unpack_from(buf)[0] & 0xFFFFFFFF
    segsz = shmid64_ds.unpack(buf)[shmid64_ds.names.index("shm_segsz")]
    return page_up(segsz), 0, shmid, f"/SYSV{key:08x} (deleted)"


def host_prot(prot: int) -> int:
    """The host mapping's protection for the program's ``prot``: never PROT_EXEC (the host
    never executes guest memory), but readable where the program may execute, for KVM
    fetches the vCPU's instructions through it (an execute-only page, PROT_EXEC alone,
    was no access on the host: calling code there ended in SIGBUS, LTP's mprotect04)."""
    return prot & ~F.PROT_EXEC | (F.PROT_READ if prot & F.PROT_EXEC else 0)


def access_of(prot: int) -> str:
    """The memslot access a protection needs: "rw", "ro" or "none"."""
    if prot & F.PROT_WRITE:
        return "rw"
    if prot & (F.PROT_READ | F.PROT_EXEC):
        return "ro"
    return "none"


class Vma:
    """One mapping: [start, end) with the program's prot and mmap flags."""

    __slots__ = ("start", "end", "prot", "flags", "name", "offset", "dev", "ino", "dontdump", "sealed")

    def __init__(self, start: int, end: int, prot: int, flags: int, name: str = "", offset: int = 0,
                 dev: int = 0, ino: int = 0):
        self.start = start
        self.end = end
        self.prot = prot
        self.flags = flags  # MAP_SHARED/MAP_PRIVATE | MAP_ANONYMOUS ...
        self.name = name  # "[heap]", "[stack]", a file path, or "" for anonymous memory
        self.offset = offset  # file offset of start
        self.dev = dev  # the file's device and inode, for /proc/self/maps
        self.ino = ino
        self.dontdump = False  # madvise(MADV_DONTDUMP): left out of core files (VM_DONTDUMP)
        self.sealed = False  # mseal(2): never unmapped, moved or re-protected again (VM_SEALED)

    @property
    def anonymous(self) -> bool:
        return bool(self.flags & F.MAP_ANONYMOUS)

    @property
    def shared(self) -> bool:
        return (self.flags & F.MAP_TYPE) != F.MAP_PRIVATE

    def piece(self, start: int, end: int) -> Vma:
        """The part [start, end) of this mapping."""
        off = self.offset + (start - self.start) if not self.anonymous else 0
        v = Vma(start, end, self.prot, self.flags, self.name, off, self.dev, self.ino)
        v.dontdump, v.sealed = self.dontdump, self.sealed
        return v

    def __repr__(self) -> str:
        return f"Vma({self.start:#x}-{self.end:#x} prot={self.prot} flags={self.flags:#x} {self.name!r})"


class ShmVma(Vma):
    """An attachment of a System V shared memory segment (shmat): Linux's shm VMA.

    It is the segment's memory, shared with every process that attached it (the host's
    own attachment, at base + start), shown in /proc/self/maps as the segment's file
    ("/SYSV<key> (deleted)", its inode the shmid).  munmap and mprotect may cut it into
    pieces as they cut any mapping; shmdt then finds the pieces as Linux does, by their
    offset into the segment, so each piece keeps the segment's size and which shmat it
    came from (Linux compares the VMA's file, one per shmat).  Pieces are not merged
    again: Linux does not merge shm VMAs where that would remove one (their close
    operation counts attachments), which is every case but rare mremap ones."""

    __slots__ = ("segsz", "attach")

    def __init__(self, start: int, end: int, prot: int, name: str, offset: int, dev: int, ino: int, segsz: int,
                 attach: int):
        super().__init__(start, end, prot, F.MAP_SHARED, name, offset, dev, ino)
        self.segsz = segsz  # page-rounded size of the segment
        self.attach = attach  # which shmat of this address space

    def piece(self, start: int, end: int) -> ShmVma:
        v = ShmVma(start, end, self.prot, self.name, self.offset + (start - self.start), self.dev, self.ino,
                   self.segsz, self.attach)
        v.dontdump, v.sealed = self.dontdump, self.sealed
        return v


def _locked(method):
    """Run ``method`` under the address space's lock (Linux's mmap_lock): the vCPU threads
    and the poller (kernel/poll.py) change the mappings and the memslots concurrently,
    and the interpreter may switch threads in the middle of a change."""

    def run(self, *args, **kw):
        with self.lock:
            return method(self, *args, **kw)

    run.__name__, run.__doc__ = method.__name__, method.__doc__
    return run


class AddressSpace:
    """Mappings of one guest process inside a GuestMemory window."""

    def __init__(self, mem: GuestMemory, slots: SlotMap, *, mmap_top: int, mmap_min: int, limit: int | None = None):
        self.mem = mem
        self.mmap_min = mmap_min  # vm.mmap_min_addr: nothing is mapped below it
        self.slots = slots
        self.window = mem.size
        self.mmap_top = mmap_top
        self.limit = limit  # --memory: most bytes the program may have accessible
        self.committed = 0
        self.lock = _thread.RLock()  # see _locked; a forked child makes a new one
        self._starts: list[int] = []
        self._vmas: list[Vma] = []
        self.brk_start = 0
        self.brk_end = 0
        self.lock_future = -1  # mlockall(MCL_FUTURE): the mlock2 flags new mappings get (syscalls/mm.py)
        self.attaches = 0  # shmat calls so far: each attachment's ShmVma.attach
        # resumed from a snapshot (kernel/snapshot.py): private anonymous memory is a
        # private mapping of the snapshot file, where MADV_DONTNEED would bring the
        # file's pages back, not zeros
        self.restored = False
        # Linux's total_vm and data_vm, what RLIMIT_AS and RLIMIT_DATA bound (``_may_expand``):
        # bytes of every mapping but the stack, of the private writable ones, and of the stack
        self.other_vm = self.data_vm = self.stack_vm = 0
        self.stack_counted = STACK_COUNTED  # the stack as large as Linux's would be (Process sets it)
        self.rlimits: dict[int, tuple[int, int]] = {}  # the program's (Process.rlimits, the same dict)

    # -- save / restore (the bookkeeping; memory itself and its slots are the caller's) --
    def save(self) -> dict:
        """What the address space knows, as plain data (a snapshot, a test)."""
        vmas = [(type(v).__name__, tuple(getattr(v, a) for a in _vma_fields(type(v)))) for v in self._vmas]
        return {"vmas": vmas, "brk": (self.brk_start, self.brk_end), "mmap_top": self.mmap_top,
                "committed": self.committed, "limit": self.limit, "lock_future": self.lock_future,
                "stack_counted": self.stack_counted}

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back: the mappings it describes must be in place."""
        kinds = {"Vma": Vma, "ShmVma": ShmVma}
        vmas = []
        for kind, values in state["vmas"]:
            cls = kinds[kind]
            v = cls.__new__(cls)
            v.sealed = False  # (a state saved before mseal was known has no such field)
            for a, value in zip(_vma_fields(cls), values):
                setattr(v, a, value)
            vmas.append(v)
        self._vmas = vmas
        self._starts = [v.start for v in vmas]
        self.other_vm = self.data_vm = self.stack_vm = 0
        self._account(vmas, 1)
        self.brk_start, self.brk_end = state["brk"]
        self.mmap_top, self.committed = state["mmap_top"], state["committed"]
        self.limit, self.lock_future = state["limit"], state["lock_future"]
        self.stack_counted = state.get("stack_counted", STACK_COUNTED)

    # -- the VMA list ----------------------------------------------------------------
    def __iter__(self) -> Iterator[Vma]:
        return iter(self._vmas)

    def find(self, addr: int) -> Vma | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].end > addr:
            return self._vmas[i]
        return None

    def _index_from(self, addr: int) -> int:
        """Index of the first VMA that ends after addr."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0 or self._vmas[i].end <= addr:
            i += 1
        return i

    def overlapping(self, start: int, end: int) -> list[Vma]:
        out = []
        i = self._index_from(start)
        while i < len(self._vmas) and self._vmas[i].start < end:
            out.append(self._vmas[i])
            i += 1
        return out

    def is_free(self, start: int, end: int) -> bool:
        return self.mmap_min <= start < end <= self.window and not self.overlapping(start, end)

    def covered(self, start: int, end: int) -> bool:
        """True when [start, end) has no unmapped page."""
        return self.first_gap(start, end) is None

    def first_gap(self, start: int, end: int) -> int | None:
        """The first address in [start, end) that no mapping covers, or None."""
        pos = start
        for v in self.overlapping(start, end):
            if v.start > pos:
                return pos
            pos = v.end
        return pos if pos < end else None

    @staticmethod
    def _cost(v: Vma) -> int:
        return v.end - v.start if v.prot else 0

    def room(self) -> None:
        """ENOMEM when a change could take the mappings past vm.max_map_count (a change
        splits at most one mapping into three), as Linux: no program grows km's list of
        mappings past what Linux would keep."""
        if len(self._vmas) + 2 > 1024 and len(self._vmas) + 2 > max_map_count():
            raise GuestError(ENOMEM)

    def _replace(self, start: int, end: int, new: list[Vma]) -> list[Vma]:
        """Cut [start, end) out of the VMA list, put ``new`` (inside it) there, and
        return the pieces that were cut out."""
        i = self._index_from(start)
        removed: list[Vma] = []
        keep: list[Vma] = []
        j = i
        while j < len(self._vmas) and self._vmas[j].start < end:
            v = self._vmas[j]
            if v.start < start:
                keep.append(v.piece(v.start, start))
            if v.end > end:
                keep.append(v.piece(end, v.end))
            removed.append(v.piece(max(v.start, start), min(v.end, end)))
            j += 1
        merged = sorted(keep + new, key=lambda v: v.start)
        self._vmas[i:j] = merged
        self._starts[i:j] = [v.start for v in merged]
        self.committed += sum(self._cost(v) for v in new) - sum(self._cost(v) for v in removed)
        self._account(new, 1)
        self._account(removed, -1)
        self._merge(max(i - 1, 0), i + len(merged) + 1)
        return removed

    def _account(self, vmas: list[Vma], sign: int) -> None:
        for v in vmas:
            n = (v.end - v.start) * sign
            if v.name == "[stack]":
                self.stack_vm += n
            else:
                self.other_vm += n
                if _is_data(v.prot, v.flags):
                    self.data_vm += n

    @property
    def total_vm(self) -> int:
        """Linux's total_vm in bytes: km maps the whole stack at once, Linux's grows (it
        counts as large as Linux's would be)."""
        return self.other_vm + min(self.stack_vm, self.stack_counted)

    def _may_expand(self, total: int, data: int) -> None:
        """Linux's may_expand_vm: ENOMEM past RLIMIT_AS (all the mappings) or RLIMIT_DATA
        (the private writable ones; a soft limit of 0 lets the hard one decide)."""
        lims = self.rlimits
        if total > 0 and F.RLIMIT_AS in lims:
            soft = lims[F.RLIMIT_AS][0]
            if soft < F.RLIM_INFINITY and (self.total_vm + total) // PAGE > soft // PAGE:
                raise GuestError(ENOMEM)
        if data > 0 and F.RLIMIT_DATA in lims:
            soft, hard = lims[F.RLIMIT_DATA]
            pages = (self.data_vm + data) // PAGE
            if soft < F.RLIM_INFINITY and pages > soft // PAGE and not (soft == 0 and pages <= hard // PAGE):
                raise GuestError(ENOMEM)

    def _bounded(self) -> bool:
        """Is RLIMIT_AS or RLIMIT_DATA finite?  (Mostly not: then no mmap counts what it replaces.)"""
        lims = self.rlimits
        return any(lims.get(r, _NO_LIMIT)[0] < F.RLIM_INFINITY for r in (F.RLIMIT_AS, F.RLIMIT_DATA))

    def _mapped(self, start: int, end: int) -> int:
        """Bytes of [start, end) that are mapped now."""
        return sum(min(v.end, end) - max(v.start, start) for v in self.overlapping(start, end))

    @staticmethod
    def _mergeable(a: Vma, b: Vma) -> bool:
        """Would Linux merge these neighbours into one VMA?  (Same protection and kind;
        a file mapping only with the next part of the same file; shared anonymous
        mappings are each their own object.)"""
        if a.end != b.start or a.prot != b.prot or a.flags != b.flags or a.name != b.name or a.ino != b.ino or \
                a.dontdump != b.dontdump or a.sealed != b.sealed:
            return False
        if isinstance(a, ShmVma) or isinstance(b, ShmVma):
            return False
        if a.anonymous:
            return not a.shared
        return b.offset == a.offset + (a.end - a.start)

    def _merge(self, lo: int, hi: int) -> None:
        k = lo
        while k < min(hi, len(self._vmas)) - 1:
            a, b = self._vmas[k], self._vmas[k + 1]
            if self._mergeable(a, b):
                a.end = b.end
                del self._vmas[k + 1]
                del self._starts[k + 1]
                hi -= 1
            else:
                k += 1

    def _growth(self, start: int, end: int, prot: int) -> int:
        """How much more accessible memory a new mapping of [start, end) makes."""
        return (end - start if prot else 0) - sum(self._cost(v.piece(max(v.start, start), min(v.end, end)))
                                                  for v in self.overlapping(start, end))

    def _check_limit(self, extra: int) -> None:
        if self.limit is not None and extra > 0 and self.committed + extra > self.limit:
            raise GuestError(ENOMEM)

    # -- host side -------------------------------------------------------------------
    def _reserve(self, start: int, end: int) -> None:
        """Return [start, end) to the PROT_NONE reservation (atomically replacing it)."""
        r = native.mmap(self.mem.base + start, end - start, 0, _RESERVE_FLAGS)
        if r < 0:
            raise GuestError(-r)

    def _host_anon(self, start: int, end: int, prot: int, shared: bool, extra: int = 0, huge: bool = False,
                   droppable: bool = False) -> None:
        typ = F.MAP_SHARED if shared else F.MAP_DROPPABLE if droppable else F.MAP_PRIVATE
        if end - start <= POPULATE_MAX and prot & F.PROT_WRITE:
            extra |= F.MAP_POPULATE
        r = native.mmap(self.mem.base + start, end - start, host_prot(prot), typ | F.MAP_ANONYMOUS | F.MAP_FIXED | extra)
        if r < 0:
            raise GuestError(-r)
        if huge and end - start >= HUGE:
            # Transparent huge pages on the host let KVM map the guest's first touch of
            # 2 MiB at once (the guest's own page tables already use 2 MiB pages): one
            # shadow-paging fault instead of 512; touching 512 MiB ran 2.7x faster here.
            native.madvise(self.mem.base + start, end - start, F.MADV_HUGEPAGE)

    # -- placement -------------------------------------------------------------------
    def find_free(self, length: int, *, top: int | None = None, bottom: int = 0) -> int:
        """Highest free range of ``length`` bytes below ``top`` (Linux's top-down
        allocator), falling back to anywhere in the window."""
        top = self.mmap_top if top is None else top
        bottom = max(bottom, self.mmap_min)
        for lo, hi in ((bottom, top), (bottom, self.window)):
            end = min(hi, self.window)
            i = bisect.bisect_left(self._starts, end) - 1  # last VMA starting below end
            while end - length >= lo:
                gap_lo = max(self._vmas[i].end, lo) if i >= 0 else lo
                if end - gap_lo >= length:
                    return end - length
                if i < 0:
                    break
                end = min(end, self._vmas[i].start)
                i -= 1
        raise GuestError(ENOMEM)

    # -- mmap family -----------------------------------------------------------------
    @_locked
    def mmap(self, addr: int, length: int, prot: int, flags: int, fd: int, offset: int, *, name: str = "") -> int:
        """The mmap(2) system call; returns the address."""
        if length == 0 or offset & (PAGE - 1) or (flags & F.MAP_TYPE) not in _MAP_TYPES:
            raise GuestError(EINVAL)
        prot &= _PROT_ALL  # (Linux's mmap ignores other bits; mprotect is the one that refuses them)
        if flags & F.MAP_ANONYMOUS:
            # Linux's do_mmap: an anonymous mapping is MAP_SHARED or MAP_PRIVATE (no
            # validation of flags), and only a private one may grow down
            if flags & F.MAP_TYPE == F.MAP_SHARED_VALIDATE or flags & F.MAP_TYPE != F.MAP_PRIVATE and \
                    flags & F.MAP_GROWSDOWN:
                raise GuestError(EINVAL)
            # MAP_DROPPABLE (Linux 6.11): private memory the kernel may drop under pressure
            # (it reads as zeros again), never locked, huge or copied into a child; the
            # host's own such mapping gives all of that (an older host refuses: EINVAL,
            # as that Linux does)
            if flags & F.MAP_TYPE == F.MAP_DROPPABLE and flags & (F.MAP_LOCKED | F.MAP_HUGETLB):
                raise GuestError(EINVAL)
        elif flags & F.MAP_GROWSDOWN or flags & F.MAP_TYPE == F.MAP_DROPPABLE:
            raise GuestError(EINVAL)  # (nor does a file mapping; nor is one droppable)
        size = page_up(length)
        if size == 0 or size > self.window:
            raise GuestError(ENOMEM)
        self.room()
        anonymous = bool(flags & F.MAP_ANONYMOUS)
        fixed = flags & (F.MAP_FIXED | F.MAP_FIXED_NOREPLACE)
        align = PAGE
        st = None if anonymous else _fstat(fd)  # (one fstat: the alignment, then /proc/self/maps)
        if anonymous and flags & F.MAP_HUGETLB:
            # huge pages of the host's: a whole number of them, at an address aligned to
            # their size (as Linux places them; the host refuses any other, EINVAL)
            shift = flags >> F.MAP_HUGE_SHIFT & F.MAP_HUGE_MASK
            align = 1 << shift if shift else HUGETLB_DEFAULT
            size = (size + align - 1) & ~(align - 1)
            if size > self.window:
                raise GuestError(ENOMEM)
        elif not anonymous and not fixed:
            align = _file_align(fd, st)  # (the length is the program's: the host checks it)
        if fixed:
            if addr & (PAGE - 1):
                raise GuestError(EINVAL)
            if addr < self.mmap_min:
                raise GuestError(EPERM)
            if addr + size > self.window:
                raise GuestError(ENOMEM)
            if flags & F.MAP_FIXED_NOREPLACE and not flags & F.MAP_FIXED and self.overlapping(addr, addr + size):
                raise GuestError(EEXIST)
            self._refuse_sealed(addr, addr + size)
            start = addr
        else:
            hint = addr & ~(PAGE - 1)
            if hint and not hint & (align - 1) and self.is_free(hint, hint + size):
                start = hint
            else:
                if anonymous and align < PREFETCH_GROUP <= size:
                    align = PREFETCH_GROUP
                if flags & F.MAP_32BIT:
                    start = self.find_free(size + align - PAGE, top=0x80000000, bottom=0x40000000)
                else:
                    start = self.find_free(size + align - PAGE)
                start = (start + align - 1) & ~(align - 1)  # (inside what was found)
        end = start + size
        self._check_limit(self._growth(start, end, prot))
        if name != "[stack]" and self._bounded():  # (km's own mapping of the program's stack)
            more = size - self._mapped(start, end)
            self._may_expand(more, more if _is_data(prot, flags) else 0)
        droppable = flags & F.MAP_TYPE == F.MAP_DROPPABLE
        shared = (flags & F.MAP_TYPE) not in (F.MAP_PRIVATE, F.MAP_DROPPABLE)
        dev = ino = 0
        if anonymous:
            # huge pages as Linux's THP "always" gives them, but not for stacks (touched
            # sparsely; Linux too leaves MAP_STACK mappings without them since 6.7)
            huge = not shared and not flags & (F.MAP_STACK | F.MAP_GROWSDOWN) and name != "[stack]"
            self._host_anon(start, end, prot, shared, flags & _HOST_PASS, huge and not droppable, droppable)
            vflags = (F.MAP_SHARED if shared else F.MAP_PRIVATE) | F.MAP_ANONYMOUS | flags & F.MAP_GROWSDOWN
            if shared:
                name = name or "/dev/zero (deleted)"
        else:
            self._host_file(start, size, prot, flags, fd, offset)
            vflags = flags & F.MAP_TYPE
            vflags = F.MAP_SHARED if vflags == F.MAP_SHARED_VALIDATE else vflags
            dev, ino, path = _file_identity(fd, st)
            name = name or path
        vma = Vma(start, end, prot, vflags, name, 0 if anonymous else offset, dev, ino)
        vma.dontdump = droppable  # (Linux's VM_DONTDUMP for it)
        self._replace(start, end, [vma])
        self.slots.set_access(start, end, access_of(prot))
        return start

    def _host_file(self, start: int, size: int, prot: int, flags: int, fd: int, offset: int) -> None:
        """Map the program's file at [start, start+size): map it anywhere first (so a
        failure leaves the window untouched), then move it into place atomically."""
        hflags = (flags & (F.MAP_TYPE | _HOST_PASS)) & ~F.MAP_FIXED
        if flags & F.MAP_TYPE == F.MAP_SHARED_VALIDATE:
            # the host checks every flag for this file as Linux does (MAP_SYNC only on DAX,
            # unknown ones EOPNOTSUPP); the placement flags are km's
            hflags |= flags & ~(F.MAP_FIXED | F.MAP_FIXED_NOREPLACE | F.MAP_32BIT | F.MAP_GROWSDOWN)
        if flags & F.MAP_TYPE == F.MAP_PRIVATE and prot & F.PROT_WRITE and size <= COPY_MAX:
            hflags |= F.MAP_POPULATE  # (a writable private mapping: the host copies each page, see COPY_MAX)
        tmp = native.mmap(0, size, host_prot(prot), hflags, fd, offset)
        if tmp < 0:
            raise GuestError(-tmp)
        try:
            self._move_in(tmp, size, start)
        except GuestError:
            native.munmap(tmp, size)
            raise

    def _move_in(self, hva: int, size: int, start: int) -> None:
        """Move a host mapping made outside the window to [start, start+size), replacing
        what was there (the reservation or a mapping) at once."""
        r = native.syscall(_SYS_mremap, hva, size, size, F.MREMAP_MAYMOVE | F.MREMAP_FIXED, self.mem.base + start)
        if r < 0:
            raise GuestError(-r)

    @_locked
    def grow_down(self, addr: int, prot: int) -> bool:
        """A fault at ``addr`` below a MAP_GROWSDOWN mapping that allows ``prot``: the
        mapping grows down to its page, as Linux's expand_downwards does it (never within
        stack_guard_gap of an accessible mapping below, nor past RLIMIT_STACK or the
        memory limit).  True when it grew: the access can be completed."""
        i = bisect.bisect_right(self._starts, addr)
        if i >= len(self._vmas):
            return False
        v = self._vmas[i]
        start = addr & ~(PAGE - 1)
        if not v.flags & F.MAP_GROWSDOWN or v.prot & prot != prot or start < self.mmap_min:
            return False
        if i > 0:
            prev = self._vmas[i - 1]
            if prev.end > start or not prev.flags & F.MAP_GROWSDOWN and prev.prot and start - prev.end < STACK_GUARD_GAP:
                return False
        soft = _stack_limit()
        if soft >= 0 and v.end - start > soft:
            return False
        try:
            self._check_limit(v.start - start)
            self._may_expand(v.start - start, 0)  # (a stack: not data)
        except GuestError:
            return False
        self._host_anon(start, v.start, v.prot, v.shared)
        self._replace(start, v.start, [Vma(start, v.start, v.prot, v.flags, v.name)])
        self.slots.set_access(start, v.start, access_of(v.prot))
        return True

    @_locked
    def munmap(self, addr: int, length: int) -> None:
        if addr & (PAGE - 1) or length == 0:
            raise GuestError(EINVAL)
        size = page_up(length)
        if addr + size > self.window or size == 0:
            raise GuestError(EINVAL)
        self.room()
        self._refuse_sealed(addr, addr + size)
        self.unmap_range(addr, addr + size)

    def map_special(self, vma: Vma, hva: int) -> None:
        """A read-only mapping of host memory that is not the window's (the vDSO)."""
        self._replace(vma.start, vma.end, [vma])
        self.slots.add(vma.start, vma.end, True, hva)

    @_locked
    def map_km(self, start: int, size: int, name: str) -> None:
        """A page of km's own code in the program's address space (kernel/rewrite.py's
        trampolines): read+exec for the program, writable only through km's host mapping;
        VM_SPECIAL, so that mprotect and mremap refuse it as they refuse the vDSO."""
        end = start + size
        if not self.is_free(start, end):
            raise GuestError(ENOMEM)
        self._host_anon(start, end, F.PROT_READ | F.PROT_WRITE, False)
        self._replace(start, end, [Vma(start, end, F.PROT_READ | F.PROT_EXEC,
                                       F.MAP_PRIVATE | F.MAP_ANONYMOUS | VM_SPECIAL, name)])
        self.slots.set_access(start, end, "ro", strict=True)  # (the host's mapping is writable)

    def _refuse_sealed(self, start: int, end: int) -> None:
        """EPERM when [start, end) meets a sealed mapping: Linux gathers every VMA a
        munmap (or a MAP_FIXED mmap, a move) would remove and refuses before it changes
        any."""
        if any(v.sealed for v in self.overlapping(start, end)):
            raise GuestError(EPERM)

    @_locked
    def mseal(self, addr: int, length: int, flags: int) -> None:
        """mseal(2), as Linux's do_mseal: EINVAL for flags, an unaligned start or a
        length that wraps; nothing for a zero length; ENOMEM when a page of the range is
        not mapped; else every mapping in it is sealed (split at the range's ends).
        munmap, a MAP_FIXED mmap over it, mremap, mprotect, and madvise's discarding
        advice on read-only private anonymous memory then fail with EPERM, here as on
        Linux (the host's own mappings are not sealed: km still changes them when the
        address space goes, at exec and exit)."""
        if flags or addr & (PAGE - 1):
            raise GuestError(EINVAL)
        size = page_up(length)
        end = addr + size
        if size > _U64 or end > _U64:
            raise GuestError(EINVAL)
        if size == 0:
            return
        if end > self.window or not self.covered(addr, end):
            raise GuestError(ENOMEM)
        self.room()
        for v in self.overlapping(addr, end):
            if not v.sealed:
                new = v.piece(max(v.start, addr), min(v.end, end))
                new.sealed = True
                self._replace(new.start, new.end, [new])

    def _refuse_special(self, start: int, end: int, errno: int) -> None:
        if any(v.flags & VM_SPECIAL for v in self.overlapping(start, end)):
            raise GuestError(errno)

    @_locked
    def unmap_range(self, start: int, end: int) -> None:
        if not self.overlapping(start, end):
            return
        self._reserve(start, end)
        self._replace(start, end, [])
        self.slots.park(start, end)

    @_locked
    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.room()
        # Linux's order: both grows flags, the alignment, a zero length (done), a range
        # that wraps (ENOMEM), then the protection's bits (PROT_SEM is allowed)
        if prot & F.PROT_GROWSDOWN and prot & F.PROT_GROWSUP or addr & (PAGE - 1):
            raise GuestError(EINVAL)
        if length == 0:
            return
        size = page_up(length) & _U64  # (PAGE_ALIGN wraps as the kernel's)
        end = addr + size
        if end <= addr or end > _U64:
            raise GuestError(ENOMEM)
        if prot & ~(_PROT_ALL | F.PROT_SEM | F.PROT_GROWSDOWN | F.PROT_GROWSUP):
            raise GuestError(EINVAL)
        prot &= _PROT_ALL
        if end > self.window:
            raise GuestError(ENOMEM)
        self._refuse_special(addr, end, EACCES)
        pos = addr
        for v in self.overlapping(addr, end):
            if v.start > pos:
                raise GuestError(ENOMEM)  # a hole: Linux keeps what it changed so far
            if v.sealed:
                raise GuestError(EPERM)  # (so does a sealed mapping: mprotect_fixup, even for the same prot)
            s, e = max(v.start, addr), min(v.end, end)
            if v.prot != prot:
                self._check_limit((e - s) if (prot and not v.prot) else 0)
                if v.name != "[stack]" and _is_data(prot, v.flags) and not _is_data(v.prot, v.flags):
                    self._may_expand(0, e - s)  # (it becomes data: mprotect_fixup's check)
                r = native.mprotect(self.mem.base + s, e - s, host_prot(prot))
                if r < 0:
                    raise GuestError(EACCES if r == -EACCES else -r)
                new = v.piece(s, e)
                new.prot = prot
                self._replace(s, e, [new])
                if access_of(prot) != access_of(v.prot):
                    self.slots.set_access(s, e, access_of(prot))
            pos = e
        if pos < end:
            raise GuestError(ENOMEM)

    @_locked
    def mremap(self, old: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
        self.room()
        if old & (PAGE - 1) or flags & ~_MREMAP_FLAGS:
            raise GuestError(EINVAL)
        if flags & F.MREMAP_FIXED and not flags & F.MREMAP_MAYMOVE:
            raise GuestError(EINVAL)
        if flags & F.MREMAP_DONTUNMAP and (not flags & F.MREMAP_MAYMOVE or old_len != new_len):
            raise GuestError(EINVAL)
        old_len, new_len = page_up(old_len), page_up(new_len)
        if new_len == 0 or old_len == 0:
            raise GuestError(EINVAL)  # old_len 0 duplicates a shared mapping: not supported
        self._refuse_sealed(old, old + old_len)  # (before the range's checks, as Linux: a seal anywhere in it)
        v = self.find(old)
        if v is None or old + old_len > v.end or v.flags & VM_SPECIAL:
            raise GuestError(EFAULT)
        if flags & F.MREMAP_FIXED:
            if new_addr & (PAGE - 1) or new_addr < PAGE or new_addr + new_len > self.window:
                raise GuestError(EINVAL)
            if new_addr < old + old_len and old < new_addr + new_len:
                raise GuestError(EINVAL)
            self._refuse_sealed(new_addr, new_addr + new_len)
            self.unmap_range(new_addr, new_addr + new_len)
            return self._move(v, old, old_len, new_len, new_addr, keep_old=bool(flags & F.MREMAP_DONTUNMAP))
        if flags & F.MREMAP_DONTUNMAP:  # always a move; new_addr is a hint, checked as if it were fixed
            if new_addr & (PAGE - 1) or new_addr < old + old_len and old < new_addr + new_len:
                raise GuestError(EINVAL)
            new = new_addr if new_addr and self.is_free(new_addr, new_addr + new_len) else self.find_free(new_len)
            return self._move(v, old, old_len, new_len, new, keep_old=True)
        if new_len <= old_len:
            self.unmap_range(old + new_len, old + old_len)
            return old
        grow_end = old + new_len
        if grow_end <= self.window and self.is_free(old + old_len, grow_end) and v.anonymous and not v.shared:
            self._check_limit((new_len - old_len) if v.prot else 0)
            self._may_expand(new_len - old_len, (new_len - old_len) if _is_data(v.prot, v.flags) else 0)
            self._host_anon(old + old_len, grow_end, v.prot, False)
            ext = v.piece(old + old_len, old + old_len)
            ext.end = grow_end
            self._replace(old + old_len, grow_end, [ext])
            self.slots.set_access(old + old_len, grow_end, access_of(v.prot))
            return old
        if not flags & F.MREMAP_MAYMOVE:
            raise GuestError(ENOMEM)
        return self._move(v, old, old_len, new_len, self.find_free(new_len), keep_old=False)

    def _move(self, v: Vma, old: int, old_len: int, new_len: int, new: int, *, keep_old: bool) -> int:
        """Move [old, old+old_len) of ``v`` to ``new`` (new_len long).  With ``keep_old``
        (MREMAP_DONTUNMAP, same length) the host leaves the old range mapped as Linux
        does: empty for private anonymous memory, the same pages for a shared mapping
        (a file, a shm segment), the file again for a private file mapping."""
        self._check_limit((new_len if keep_old else new_len - old_len) if v.prot else 0)
        more = new_len if keep_old else new_len - old_len
        self._may_expand(more, more if _is_data(v.prot, v.flags) else 0)
        base = self.mem.base
        private_anon = v.anonymous and not v.shared
        if private_anon or keep_old:
            # move the pages, leaving the old range mapped (empty, or the same pages for a
            # shared mapping); then grow in place
            r = native.syscall(_SYS_mremap, base + old, old_len, old_len,
                               F.MREMAP_MAYMOVE | F.MREMAP_FIXED | F.MREMAP_DONTUNMAP, base + new)
            if r < 0:
                raise GuestError(-r)
            if new_len > old_len:
                self._host_anon(new + old_len, new + new_len, v.prot, False)
        else:
            r = native.syscall(_SYS_mremap, base + old, old_len, new_len, F.MREMAP_MAYMOVE | F.MREMAP_FIXED, base + new)
            if r < 0:
                raise GuestError(-r)
        moved = v.piece(old, old + old_len)
        moved.start, moved.end = new, new + new_len
        if not keep_old:  # (else the old range stays as it is)
            self._reserve(old, old + old_len)
            self._replace(old, old + old_len, [])
            self.slots.remove(old, old + old_len)
        self._replace(new, new + new_len, [moved])
        self.slots.set_access(new, new + new_len, access_of(v.prot))
        return new

    # -- System V shared memory ----------------------------------------------------------
    @_locked
    def shmat(self, shmid: int, addr: int, flags: int) -> int:
        """shmat(2): attach segment ``shmid`` at ``addr`` (0: where Linux would choose)
        and return the address.

        The host attaches the segment first, anywhere outside the window: so the host
        makes every check on the segment (permissions, a removed id) in Linux's order,
        and a failure leaves the window untouched.  mremap then moves the attachment
        into place, replacing the reservation (or, with SHM_REMAP, what was mapped
        there) atomically, as _host_file does for files.  From then on the host's
        mapping is the guest's: fork, munmap, mprotect, exec and exit change it as
        they change the guest's, so the segment's attachment count (shm_nattch) is
        what Linux would count."""
        if shmid < 0:
            raise GuestError(EINVAL)
        fixed = addr != 0
        if addr & (F.SHMLBA - 1):
            if not flags & F.SHM_RND:
                raise GuestError(EINVAL)
            addr &= ~(F.SHMLBA - 1)
            if addr == 0 and flags & F.SHM_REMAP:
                raise GuestError(EINVAL)
        elif not fixed and flags & F.SHM_REMAP:
            raise GuestError(EINVAL)
        tmp = native.syscall(_SYS_shmat, shmid, 0, flags & (F.SHM_RDONLY | F.SHM_EXEC))
        if tmp < 0:
            raise GuestError(-tmp)
        prot = F.PROT_READ | (0 if flags & F.SHM_RDONLY else F.PROT_WRITE) | (F.PROT_EXEC if flags & F.SHM_EXEC else 0)
        try:
            size, dev, ino, name = _shm_identity(tmp, shmid)
            if not fixed:
                start = self.find_free(size)
            else:  # do_shmat's checks, then do_mmap's (the window stands for TASK_SIZE)
                if addr + size >= 1 << 64 or not flags & F.SHM_REMAP and self.overlapping(addr, addr + size):
                    raise GuestError(EINVAL)
                if addr + size > self.window:
                    raise GuestError(ENOMEM)
                if addr < self.mmap_min:
                    raise GuestError(EPERM)
                self._refuse_sealed(addr, addr + size)  # (SHM_REMAP over a sealed mapping)
                start = addr
            self.room()
            self._check_limit(self._growth(start, start + size, prot))
            if self._bounded():
                self._may_expand(size - self._mapped(start, start + size), 0)  # (shared: not data)
            if prot & F.PROT_EXEC:
                native.mprotect(tmp, size, host_prot(prot))  # the host never executes guest memory
            self._move_in(tmp, size, start)
        except BaseException:
            native.syscall(_SYS_shmdt, tmp)
            raise
        self.attaches += 1
        self._replace(start, start + size, [ShmVma(start, start + size, prot, name, 0, dev, ino, size, self.attaches)])
        self.slots.set_access(start, start + size, access_of(prot))
        return start

    @_locked
    def shmdt(self, addr: int) -> None:
        """shmdt(2), as Linux's ksys_shmdt: the first attachment piece at or after
        ``addr`` whose offset in its segment is its distance from ``addr`` goes, then
        the other pieces of the same shmat within the segment's size from ``addr``
        (what munmap and mprotect left of it).  Each goes back to the reservation: the
        host's attachment ends with it."""
        if addr & (PAGE - 1):
            raise GuestError(EINVAL)
        vmas = self._vmas
        i = self._index_from(addr)
        while i < len(vmas) and not (isinstance(vmas[i], ShmVma) and vmas[i].start - addr == vmas[i].offset):
            i += 1
        if i == len(vmas):
            raise GuestError(EINVAL)
        first = vmas[i]
        doomed = [first]
        for j in range(i + 1, len(vmas)):
            v = vmas[j]
            if v.end - addr > first.segsz:
                break
            if isinstance(v, ShmVma) and v.attach == first.attach and v.start - addr == v.offset:
                doomed.append(v)
        for v in doomed:
            self.unmap_range(v.start, v.end)

    @_locked
    def madvise(self, addr: int, length: int, advice: int) -> None:
        if addr & (PAGE - 1):
            raise GuestError(EINVAL)
        size = page_up(length)
        if size == 0:
            return
        if advice in (F.MADV_HWPOISON, F.MADV_SOFT_OFFLINE):
            # memory-failure injection acts on the host's physical pages: never the program's
            # to make (EPERM, as without CAP_SYS_ADMIN), where the host's Linux has it at
            # all (else EINVAL, as that Linux says: its check of the advice comes first)
            raise GuestError(EPERM if _host_knows_advice(advice) else EINVAL)
        end = addr + size
        if end > self.window:
            raise GuestError(ENOMEM)
        mapped = self.covered(addr, end)
        refused = False
        if advice in _DISCARDING:
            # Linux's can_modify_vma_madv: EPERM at the first sealed read-only private
            # anonymous mapping (a hole before it only made ENOMEM for later); what came
            # before it is advised
            for v in self.overlapping(addr, end):
                if v.sealed and v.anonymous and not v.shared and not v.prot & F.PROT_WRITE:
                    end, refused = v.start, True
                    break
        if advice in (F.MADV_DONTFORK, F.MADV_DOFORK):
            # a DONTFORK range would be a hole in the child's window: keep it (harmless)
            pass
        else:
            for v in self.overlapping(addr, end):
                s, e = max(v.start, addr), min(v.end, end)
                if self.restored and advice in _ZEROING and v.anonymous and not v.shared:
                    self._host_anon(s, e, v.prot, False)  # (zeros, as Linux's DONTNEED gives)
                    continue
                r = native.madvise(self.mem.base + s, e - s, advice)
                if r < 0:
                    raise GuestError(-r)
                if advice in (F.MADV_DONTDUMP, F.MADV_DODUMP) and v.dontdump != (advice == F.MADV_DONTDUMP):
                    new = v.piece(s, e)  # (a VMA of its own, as Linux's VM_DONTDUMP makes)
                    new.dontdump = advice == F.MADV_DONTDUMP
                    self._replace(s, e, [new])
        if refused:
            raise GuestError(EPERM)
        if not mapped:
            raise GuestError(ENOMEM)

    # -- brk -------------------------------------------------------------------------
    def set_brk_start(self, addr: int) -> None:
        self.brk_start = self.brk_end = addr

    @_locked
    def brk(self, new: int) -> int:
        """brk(2): returns the new break, or the old one when it cannot move."""
        cur = self.brk_end
        if new < self.brk_start or new > self.window:
            return cur
        old_top, new_top = page_up(cur), page_up(new)
        if new_top > old_top:
            if self.overlapping(old_top, new_top + PAGE):  # keep a page of gap, as Linux
                return cur
            try:
                self._check_limit(new_top - old_top)
                self._may_expand(new_top - old_top, new_top - old_top)
                self._host_anon(old_top, new_top, F.PROT_READ | F.PROT_WRITE, False, huge=True)
            except GuestError:
                return cur
            self._replace(old_top, new_top, [Vma(old_top, new_top, F.PROT_READ | F.PROT_WRITE,
                                                 F.MAP_PRIVATE | F.MAP_ANONYMOUS, "[heap]")])
            self.slots.add(old_top, new_top, False)
        elif new_top < old_top:
            if any(v.sealed for v in self.overlapping(new_top, old_top)):
                return cur  # (Linux's do_vmi_munmap fails: the break stays)
            self.unmap_range(new_top, old_top)
        self.brk_end = new
        return new


STACK_GUARD_GAP = 256 * PAGE  # Linux's stack_guard_gap
_NO_LIMIT = (F.RLIM_INFINITY, F.RLIM_INFINITY)
STACK_COUNTED = 132 << 10  # Linux's stack at exec (128 KiB below the arguments), until Process says more


def _is_data(prot: int, flags: int) -> bool:
    """Linux's is_data_mapping: private and writable, not a stack."""
    return bool(prot & F.PROT_WRITE) and flags & F.MAP_TYPE in (F.MAP_PRIVATE, F.MAP_DROPPABLE) and \
        not flags & F.MAP_GROWSDOWN


def _host_knows_advice(advice: int) -> bool:
    """Does the host's madvise accept ``advice`` (an empty range: nothing is done)?"""
    return native.madvise(0, 0, advice) != -EINVAL


def _stack_limit() -> int:
    """RLIMIT_STACK's soft limit (-1: none)."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return -1 if soft == resource.RLIM_INFINITY else soft


def _vma_fields(cls) -> tuple[str, ...]:
    """Every attribute of a VMA class, its bases' first."""
    out: tuple[str, ...] = ()
    for c in reversed(cls.__mro__):
        out += tuple(getattr(c, "__slots__", ()))
    return out
