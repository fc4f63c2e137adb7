"""ELF parsing and validation, on synthetic files (no KVM)."""

import pytest

from elfgen import BASE, elf
from kontain.loader import elf as E

SEG = dict(type=1, flags=5, offset=0, vaddr=BASE, filesz=0x200, memsz=0x200, align=0x1000)


def test_minimal():
    img = E.parse(elf())
    assert img.type == E.ET_EXEC and img.entry == BASE + 64 + 56 and len(img.segments) == 1
    assert img.phdr_vaddr == BASE + 64 and img.interp is None and img.lo == BASE


def test_bss_and_two_segments():
    data = elf(segments=[SEG, dict(SEG, flags=6, offset=0x100, vaddr=BASE + 0x1100, filesz=0x100, memsz=0x5000)])
    img = E.parse(data)
    assert [s.prot for s in img.segments] == [5, 3]
    assert img.hi == BASE + 0x1100 + 0x5000


def test_interp():
    base = elf(extra_phdrs=[(3, 4, 0x180, 0, 0, 11, 11, 1)])
    data = base[:0x180] + b"/lib/ld.so\0" + base[0x18B:]
    assert E.parse(data).interp == "/lib/ld.so"


def test_static_pie_goes_anywhere():
    img = E.parse(elf(etype=3, segments=[dict(SEG, vaddr=0)], entry=0x80))
    assert img.type == E.ET_DYN and img.lo == 0


@pytest.mark.parametrize("data,message", [
    (b"", "not an ELF"),
    (b"\x7fELF", "truncated"),
    (elf(cls=1), "32-bit"),
    (elf(machine=40), "ARM"),
    (elf(phnum=0), "number of program headers"),
    (elf(segments=[dict(SEG, memsz=1 << 62)]), "absurd"),
    (elf(entry=1), "entry point"),
])
def test_rejects(data, message):
    with pytest.raises(E.ElfError, match=message):
        E.parse(data)


def test_window_limit():
    data = elf(segments=[dict(SEG, vaddr=1 << 40)], entry=(1 << 40) + 0x80)
    E.parse(data, window=1 << 41)
    with pytest.raises(E.ElfError, match="outside"):
        E.parse(data, window=1 << 36)
