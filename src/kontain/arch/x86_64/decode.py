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

Also where the instruction before a `syscall` starts, for kernel/rewrite.py.  That needs
only the decoder itself, iced-x86's extension module, which loads in about a third of
the package's import time (the rest is ~40 generated modules of constants): ``_core``
loads it alone, under its own name (a later import of the package uses it), and learns
the few constants it needs by decoding instructions whose answer is known.
"""

from __future__ import annotations

import _thread
import os
import sys

_decoder = None
_core_decoder = None


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
    return [_address(iced, ins, m, regs, fs_base, gs_base)
            for m in iced.InstructionInfoFactory().info(ins).used_memory()
            if not m.vsib_size]  # (a gather or scatter: an address per vector element)


def _address(iced, ins, m, regs: dict[str, int], fs_base: int, gs_base: int) -> int:
    """The address of ``ins``'s memory operand ``m`` (an iced UsedMemory, no VSIB)."""
    full, size = iced.RegisterExt.full_register, iced.RegisterExt.size
    names = _register_names(iced)
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
    return addr & ((1 << bits) - 1) if bits < 64 else addr & 0xFFFFFFFFFFFFFFFF


def instruction_ending_at(code: bytes, ip: int, end: int) -> int | None:
    """Where the instruction that ends at ``end`` starts, decoding ``code`` (at guest
    address ``ip``, a known instruction boundary: a function's start) forward; None when
    no instruction ends there (or no iced-x86)."""
    iced = _iced()
    if iced is None or not ip < end <= ip + len(code):
        return None
    decoder = iced.Decoder(64, code[:end - ip], ip=ip)
    ins = iced.Instruction()
    while decoder.can_decode:
        decoder.decode_out(ins)
        if ins.code == iced.Code.INVALID or ins.ip + ins.len > end:
            return None
        if ins.ip + ins.len == end:
            return ins.ip
    return None


def repeatable_store(code: bytes, ip: int, gpa: int, length: int, regs: dict[str, int], fs_base: int,
                     gs_base: int) -> bool:
    """Is ``code`` exactly one instruction (at ``ip``) that stores ``length`` bytes or more
    at ``gpa``, changes no register (RFLAGS aside, which it computes again) and does not
    branch: one that, done by KVM's emulator up to the store, runs the same again from
    ``ip`` (kernel/task.py on_mmio)."""
    iced = _iced()
    if iced is None:
        return False
    ins = iced.Decoder(64, code, ip=ip).decode()
    if ins.code == iced.Code.INVALID or ins.len != len(code) or ins.flow_control != iced.FlowControl.NEXT:
        return False
    writes = (iced.OpAccess.WRITE, iced.OpAccess.COND_WRITE, iced.OpAccess.READ_WRITE, iced.OpAccess.READ_COND_WRITE)
    info = iced.InstructionInfoFactory().info(ins)
    if any(r.access in writes for r in info.used_registers()):
        return False  # (push, string instructions, xchg: their registers moved on already)
    for m in info.used_memory():
        if m.access in writes and not m.vsib_size:
            addr, size = _address(iced, ins, m, regs, fs_base, gs_base), iced.MemorySizeExt.size(m.memory_size)
            if addr <= gpa < addr + size and length <= size:
                return True
    return False


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


class _Core:
    """iced-x86's decoder, and the values of its constants the rewriting compares with."""

    __slots__ = ("Decoder", "Instruction", "INVALID", "SYSCALL", "GS", "NEXT", "BRANCHES", "INDIRECT", "XBEGIN")

    def __init__(self, ext) -> None:
        self.Decoder, self.Instruction = ext.Decoder, ext.Instruction

        def one(code: bytes):
            return ext.Decoder(64, code, ip=0x1000).decode()

        self.INVALID = one(b"\x0f").code  # (cut short: no instruction)
        syscall, gs_load = one(b"\x0f\x05"), one(b"\x65\x8b\x00")  # syscall; mov %gs:(%rax),%eax
        self.SYSCALL, self.GS = syscall.code, gs_load.memory_segment
        self.NEXT = one(b"\x90").flow_control
        # jmp, jz, call (direct); jmp *%rax; xbegin
        jmp, jz, call, indirect, xbegin = (one(b) for b in (b"\xeb\x00", b"\x74\x00", b"\xe8\x00\x00\x00\x00",
                                                              b"\xff\xe0", b"\xc7\xf8\x00\x00\x00\x00"))
        self.BRANCHES = (jmp.flow_control, jz.flow_control, call.flow_control)
        self.INDIRECT, self.XBEGIN = indirect.flow_control, xbegin.flow_control
        known = (syscall, gs_load, jmp, jz, call, indirect, xbegin)
        flows = {self.NEXT, *self.BRANCHES, self.INDIRECT, self.XBEGIN}
        if any(i.code == self.INVALID for i in known) or len(flows) != 6 or self.GS == gs_load.memory_base:
            raise ImportError("iced-x86 decodes known instructions unexpectedly")


def _core() -> _Core | None:
    """The decoder for the rewriting (module doc); None without iced-x86.  Waits for a
    load ``load_soon`` began."""
    global _core_decoder
    if _core_decoder is None:
        with _loading:
            if _core_decoder is None:
                try:
                    _core_decoder = _Core(_extension())
                except (ImportError, OSError, AttributeError):
                    _core_decoder = False
    return _core_decoder or None


def load_soon() -> None:
    """Load the core on a thread of its own, for a program whose first site will be
    examined soon: the load (~2.5 ms, the extension's dlopen and the constants learnt)
    then overlaps the program's run instead of stalling its vCPU at that first site.
    The thread inherits its starter's signal mask and credentials, as the synchronous
    load would have had them."""
    global _load_started
    if _core_decoder is None and not _load_started:
        _load_started = True
        _thread.start_new_thread(_core, ())


def _forked() -> None:
    """In a child forked while a thread of the parent loaded the core: that thread is not
    in the child, nor is its hold of the lock."""
    global _loading
    if _loading.locked():
        _loading = _thread.allocate_lock()


_loading = _thread.allocate_lock()  # held by the load of the core (``_core``)
_load_started = False
os.register_at_fork(after_in_child=_forked)


def _extension():
    """iced-x86's extension module: the package's own if imported, else loaded alone
    from where the import system would find the package.  Through ``_imp``, the import
    system's own loader of extension modules: importlib.machinery's wrapper of it
    imported ~2 ms of modules (warnings among them) before the first site's proof."""
    name = "iced_x86._iced_x86_py"
    if name in sys.modules:
        return sys.modules[name]
    import _imp

    from kontain.lazy import package_dir

    where = package_dir("iced_x86")
    for suffix in _imp.extension_suffixes() if where is not None else ():
        path = os.path.join(where, "_iced_x86_py" + suffix)
        if os.path.isfile(path):
            module = _imp.create_dynamic(_Spec(name, path))
            sys.modules[name] = module
            _imp.exec_dynamic(module)
            return module
    raise ImportError("no iced-x86")


class _Spec:
    """What ``_imp.create_dynamic`` reads of a module spec: the name the module's init
    function is found by, and the file."""

    __slots__ = ("name", "origin")

    def __init__(self, name: str, origin: str) -> None:
        self.name, self.origin = name, origin


def _register_names(iced) -> dict[int, str]:
    r = iced.Register
    return {r.RAX: "rax", r.RBX: "rbx", r.RCX: "rcx", r.RDX: "rdx", r.RSI: "rsi", r.RDI: "rdi", r.RSP: "rsp",
            r.RBP: "rbp", r.R8: "r8", r.R9: "r9", r.R10: "r10", r.R11: "r11", r.R12: "r12", r.R13: "r13",
            r.R14: "r14", r.R15: "r15"}


def _movable(iced: _Core, ins, syscall_at: int) -> bool:
    """Does ``ins``, right before the `syscall` at ``syscall_at``, do the same wherever it
    runs (no RIP-relative operand, no GS segment, which km owns then, no control flow)?"""
    return ins.flow_control == iced.NEXT and not ins.is_ip_rel_memory_operand and \
        ins.memory_segment != iced.GS and ins.segment_prefix != iced.GS and \
        ins.ip + ins.len == syscall_at


def displaced_before_syscall(code: bytes, ip: int, syscall_at: int, least: int = 5, most: int = 17) -> int | None:
    """Where the instruction right before the `syscall` at ``syscall_at`` starts, if a
    jump may replace it: decoding ``code`` (at guest address ``ip``, a known instruction
    boundary: a function's start) forward reaches the `syscall` at an instruction
    boundary, and the instruction before it is one of ``least`` to ``most`` bytes that
    does the same wherever it runs (no RIP-relative operand, no GS segment, which km
    owns then, no control flow).  A single instruction: no other instruction boundary
    lies under the jump, so no branch, return address or signal frame can point inside
    it.  None when that cannot be proven (or no iced-x86).  kernel/rewrite.py copies the
    instruction into the site's trampoline and jumps there instead."""
    iced = _core()
    if iced is None or not ip <= syscall_at < ip + len(code) - 1:
        return None
    decoder = iced.Decoder(64, code[:syscall_at - ip + 2], ip=ip)
    ins = iced.Instruction()
    last = None  # (start, displaceable) of the instruction before the current one
    while decoder.can_decode:
        decoder.decode_out(ins)
        if ins.code == iced.INVALID or ins.ip > syscall_at:
            return None
        if ins.ip == syscall_at:
            if ins.code != iced.SYSCALL or last is None or not last[1]:
                return None
            return last[0] if least <= syscall_at - last[0] <= most else None
        last = (ins.ip, _movable(iced, ins, syscall_at))
    return None


def covered_with_syscall(code: bytes, ip: int, syscall_at: int, least: int = 3, most: int = 4) -> int | None:
    """Where the instruction right before the `syscall` at ``syscall_at`` starts, if a
    5-byte jump may cover it and the `syscall` both: ``code`` is the whole function (at
    guest address ``ip``: its start, a known instruction boundary, to its end), decoding
    it reaches the `syscall` at an instruction boundary, the instruction before it is one
    of ``least`` to ``most`` bytes that does the same wherever it runs, and nothing in
    the function can land on the `syscall` itself, the one boundary the jump covers: no
    direct branch or call targets it, and the function has no indirect jump (a jump
    table could) and no transaction (XBEGIN's abort address).  A return address cannot be
    there (the instruction before is no call).  What the decoding cannot see, a thread
    or a signal frame at that boundary, kernel/rewrite.py rules out itself.  None when
    not proven (or no iced-x86)."""
    iced = _core()
    if iced is None or not ip <= syscall_at < ip + len(code) - 1:
        return None
    branches = iced.BRANCHES
    decoder = iced.Decoder(64, code, ip=ip)
    ins = iced.Instruction()
    last = None  # (start, movable) of the instruction before the current one
    site = None
    while decoder.can_decode:
        decoder.decode_out(ins)
        if ins.code == iced.INVALID or ins.ip < syscall_at < ins.ip + ins.len:
            return None
        flow = ins.flow_control
        if flow == iced.INDIRECT or flow == iced.XBEGIN:
            return None
        if flow in branches and ins.near_branch_target == syscall_at:
            return None
        if ins.ip == syscall_at:
            if ins.code != iced.SYSCALL or last is None or not last[1] or \
                    not least <= syscall_at - last[0] <= most:
                return None
            site = last[0]
        last = (ins.ip, _movable(iced, ins, syscall_at))
    return site
