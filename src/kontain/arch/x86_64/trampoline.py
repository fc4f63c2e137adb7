"""The machine code of one rewritten syscall site's trampoline (kernel/rewrite.py).

A site ``mov $nr,%eax; syscall`` (b8 imm32 0f 05) gets its `mov` replaced by
``jmp rel32`` (e9 rel32, the same 5 bytes) to a trampoline that does what `syscall`
would have done on the way into km's stub, without the instruction itself:

    lahf                          AH = SF ZF AF PF CF (flags unchanged)
    seto   %al                    AL = OF
    movzbl %ah,%ecx
    movzbl %al,%eax
    rorx   $21,%eax,%eax          OF to bit 11 (BMI2: no flags changed)
    lea    0x200(%rcx,%rax),%ecx  + IF (bit 1 came with lahf)
    mov    %rcx,%r11              R11 = RFLAGS, as `syscall` leaves it (DF, AC, TF: 0)
    mov    $nr,%eax               the site's own `mov`
    lea    site+7(%rip),%rcx      RCX = the return address, as `syscall` leaves it
    jmp    *%gs:GS_ENTRY          this vCPU's stub (layout.GS_ENTRY)

No instruction changes the flags, none touches memory but the GS-relative load (no
stack: nothing is written below RSP, Go's small stacks and the red zone are safe), and
it clobbers only RAX, RCX and R11, which `syscall` clobbers too.  So a thread stopped
anywhere inside may be moved back to the site (``settle``): at that point RAX is about to
be set and RCX and R11 are dead.
"""

from __future__ import annotations

import struct

from kontain.arch.x86_64 import layout as L

SIZE = 64  # bytes per trampoline (46 used)
SITE_LEN = 7  # mov (5) + syscall (2)
JMP = 0xE9

_HEAD = bytes.fromhex("9f0f90c00fb6cc0fb6c0c4e37bf0c0158d8c010002000049 89cb".replace(" ", ""))
_MOV_AT = len(_HEAD)  # b8 imm32
_LEA_AT = _MOV_AT + 5  # 48 8d 0d rel32
_JMP_AT = _LEA_AT + 7  # 65 ff 24 25 disp32
USED = _JMP_AT + 8


def code(at: int, site: int, nr: int) -> bytes:
    """The trampoline at guest address ``at`` for the site at ``site`` (its `mov`)."""
    ret = site + SITE_LEN
    rel = ret - (at + _JMP_AT)
    if not -(1 << 31) <= rel < 1 << 31:
        raise ValueError("trampoline out of reach of its site")
    out = _HEAD + b"\xb8" + struct.pack("<I", nr) + b"\x48\x8d\x0d" + struct.pack("<i", rel) + \
        b"\x65\xff\x24\x25" + struct.pack("<i", L.GS_ENTRY)
    return out + b"\xcc" * (SIZE - len(out))


def jump(site: int, at: int) -> bytes | None:
    """``jmp rel32`` at ``site`` to ``at``; None when out of reach."""
    rel = at - (site + 5)
    if not -(1 << 31) <= rel < 1 << 31:
        return None
    return bytes([JMP]) + struct.pack("<i", rel)


def reaches(site: int, at: int) -> bool:
    return jump(site, at) is not None and -(1 << 31) <= site + SITE_LEN - (at + _JMP_AT) < 1 << 31
