"""What a CPU exception or a stray memory access means for the program: which signal,
which si_code, which si_addr (as Linux's traps.c and fault.c decide)."""

from __future__ import annotations

from kontain.abi import signals as S

# vector -> (signal, si_code, address is RIP?)
_VECTORS = {
    0: (S.SIGFPE, S.FPE_INTDIV, True),  # divide error
    1: (S.SIGTRAP, S.TRAP_TRACE, True),  # debug (TF)
    3: (S.SIGTRAP, S.SI_KERNEL, False),  # int3
    4: (S.SIGSEGV, S.SI_KERNEL, False),  # into
    5: (S.SIGSEGV, S.SI_KERNEL, False),  # bound
    6: (S.SIGILL, S.ILL_ILLOPN, True),  # invalid opcode
    7: (S.SIGSEGV, S.SI_KERNEL, False),
    8: (S.SIGSEGV, S.SI_KERNEL, False),  # double fault
    10: (S.SIGSEGV, S.SI_KERNEL, False),
    11: (S.SIGBUS, S.SI_KERNEL, False),  # segment not present
    12: (S.SIGBUS, S.SI_KERNEL, False),  # stack segment
    13: (S.SIGSEGV, S.SI_KERNEL, False),  # general protection
    16: (S.SIGFPE, S.FPE_FLTINV, True),  # x87
    17: (S.SIGBUS, S.BUS_ADRALN, False),  # alignment check
    18: (S.SIGBUS, S.SI_KERNEL, False),  # machine check
    19: (S.SIGFPE, S.FPE_FLTINV, True),  # SIMD floating point
}
PAGE_FAULT = 14
PF_PRESENT = 1

# MXCSR exception flags (bits 0..5) -> si_code, in Linux's order of precedence
_MXCSR_CODES = ((0x01, S.FPE_FLTINV), (0x04, S.FPE_FLTDIV), (0x08, S.FPE_FLTOVF), (0x10, S.FPE_FLTUND),
                (0x20, S.FPE_FLTRES), (0x02, S.FPE_FLTINV))


def from_vector(vector: int, error: int, rip: int, cr2: int | None = None) -> tuple[int, int, int | None]:
    """(signal, si_code, si_addr) for an exception the program raised."""
    if vector == PAGE_FAULT:
        return S.SIGSEGV, (S.SEGV_ACCERR if error & PF_PRESENT else S.SEGV_MAPERR), cr2
    sig, code, at_rip = _VECTORS.get(vector, (S.SIGSEGV, S.SI_KERNEL, False))
    if vector == 3:
        return sig, code, rip - 1  # int3 reports the instruction after it
    return sig, code, rip if at_rip else (0 if sig == S.SIGSEGV else None)


def simd_code(mxcsr: int) -> int:
    """si_code of a #XM from the unmasked exception flags in MXCSR."""
    pending = mxcsr & 0x3F & ~((mxcsr >> 7) & 0x3F)
    for bit, code in _MXCSR_CODES:
        if pending & bit:
            return code
    return S.FPE_FLTINV
