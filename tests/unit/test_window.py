"""The guest window's address translation and checked copies (memory/window.py) at its
edges: the first and last byte, ranges ending exactly at the end or one byte past it,
addresses below zero or wrapping past 2^64, and empty ranges.  A range not wholly in
backed guest memory must fail with EFAULT (as copy_from_user/copy_to_user do) and never
reach host memory outside the window.  The reservation is real (1 GiB of address space);
only its first and last pages are backed."""

import os

import pytest

from kontain import native
from kontain.abi.errno import EFAULT, ENAMETOOLONG
from kontain.errors import GuestError
from kontain.memory.window import GUARD, NONCANONICAL, USER_LIMIT, GuestMemory

GIB = 1 << 30
PAGE = 4096
RW = 3
ANON_FIXED = 0x02 | 0x20 | 0x10  # MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
MAP_FIXED_NOREPLACE = 0x100000
END = GIB


@pytest.fixture
def mem():
    m = GuestMemory(GIB)
    for off in (0, END - PAGE):
        assert native.mmap(m.base + off, PAGE, RW, ANON_FIXED) == m.base + off
    yield m
    native.munmap(m.base, m.size + GUARD)


def efault(fn, *args):
    with pytest.raises(GuestError) as e:
        fn(*args)
    return e.value.errno == EFAULT


def test_translation_at_the_edges(mem):
    assert mem.host(0) == mem.base
    assert mem.host(END - 1) == mem.base + END - 1
    assert mem.host(END - 8, 8) == mem.base + END - 8  # ends exactly at the end
    # past the end, but a user address: a poison address in the guard, same page offset
    for addr in (END, END + 0x123, USER_LIMIT - 1):
        h = mem.host(addr, 8)
        assert mem.base + END <= h < mem.base + END + PAGE and h & 0xFFF == addr & 0xFFF
    # not a user address at all (negative, 2^64 - 1, far above): non-canonical
    for addr in (USER_LIMIT, -1, -PAGE, (1 << 64) - 1, 1 << 64, 1 << 70):
        assert mem.host(addr) & NONCANONICAL and mem.host(addr) & 0xFFF == addr & 0xFFF
    assert efault(mem.host, 0, GUARD + 1)  # longer than the guard: refused up front


def test_contains_is_exact_and_never_wraps(mem):
    assert mem.contains(0, END) and mem.contains(END - 8, 8)
    assert mem.contains(END, 0)  # the empty range at the end
    assert not mem.contains(END - 8, 9) and not mem.contains(END, 1)
    assert not mem.contains(-1, 1) and not mem.contains(-8, 16)
    assert not mem.contains((1 << 64) - 4, 8)  # would wrap around to 4
    assert not mem.contains(0, -1)


def test_first_and_last_bytes_read_and_write(mem):
    mem.write(0, b"\x01")
    mem.write(END - 1, b"\xff")
    assert mem.read(0, 1) == b"\x01" and mem.read(END - 1, 1) == b"\xff"
    mem.write_u64(END - 8, -2)  # masked to 64 bits
    assert mem.read_u64(END - 8) == (1 << 64) - 2
    assert mem.read(END - PAGE, PAGE)[-8:] == b"\xfe" + b"\xff" * 7


@pytest.mark.parametrize("addr, length", [
    (END - 8, 9),  # one byte past the end
    (END - 4, 8),  # half in, half in the guard
    (END, 1),  # the first byte after
    (-4, 8),  # starts below zero and would end inside
    ((1 << 64) - 4, 8),  # wraps around 2^64 to 4
    (PAGE - 4, 8),  # runs from the backed first page into a hole (PROT_NONE)
    (USER_LIMIT, 1),
])
def test_a_range_partly_outside_fails_with_efault(mem, addr, length):
    mem.write(0, b"\xaa" * 8)
    assert efault(mem.read, addr, length)
    assert efault(mem.write, addr, b"\x55" * length)
    if length == 8:
        assert efault(mem.read_u64, addr) and efault(mem.write_u64, addr, 0)
    assert mem.read(0, 4) == b"\xaa" * 4  # a range below zero did not wrap into the window


def test_host_memory_below_the_window_is_never_written(mem):
    below = mem.base - PAGE
    ours = native.mmap(below, PAGE, RW, 0x22 | MAP_FIXED_NOREPLACE) == below
    try:
        if ours:
            native.buffer_at(below, PAGE)[:] = b"\xcc" * PAGE
        # (else something of this process's is there already: whatever it holds must stay;
        # /proc/self/mem reads it whatever its protection, and nothing if nothing is mapped)
        before = _peek(below)
        for addr in (-PAGE, -8, (1 << 64) - PAGE):
            assert efault(mem.write, addr, b"\x00" * 16)
        assert _peek(below) == before and (not ours or before == b"\xcc" * PAGE)
    finally:
        if ours:
            native.munmap(below, PAGE)


def _peek(addr: int) -> bytes | None:
    """A page of this process's memory at ``addr``, None where nothing is mapped."""
    with open("/proc/self/mem", "rb", buffering=0) as f:
        try:
            return os.pread(f.fileno(), PAGE, addr)
        except OSError:
            return None


def test_empty_ranges_never_fault(mem):
    for addr in (0, END, END + 1, -1, (1 << 64) - 1, 1 << 70):
        assert mem.read(addr, 0) == b""
        mem.write(addr, b"")


def test_cstr_at_the_edges(mem):
    mem.write(END - 4, b"abc\0")
    assert mem.cstr(END - 4) == b"abc"  # the NUL is the window's last byte
    mem.write(END - 4, b"abcd")
    assert efault(mem.cstr, END - 4)  # runs into the guard before a NUL
    assert efault(mem.cstr, -1) and efault(mem.cstr, END)
    mem.write(PAGE - 3, b"xyz")
    assert efault(mem.cstr, PAGE - 3)  # runs into a hole
    # as strncpy_from_user + getname: no NUL in `limit` bytes is too long, even when the
    # memory after them is bad; a NUL at limit - 1 fits
    with pytest.raises(GuestError) as e:
        mem.cstr(END - 4, limit=4)
    assert e.value.errno == ENAMETOOLONG
    mem.write(END - 4, b"abc\0")
    assert mem.cstr(END - 4, limit=4) == b"abc"
    with pytest.raises(GuestError) as e:
        mem.cstr(END - 4, limit=3, too_long=7)
    assert e.value.errno == 7
