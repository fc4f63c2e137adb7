"""The one thing that differs between PVM and hardware KVM: what `syscall` does.

On hardware KVM (VT-x/AMD-V) a CPL3 `syscall` enters CPL0 at MSR_LSTAR and the stub
returns with `sysretq`.  On PVM (this project's development host, see PVM.md) it jumps
to MSR_LSTAR *without* a ring change, so the stub is user code and returns with
`jmp *%rcx`.  We find out by behaviour, not by module name: a probe runs a CPL3
`syscall` on the first vCPU and looks at CS at the exit.

Everything platform-specific lives behind :class:`Platform`: the stub's return
instruction, MSR_SYSCALL_MASK, and how the monitor makes a vCPU that is stopped in the
stub continue somewhere else.

Debugging (kernel/gdbstub.py) needs nothing from here, by choice: on PVM,
KVM_SET_GUEST_DEBUG does not intercept the program's code (USE_SW_BP and SINGLESTEP are
reflected into the guest, hardware breakpoints are not offered, the guest's own debug
registers never fire: tools/probe_guest_debug.py), so the stub uses what both platforms
deliver alike, `int3` and RFLAGS.TF raising #BP/#DB through the guest IDT into km's
exception path, and watchpoints by memslot (read-only or absent slots exit with the
address on both).  Should debug registers be used where they work (hardware KVM),
whether they do is this module's to probe.
"""

from __future__ import annotations

from kontain.arch.x86_64 import guest_code
from kontain.arch.x86_64 import layout as L
from kontain.arch.x86_64.cpu import segment_field
from kontain.kvm import abi as k
from kontain.kvm.api import KvmError, Vcpu

PROBE_NR = 0x4B4D_0001  # no Linux syscall has this number
JMP_RCX = bytes.fromhex("ffe1cc")  # jmp *%rcx ; int3
SYSRETQ = bytes.fromhex("480f07")  # sysretq


class Platform:
    """How syscalls enter and leave the guest on this host."""

    def __init__(self, name: str, user_stub: bool):
        self.name = name
        # True: the stub runs at CPL3 (PVM), so the monitor may set RIP/RFLAGS directly.
        self.user_stub = user_stub
        self.fmask = 0 if user_stub else 0x700  # TF|IF|DF cleared on entry to CPL0
        self.stub_return = JMP_RCX if user_stub else SYSRETQ

    def set_return(self, q, rip: int, rflags: int) -> None:
        """Make a vCPU stopped at a syscall exit continue at ``rip`` with ``rflags``
        (the caller marks registers dirty)."""
        if self.user_stub:
            q[k.RIP] = rip
            q[k.RFLAGS] = rflags
        else:
            q[k.RCX] = rip
            q[k.R11] = rflags
            q[k.RIP] = L.STUB + guest_code.SYSCALL_RETURN

    def __repr__(self) -> str:
        return f"<Platform {self.name}>"


PVM = Platform("pvm", True)
HARDWARE = Platform("hardware", False)


def probe(vcpu: Vcpu) -> Platform:
    """Run one CPL3 `syscall` on ``vcpu`` (in user mode, LSTAR at the stub) and see
    which privilege level the stub ran at.  Leaves the vCPU's registers undefined."""
    q = vcpu.q
    q[k.RIP] = L.STUB + guest_code.PROBE
    q[k.RAX] = PROBE_NR
    q[k.RFLAGS] = 0x2
    q[k.RSP] = 0
    vcpu.mark_regs_dirty()
    r = vcpu.run()
    reason = vcpu.exit_reason
    if r < 0 or reason != k.KVM_EXIT_IO or vcpu.io_exit()[2] != L.SYS_PORT:
        what = f"error {-r}" if r < 0 else f"exit {k.EXIT_NAMES.get(reason, reason)}"
        raise KvmError(f"start-up probe of the syscall path failed ({what}): this KVM cannot run kontain guests")
    cpl = segment_field(vcpu.get_sregs(), "cs", "selector") & 3
    return PVM if cpl == 3 else HARDWARE
