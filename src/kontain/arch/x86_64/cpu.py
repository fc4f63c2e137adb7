"""Long mode for a program with no kernel: the system region, and each vCPU's state.

The system region (layout.py) is built once per VM and never edited while a vCPU runs,
except the stub's return instruction, which platform.py sets before the first run.
Each vCPU gets Linux's user-mode segments (CS 0x33, SS 0x2b), its own TSS (whose I/O
bitmap lets CPL3 reach only SYS_PORT, because PVM forces IOPL to 0) and exception stack,
and MSR_LSTAR pointing at the syscall stub.
"""

from __future__ import annotations

import struct

from kontain import native
from kontain.arch.x86_64 import guest_code
from kontain.arch.x86_64 import layout as L
from kontain.kvm import abi as k
from kontain.kvm.api import Vcpu, Vm

P, RW, US, A, D, PS, NX = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 1 << 63
# Accessed and dirty are preset, so that the page walker never writes the static tables.
TABLE = P | RW | US | A
LEAF_2M = P | RW | US | A | D | PS

CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_AM, CR0_PG = 1, 2, 0x10, 0x20, 0x10000, 0x40000, 0x80000000
CR0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_FSGSBASE, CR4_OSXSAVE = 0x20, 0x200, 0x400, 0x10000, 0x40000
CR4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_FSGSBASE | CR4_OSXSAVE
CR4_TSD = 0x4  # RDTSC at CPL3 faults: the thread's PR_SET_TSC (arch/x86_64/hostcode.py)
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 0x1, 0x100, 0x400, 0x800
EFER = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE
STAR = (L.USER_CS32 << 48) | (L.KERNEL_CS << 32)
RFLAGS_INIT = 0x202  # IF, and the always-one bit

_Q = struct.Struct("<Q")


def _fill_window_pds(out: memoryview, gib: int) -> None:
    """Write into ``out`` the page directories that identity-map [0, gib GiB) with
    2 MiB pages.

    PD n maps GiB n: entry j is (n << 30) | (j << 21) | flags.  This runs on every
    start, so instead of packing gib * 512 integers (~15 ms for 64 GiB) it copies PD 0
    gib times and rewrites the only bytes that differ, byte 3 (bits 30..31 of the
    address: n & 3) and byte 4 (bits 32..38: n >> 2), with two strided slice
    assignments that run at C speed (~0.3 ms for 64 GiB).

    (Built in each km's own memory: a copy shared through a file, as an earlier
    version did, could be rewritten by any guest of the same user, and with it the
    page tables of every running VM that mapped it.)
    """
    assert gib <= 512
    first = struct.pack("<512Q", *((j << 21) | LEAF_2M for j in range(512)))
    out[:gib * L.PAGE] = first * gib
    byte3 = first[3::8]  # bits 24..29: (j >> 3) & 0x3f, so adding (n & 3) << 6 is a rotation
    identity = bytes(range(256))
    with_n = [byte3.translate(identity[64 * c:] + identity[:64 * c]) for c in range(4)]
    out[3:gib * L.PAGE:8] = b"".join(with_n[n & 3] for n in range(gib))
    out[4:gib * L.PAGE:8] = b"".join(bytes((n >> 2,)) * 512 for n in range(gib))


def _gdt_entry(base: int, limit: int, access: int, flags: int) -> int:
    return ((limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (access << 40) | (((limit >> 16) & 0xF) << 48)
            | (flags << 52) | (((base >> 24) & 0xFF) << 56))


class SystemRegion:
    """The monitor-owned part of guest physical memory (memslot 0)."""

    SLOT = 0

    def __init__(self, vm: Vm, window: int):
        self.host = native.mmap(0, L.SYS_SIZE, 3, 0x22)  # RW, MAP_PRIVATE|MAP_ANONYMOUS
        if self.host < 0:
            raise MemoryError("cannot allocate the guest system region")
        self.buf = native.buffer_at(self.host, L.SYS_SIZE)
        self._build(window)
        vm.set_memory_region(self.SLOT, 0, L.SYS_BASE, L.SYS_SIZE, self.host)

    def _off(self, gpa: int) -> int:
        return gpa - L.SYS_BASE

    def _put(self, gpa: int, data: bytes) -> None:
        o = self._off(gpa)
        self.buf[o:o + len(data)] = data

    def _build(self, window: int) -> None:
        gib = window // L.GIB
        put = self._put
        put(L.PML4, struct.pack("<2Q", L.PDPT_WINDOW | TABLE, L.PDPT_SYS | TABLE))
        put(L.PDPT_WINDOW, struct.pack(f"<{gib}Q", *(L.WINDOW_PDS + i * L.PAGE | TABLE for i in range(gib))))
        o = self._off(L.WINDOW_PDS)
        _fill_window_pds(self.buf[o:o + gib * L.PAGE], gib)
        put(L.PDPT_SYS, _Q.pack(L.PD_SYS | TABLE))
        n_pt = L.SYS_MAPPED // L.HUGE_PAGE
        put(L.PD_SYS, struct.pack(f"<{n_pt}Q", *(L.PT_SYS + i * L.PAGE | TABLE for i in range(n_pt))))
        # 4 KiB pages of the mapped part: page tables stay unmapped (the MMU walks them
        # by physical address); code is read-only; only the stub is user-accessible.
        pages = {L.GDT: P | RW | A | D, L.IDT: P | RW | A | D, L.HANDLERS: P | A, L.STUB: P | US | A}
        poll_pages = L.POLL_VCPUS * L.POLL_COPY // L.PAGE
        for i in range(poll_pages):
            pages[L.POLL_STUBS + i * L.PAGE] = P | US | A
            pages[L.POLL_SLOTS + i * L.PAGE] = P | RW | US | A | D | NX
        for g, f in pages.items():
            put(L.PT_SYS + (g - L.SYS_BASE) // L.PAGE * 8, _Q.pack(g | f))
        first_vcpu = (L.VCPU_AREA - L.SYS_BASE) // L.PAGE
        n_vcpu_pages = L.MAX_VCPUS
        put(L.PT_SYS + first_vcpu * 8, struct.pack(f"<{n_vcpu_pages}Q",
                                                   *((L.VCPU_AREA + i * L.PAGE) | P | RW | A | D
                                                     for i in range(n_vcpu_pages))))
        # GDT: Linux's selectors; the accessed bits are preset so that loading a segment
        # never writes the GDT.
        gdt = [0] * 10
        gdt[L.KERNEL_CS >> 3] = _gdt_entry(0, 0xFFFFF, 0x9B, 0xA)
        gdt[L.KERNEL_DS >> 3] = _gdt_entry(0, 0xFFFFF, 0x93, 0xC)
        gdt[L.USER_CS32 >> 3] = _gdt_entry(0, 0xFFFFF, 0xFB, 0xC)
        gdt[L.USER_DS >> 3] = _gdt_entry(0, 0xFFFFF, 0xF3, 0xC)
        gdt[L.USER_CS >> 3] = _gdt_entry(0, 0xFFFFF, 0xFB, 0xA)
        tss = L.vcpu_page(0)
        gdt[L.TSS_SEL >> 3] = _gdt_entry(tss, L.TSS_SIZE + L.IO_BITMAP_BYTES, 0x8B, 0)
        gdt[(L.TSS_SEL >> 3) + 1] = tss >> 32
        put(L.GDT, struct.pack("<10Q", *gdt))
        # IDT: interrupt gates to the vector stubs; int3 and into may come from CPL3.
        idt = b""
        for v in range(L.IDT_VECTORS):
            h = L.HANDLERS + guest_code.VECTORS + 16 * v
            dpl = 3 if v in (3, 4) else 0
            lo = (h & 0xFFFF) | (L.KERNEL_CS << 16) | ((0x8E | dpl << 5) << 40) | (((h >> 16) & 0xFFFF) << 48)
            idt += struct.pack("<QQ", lo, h >> 32)
        put(L.IDT, idt)
        put(L.HANDLERS, guest_code.HANDLERS)
        put(L.STUB, guest_code.STUB)

    def install_poll_stubs(self, pollable: bytes) -> None:
        """One copy of the poll stub per polled vCPU, with the map of the syscalls the
        poller serves (64 bytes, bit n for syscall n), and their slots cleared."""
        code = bytearray(guest_code.POLL)
        code[guest_code.POLL_MAP:guest_code.POLL_MAP + 64] = pollable
        for i in range(L.POLL_VCPUS):
            self._put(L.poll_stub(i), bytes(code))
        self.clear_poll_slots()

    def clear_poll_slots(self) -> None:
        self._put(L.POLL_SLOTS, bytes(L.POLL_VCPUS * L.POLL_COPY))

    def poll_slot(self, vcpu_id: int) -> memoryview:
        o = self._off(L.POLL_SLOTS + vcpu_id * L.POLL_COPY)
        return self.buf[o:o + 128]

    def patch_stub(self, offset: int, code: bytes) -> None:
        self._put(L.STUB + offset, code)

    def init_vcpu_page(self, vcpu_id: int) -> None:
        """The vCPU's TSS: RSP0 at the top of its page, and an I/O bitmap that lets CPL3
        use SYS_PORT and nothing else."""
        page = L.vcpu_page(vcpu_id)
        tss = bytearray(L.TSS_SIZE + L.IO_BITMAP_BYTES + 1)
        struct.pack_into("<Q", tss, 4, page + L.VCPU_PAGE)  # rsp0
        struct.pack_into("<H", tss, 0x66, L.TSS_SIZE)  # I/O map base
        bitmap = (1 << (8 * L.IO_BITMAP_BYTES)) - 1 & ~(1 << L.SYS_PORT)
        tss[L.TSS_SIZE:L.TSS_SIZE + L.IO_BITMAP_BYTES] = bitmap.to_bytes(L.IO_BITMAP_BYTES, "little")
        tss[-1] = 0xFF  # the CPU reads two bytes; the terminator denies the rest
        self._put(page, bytes(tss))

    def exception_frame(self, rsp: int) -> tuple[int, int, int, int, int, int, int]:
        """(vector, error, rip, cs, rflags, rsp, ss) that a vector stub left at ``rsp``."""
        o = self._off(rsp)
        if not (0 <= o <= L.SYS_MAPPED - 56):
            raise ValueError(f"exception frame at {rsp:#x} is outside the system region")
        return struct.unpack_from("<7Q", self.buf, o)

    def write_iret_frame(self, at: int, rip: int, rflags: int, rsp: int) -> None:
        """An iretq frame back to user mode (guest.S iret_path, hardware KVM)."""
        o = self._off(at)
        struct.pack_into("<5Q", self.buf, o, rip & 0xFFFFFFFFFFFFFFFF, L.USER_CS, rflags, rsp & 0xFFFFFFFFFFFFFFFF,
                         L.USER_DS)

    def write_exception_frame(self, rsp: int, rip: int, rflags: int, user_rsp: int) -> None:
        o = self._off(rsp)
        struct.pack_into("<Q", self.buf, o + 16, rip & 0xFFFFFFFFFFFFFFFF)
        struct.pack_into("<Q", self.buf, o + 32, rflags & 0xFFFFFFFFFFFFFFFF)
        struct.pack_into("<Q", self.buf, o + 40, user_rsp & 0xFFFFFFFFFFFFFFFF)


def _segment(selector: int, type_: int, dpl: int, *, code64: bool = False, s: int = 1, base: int = 0,
             limit: int = 0xFFFFFFFF, g: int = 1) -> bytes:
    db = 0 if code64 or not s else 1
    return k.segment.pack(base, limit, selector, type_, 1, dpl, db, s, 1 if code64 else 0, g, 0, 0, 0)


def user_sregs(template: bytearray, vcpu_id: int) -> bytearray:
    """The sregs of a vCPU running user code (from KVM_GET_SREGS's ``template``, whose
    CR4.TSD, the thread's TSC mode, is kept)."""
    s = bytearray(template)
    off = k.sregs.offsets
    tsd = struct.unpack_from("<Q", s, off["cr4"])[0] & CR4_TSD
    cs = _segment(L.USER_CS, 11, 3, code64=True)
    ds = _segment(L.USER_DS, 3, 3)
    null = _segment(0, 3, 3)
    tss = L.vcpu_page(vcpu_id)
    tr = _segment(L.TSS_SEL, 11, 0, s=0, base=tss, limit=L.TSS_SIZE + L.IO_BITMAP_BYTES, g=0)
    ldt = k.segment.pack(0, 0xFFFF, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0)
    for name, seg in (("cs", cs), ("ds", ds), ("es", ds), ("ss", ds), ("fs", null), ("gs", null), ("tr", tr), ("ldt", ldt)):
        s[off[name]:off[name] + 24] = seg
    s[off["gdt"]:off["gdt"] + 16] = k.dtable.pack(L.GDT, 10 * 8 - 1, 0, 0, 0)
    s[off["idt"]:off["idt"] + 16] = k.dtable.pack(L.IDT, L.IDT_VECTORS * 16 - 1, 0, 0, 0)
    for name, value in (("cr0", CR0), ("cr3", L.PML4), ("cr4", CR4 | tsd), ("efer", EFER)):
        struct.pack_into("<Q", s, off[name], value)
    return s


def child_sregs(parent: bytearray, vcpu_id: int) -> bytearray:
    """User-mode sregs for a new thread or a forked child: the parent's FS and GS bases,
    everything else as at start (a parent stopped in the stub may be at CPL0)."""
    s = user_sregs(parent, vcpu_id)
    for seg in ("fs", "gs"):
        set_segment_base(s, seg, segment_field(parent, seg, "base"))
    return s


def segment_field(sregs: bytes, seg: str, field: str) -> int:
    values = k.segment.unpack_from(sregs, k.sregs.offsets[seg])
    return values[k.segment.names.index(field)]


def set_segment_base(sregs: bytearray, seg: str, base: int) -> None:
    struct.pack_into("<Q", sregs, k.sregs.offsets[seg], base)


def sreg(sregs: bytes, name: str) -> int:
    return struct.unpack_from("<Q", sregs, k.sregs.offsets[name])[0]


def init_vcpu(vcpu: Vcpu, cpuid: list[tuple[int, ...]], xcr0: int, fmask: int, lstar: int = 0) -> bytearray:
    """Put a fresh vCPU in 64-bit user mode; returns its user-mode sregs.  ``lstar``:
    where `syscall` goes (default: the plain stub)."""
    entries = []
    for e in cpuid:
        if e[0] == 1:  # initial APIC id = vCPU id
            e = e[:4] + (((e[4] & 0x00FFFFFF) | ((vcpu.id & 0xFF) << 24)),) + e[5:]  # (8 bits of it)
        entries.append(e)
    vcpu.set_cpuid2(entries)
    vcpu.set_xcr0(xcr0)
    sregs = user_sregs(vcpu.get_sregs(), vcpu.id)
    vcpu.set_sregs(sregs)
    vcpu.set_msrs([
        (k.MSR_STAR, STAR),
        (k.MSR_LSTAR, lstar or L.STUB + guest_code.SYSCALL_ENTRY),
        (k.MSR_CSTAR, 0),
        (k.MSR_SYSCALL_MASK, fmask),
        (k.MSR_KERNEL_GS_BASE, 0),
        (k.MSR_TSC_AUX, vcpu.id),
    ])
    return sregs


def enter(vcpu: Vcpu, entry: int, sp: int) -> None:
    """Registers at a program's first instruction (Linux's start_thread): all zero but
    RIP, RSP and RFLAGS."""
    q = vcpu.q
    for i in range(k.Q_REGS, k.Q_REGS + 18):
        q[i] = 0
    q[k.RIP] = entry
    q[k.RSP] = sp
    q[k.RFLAGS] = RFLAGS_INIT
    vcpu.mark_regs_dirty()


def xcr0_from_cpuid(cpuid: list[tuple[int, ...]]) -> int:
    """The XCR0 the exposed CPUID advertises (leaf 0xD, subleaf 0: EDX:EAX)."""
    for e in cpuid:
        if e[0] == 0xD and e[1] == 0:
            return (e[6] << 32 | e[3]) & 0x2E7 | 1  # x87, SSE, AVX, AVX-512, PKRU (no MPX)
    return 0x3
