"""Put a program into a guest address space, the way Linux's load_elf_binary does.

Segments are private mappings of the file itself (page cache shared with every other
user of the file), the bss is anonymous memory, an ET_DYN program goes two thirds up the
window, its interpreter (PT_INTERP) into the mmap area, and the initial stack holds
argc, argv, envp and the auxiliary vector in Linux's order.
"""

from __future__ import annotations

import os
import struct

from kontain.abi import flags as F
from kontain.abi.errno import ENXIO, ETXTBSY
from kontain.errors import GuestError, KmError
from kontain.loader import elf, textbusy
from kontain.memory.mm import AddressSpace, page_up

HEADER_READ = 64 * 1024  # enough for the ELF header, program headers and PT_INTERP


class ExecError(KmError):
    """The program cannot be started: ``errno`` for exec, ``str()`` for km's message."""

    about_program = True

    def __init__(self, message: str, errno: int, status: int = 126):
        super().__init__(message, status)
        self.errno = errno


class Loaded:
    """Where a loaded program starts, and what its auxiliary vector says about it."""

    __slots__ = ("entry", "program_entry", "phdr", "phnum", "base", "brk")

    def __init__(self, entry: int, program_entry: int, phdr: int, phnum: int, base: int, brk: int):
        self.entry = entry  # where the first instruction runs (the interpreter's entry if any)
        self.program_entry = program_entry  # AT_ENTRY
        self.phdr = phdr  # AT_PHDR
        self.phnum = phnum
        self.base = base  # AT_BASE: the interpreter's load address, or 0
        self.brk = brk  # first address after the program (the heap starts here)


def open_program(path: str, opener=None) -> tuple[int, bytes, int]:
    """Open a program file: (fd, first bytes, size).  Raises ExecError like execve's errors.
    ``opener(path) -> fd or -errno`` opens it (the program's own exec: kernel/paths.py)."""
    try:
        # O_NONBLOCK: a FIFO's open would wait for a writer (forever, EINTR being retried),
        # where Linux refuses to execute anything but a regular file at once (EACCES);
        # O_NOCTTY: a terminal's would make it km's controlling terminal.  (``opener``
        # gets the same flags: kernel/exec.py.)
        if opener is None:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        else:
            fd = opener(path)
            if fd < 0:
                raise OSError(-fd, os.strerror(-fd))
    except FileNotFoundError:
        raise ExecError("no such file or directory", 2, 127) from None
    except PermissionError:
        raise ExecError("permission denied", 13, 126) from None
    except IsADirectoryError:
        raise ExecError("is a directory", 13, 126) from None  # (EACCES: execve's errno for a directory)
    except OSError as e:
        if e.errno == ENXIO:  # a socket, or a device with nothing behind it: not a regular file
            raise ExecError("not a regular file", 13, 126) from None
        raise ExecError(e.strerror or str(e), e.errno or 8, 126) from None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) == 0o040000:
            raise ExecError("is a directory", 13, 126)
        if (st.st_mode & 0o170000) != 0o100000:
            raise ExecError("not a regular file", 13, 126)
        if not os.access(path, os.X_OK):
            raise ExecError("permission denied (not executable)", 13, 126)
        if textbusy.open_for_writing(fd):
            raise ExecError("text file busy (open for writing)", ETXTBSY, 126)
        head = os.pread(fd, HEADER_READ, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd, head, st.st_size


def _map_segments(mm: AddressSpace, image: elf.ElfImage, fd: int, bias: int, path: str) -> None:
    for seg in image.segments:
        start = (seg.vaddr + bias) & ~(elf.PAGE - 1)
        pad = (seg.vaddr + bias) - start
        file_end = seg.vaddr + bias + seg.filesz
        mem_end = seg.vaddr + bias + seg.memsz
        prot = seg.prot
        if seg.filesz:
            mm.mmap(start, page_up(pad + seg.filesz), prot | F.PROT_WRITE if seg.memsz > seg.filesz else prot,
                    F.MAP_PRIVATE | F.MAP_FIXED, fd, seg.offset - pad)
            if seg.memsz > seg.filesz and file_end & (elf.PAGE - 1):
                # the rest of the file's last page is the start of the bss: zero it
                tail = page_up(file_end) - file_end
                mm.mem.write(file_end, bytes(tail))
            if seg.memsz > seg.filesz and not prot & F.PROT_WRITE:
                mm.mprotect(start, page_up(pad + seg.filesz), prot)
        bss = page_up(file_end) if seg.filesz else start
        if mem_end > bss:
            mm.mmap(bss, page_up(mem_end) - bss, prot, F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_FIXED, -1, 0)


def load_image(mm: AddressSpace, image: elf.ElfImage, fd: int, path: str, *, base: int | None) -> int:
    """Map an ELF image; returns the load bias.  ``base``: where an ET_DYN goes (None:
    anywhere in the mmap area, as Linux does for an interpreter)."""
    if image.type == elf.ET_EXEC:
        bias = 0
        if not mm.is_free(image.lo, page_up(image.hi)):
            raise ExecError("segments overlap memory that is already mapped", 8)
    else:
        span = page_up(image.hi) - image.lo
        start = base if base is not None and mm.is_free(base, base + span) else mm.find_free(span)
        bias = start - image.lo
    try:
        _map_segments(mm, image, fd, bias, path)
    except GuestError as e:
        raise ExecError(f"cannot map the program: {os.strerror(e.errno)}", e.errno) from None
    return bias


def load_program(mm: AddressSpace, path: str, *, pie_base: int, fd: int | None = None,
                 head: bytes | None = None, size: int = 0, opener=None) -> Loaded:
    """Load the program at ``path`` (and its interpreter) into ``mm``."""
    if fd is None:
        fd, head, size = open_program(path, opener)
    try:
        try:
            image = elf.parse(head, size, window=mm.window)
        except elf.ElfError as e:
            raise ExecError(str(e), 8) from None  # ENOEXEC
        bias = load_image(mm, image, fd, path, base=pie_base if image.type == elf.ET_DYN else None)
    finally:
        os.close(fd)
    phdr = image.phdr_vaddr + bias if image.phdr_vaddr is not None else 0
    brk = page_up(image.hi + bias)
    entry = image.entry + bias
    base = 0
    if image.interp is not None:
        ifd, ihead, isize = open_program(image.interp, opener)
        try:
            try:
                iimage = elf.parse(ihead, isize, window=mm.window)
            except elf.ElfError as e:
                raise ExecError(f"interpreter {image.interp}: {e}", 8) from None
            if iimage.interp is not None:
                raise ExecError(f"interpreter {image.interp} has an interpreter itself", 8)
            ibias = load_image(mm, iimage, ifd, image.interp, base=None)
        finally:
            os.close(ifd)
        base = iimage.lo + ibias
        entry = iimage.entry + ibias
    return Loaded(entry, image.entry + bias, phdr, image.phnum, base, brk)


def read_auxv(mm: AddressSpace, sp: int, argc: int, envc: int) -> bytes:
    """The auxiliary vector as written on the initial stack (for /proc/self/auxv)."""
    start = sp + 8 * (1 + argc + 1 + envc + 1)
    try:
        chunk = mm.mem.read(start, 1024)  # one copy: the strings lie above it on the stack
    except GuestError:
        chunk = b""  # the stack's top is nearer: pair by pair
    for i in range(0, len(chunk) - 15, 16):
        if chunk[i:i + 8] == bytes(8):
            return chunk[:i + 16]
    out = b""
    while True:
        pair = mm.mem.read(start + len(out), 16)
        out += pair
        if pair[:8] == bytes(8):
            return out


def build_stack(mm: AddressSpace, top: int, argv: list[bytes], envp: list[bytes], execfn: bytes,
                auxv: list[tuple[int, int]], random16: bytes, platform: bytes = b"x86_64") -> int:
    """Write the initial stack below ``top`` (already mapped); returns the initial RSP.

    From the top down, as Linux lays it out: the exec file name, the environment and
    argument strings, the platform string and AT_RANDOM's 16 bytes, then (16-byte
    aligned) argc, argv[], NULL, envp[], NULL, auxv pairs, AT_NULL.
    """
    blob = bytearray()
    p = top - 8  # Linux leaves the last 8 bytes zero

    def push(data: bytes) -> int:
        nonlocal p
        p -= len(data)
        blob[0:0] = data
        return p

    execfn_addr = push(execfn + b"\0")
    env_addrs = [push(s + b"\0") for s in reversed(envp)][::-1]
    arg_addrs = [push(s + b"\0") for s in reversed(argv)][::-1]
    plat_addr = push(platform + b"\0")
    push(bytes(p & 15))
    rand_addr = push(random16)
    strings_start = p
    auxv = auxv + [(F.AT_RANDOM, rand_addr), (F.AT_EXECFN, execfn_addr), (F.AT_PLATFORM, plat_addr), (F.AT_NULL, 0)]
    vec = [len(argv)] + arg_addrs + [0] + env_addrs + [0]
    for key, val in auxv:
        vec += [key, val]
    words = struct.pack(f"<{len(vec)}Q", *vec)
    sp = (strings_start - len(words)) & ~15
    stack = words + bytes(strings_start - sp - len(words)) + bytes(blob)
    mm.mem.write(sp, stack)
    return sp
