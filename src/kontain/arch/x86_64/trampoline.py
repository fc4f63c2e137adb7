"""The machine code of one rewritten syscall site's trampoline (kernel/rewrite.py).

A site is the one instruction right before a `syscall` (5 to 17 bytes; most often
``mov $nr,%eax``, b8 imm32, or glibc's ``mov 0x8(%rsp),%r9`` in syscall()): its first 5
bytes become ``jmp rel32`` to a trampoline that runs that instruction, then does what
`syscall` would have done on the way into km's stub, without the instruction itself:

    <the site's instruction>      position-independent (decode.displaced_before_syscall)
    mov    %rax,%r11              the number, kept
    lahf                          AH = SF ZF AF PF CF (flags unchanged)
    seto   %al                    AL = OF
    movzbl %ah,%ecx
    movzbl %al,%eax
    rorx   $21,%eax,%eax          OF to bit 11 (BMI2: no flags changed)
    lea    0x200(%rcx,%rax),%ecx  + IF (bit 1 came with lahf)
    mov    %r11,%rax              the number back
    mov    %rcx,%r11              R11 = RFLAGS, as `syscall` leaves it (DF, AC, TF: 0)
    lea    ret(%rip),%rcx         RCX = the return address (after the `syscall`)
    jmp    *%gs:GS_ENTRY          this vCPU's stub (layout.GS_ENTRY)

No instruction of km's changes the flags or touches memory but the GS-relative load (no
stack: nothing is written below RSP, so Go's small stacks and the red zone are safe),
and they clobber only RAX's upper bits meanwhile, RCX and R11, which `syscall` clobbers
too.  So a thread stopped inside may be moved (``resume_point``): before the site's
instruction back to the site, after it to the `syscall` itself, with RAX the number.
A short site (kernel/rewrite.py: a 3-4 byte instruction, its jump covers the `syscall`
too) has no `syscall` left to go to: the code from ``mov %rax,%r11`` on is its entry,
which does what that `syscall` did.
"""

from __future__ import annotations

import struct

from kontain.arch.x86_64 import layout as L

SIZE = 64  # bytes per trampoline
MOST = 17  # the longest site instruction that fits
JMP = 0xE9

_SAVE = bytes.fromhex("4989c3")  # mov %rax,%r11
_FLAGS = bytes.fromhex("9f0f90c00fb6cc0fb6c0c4e37bf0c0158d8c0100020000")
_TAIL = bytes.fromhex("4c89d84989cb")  # mov %r11,%rax; mov %rcx,%r11
_LEA = bytes.fromhex("488d0d")  # lea rel32(%rip),%rcx
_JMP_GS = bytes.fromhex("65ff2425")  # jmp *%gs:disp32
_REST = len(_SAVE) + len(_FLAGS) + len(_TAIL) + len(_LEA) + 4 + len(_JMP_GS) + 4
assert MOST + _REST <= SIZE


def code(at: int, insn: bytes, syscall_at: int) -> bytes:
    """The trampoline at guest address ``at`` for the site instruction ``insn`` (its
    bytes) followed by the `syscall` at ``syscall_at``."""
    lea_end = at + len(insn) + len(_SAVE) + len(_FLAGS) + len(_TAIL) + len(_LEA) + 4
    rel = syscall_at + 2 - lea_end
    if not -(1 << 31) <= rel < 1 << 31 or len(insn) > MOST:
        raise ValueError("trampoline out of reach of its site")
    out = insn + _SAVE + _FLAGS + _TAIL + _LEA + struct.pack("<i", rel) + _JMP_GS + struct.pack("<i", L.GS_ENTRY)
    return out + b"\xcc" * (SIZE - len(out))


def jump(site: int, at: int) -> bytes | None:
    """``jmp rel32`` at ``site`` to ``at``; None when out of reach."""
    rel = at - (site + 5)
    if not -(1 << 31) <= rel < 1 << 31:
        return None
    return bytes([JMP]) + struct.pack("<i", rel)


def reaches(site: int, at: int) -> bool:
    """Can a site at ``site`` use a trampoline at ``at`` (its jump there, the
    trampoline's lea back)?"""
    return jump(site, at) is not None and abs(site - at) < (1 << 31) - 2 * SIZE


def resume_point(off: int, insn_len: int) -> tuple[str, bool] | None:
    """Where a thread stopped ``off`` bytes into a trampoline resumes as if it had never
    left the program's code: ("site", _) before the site's instruction ran, ("syscall",
    restore) after it (``restore``: RAX is in R11 at that moment); None past the end."""
    if off == 0:
        return "site", False
    saved = insn_len + len(_SAVE)  # from here RAX is clobbered, the number in R11 ...
    back = saved + len(_FLAGS) + 3  # ... until `mov %r11,%rax` has run
    if off < insn_len:
        return None  # (not an instruction boundary: a single instruction)
    if off < insn_len + _REST:
        return "syscall", saved <= off < back
    return None
