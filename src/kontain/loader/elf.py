"""ELF64 parsing and validation: pure functions of the file's bytes, no guest involved.

Everything a hostile file can say is checked here before a byte of it is mapped:
class, byte order, machine, type, program header table bounds, PT_LOAD segments (sizes,
alignment, order, overlap, file bounds, placement inside the guest window), the entry
point, and PT_INTERP.  A failure is an :class:`ElfError` whose message is the one line
``km`` prints.
"""

from __future__ import annotations

import struct

ELF_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB = 1
ET_REL, ET_EXEC, ET_DYN, ET_CORE = 1, 2, 3, 4
EM_386, EM_X86_64, EM_AARCH64 = 3, 62, 183
PT_NULL, PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE, PT_PHDR, PT_TLS = 0, 1, 2, 3, 4, 6, 7
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4
PAGE = 0x1000
MAX_PHNUM = 65536 // 56  # Linux's limit on the program header table size

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_MACHINES = {EM_386: "i386", 8: "MIPS", 20: "PowerPC", 21: "PowerPC64", 22: "s390", 40: "ARM",
             EM_AARCH64: "AArch64", 243: "RISC-V", 258: "LoongArch"}
_TYPES = {ET_REL: "a relocatable object (.o)", ET_CORE: "a core dump"}


class ElfError(Exception):
    """The file cannot be executed; str() is the reason, for ``km: PROGRAM: <reason>``."""


class Segment:
    """One PT_LOAD."""

    __slots__ = ("vaddr", "memsz", "offset", "filesz", "flags")

    def __init__(self, vaddr: int, memsz: int, offset: int, filesz: int, flags: int):
        self.vaddr, self.memsz, self.offset, self.filesz, self.flags = vaddr, memsz, offset, filesz, flags

    @property
    def prot(self) -> int:
        return (1 if self.flags & PF_R else 0) | (2 if self.flags & PF_W else 0) | (4 if self.flags & PF_X else 0)


class ElfImage:
    """What the loader needs of a validated executable."""

    __slots__ = ("type", "entry", "phoff", "phnum", "segments", "interp", "phdr_vaddr")

    def __init__(self, type: int, entry: int, phoff: int, phnum: int, segments: list[Segment],
                 interp: str | None, phdr_vaddr: int | None):
        self.type, self.entry, self.phoff, self.phnum = type, entry, phoff, phnum
        self.segments = segments
        self.interp = interp
        self.phdr_vaddr = phdr_vaddr  # from PT_PHDR, or the loaded copy of the table

    @property
    def lo(self) -> int:
        return self.segments[0].vaddr & ~(PAGE - 1)

    @property
    def hi(self) -> int:
        s = self.segments[-1]
        return s.vaddr + s.memsz

    @property
    def span(self) -> int:
        return self.hi - self.lo


def parse(data: bytes, file_size: int | None = None, *, window: int = 1 << 39) -> ElfImage:
    """Validate an x86-64 ELF executable from its first bytes (at least the headers).

    ``data`` holds the beginning of the file (the ELF header, program headers and the
    PT_INTERP string must be inside it); ``file_size`` is the whole file's size.
    ``window`` is the guest address space an ET_EXEC file must fit in.
    """
    size = len(data) if file_size is None else file_size
    if len(data) < 4 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF executable")
    if len(data) < 6:
        raise ElfError("truncated ELF header")
    if data[4] == ELFCLASS32:
        raise ElfError("32-bit programs are not supported (x86-64 only)")
    if data[4] != ELFCLASS64:
        raise ElfError(f"unknown ELF class {data[4]}")
    if data[5] != ELFDATA2LSB:
        raise ElfError("big-endian ELF file: built for another architecture")
    if len(data) < _EHDR.size:
        raise ElfError("truncated ELF header")
    (_ident, e_type, e_machine, _version, e_entry, e_phoff, _shoff, _flags, _ehsize, e_phentsize, e_phnum,
     _shentsize, _shnum, _shstrndx) = _EHDR.unpack_from(data)
    if e_machine != EM_X86_64:
        arch = _MACHINES.get(e_machine, f"machine {e_machine}")
        raise ElfError(f"built for {arch}, not x86-64")
    if e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(f"not an executable: it is {_TYPES.get(e_type, f'ELF type {e_type}')}")
    if e_phentsize != _PHDR.size:
        raise ElfError(f"bad program header size {e_phentsize}")
    if e_phnum == 0 or e_phnum > MAX_PHNUM:
        raise ElfError(f"bad number of program headers ({e_phnum})")
    end = e_phoff + e_phnum * _PHDR.size
    if end > size:
        raise ElfError("truncated: program headers run past the end of the file")
    if end > len(data):
        raise ElfError("program headers are too far into the file")

    segments: list[Segment] = []
    interp = None
    phdr_vaddr = None
    for i in range(e_phnum):
        p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_align = _PHDR.unpack_from(data, e_phoff + i * _PHDR.size)
        if p_type == PT_LOAD:
            if p_memsz == 0:
                continue
            if p_filesz > p_memsz:
                raise ElfError(f"segment {i}: file size larger than memory size")
            if p_offset + p_filesz > size or p_offset + p_filesz < p_offset:
                raise ElfError(f"truncated: segment {i} runs past the end of the file")
            if (p_vaddr - p_offset) % PAGE:
                raise ElfError(f"segment {i}: address and file offset are not congruent modulo the page size")
            if p_vaddr + p_memsz >= 1 << 47 or p_memsz >= window:
                raise ElfError(f"segment {i}: absurd address or size ({p_vaddr:#x} + {p_memsz:#x})")
            if segments and p_vaddr < segments[-1].vaddr + segments[-1].memsz:
                raise ElfError(f"segment {i} overlaps or precedes the previous one")
            segments.append(Segment(p_vaddr, p_memsz, p_offset, p_filesz, p_flags))
        elif p_type == PT_INTERP:
            if interp is not None:
                raise ElfError("more than one PT_INTERP")
            if p_filesz == 0 or p_filesz > 4096 or p_offset + p_filesz > min(size, len(data)):
                raise ElfError("bad PT_INTERP")
            raw = data[p_offset:p_offset + p_filesz]
            nul = raw.find(b"\0")
            if nul <= 0:
                raise ElfError("bad PT_INTERP (no NUL-terminated path)")
            interp = raw[:nul].decode("utf-8", "surrogateescape")
        elif p_type == PT_PHDR:
            phdr_vaddr = p_vaddr
    if not segments:
        raise ElfError("no loadable segments")
    lo = segments[0].vaddr & ~(PAGE - 1)
    hi = segments[-1].vaddr + segments[-1].memsz
    if hi - lo > window:
        raise ElfError(f"needs {(hi - lo) >> 20} MiB of address space, more than the guest has")
    if e_type == ET_EXEC and (lo < PAGE * 16 or hi > window):
        raise ElfError(f"segments at {lo:#x}-{hi:#x} lie outside the guest's address space (0x10000-{window:#x})")
    if not any(s.vaddr <= e_entry < s.vaddr + s.memsz and s.flags & PF_X for s in segments):
        raise ElfError(f"entry point {e_entry:#x} is not in an executable segment")
    if phdr_vaddr is None:
        for s in segments:
            if s.offset <= e_phoff and e_phoff + e_phnum * _PHDR.size <= s.offset + s.filesz:
                phdr_vaddr = s.vaddr + (e_phoff - s.offset)
                break
    return ElfImage(e_type, e_entry, e_phoff, e_phnum, segments, interp, phdr_vaddr)
