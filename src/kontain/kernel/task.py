"""A guest thread: one vCPU, its registers, its signal mask, and how its exits are served.

The vCPU loop (vcpu.py) reports exits; the Task decides what they mean for the program:
a syscall goes to the dispatcher, a fault becomes a signal.
"""

from __future__ import annotations

import os

from kontain.abi import signals as S
from kontain.arch.x86_64 import cpu
from kontain.errors import ProcessExit
from kontain.kernel import faults
from kontain.kvm import abi as k


class Task:
    """One guest thread.  Handlers see ``t.mem``, ``t.mm``, ``t.fds``, ``t.process``."""

    def __init__(self, process, vcpu, tid: int):
        self.process = process
        self.mem = process.mem
        self.mm = process.mm
        self.fds = process.fds
        self.vcpu = vcpu
        self.q = vcpu.q
        self.tid = tid
        self.sigmask = 0
        self.pending = 0  # signals sent to the program that it has not taken yet
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.altstack = (0, S.SS_DISABLE, 0)

    # -- registers outside the synced set (slow path) --------------------------------
    def fs_base(self) -> int:
        return cpu.sreg(self.vcpu.get_sregs(), "fs")

    def set_segment_base(self, seg: str, base: int) -> None:
        sregs = self.vcpu.get_sregs()
        cpu.set_segment_base(sregs, seg, base)
        self.vcpu.set_sregs(sregs)

    def segment_base(self, seg: str) -> int:
        return cpu.segment_field(self.vcpu.get_sregs(), seg, "base")

    @property
    def rip(self) -> int:
        return self.q[k.RIP] & 0xFFFFFFFFFFFFFFFF

    # -- signals the program sends itself ----------------------------------------------
    def signal_self(self, sig: int) -> None:
        """kill/tkill/tgkill aimed at this process or thread.  A signal is pending until
        the program unblocks it; then its disposition decides.  (Running handlers is
        not done yet: a signal with a handler stays pending.)"""
        self.pending |= 1 << (sig - 1)
        self.take_pending()

    def take_pending(self) -> None:
        """Act on pending, unblocked signals: the default action, or discard if ignored."""
        ready = self.pending & ~self.sigmask
        while ready:
            sig = (ready & -ready).bit_length()
            ready &= ready - 1
            handler = self.process.actions.handler(sig)
            action = S.default_action(sig)
            if handler == S.SIG_IGN or (handler == S.SIG_DFL and action in (S.IGNORE, S.CONT, S.STOP)):
                self.pending &= ~(1 << (sig - 1))
                if handler == S.SIG_DFL and action == S.STOP:
                    os.kill(os.getpid(), sig)  # stop km itself; SIGCONT resumes it
            elif handler == S.SIG_DFL:
                raise ProcessExit(signal=sig, message=f"{self.process.name}: killed by {S.name(sig)}",
                                  core=self.process.config.core and action == S.CORE)

    # -- exits other than syscalls (the vCPU loop's ExitHandler) ----------------------
    def on_exception(self, frame_rsp: int) -> None:
        vector, error, rip, _cs, _rflags, _rsp, _ss = self.process.sys.exception_frame(frame_rsp)
        cr2 = cpu.sreg(self.vcpu.get_sregs(), "cr2") if vector == faults.PAGE_FAULT else None
        sig, code, addr = faults.from_vector(vector, error, rip, cr2)
        if vector == 19:
            code = faults.simd_code(self._mxcsr())
        self.fault(sig, code, addr)

    def _mxcsr(self) -> int:
        return k.fpu.unpack(self.vcpu.get_fpu())[k.fpu.names.index("mxcsr")]

    def on_mmio(self, gpa: int, is_write: bool) -> None:
        """An access to guest memory without a memslot: a hole, or a write to read-only."""
        vma = self.mm.find(gpa) if 0 <= gpa < self.mem.size else None
        self.fault(S.SIGSEGV, S.SEGV_ACCERR if vma is not None else S.SEGV_MAPERR, gpa)

    def on_emulation_failure(self, suberror: int, data: list[int]) -> None:
        """KVM could not emulate an instruction: a fetch from an unmapped page, or an
        access to one by an instruction KVM's emulator does not know."""
        rip = self.rip
        if self.process.slots.lookup(rip) is None:
            self.fault(S.SIGSEGV, S.SEGV_MAPERR, rip)
        self.fault(S.SIGSEGV, S.SEGV_MAPERR, None)

    def on_host_fault(self) -> None:
        """KVM_RUN failed with EFAULT: the host could not provide a guest page (a file
        mapping past the end of its file)."""
        self.fault(S.SIGBUS, S.BUS_ADRERR, None)

    def on_interrupt(self) -> None:
        """KVM_RUN was interrupted by a host signal whose handler returned."""

    def on_bad_io(self, direction: int, size: int, port: int) -> None:
        self.fault(S.SIGSEGV, S.SI_KERNEL, 0)

    def on_shutdown(self) -> None:
        self.fault(S.SIGSEGV, S.SI_KERNEL, 0)

    def fault(self, sig: int, code: int, addr: int | None) -> None:
        """A synchronous signal from the CPU.  Until signal delivery exists, the default
        action applies even with a handler installed (see docs/known-issues.md)."""
        raise ProcessExit(signal=sig, message=self.process.describe_death(sig, code, addr),
                          core=self.process.config.core)
