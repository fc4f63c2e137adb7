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
    """(frame address, fpstate address) below ``sp_top``."""
    fp = (sp_top - (xsize + MAGIC2_SIZE)) & ~63
    frame = ((fp - FRAME_SIZE + 8) & ~15) - 8
    return frame, fp


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


def xsave_from_frame(legacy_and_more: bytes, xsize: int, supported: int) -> bytes | None:
    """The XSAVE area to load from a frame's fpstate bytes (``xsize`` + magic2 long), or
    None when the software bytes or the header are not what delivery wrote (a frame the
    program corrupted: Linux then kills it with SIGSEGV)."""
    magic1, extended, feats, size, *_pad = fpx_sw_bytes.unpack_from(legacy_and_more, FXSAVE_SW_BYTES)
    if magic1 != FP_XSTATE_MAGIC1 or size != xsize or extended != xsize + MAGIC2_SIZE:
        return None
    if struct.unpack_from("<I", legacy_and_more, xsize)[0] != FP_XSTATE_MAGIC2:
        return None
    area = bytearray(legacy_and_more[:xsize])
    xstate_bv, xcomp_bv = struct.unpack_from("<QQ", area, XSAVE_HEADER)
    if xcomp_bv or xstate_bv & ~supported or any(area[XSAVE_HEADER + 16:XSAVE_HEADER + 64]):
        return None
    area[FXSAVE_SW_BYTES:LEGACY_SIZE] = bytes(LEGACY_SIZE - FXSAVE_SW_BYTES)
    return bytes(area)
