"""The snapshot file: an ELF core file (ET_CORE) that km can resume and gdb can open.

Layout (every offset checked on reading: the file is untrusted input)::

    ELF header (ET_CORE, x86-64)
    program headers: one PT_NOTE, then one PT_LOAD per mapping of the program
    PT_NOTE: per thread NT_PRSTATUS, NT_FPREGSET, NT_X86_XSTATE (the snapshotting thread
             first: gdb's current thread), NT_PRPSINFO, NT_AUXV, NT_FILE (which file each
             file mapping is: ``gdb PROGRAM FILE`` finds the program's symbols), and km's
             own note, name "KONTAIN", type NT_KM_STATE: the state (``encode``)
    PT_LOADs: the guest's memory, each at a page-aligned file offset, so that a resume
             maps it MAP_PRIVATE (copy-on-write from the page cache: never read, and ten
             resumes of one file share its pages); all-zero pages are holes.

km's note is versioned and self-describing: a tagged encoding of plain data (None,
bools, integers, bytes, str, lists, tuples, dicts) and nothing else, so that no
object of the file's choosing is ever built (no pickle).  ``decode`` bounds every
length by what is left and the nesting depth; what the values mean is checked by the
resume (kernel/snapshot.py).
"""

from __future__ import annotations

import os
import struct

from kontain.errors import KmError

VERSION = 1
KM_NAME = b"KONTAIN"
NT_KM_STATE = 0x4B4D0001
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_FILE, NT_X86_XSTATE = 0x46494C45, 0x202
ET_CORE, EM_X86_64 = 4, 62
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4
PAGE = 4096
CHUNK = 1 << 20
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
_IDENT = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
MAX_DEPTH = 16
MAX_NOTES = 1 << 24  # bytes of notes km reads at most
MAX_LOADS = 1 << 16


class SnapshotError(KmError):
    """The file is not a snapshot km can resume: one line, status 126 (it cannot be
    executed), as for a program km cannot run."""

    def __init__(self, message: str, status: int = 126):
        super().__init__(message, status)


class Refused(KmError):
    """The program has something a snapshot cannot keep (one line: what and why)."""


def cpu_model(cpuid: list) -> list[tuple]:
    """KVM's supported CPUID as a snapshot compares it: the entries, without the APIC
    ids of the host CPU that answered (leaf 1 EBX[31:24], leaves 0xB and 0x1F EDX)."""
    out = []
    for e in cpuid:
        e = tuple(e)  # (function, index, flags, eax, ebx, ecx, edx, ...)
        if e[0] == 1:
            e = e[:4] + (e[4] & 0x00FFFFFF,) + e[5:]
        elif e[0] in (0xB, 0x1F):
            e = e[:6] + (0,) + e[7:]
        out.append(e)
    return out


# -- the self-describing encoding ------------------------------------------------------
def encode(obj) -> bytes:
    out = bytearray()
    _enc(obj, out)
    return bytes(out)


def _enc(o, out: bytearray) -> None:
    if o is None:
        out += b"N"
    elif o is True:
        out += b"T"
    elif o is False:
        out += b"F"
    elif type(o) is int:
        raw = o.to_bytes((o.bit_length() + 8) // 8 or 1, "little", signed=True)
        out += b"i" + bytes([len(raw)]) + raw
    elif isinstance(o, (bytes, bytearray, memoryview)):
        b = bytes(o)
        out += b"b" + struct.pack("<I", len(b)) + b
    elif type(o) is str:
        b = o.encode("utf-8", "surrogateescape")
        out += b"s" + struct.pack("<I", len(b)) + b
    elif type(o) in (list, tuple):
        out += (b"l" if type(o) is list else b"t") + struct.pack("<I", len(o))
        for x in o:
            _enc(x, out)
    elif type(o) is dict:
        out += b"d" + struct.pack("<I", len(o))
        for key, value in o.items():
            _enc(key, out)
            _enc(value, out)
    else:
        raise TypeError(f"snapshot state: {type(o).__name__} is not plain data")


def decode(data: bytes):
    """The value ``encode`` made; SnapshotError for anything else."""
    value, pos = _dec(memoryview(data), 0, 0)
    if pos != len(data):
        raise SnapshotError("trailing bytes after km's state")
    return value


def _dec(m: memoryview, pos: int, depth: int):
    if depth > MAX_DEPTH:
        raise SnapshotError("km's state is nested too deeply")
    if pos >= len(m):
        raise SnapshotError("km's state is truncated")
    tag = m[pos]
    pos += 1
    if tag == 0x4E:  # N
        return None, pos
    if tag == 0x54:  # T
        return True, pos
    if tag == 0x46:  # F
        return False, pos
    if tag == 0x69:  # i
        if pos >= len(m) or pos + 1 + m[pos] > len(m):
            raise SnapshotError("km's state is truncated")
        n = m[pos]
        return int.from_bytes(m[pos + 1:pos + 1 + n], "little", signed=True), pos + 1 + n
    if pos + 4 > len(m):
        raise SnapshotError("km's state is truncated")
    (n,) = struct.unpack_from("<I", m, pos)
    pos += 4
    if tag in (0x62, 0x73):  # b, s
        if pos + n > len(m):
            raise SnapshotError("km's state is truncated")
        raw = bytes(m[pos:pos + n])
        return (raw if tag == 0x62 else raw.decode("utf-8", "surrogateescape")), pos + n
    if n > len(m) - pos:  # every element takes a byte at least
        raise SnapshotError("km's state is truncated")
    if tag in (0x6C, 0x74):  # l, t
        items = []
        for _ in range(n):
            x, pos = _dec(m, pos, depth + 1)
            items.append(x)
        return (items if tag == 0x6C else tuple(items)), pos
    if tag == 0x64:  # d
        d = {}
        for _ in range(n):
            key, pos = _dec(m, pos, depth + 1)
            try:
                hash(key)
            except TypeError:
                raise SnapshotError("km's state has a bad key") from None
            d[key], pos = _dec(m, pos, depth + 1)
        return d, pos
    raise SnapshotError(f"km's state has an unknown tag {tag:#x}")


# -- notes ---------------------------------------------------------------------------------
def note(kind: int, desc: bytes, name: bytes = b"CORE") -> bytes:
    name += b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def parse_notes(data: bytes) -> list[tuple[bytes, int, bytes]]:
    out = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, pos)
        pos += 12
        name_end = pos + namesz
        desc_at = pos + (namesz + 3) // 4 * 4
        desc_end = desc_at + descsz
        if name_end > len(data) or desc_end > len(data):
            raise SnapshotError("a note runs past its segment")
        out.append((bytes(data[pos:name_end]).rstrip(b"\0"), kind, bytes(data[desc_at:desc_end])))
        pos = desc_at + (descsz + 3) // 4 * 4
    return out


def nt_file(mappings: list[tuple[int, int, int, bytes]]) -> bytes:
    """NT_FILE: count, page size, (start, end, page offset) each, then the names."""
    head = struct.pack("<QQ", len(mappings), PAGE)
    head += b"".join(struct.pack("<QQQ", s, e, off // PAGE) for s, e, off, _ in mappings)
    return head + b"".join(name + b"\0" for *_, name in mappings)


# -- writing ---------------------------------------------------------------------------
class Segment:
    """One PT_LOAD: guest [start, end) with ELF flags; ``read(addr, n)`` gives its bytes
    (None: nothing in the file, as for memory that cannot be read)."""

    __slots__ = ("start", "end", "flags", "offset", "read")

    def __init__(self, start: int, end: int, flags: int, read):
        self.start, self.end, self.flags, self.read = start, end, flags, read
        self.offset = 0


def write(path: str, notes: bytes, segments: list[Segment]) -> int:
    """Write the file (to a new file renamed over ``path`` at the end: resumes running
    from an older file at that path keep theirs); returns its size."""
    phoff = EHDR.size
    offset = phoff + PHDR.size * (1 + len(segments))
    note_off = offset
    offset = _page_up(offset + len(notes))
    phdrs = [PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(notes), 0, 4)]
    for s in segments:
        s.offset = offset
        size = s.end - s.start
        filesz = size if s.read is not None else 0
        phdrs.append(PHDR.pack(PT_LOAD, s.flags, offset, s.start, 0, filesz, size, PAGE))
        offset += filesz
    ehdr = EHDR.pack(_IDENT, ET_CORE, EM_X86_64, 1, 0, phoff, 0, 0, EHDR.size, PHDR.size, len(phdrs), 64, 0, 0)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, ehdr + b"".join(phdrs) + notes, 0)
        for s in segments:
            if s.read is not None:
                _copy(s, fd)
        os.ftruncate(fd, offset)
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        fd = -1
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        if fd >= 0:
            os.close(fd)
    return offset


_ZERO = bytes(CHUNK)


def _copy(s: Segment, fd: int) -> None:
    """The segment's memory into the file, all-zero pages left as holes."""
    done, size = 0, s.end - s.start
    while done < size:
        n = min(CHUNK, size - done)
        chunk = s.read(s.start + done, n)
        if chunk != _ZERO[:n]:
            at = 0
            while at < n:  # runs of non-zero pages, one write each
                while at < n and chunk[at:at + PAGE] == _ZERO[:PAGE]:
                    at += PAGE
                run = at
                while run < n and chunk[run:run + PAGE] != _ZERO[:PAGE]:
                    run += PAGE
                if run > at:
                    os.pwrite(fd, chunk[at:run], s.offset + done + at)
                at = run
        done += n


def _page_up(n: int) -> int:
    return (n + PAGE - 1) & ~(PAGE - 1)


# -- reading ---------------------------------------------------------------------------
class Snapshot:
    """A snapshot file, opened and checked: its descriptor (the resume maps from it), its
    PT_LOADs (start, end, offset, filesz, flags), notes, and km's state."""

    def __init__(self, fd: int, size: int, loads: list[tuple[int, int, int, int, int]],
                 notes: list[tuple[bytes, int, bytes]], state: dict):
        self.fd, self.size, self.loads, self.notes, self.state = fd, size, loads, notes, state


def is_snapshot(head: bytes) -> bool:
    """Does a file that starts with ``head`` (its first bytes) look like an ELF core
    file?  (km PROGRAM: a core file is never a program, so km tries it as a snapshot.)"""
    return len(head) >= 18 and head[:4] == b"\x7fELF" and struct.unpack_from("<H", head, 16)[0] == ET_CORE


def read(path: str) -> Snapshot:
    """Open and check a snapshot file; SnapshotError (one line, 126) for anything that
    is not one km wrote and can resume."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise SnapshotError(f"{path}: {e.strerror}", 127 if e.errno == 2 else 126) from None
    try:
        return _read(path, fd)
    except BaseException:
        os.close(fd)
        raise


def _read(path: str, fd: int) -> Snapshot:
    bad = lambda why: SnapshotError(f"{path}: an ELF core dump that is not a km snapshot, or a damaged "  # noqa: E731
                                    f"snapshot ({why})")
    size = os.fstat(fd).st_size
    head = os.pread(fd, EHDR.size, 0)
    if len(head) < EHDR.size:
        raise bad("too short for an ELF header")
    ident, etype, machine, _v, _entry, phoff, _sh, _fl, ehsize, phentsize, phnum, *_ = EHDR.unpack(head)
    if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
        raise bad("not a 64-bit little-endian ELF file")
    if etype != ET_CORE or machine != EM_X86_64:
        raise bad("not an x86-64 core file")
    if phentsize != PHDR.size or not 1 <= phnum <= MAX_LOADS + 1 or phoff + phnum * PHDR.size > size:
        raise bad("bad program headers")
    raw = os.pread(fd, phnum * PHDR.size, phoff)
    if len(raw) != phnum * PHDR.size:
        raise bad("truncated program headers")
    loads, note_data = [], None
    for i in range(phnum):
        ptype, flags, off, vaddr, _pa, filesz, memsz, _align = PHDR.unpack_from(raw, i * PHDR.size)
        if ptype == PT_NOTE:
            if note_data is not None or filesz > MAX_NOTES or off + filesz > size:
                raise bad("bad note segment")
            note_data = os.pread(fd, filesz, off)
            if len(note_data) != filesz:
                raise bad("truncated notes")
        elif ptype == PT_LOAD:
            if off % PAGE or vaddr % PAGE or memsz % PAGE or filesz not in (0, memsz) or memsz == 0:
                raise bad("a memory segment is not page-aligned")
            if off + filesz > size or vaddr + memsz > 1 << 47:
                raise bad("a memory segment is outside the file (truncated?)")
            loads.append((vaddr, vaddr + memsz, off, filesz, flags))
    if note_data is None:
        raise bad("no notes")
    notes = parse_notes(note_data)
    mine = [desc for name, kind, desc in notes if name == KM_NAME and kind == NT_KM_STATE]
    if len(mine) != 1:
        raise SnapshotError(f"{path}: an ELF core file without km's state (a core dump, not a snapshot)")
    desc = mine[0]
    if desc[:6] != b"KMSNAP" or len(desc) < 8:
        raise bad("km's note has no header")
    version = struct.unpack_from("<H", desc, 6)[0]
    if version != VERSION:
        raise SnapshotError(f"{path}: a snapshot of format version {version}; this km reads version {VERSION} "
                            "(resume it with the km that took it)")
    state = decode(desc[8:])
    if type(state) is not dict:
        raise bad("km's state is not a table")
    return Snapshot(fd, size, sorted(loads), notes, state)


def state_note(state: dict) -> bytes:
    return note(NT_KM_STATE, b"KMSNAP" + struct.pack("<H", VERSION) + encode(state), KM_NAME)
