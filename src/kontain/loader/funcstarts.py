"""Where functions start in an ELF file: known instruction boundaries for the syscall-site
rewriter (kernel/rewrite.py), which decodes forward from one to prove that the bytes it
patches are whole instructions.

Sources, from the file itself (never from guest memory, which the program can change):

* ``.symtab`` and ``.dynsym`` STT_FUNC symbols (start and size): static glibc and musl
  programs, Go programs (unless linked with ``-s``), most shared libraries' exports;
* the ``.eh_frame_hdr`` search table (PT_GNU_EH_FRAME): the initial location of every
  FDE, which the compiler emits for every C function, stripped or not.

Every offset, count and size the file states is bounded by the file's size: a hostile
file yields fewer starts (or none), never an exception.  Addresses are the file's own
virtual addresses (p_vaddr); ``to_vaddr`` turns a file offset into one.
"""

from __future__ import annotations

import bisect
import os
import struct

from kontain.loader.elf import ELF_MAGIC, ELFCLASS64, ELFDATA2LSB, EM_X86_64, PT_LOAD

PT_GNU_EH_FRAME = 0x6474E550
SHT_SYMTAB, SHT_DYNSYM = 2, 11
STT_FUNC = 2
MAX_FILE = 1 << 31  # bigger files are not analysed
MAX_SYMS = 1 << 21
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
# DW_EH_PE encodings the eh_frame_hdr table uses in practice: datarel|sdata4
_DATAREL_SDATA4 = 0x3B


class FunctionStarts:
    """The sorted function starts of one file, and its PT_LOAD segments."""

    __slots__ = ("starts", "ends", "loads")

    def __init__(self, starts: list[int], ends: list[int], loads: list[tuple[int, int, int, int]]):
        self.starts = starts  # sorted, unique
        self.ends = ends  # the matching end (start + size) or 0 when unknown
        self.loads = loads  # (p_offset, p_filesz, p_vaddr, p_flags)

    def to_vaddr(self, offset: int) -> int | None:
        """The virtual address of file offset ``offset`` in an executable PT_LOAD."""
        for p_offset, p_filesz, p_vaddr, p_flags in self.loads:
            if p_flags & 1 and p_offset <= offset < p_offset + p_filesz:
                return p_vaddr + offset - p_offset
        return None

    def to_offset(self, vaddr: int) -> int | None:
        for p_offset, p_filesz, p_vaddr, p_flags in self.loads:
            if p_flags & 1 and p_vaddr <= vaddr < p_vaddr + p_filesz:
                return p_offset + vaddr - p_vaddr
        return None

    def containing(self, vaddr: int, reach: int) -> int | None:
        """The start of the function that holds ``vaddr``: the nearest start at or below
        it, if its size covers ``vaddr`` (or, size unknown, it is within ``reach``)."""
        i = bisect.bisect_right(self.starts, vaddr) - 1
        while i >= 0:
            start, end = self.starts[i], self.ends[i]
            if end and vaddr < end:
                return start
            if not end and vaddr - start <= reach:
                return start
            if vaddr - start > reach:
                return None
            i -= 1  # a sized symbol that ends before vaddr: an enclosing one may start lower
        return None


def read(fd: int) -> FunctionStarts | None:
    """The function starts of the ELF file open at ``fd`` (None: not an x86-64 ELF)."""
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FILE or size < _EHDR.size:
            return None
        head = os.pread(fd, _EHDR.size, 0)
        (ident, _type, machine, _v, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
         _shstrndx) = _EHDR.unpack(head)
        if ident[:4] != ELF_MAGIC or ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB or machine != EM_X86_64:
            return None
        loads, ehframe = _phdrs(fd, size, phoff, phentsize, phnum)
        found: dict[int, int] = {}
        _symbols(fd, size, shoff, shentsize, shnum, found)
        if ehframe is not None:
            _eh_frame_hdr(fd, size, ehframe, found)
    except OSError:
        return None
    starts = sorted(found)
    return FunctionStarts(starts, [found[s] for s in starts], loads)


def _phdrs(fd: int, size: int, phoff: int, phentsize: int, phnum: int):
    loads = []
    ehframe = None
    if phentsize != _PHDR.size or phoff + phnum * _PHDR.size > size:
        return loads, None
    table = os.pread(fd, phnum * _PHDR.size, phoff)
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = _PHDR.unpack_from(table, i * _PHDR.size)
        if p_type == PT_LOAD and p_offset + p_filesz <= size:
            loads.append((p_offset, p_filesz, p_vaddr, p_flags))
        elif p_type == PT_GNU_EH_FRAME and p_offset + p_filesz <= size:
            ehframe = (p_offset, p_filesz, p_vaddr)
    return loads, ehframe


def _symbols(fd: int, size: int, shoff: int, shentsize: int, shnum: int, found: dict[int, int]) -> None:
    if not shoff or shentsize != _SHDR.size or shoff + shnum * _SHDR.size > size:
        return
    table = os.pread(fd, shnum * _SHDR.size, shoff)
    for i in range(shnum):
        _name, sh_type, _flags, _addr, sh_offset, sh_size, _link, _info, _align, sh_entsize = \
            _SHDR.unpack_from(table, i * _SHDR.size)
        if sh_type not in (SHT_SYMTAB, SHT_DYNSYM) or sh_entsize != _SYM.size or sh_offset + sh_size > size:
            continue
        n = min(sh_size // _SYM.size, MAX_SYMS)
        data = os.pread(fd, n * _SYM.size, sh_offset)
        for _st_name, info, _other, shndx, value, sym_size in _SYM.iter_unpack(data[:n * _SYM.size]):
            if info & 0xF == STT_FUNC and shndx != 0 and value:
                end = value + sym_size if sym_size else 0
                if found.get(value, 0) < end or value not in found:
                    found[value] = end


def _eh_frame_hdr(fd: int, size: int, where: tuple[int, int, int], found: dict[int, int]) -> None:
    """The binary search table of .eh_frame_hdr: (initial location, FDE) pairs, both
    datarel|sdata4 (relative to the header's own address)."""
    offset, filesz, vaddr = where
    if filesz < 12:
        return
    hdr = os.pread(fd, min(filesz, 1 << 24), offset)
    version, _ptr_enc, count_enc, table_enc = hdr[0], hdr[1], hdr[2], hdr[3]
    if version != 1 or table_enc != _DATAREL_SDATA4 or count_enc not in (0x03, 0x0B):  # udata4 / sdata4
        return
    # eh_frame_ptr: its size follows from ptr_enc (sdata4 / udata4 in practice)
    if _ptr_enc & 0x0F not in (0x03, 0x0B):
        return
    count = struct.unpack_from("<I", hdr, 8)[0]
    if 12 + count * 8 > len(hdr):
        return
    for loc, _fde in struct.iter_unpack("<ii", hdr[12:12 + count * 8]):
        start = vaddr + loc
        if start > 0 and start not in found:
            found[start] = 0
