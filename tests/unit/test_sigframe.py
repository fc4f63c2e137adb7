"""The x86-64 signal frame (arch/x86_64/sigframe.py) against Linux's signal_64.c and
fpu/signal.c: built into a real guest window and parsed back, every register, rflags,
the mask, the altstack and the XSAVE area round-trip; (rsp + 8) is 16-byte aligned at
the handler's entry and the XSAVE area 64-byte aligned; rt_sigreturn keeps what a frame
may not change and refuses an area XRSTOR would fault on.  Task.deliver/sigreturn run on
a real Task without a vCPU (a recorder takes the registers and the XSAVE area)."""

import struct
from types import SimpleNamespace

import pytest

from kontain.abi import signals as S
from kontain.abi.structs import FP_XSTATE_MAGIC1, FXSAVE_SW_BYTES, SIGCONTEXT_REGS, fpx_sw_bytes, sigcontext, ucontext
from kontain.arch.x86_64 import sigframe as sf
from kontain.kernel.task import Task
from kontain.kvm import abi as k

from . import test_window
from .test_window import END

mem = test_window.mem  # the fixture: a 1 GiB window whose first and last pages are backed

M64 = (1 << 64) - 1
XSIZE, XCR0 = 832, 7  # legacy area, header, AVX
MASK, RESTORER = 0x8000_0000_0000_4001, 0x401000
INFO = S.siginfo(S.SIGUSR1, S.SI_TKILL, pid=7)
SYSTEM_FLAGS = 0x3000 | 0x4000 | 0x20000 | 0x80000 | 0x100000 | 0x200000  # IOPL NT VM VIF VIP ID
XSAVE = bytearray(bytes(range(256)) * 2 + bytes(64) + b"\x5a" * 256)
XSAVE[FXSAVE_SW_BYTES:512] = bytes(512 - FXSAVE_SW_BYTES)
struct.pack_into("<QQ", XSAVE, 512, XCR0, 0)  # XSTATE_BV, XCOMP_BV (standard form)


def context(rsp=END - 64):
    regs = {r: (i + 1) * 0x0101_0101_0101_0101 | (i & 1) << 63 for i, r in enumerate(SIGCONTEXT_REGS)}
    regs["rsp"] = rsp
    return sf.Context(regs, 0x202 | 0x8D5, trapno=14, err=6, cr2=0xDEAD000)


def build(ctx, sp_top, altstack=(0, S.SS_DISABLE, 0), xsize=XSIZE):
    return sf.build(ctx, sig_mask=MASK, info=INFO, restorer=RESTORER, sp_top=sp_top, xsave=bytes(XSAVE), xsize=xsize,
                    xfeatures=XCR0, altstack=altstack)


def test_round_trip(mem):
    ctx = context()
    frame, blob = build(ctx, ctx.regs["rsp"] - sf.RED_ZONE, altstack=(0x5000, 0, 8192))
    mem.write(frame, blob)
    assert mem.read_u64(frame) == RESTORER and mem.read(frame + sf.INFO_OFFSET, 128) == INFO
    uc = mem.read(frame + sf.UC_OFFSET, sf.UC_SIZE)
    flags, link, _stack, sc, _mask = ucontext.unpack(uc)
    assert flags == sf.UC_FP_XSTATE | sf.UC_SIGCONTEXT_SS | sf.UC_STRICT_RESTORE_SS and link == 0
    v = dict(zip(sigcontext.names, sigcontext.unpack(sc)))
    assert (v["cs"], v["ss"], v["trapno"], v["err"], v["cr2"], v["oldmask"]) == (0x33, 0x2B, 14, 6, 0xDEAD000, MASK)
    r = sf.parse(uc, current_rflags=0x246)
    assert r.ctx.regs == ctx.regs and r.ctx.rflags == ctx.rflags and r.mask == MASK
    assert r.altstack == (0x5000, 0, 8192)
    assert r.fpstate == sf.frame_location(ctx.regs["rsp"] - sf.RED_ZONE, XSIZE)[1]
    area = mem.read(r.fpstate, XSIZE + sf.MAGIC2_SIZE)
    assert fpx_sw_bytes.unpack_from(area, FXSAVE_SW_BYTES)[:4] == (FP_XSTATE_MAGIC1, XSIZE + 4, XCR0, XSIZE)
    init = bytes(4096)
    assert sf.xsave_from_frame(mem.read, r.fpstate, XSIZE, XCR0, init) == bytes(XSAVE) + init[XSIZE:]


@pytest.mark.parametrize("xsize", [576, XSIZE, 2696])
def test_the_frame_is_aligned_as_the_abi_wants(xsize):
    for sp_top in range(0x10000 - 80, 0x10000):
        frame, fp = sf.frame_location(sp_top, xsize)
        assert (frame + 8) % 16 == 0 and fp % 64 == 0  # (rsp + 8) aligned at the handler's entry
        assert frame + sf.FRAME_SIZE <= fp and fp + xsize + sf.MAGIC2_SIZE <= sp_top
        assert sp_top - (fp + xsize + sf.MAGIC2_SIZE) < 64 and fp - (frame + sf.FRAME_SIZE) < 32  # no waste
    assert sf.entry_rflags(0x10000 | 0x400 | 0x100 | 0x8D5) == 0x202 | 0x8D5  # RF DF TF cleared
    avx = [(0xD, 2, 0, 256, 576, 0, 0)]  # CPUID.(EAX=0xD, ECX=2): size 256 at offset 576
    assert sf.xstate_size(avx, XCR0) == XSIZE and sf.xstate_size(avx, 3) == 576


def test_hostile_segments_and_flags_are_not_restored(mem):
    ctx = context()
    frame, blob = build(ctx, END - 256)
    uc = bytearray(blob[sf.UC_OFFSET:sf.UC_OFFSET + sf.UC_SIZE])
    sc = ucontext.offsets["uc_mcontext"]
    struct.pack_into("<QHHHH", uc, sc + sigcontext.offsets["eflags"], M64, 0x23, 0xFFFF, 0xFFFF, 0)
    r = sf.parse(bytes(uc), current_rflags=0x202)
    assert r.ctx.rflags == 0x202 | sf.FIX_EFLAGS and not r.ctx.rflags & SYSTEM_FLAGS
    assert r.ctx.regs == ctx.regs  # (CS and SS stay the monitor's: never taken from the frame)
    struct.pack_into("<Q", uc, sc + sigcontext.offsets["eflags"], 0)
    assert sf.parse(bytes(uc), current_rflags=0x202 | 0x3000).ctx.rflags == 0x202 | 0x3000  # IF, IOPL kept


def fp_area(at=None, feats=XCR0):
    area = bytearray(XSAVE) + struct.pack("<I", 0x46505845)  # FP_XSTATE_MAGIC2
    fpx_sw_bytes.pack_into(area, FXSAVE_SW_BYTES, FP_XSTATE_MAGIC1, XSIZE + 4, feats, XSIZE, *[0] * 7)
    for offset, data in (at or {}).items():
        area[offset:offset + len(data)] = data
    return bytes(area)


# XCOMP_BV (a compacted area), XSTATE_BV with a feature not in XCR0 (bit 9), reserved header bytes
@pytest.mark.parametrize("at", [{520: b"\x01"}, {513: b"\x02"}, {540: b"\x01"}])
def test_an_area_xrstor_would_fault_on_is_refused(at):
    assert from_frame(fp_area(at=at)) is None


def from_frame(area: bytes, fp: int = 0):
    """xsave_from_frame over ``area`` placed at ``fp``."""
    def read(addr, n):
        return area[addr - fp:addr - fp + n]
    return sf.xsave_from_frame(read, fp, XSIZE, XCR0, bytes(XSIZE))


@pytest.mark.parametrize("area", [fp_area({FXSAVE_SW_BYTES: bytes(4)}), fp_area({XSIZE: bytes(4)}), fp_area(feats=3)])
def test_only_fp_and_sse_when_the_software_bytes_say_so(area):
    area = from_frame(area)
    assert area is not None and area[:sf.FXSAVE_FIELDS] == XSAVE[:sf.FXSAVE_FIELDS]
    assert struct.unpack_from("<Q", area, 512)[0] == 3  # FP and SSE from the frame, the rest initial


def test_misaligned_areas_fault():
    assert from_frame(fp_area(), fp=8) is None  # FXRSTOR's 16 bytes
    assert from_frame(fp_area(), fp=16) is None  # XRSTOR's 64
    assert from_frame(fp_area({FXSAVE_SW_BYTES: bytes(4)}), fp=16) is not None  # FXRSTOR alone: 16 is enough


class Killed(Exception):
    pass


def die(sig, message, *_):
    raise Killed(sig)


def task(memory, altstack=(0, S.SS_DISABLE, 0), xsize=XSIZE):
    """A Task with what deliver and sigreturn read, and recorders for the vCPU."""
    t = Task.__new__(Task)
    t.mem, t.altstack, t.sigmask, t.saved_mask, t.q, t.loaded = memory, altstack, 0, None, [0] * 64, []
    action = (0x400000, S.SA_RESTORER | S.SA_ONSTACK, RESTORER, 0)
    # (a signal's frame that cannot be written is a SIGSEGV, Task.fault: its default action here)
    t.process = SimpleNamespace(name="p", rewriter=None, xstate_size=xsize, xcr0=XCR0, init_xsave=bytes(xsize),
                                actions=SimpleNamespace(get=lambda sig: action, handler=lambda sig: S.SIG_DFL),
                                gdb=None, describe_death=lambda sig, code, addr: "killed")
    t.vcpu = SimpleNamespace(get_xsave=lambda: bytearray(XSAVE).ljust(xsize, b"\0"),
                             set_xsave=lambda area: t.loaded.append(bytes(area)) or 0)
    t.resume = lambda ctx, full: setattr(t, "entered", ctx)
    t.die = die
    return t


def test_deliver_then_sigreturn(mem):
    t, ctx = task(mem), context()
    t.sigmask = MASK  # what the frame saves
    t.deliver(S.SIGUSR1, INFO, ctx)
    frame = t.entered.regs["rsp"]
    assert t.entered.regs["rdx"] == frame + sf.UC_OFFSET and (frame + 8) % 16 == 0
    t.q[k.RSP], t.q[k.R11] = frame + 8, 0x246  # the handler returned into the restorer
    assert t.sigreturn() == ctx.regs["rax"] - (1 << 64)
    assert t.entered.regs == ctx.regs and t.sigmask == MASK & ~S.UNBLOCKABLE
    assert t.loaded[-1][:XSIZE] == bytes(XSAVE)


@pytest.mark.parametrize("where", [END + 64, -64, "misaligned"])
def test_sigreturn_with_a_bad_fpstate_pointer_is_sigsegv(mem, where):
    t = task(mem)
    t.deliver(S.SIGUSR1, INFO, context())
    frame = t.entered.regs["rsp"]
    field = frame + sf.UC_OFFSET + ucontext.offsets["uc_mcontext"] + sigcontext.offsets["fpstate"]
    if where == "misaligned":  # a good area, at an address 16 past a 64-byte boundary
        where = END - 4096 + 16
        mem.write(where, mem.read(mem.read_u64(field), XSIZE + sf.MAGIC2_SIZE))
    mem.write_u64(field, where)
    t.q[k.RSP], t.q[k.R11] = frame + 8, 0x246
    with pytest.raises(Killed):
        t.sigreturn()


def on_altstack(mem):
    """A signal on the altstack (SA_ONSTACK), then one more while its handler runs."""
    t = task(mem, altstack=(END - 4096, 0, 4096))
    t.deliver(S.SIGUSR1, INFO, context(1 << 20))
    outer = t.entered.regs["rsp"]
    t.deliver(S.SIGUSR1, INFO, context(outer))
    return outer, t.entered.regs["rsp"]


def saved_altstack(mem, frame):
    return sf.parse(mem.read(frame + sf.UC_OFFSET, sf.UC_SIZE), 0x202).altstack


def test_sa_onstack_uses_the_altstack_and_nests_below_the_frame(mem):
    outer, inner = on_altstack(mem)
    assert outer == sf.frame_location(END, XSIZE)[0]  # from the altstack's top
    assert inner == sf.frame_location(outer - sf.RED_ZONE, XSIZE)[0]  # on it already: below, as on any stack
    assert saved_altstack(mem, outer) == (END - 4096, 0, 4096)


def test_a_nested_frame_saves_the_altstack_flags_as_set(mem):
    assert saved_altstack(mem, on_altstack(mem)[1]) == (END - 4096, 0, 4096)


@pytest.mark.parametrize("rsp", [
    2 * 4096 + 64,  # a hole in the window
    1 << 47,  # past the window
    M64 - 7,  # not a user address
    0x100,  # the frame's address wraps below 0
])
def test_a_frame_that_cannot_be_written_is_sigsegv(mem, rsp):
    with pytest.raises(Killed) as e:
        task(mem).deliver(S.SIGUSR1, INFO, context(rsp))
    assert e.value.args == (S.SIGSEGV,)


def test_a_frame_larger_than_the_altstack_is_sigsegv(mem):
    alt = END - 2048  # MINSIGSTKSZ, too small for an AVX-512 sized area
    with pytest.raises(Killed):
        task(mem, altstack=(alt, 0, 2048), xsize=2696).deliver(S.SIGUSR1, INFO, context(END - 4096 + 64))
