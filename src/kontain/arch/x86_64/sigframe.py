"""Linux's x86-64 signal frame (arch/x86/kernel/signal_64.c): built for delivery, read
back by rt_sigreturn.

From the top of the stack down (the red zone skipped, or the top of the sigaltstack):

    fpstate      the XSAVE area, 64-byte aligned, software bytes in the fxsave part
                 (FP_XSTATE_MAGIC1, sizes, features) and FP_XSTATE_MAGIC2 after it
    rt_sigframe  pretcode (sa_restorer), struct ucontext, struct siginfo;
                 (frame + 8) is 16-byte aligned, as at a function's entry

A handler is entered with RDI = signal, RSI = &info, RDX = &uc, RSP = frame, RIP =
handler, and TF, DF, RF cleared.  Everything here is pure data transformation; the
kernel layer reads registers and writes guest memory.
"""

from __future__ import annotations

import struct

from kontain.abi.structs import (
    FP_XSTATE_MAGIC1,
    FP_XSTATE_MAGIC2,
    FXSAVE_SW_BYTES,
    SIGCONTEXT_REGS,
    SIGINFO_SIZE,
    fpx_sw_bytes,
    sigcontext,
    stack_t,
    ucontext,
)
from kontain.arch.x86_64 import layout as L

UC_SIZE = ucontext.size
RED_ZONE = 128
FRAME_SIZE = 8 + ucontext.size + SIGINFO_SIZE  # pretcode, uc, info
UC_OFFSET = 8
INFO_OFFSET = 8 + ucontext.size
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 1, 2, 4
XSAVE_HEADER = 512  # the XSAVE header follows the 512-byte legacy area
LEGACY_SIZE = 512
MAGIC2_SIZE = 4

# RFLAGS bits a handler and rt_sigreturn may change (Linux's FIX_EFLAGS), and the ones a
# handler starts with cleared.
FIX_EFLAGS = 0x50DD5  # AC OF DF TF SF ZF AF PF CF RF
ENTRY_CLEAR = 0x10000 | 0x400 | 0x100  # RF DF TF
RFLAGS_FIXED = 0x202  # IF and the always-one bit


class Context:
    """A user-mode register context: the 17 registers of struct sigcontext's order plus
    rflags, and what a fault adds (trap number, error code, CR2)."""

    __slots__ = ("regs", "rflags", "trapno", "err", "cr2")

    def __init__(self, regs: dict[str, int], rflags: int, trapno: int = 0, err: int = 0, cr2: int = 0):
        self.regs = regs  # names from SIGCONTEXT_REGS
        self.rflags = rflags
        self.trapno, self.err, self.cr2 = trapno, err, cr2


def xstate_size(cpuid: list[tuple[int, ...]], xcr0: int) -> int:
    """Size of the XSAVE area for the enabled features (CPUID leaf 0xD sub-leaves)."""
    size = LEGACY_SIZE + 64
    for e in cpuid:
        if e[0] == 0xD and 2 <= e[1] < 63 and xcr0 >> e[1] & 1:
            size = max(size, e[4] + e[3])  # offset + size
    return size


def frame_location(sp_top: int, xsize: int) -> tuple[int, int]:
    """(frame address, fpstate address) below ``sp_top``, as Linux's unsigned arithmetic
    has them (a stack pointer near 0 wraps to an address no copy reaches: SIGSEGV)."""
    fp = ((sp_top - (xsize + MAGIC2_SIZE)) & ~63) & _M64
    frame = (((fp - FRAME_SIZE + 8) & ~15) - 8) & _M64
    return frame, fp


_M64 = (1 << 64) - 1


def build(ctx: Context, *, sig_mask: int, info: bytes, restorer: int, sp_top: int, xsave: bytes, xsize: int,
          xfeatures: int, altstack: tuple[int, int, int]) -> tuple[int, bytes]:
    """(frame address, bytes to write there) for delivering a signal in context ``ctx``."""
    frame, fp = frame_location(sp_top, xsize)
    sc = sigcontext.pack(*(ctx.regs[r] & 0xFFFFFFFFFFFFFFFF for r in SIGCONTEXT_REGS), ctx.rflags,
                         L.USER_CS, 0, 0, L.USER_DS, ctx.err, ctx.trapno, sig_mask & 0xFFFFFFFFFFFFFFFF, ctx.cr2, fp,
                         *([0] * 8))
    uc = ucontext.pack(UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, 0, stack_t.pack(*altstack), sc, sig_mask)
    area = bytearray(xsave[:xsize].ljust(xsize, b"\0"))
    fpx_sw_bytes.pack_into(area, FXSAVE_SW_BYTES, FP_XSTATE_MAGIC1, xsize + MAGIC2_SIZE, xfeatures, xsize, *([0] * 7))
    head = struct.pack("<Q", restorer) + uc + info.ljust(SIGINFO_SIZE, b"\0")[:SIGINFO_SIZE]
    blob = head + bytes(fp - frame - len(head)) + bytes(area) + struct.pack("<I", FP_XSTATE_MAGIC2)
    return frame, blob


def entry_rflags(rflags: int) -> int:
    return (rflags & ~ENTRY_CLEAR) | RFLAGS_FIXED


class Restored:
    """What rt_sigreturn takes from a frame."""

    __slots__ = ("ctx", "mask", "altstack", "fpstate")

    def __init__(self, ctx: Context, mask: int, altstack: tuple[int, int, int], fpstate: int):
        self.ctx, self.mask, self.altstack, self.fpstate = ctx, mask, altstack, fpstate


def parse(uc_bytes: bytes, current_rflags: int) -> Restored:
    """The ucontext of a frame (read at frame + UC_OFFSET)."""
    _flags, _link, stack, sc, mask = ucontext.unpack(uc_bytes)
    v = sigcontext.unpack(sc)
    regs = dict(zip(SIGCONTEXT_REGS, v[:17]))
    rflags = (current_rflags & ~FIX_EFLAGS) | (v[17] & FIX_EFLAGS) | RFLAGS_FIXED
    fpstate = v[sigcontext.names.index("fpstate")]  # (reserved1, the only array, comes after it)
    return Restored(Context(regs, rflags), mask, stack_t.unpack(stack), fpstate)


def xsave_from_frame(read, fp: int, xsize: int, xcr0: int, init: bytes) -> bytes | None:
    """The XSAVE area rt_sigreturn loads from the fpstate at ``fp`` (``read(addr, n)``
    reads the program's memory, raising GuestError where it cannot), as Linux's
    fpu__restore_sig does it: None where XRSTOR or FXRSTOR would fault (the program
    then dies of SIGSEGV).  The software bytes choose: when they are not what delivery
    writes (magic1, sizes, magic2 at the end), only the FP and SSE registers come from
    the frame (FXRSTOR); otherwise the features they name (``xfeatures``) do, as XRSTOR
    with that mask.  Every other feature starts again from its initial state."""
    if fp % 16:
        return None  # FXRSTOR's alignment (XRSTOR's, 64, below)
    legacy = read(fp, LEGACY_SIZE)
    magic1, extended, feats, size, *_pad = fpx_sw_bytes.unpack_from(legacy, FXSAVE_SW_BYTES)
    full = magic1 == FP_XSTATE_MAGIC1 and LEGACY_SIZE + 64 <= size <= min(xsize, extended)
    if full:
        full = struct.unpack("<I", read(fp + size, MAGIC2_SIZE))[0] == FP_XSTATE_MAGIC2
    area = bytearray(init)
    if not full:
        area[:FXSAVE_FIELDS] = legacy[:FXSAVE_FIELDS]
        struct.pack_into("<Q", area, XSAVE_HEADER, _FPSSE)  # (XSTATE_BV: x87 and SSE loaded)
        return bytes(area)
    if fp % 64:
        return None
    data = read(fp, xsize)
    xstate_bv, xcomp_bv = struct.unpack_from("<QQ", data, XSAVE_HEADER)
    if xcomp_bv or xstate_bv & ~xcr0 or any(data[XSAVE_HEADER + 16:XSAVE_HEADER + 64]):
        return None  # XRSTOR's #GP: a compacted or reserved header, a feature XCR0 lacks
    area[:xsize] = data
    area[FXSAVE_SW_BYTES:LEGACY_SIZE] = bytes(LEGACY_SIZE - FXSAVE_SW_BYTES)
    struct.pack_into("<Q", area, XSAVE_HEADER, xstate_bv & feats & xcr0)  # the rest: initial
    return bytes(area)


FXSAVE_FIELDS = 416  # what FXRSTOR loads: the x87 state, MXCSR and XMM0-15
_FPSSE = 3
