"""A tiny ELF64 writer for tests: a valid minimal executable, and ways to break it."""

from __future__ import annotations

import struct

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
BASE = 0x400000
# mov $60, %eax ; mov $42, %edi ; syscall   (exit(42))
EXIT42 = bytes.fromhex("b83c000000bf2a0000000f05")


def elf(*, cls: int = 2, data: int = 1, machine: int = 62, etype: int = 2, entry: int | None = None,
        phentsize: int = 56, phnum: int | None = None, phoff: int = 64, segments: list[dict] | None = None,
        code: bytes = EXIT42, extra_phdrs: list[tuple] = ()) -> bytes:
    """An executable whose one PT_LOAD maps the whole file at BASE; the code follows the
    headers.  Keyword arguments override single fields to make it hostile."""
    nph = 1 + len(extra_phdrs)
    header_size = 64 + 56 * nph
    code_off = header_size
    total = max(code_off + len(code), 0x200)
    if segments is None:
        segments = [dict(type=1, flags=5, offset=0, vaddr=BASE, filesz=total, memsz=total, align=0x1000)]
    if entry is None:
        entry = BASE + code_off
    ident = b"\x7fELF" + bytes([cls, data, 1, 0]) + bytes(8)
    ph = b""
    for s in segments:
        ph += PHDR.pack(s["type"], s["flags"], s["offset"], s["vaddr"], s["vaddr"], s["filesz"], s["memsz"], s["align"])
    for p in extra_phdrs:
        ph += PHDR.pack(*p)
    hdr = EHDR.pack(ident, etype, machine, 1, entry, phoff, 0, 0, 64, phentsize,
                    len(segments) + len(extra_phdrs) if phnum is None else phnum, 64, 0, 0)
    blob = hdr + ph
    blob = blob.ljust(code_off, b"\0") + code
    return blob.ljust(0x200, b"\0")
