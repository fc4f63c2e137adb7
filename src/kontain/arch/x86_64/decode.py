"""What memory an instruction touches, decoded with iced-x86: for the faults KVM reports
without an address.

KVM_RUN fails with EFAULT, and no KVM_EXIT_MEMORY_FAULT on this KVM, when the host
cannot give a guest page (a file mapping past the end of its file).  Linux's SIGBUS
then carries the address of the access; km finds it by decoding the instruction at RIP
and computing each memory operand's address from the registers, the implicit ones too
(push, call, string instructions).

iced-x86 costs 15-25 ms to import, so it is imported here, at the first such fault,
and never by ``lazy.preload``: a program that has changed its root since cannot import
it, and its SIGBUS then has no address (si_addr 0), as when the package is missing.
"""

from __future__ import annotations

_decoder = None


def memory_operands(code: bytes, rip: int, regs: dict[str, int], fs_base: int, gs_base: int) -> list[int]:
    """The addresses of the memory the instruction at ``rip`` (its bytes ``code``)
    accesses, in the order the decoder lists them; [] when it cannot tell (no iced-x86,
    an undecodable instruction, a gather's vector index)."""
    iced = _iced()
    if iced is None:
        return []
    decoder = iced.Decoder(64, code, ip=rip)
    ins = decoder.decode()
    if ins.code == iced.Code.INVALID:
        return []
    full, size = iced.RegisterExt.full_register, iced.RegisterExt.size
    names = _register_names(iced)
    out = []
    for m in iced.InstructionInfoFactory().info(ins).used_memory():
        if m.vsib_size:
            continue  # (a gather or scatter: an address per vector element)
        if m.base in (iced.Register.RIP, iced.Register.EIP):
            addr = ins.ip_rel_memory_address
        else:
            addr = m.displacement_i64
            for reg, scale in ((m.base, 1), (m.index, m.scale)):
                if reg != iced.Register.NONE:
                    value = regs.get(names.get(full(reg), ""), 0)
                    addr += (value & ((1 << 8 * size(reg)) - 1)) * scale
        if m.segment == iced.Register.FS:
            addr += fs_base
        elif m.segment == iced.Register.GS:
            addr += gs_base
        bits = 64 if m.address_size == iced.CodeSize.CODE64 else 32 if m.address_size == iced.CodeSize.CODE32 else 16
        out.append(addr & ((1 << bits) - 1) if bits < 64 else addr & 0xFFFFFFFFFFFFFFFF)
    return out


def _iced():
    global _decoder
    if _decoder is None:
        try:
            import iced_x86
        except ImportError:
            _decoder = False
        else:
            _decoder = iced_x86
    return _decoder or None


def _register_names(iced) -> dict[int, str]:
    r = iced.Register
    return {r.RAX: "rax", r.RBX: "rbx", r.RCX: "rcx", r.RDX: "rdx", r.RSI: "rsi", r.RDI: "rdi", r.RSP: "rsp",
            r.RBP: "rbp", r.R8: "r8", r.R9: "r9", r.R10: "r10", r.R11: "r11", r.R12: "r12", r.R13: "r13",
            r.R14: "r14", r.R15: "r15"}
