"""Where functions start in an ELF file: known instruction boundaries for the syscall-site
rewriter (kernel/rewrite.py), which decodes forward from one to prove that the bytes it
patches are whole instructions.

Sources, from the file itself (never from guest memory, which the program can change):

* ``.symtab`` and ``.dynsym`` STT_FUNC symbols (start and size): static glibc and musl
  programs, Go programs (unless linked with ``-s``), most shared libraries' exports;
* the ``.eh_frame_hdr`` search table (PT_GNU_EH_FRAME): the initial location of every
  FDE, which the compiler emits for every C function, stripped or not;
* without that table, the ``.eh_frame`` section's FDEs themselves (start and size):
  stripped static programs such as Debian's busybox.

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

    def end_of(self, start: int) -> int:
        """Where the function starting at ``start`` ends at the latest: its end when its
        size is known, else the next function's start (functions do not overlap: the
        bytes up to there hold all of it, padding perhaps too); 0 when neither is known."""
        i = bisect.bisect_left(self.starts, start)
        if i == len(self.starts) or self.starts[i] != start:
            return 0
        if self.ends[i]:
            return self.ends[i]
        return self.starts[i + 1] if i + 1 < len(self.starts) else 0


def open_mapped(v, posix_locked) -> tuple[int, tuple] | None:
    """The file that mapping ``v`` (memory/mm.py's Vma) maps, opened read-only by its
    name, and its key (device, inode, size, modification and change times) for ``cached``
    and kernel/sitecache.py: when it is still that file, and a regular one; else None.
    Not a file the program holds POSIX locks on (``posix_locked``): closing km's
    descriptor would drop them.  The caller closes the descriptor."""
    if not v.name.startswith("/") or (v.dev, v.ino) in posix_locked:
        return None
    try:
        fd = os.open(v.name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, ValueError):
        return None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == (v.dev, v.ino) and st.st_mode & 0o170000 == 0o100000:
            return fd, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    except OSError:
        pass
    os.close(fd)
    return None


def cached(fd: int, key: tuple, cache: dict, most: int = 1 << 30) -> FunctionStarts | None:
    """``read(fd)``, kept in ``cache`` under ``key`` (``open_mapped``'s), which is emptied
    when it holds ``most``."""
    starts = cache.get(key, False)
    if starts is False:
        if len(cache) >= most:
            cache.clear()
        starts = cache[key] = read(fd)
    return starts


def read(fd: int) -> FunctionStarts | None:
    """The function starts of the ELF file open at ``fd`` (None: not an x86-64 ELF)."""
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FILE or size < _EHDR.size:
            return None
        head = os.pread(fd, _EHDR.size, 0)
        (ident, _type, machine, _v, _entry, phoff, shoff, _flags, _ehsize, phentsize, phnum, shentsize, shnum,
         shstrndx) = _EHDR.unpack(head)
        if ident[:4] != ELF_MAGIC or ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB or machine != EM_X86_64:
            return None
        loads, ehframe = _phdrs(fd, size, phoff, phentsize, phnum)
        found: dict[int, int] = {}
        eh_section = _symbols(fd, size, shoff, shentsize, shnum, shstrndx, found)
        if ehframe is not None:
            _eh_frame_hdr(fd, size, ehframe, found)
        elif eh_section is not None:
            _eh_frame(fd, eh_section, found)
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


def _symbols(fd: int, size: int, shoff: int, shentsize: int, shnum: int, shstrndx: int,
             found: dict[int, int]) -> tuple[int, int, int] | None:
    """STT_FUNC symbols into ``found``; returns the .eh_frame section as (file offset,
    size, address), if there is one."""
    if not shoff or shentsize != _SHDR.size or shoff + shnum * _SHDR.size > size:
        return None
    table = os.pread(fd, shnum * _SHDR.size, shoff)
    eh = None
    names = b""
    if shstrndx < shnum:
        _n, _t, _f, _a, str_off, str_size, *_ = _SHDR.unpack_from(table, shstrndx * _SHDR.size)
        if str_off + str_size <= size and str_size < 1 << 20:
            names = os.pread(fd, str_size, str_off)
    for i in range(shnum):
        name, sh_type, _flags, addr, sh_offset, sh_size, _link, _info, _align, _entsize = \
            _SHDR.unpack_from(table, i * _SHDR.size)
        if names[name:name + 10] == b".eh_frame\0" and sh_offset + sh_size <= size and sh_type == 1:
            eh = (sh_offset, sh_size, addr)
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
    return eh


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


MAX_EH_FRAME = 1 << 26


def _eh_frame(fd: int, where: tuple[int, int, int], found: dict[int, int]) -> None:
    """Every FDE of an .eh_frame section: (pc_begin, pc_begin + pc_range).  The CIE says
    how pc_begin is encoded (its 'R' augmentation); records km cannot read end the walk."""
    offset, size, addr = where
    if size > MAX_EH_FRAME:
        return
    data = os.pread(fd, size, offset)
    encodings: dict[int, int] = {}  # CIE offset -> FDE pointer encoding
    pos = 0
    while pos + 8 <= len(data):
        length = struct.unpack_from("<I", data, pos)[0]
        if length == 0:
            break  # the terminator
        if length == 0xFFFFFFFF or pos + 4 + length > len(data):
            return  # (64-bit lengths do not occur in .eh_frame in practice)
        body = pos + 4
        end = body + length
        cie_ptr = struct.unpack_from("<I", data, body)[0]
        if cie_ptr == 0:
            enc = _cie_encoding(data, body + 4, end)
            if enc is None:
                return
            encodings[pos] = enc
        else:
            enc = encodings.get(body - cie_ptr)
            if enc is None:
                return
            p = body + 4
            begin, n = _read_encoded(data, p, enc, addr + p)
            if begin is None:
                return
            rng, _ = _read_encoded(data, p + n, enc & 0x0F, 0)
            if rng is None:
                return
            if begin > 0 and rng > 0:
                if found.get(begin, 0) < begin + rng:
                    found[begin] = begin + rng
        pos = end


def _uleb(data: bytes, p: int, end: int) -> tuple[int, int]:
    v = shift = 0
    while p < end:
        b = data[p]
        p += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, p
    raise ValueError


def _cie_encoding(data: bytes, p: int, end: int) -> int | None:
    """The FDE pointer encoding of the CIE whose body (past its id) starts at ``p``."""
    try:
        version = data[p]
        aug_end = data.index(b"\0", p + 1, end)
        aug = data[p + 1:aug_end]
        p = aug_end + 1
        if version not in (1, 3) or not aug.startswith(b"z") and aug:
            return None if aug else 0
        _, p = _uleb(data, p, end)  # code alignment
        _, p = _uleb(data, p, end)  # data alignment (sleb: skipped the same way)
        if version == 1:
            p += 1
        else:
            _, p = _uleb(data, p, end)
        _, p = _uleb(data, p, end)  # augmentation data length
        enc = 0
        for c in aug[1:]:
            if c == ord("R"):
                enc = data[p]
                p += 1
            elif c == ord("P"):
                penc = data[p]
                _, n = _read_encoded(data, p + 1, penc & 0x7F, 0)
                if n == 0:
                    return None
                p += 1 + n
            elif c == ord("L"):
                p += 1
            elif c not in (ord("S"), ord("B")):
                return None
        return enc
    except (IndexError, ValueError):
        return None


def _read_encoded(data: bytes, p: int, enc: int, here: int) -> tuple[int | None, int]:
    """A DW_EH_PE-encoded pointer at ``p`` (``here``: its address, for pcrel): (value, size)."""
    fmt = {0x00: "<Q", 0x02: "<H", 0x03: "<I", 0x04: "<Q", 0x0A: "<h", 0x0B: "<i", 0x0C: "<q"}.get(enc & 0x0F)
    if fmt is None or enc & 0x70 not in (0x00, 0x10) or p + struct.calcsize(fmt) > len(data):
        return None, 0
    v = struct.unpack_from(fmt, data, p)[0]
    if enc & 0x70 == 0x10:
        v += here
    return v & 0xFFFFFFFFFFFFFFFF, struct.calcsize(fmt)
