"""Every fixed guest address, in one place.

Guest physical = guest virtual everywhere (static identity page tables, built once).

    [0, window)            the program's address window: its ELF, heap, mmaps, stack.
                           Mapped by 2 MiB pages, all present; a part the program has
                           not mapped has no KVM memslot, so touching it exits to the
                           monitor as MMIO with the exact address (its SIGSEGV).
    [window, 512 GiB)      not mapped (page fault -> SIGSEGV through the IDT).
    [SYS_BASE, +SYS_SIZE)  the system region: page tables, GDT, IDT, TSSs, exception
                           stacks, the syscall stub.  Out of reach of any address a
                           program can pass to a syscall (those must lie in the window),
                           and supervisor-only except the read-only stub page.

In the host, the window is one reservation at ``GuestMemory.base`` (host = base + guest
address); the system region is a separate monitor allocation.
"""

from __future__ import annotations

PAGE = 0x1000
HUGE_PAGE = 0x20_0000
GIB = 1 << 30

WINDOW_LIMIT = 512 * GIB  # one PML4 entry
DEFAULT_WINDOW = 64 * GIB
MIN_WINDOW = 1 * GIB

# -- the system region ------------------------------------------------------------
SYS_BASE = 512 * GIB  # PML4 entry 1
PML4 = SYS_BASE + 0x0000
PDPT_WINDOW = SYS_BASE + 0x1000
PDPT_SYS = SYS_BASE + 0x2000
PD_SYS = SYS_BASE + 0x3000
PT_SYS = SYS_BASE + 0x4000  # SYS_MAPPED // HUGE_PAGE page tables of 4 KiB pages
GDT = SYS_BASE + 0x10000
IDT = SYS_BASE + 0x11000
HANDLERS = SYS_BASE + 0x12000  # supervisor code: exception vectors
STUB = SYS_BASE + 0x13000  # user code: the syscall entry (MSR_LSTAR)
# the polling tier (guest.S .poll, kernel/poll.py): per-vCPU copies of the poll stub
# (user code, read-only) and, POLL_DISTANCE above each, that vCPU's slot (user data)
POLL_STUBS = SYS_BASE + 0x14000
POLL_COPY = 0x200
POLL_VCPUS = 32  # vCPUs past these use the plain stub (syscall_entry)
POLL_DISTANCE = 0x4000  # as in guest.S
POLL_SLOTS = POLL_STUBS + POLL_DISTANCE
# one slot (guest.S's S_* and ST_*; kernel/poll.py reads and writes it): byte offsets ...
SLOT_STATE, SLOT_ON, SLOT_NR, SLOT_ARGS, SLOT_RESULT, SLOT_FLAGS, SLOT_SIZE = 0, 4, 8, 16, 64, 72, 80
# ... and the states of its state word: the stub treats any state past DONE_EXIT as declined
SLOT_IDLE, SLOT_POSTED, SLOT_TAKEN, SLOT_DONE, SLOT_DONE_EXIT, SLOT_DECLINED = 0, 1, 2, 3, 4, 5
POLL_SPIN_MAX = 100_000  # the most pause rounds the stub spins, whatever its slot says
VCPU_AREA = SYS_BASE + 0x20000  # one page per vCPU: its TSS, and its exception stack
VCPU_PAGE = PAGE
SYS_MAPPED = 0x40_0000  # the part of the system region with guest-virtual mappings
MAX_VCPUS = (SYS_MAPPED - (VCPU_AREA - SYS_BASE)) // VCPU_PAGE
WINDOW_PDS = SYS_BASE + SYS_MAPPED  # page directories of the window, one per GiB
SYS_SIZE = SYS_MAPPED + (WINDOW_LIMIT // GIB) * PAGE

# -- segments (Linux's selectors) ---------------------------------------------------
KERNEL_CS, KERNEL_DS, USER_CS32, USER_DS, USER_CS = 0x10, 0x18, 0x23, 0x2B, 0x33
TSS_SEL = 0x40
IDT_VECTORS = 32
TSS_SIZE = 0x68
IO_BITMAP_BYTES = 4  # covers ports 0..31; ports past the TSS limit are denied

# -- ports the monitor listens on (see guest.S) ---------------------------------------
SYS_PORT = 0x10
EXC_PORT = 0x11

# -- the program's layout inside the window ------------------------------------------
MMAP_MIN = 0x10000  # vm.mmap_min_addr
STACK_MAX = 8 << 20  # RLIMIT_STACK default: the stack mapping's size
STACK_GAP = 128 << 20  # between the stack and the top of the mmap area (Linux MIN_GAP)


def vcpu_page(vcpu_id: int) -> int:
    return VCPU_AREA + vcpu_id * VCPU_PAGE


def poll_stub(vcpu_id: int) -> int:
    return POLL_STUBS + vcpu_id * POLL_COPY


# Address space layout randomization: how far each base may move (Linux moves them
# further, but the guest has a 64 GiB window, not 128 TiB).
STACK_RND = 1 << 30
MMAP_RND = 1 << 30
PIE_RND = 1 << 30
BRK_RND = 32 << 20  # as Linux's brk randomization


class Layout:
    """Where the stack, the mmap area, a PIE program and the heap start in one guest.
    ``random(n)`` returns a random page-aligned offset below n (0 without ASLR)."""

    def __init__(self, window: int, random):
        self.stack_top = window - random(STACK_RND)
        self.mmap_top = self.stack_top - STACK_MAX - STACK_GAP - random(MMAP_RND)
        # an ET_DYN program: two thirds up the window, as Linux's ELF_ET_DYN_BASE
        self.pie_base = ((window * 2 // 3) & ~(HUGE_PAGE - 1)) + random(PIE_RND)
        self.brk_offset = random(BRK_RND)
