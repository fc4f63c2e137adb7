"""The /dev/kvm ABI as data: ioctl numbers, capabilities, exit reasons, struct layouts.

Layouts are ``CStruct`` objects so that the unit tests can compare them with
<linux/kvm.h> through the C compiler.  Offsets into ``struct kvm_run`` are constants here
because the vCPU loop reads that page on every exit.
"""

from __future__ import annotations

from kontain.abi.structs import CStruct

KVMIO = 0xAE


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (KVMIO << 8) | nr


def _io(nr: int) -> int:
    return _ioc(0, nr, 0)


def _iow(nr: int, size: int) -> int:
    return _ioc(1, nr, size)


def _ior(nr: int, size: int) -> int:
    return _ioc(2, nr, size)


def _iowr(nr: int, size: int) -> int:
    return _ioc(3, nr, size)


# struct layouts -------------------------------------------------------------------
userspace_memory_region = CStruct(
    "struct kvm_userspace_memory_region",
    [("slot", "I"), ("flags", "I"), ("guest_phys_addr", "Q"), ("memory_size", "Q"), ("userspace_addr", "Q")],
    "linux/kvm.h",
)
REG_NAMES = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
)
regs = CStruct("struct kvm_regs", [(n, "Q") for n in REG_NAMES], "linux/kvm.h")
segment = CStruct(
    "struct kvm_segment",
    [
        ("base", "Q"), ("limit", "I"), ("selector", "H"), ("type", "B"), ("present", "B"), ("dpl", "B"),
        ("db", "B"), ("s", "B"), ("l", "B"), ("g", "B"), ("avl", "B"), ("unusable", "B"), ("padding", "B"),
    ],
    "linux/kvm.h",
)
dtable = CStruct("struct kvm_dtable", [("base", "Q"), ("limit", "H"), ("padding", "3H")], "linux/kvm.h")
SEGMENTS = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
sregs = CStruct(
    "struct kvm_sregs",
    [(s, "24s") for s in SEGMENTS]
    + [("gdt", "16s"), ("idt", "16s")]
    + [(n, "Q") for n in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base")]
    + [("interrupt_bitmap", "4Q")],
    "linux/kvm.h",
)
msr_entry = CStruct("struct kvm_msr_entry", [("index", "I"), ("reserved", "I"), ("data", "Q")], "linux/kvm.h")
msrs_header = CStruct("struct kvm_msrs", [("nmsrs", "I"), ("pad", "I")], "linux/kvm.h")
cpuid_entry2 = CStruct(
    "struct kvm_cpuid_entry2",
    [("function", "I"), ("index", "I"), ("flags", "I"), ("eax", "I"), ("ebx", "I"), ("ecx", "I"), ("edx", "I"),
     ("padding", "3I")],
    "linux/kvm.h",
)
cpuid2_header = CStruct("struct kvm_cpuid2", [("nent", "I"), ("padding", "I")], "linux/kvm.h")
enable_cap = CStruct("struct kvm_enable_cap", [("cap", "I"), ("flags", "I"), ("args", "4Q"), ("pad", "64s")], "linux/kvm.h")
xcr = CStruct("struct kvm_xcr", [("xcr", "I"), ("reserved", "I"), ("value", "Q")], "linux/kvm.h")
xcrs = CStruct("struct kvm_xcrs", [("nr_xcrs", "I"), ("flags", "I"), ("xcrs", "256s"), ("padding", "16Q")], "linux/kvm.h")
fpu = CStruct(
    "struct kvm_fpu",
    [("fpr", "128s"), ("fcw", "H"), ("fsw", "H"), ("ftwx", "B"), ("pad1", "B"), ("last_opcode", "H"),
     ("last_ip", "Q"), ("last_dp", "Q"), ("xmm", "256s"), ("mxcsr", "I"), ("pad2", "I")],
    "linux/kvm.h",
)
# the binary statistics of a VM or vCPU (KVM_GET_STATS_FD, Documentation/virt/kvm/api.rst 4.133): a
# header, then descriptors of name_size-byte names each, then u64 data
stats_header = CStruct(
    "struct kvm_stats_header",
    [("flags", "I"), ("name_size", "I"), ("num_desc", "I"), ("id_offset", "I"), ("desc_offset", "I"),
     ("data_offset", "I")],
    "linux/kvm.h",
)
stats_desc = CStruct(
    "struct kvm_stats_desc",
    [("flags", "I"), ("exponent", "h"), ("size", "H"), ("offset", "I"), ("bucket_size", "I")],
    "linux/kvm.h",
)

LAYOUTS = [userspace_memory_region, regs, segment, dtable, sregs, msr_entry, msrs_header, cpuid_entry2, cpuid2_header,
           enable_cap, xcr, xcrs, fpu, stats_header, stats_desc]

# ioctls ----------------------------------------------------------------------------
KVM_GET_API_VERSION = _io(0x00)
KVM_CREATE_VM = _io(0x01)
KVM_CHECK_EXTENSION = _io(0x03)
KVM_GET_VCPU_MMAP_SIZE = _io(0x04)
KVM_GET_SUPPORTED_CPUID = _iowr(0x05, cpuid2_header.size)
KVM_CREATE_VCPU = _io(0x41)
KVM_SET_USER_MEMORY_REGION = _iow(0x46, userspace_memory_region.size)
KVM_RUN = _io(0x80)
KVM_GET_REGS = _ior(0x81, regs.size)
KVM_SET_REGS = _iow(0x82, regs.size)
KVM_GET_SREGS = _ior(0x83, sregs.size)
KVM_SET_SREGS = _iow(0x84, sregs.size)
KVM_GET_MSRS = _iowr(0x88, msrs_header.size)
KVM_SET_MSRS = _iow(0x89, msrs_header.size)
KVM_GET_FPU = _ior(0x8C, fpu.size)
KVM_SET_FPU = _iow(0x8D, fpu.size)
KVM_SET_CPUID2 = _iow(0x90, cpuid2_header.size)
KVM_ENABLE_CAP = _iow(0xA3, enable_cap.size)
KVM_GET_XSAVE = _ior(0xA4, 4096)
KVM_SET_XSAVE = _iow(0xA5, 4096)
KVM_GET_STATS_FD = _io(0xCE)
KVM_GET_XSAVE2 = _ior(0xCF, 4096)  # the buffer may be larger: KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)
XSAVE_SIZE = 4096
KVM_GET_XCRS = _ior(0xA6, xcrs.size)
KVM_SET_XCRS = _iow(0xA7, xcrs.size)

KVM_API_VERSION = 12

# capabilities
KVM_CAP_USER_MEMORY = 3
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_SYNC_REGS = 74
KVM_CAP_READONLY_MEM = 81
KVM_CAP_IMMEDIATE_EXIT = 136
KVM_CAP_XSAVE2 = 208
KVM_CAP_DISABLE_QUIRKS2 = 213
KVM_X86_QUIRK_SLOT_ZAP_ALL = 1 << 7

# memory region flags
KVM_MEM_LOG_DIRTY_PAGES = 1
KVM_MEM_READONLY = 2

# exit reasons
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_INTERNAL_ERROR = 17
EXIT_NAMES = {
    0: "UNKNOWN", 1: "EXCEPTION", 2: "IO", 3: "HYPERCALL", 4: "DEBUG", 5: "HLT", 6: "MMIO",
    7: "IRQ_WINDOW_OPEN", 8: "SHUTDOWN", 9: "FAIL_ENTRY", 10: "INTR", 17: "INTERNAL_ERROR",
}
KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT = 0, 1
KVM_INTERNAL_ERROR_EMULATION = 1

KVM_SYNC_X86_REGS = 1
KVM_SYNC_X86_SREGS = 2
KVM_SYNC_X86_EVENTS = 4

# struct kvm_run: byte offsets, and the index of each u64 in a 'q' view of the page
RUN_IMMEDIATE_EXIT = 1  # byte
RUN_EXIT_REASON = 8  # u32
RUN_EXIT_UNION = 32  # the 256-byte union of exit details
RUN_VALID_REGS = 288
RUN_DIRTY_REGS = 296
RUN_SYNC_REGS = 304  # struct kvm_regs, then struct kvm_sregs
RUN_SYNC_SREGS = RUN_SYNC_REGS + regs.size
Q_EXIT_REASON = RUN_EXIT_REASON // 8  # low 32 bits of this u64
Q_EXIT_UNION = RUN_EXIT_UNION // 8
Q_VALID_REGS = RUN_VALID_REGS // 8
Q_DIRTY_REGS = RUN_DIRTY_REGS // 8
Q_REGS = RUN_SYNC_REGS // 8

# index of each register in a 'q' view of kvm_run (Q_REGS + position in struct kvm_regs)
RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP = (Q_REGS + i for i in range(8))
R8, R9, R10, R11, R12, R13, R14, R15, RIP, RFLAGS = (Q_REGS + 8 + i for i in range(10))

# x86 MSRs
MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_SYSCALL_MASK = 0xC0000084
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_TSC_AUX = 0xC0000103
