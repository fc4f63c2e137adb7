"""Where a store that faulted began, for its SIGSEGV's RIP.

A store to memory without a writable memslot (a hole, a read-only mapping) reaches km
as KVM_EXIT_MMIO, and KVM's emulator has by then done the instruction but for the
store itself: RIP points past it.  Linux reports the instruction's own address, and a
handler that makes the page writable (mprotect, a GC's write barrier, Boehm's dirty
bits) returns there to make the store again: with RIP past it the store was lost, and
Go's tracebacks missed the inlined function that faulted (runtime
TestTracebackInlineExcluded).

x86 cannot be decoded backwards with certainty, so the start is found, in this order:

* decoding forward from the start of the function that holds the store (the file's
  symbols or unwind table, loader/funcstarts.py, as the syscall-site rewriter finds
  its boundaries), to the instruction that ends at RIP;
* else (code in no file, no symbols), trying each of the 15 starts before RIP: the
  one start whose bytes decode to exactly one instruction ending at RIP that stores
  there.

Either way the instruction must be one that runs the same again (arch decode.py
``repeatable_store``: it stores at the faulting address, changes no register and
does not branch; push, call or a string instruction have moved their registers on
already).  When none is found, RIP stays past the store, as before.
"""

from __future__ import annotations

import os

from kontain.arch.x86_64 import decode
from kontain.errors import GuestError

MOST = 15  # an x86 instruction's longest
MAX_FUNCTION = 1 << 18  # bytes decoded at most from a function's start
_files: dict[tuple, object] = {}  # (dev, ino, size, mtime) -> FunctionStarts or None
MAX_FILES = 64


def store_start(p, end: int, gpa: int, length: int, regs: dict[str, int], fs_base: int, gs_base: int) -> int | None:
    """The start of the store of ``length`` bytes at ``gpa`` that ended at ``end`` (the
    RIP KVM left), or None when it cannot be told (module doc)."""
    start = _from_function(p, end)
    if start is not None:
        code = _read(p, start, end)
        if code is not None and decode.repeatable_store(code, start, gpa, length, regs, fs_base, gs_base):
            return start
        return None  # (a known boundary that is no such store: nothing else is better)
    code = b""
    for n in range(1, MOST + 1):  # (what can be read just before ``end``)
        more = _read(p, end - n, end)
        if more is None:
            break
        code = more
    found = [end - n for n in range(1, len(code) + 1)
             if decode.repeatable_store(code[-n:], end - n, gpa, length, regs, fs_base, gs_base)]
    return found[0] if len(found) == 1 else None


def _read(p, start: int, end: int) -> bytes | None:
    """The program's code there (as its file has it where km rewrote a syscall site)."""
    if start < 0:
        return None
    try:
        return p.read_memory(start, end - start)
    except GuestError:
        return None


def _from_function(p, end: int) -> int | None:
    """Decoding forward from the start of the function that holds ``end - 1``: where the
    instruction that ends at ``end`` starts."""
    from kontain.loader import funcstarts

    at = end - 1
    v = p.mm.find(at)
    opened = funcstarts.open_mapped(v, p.posix_locked) if v is not None else None
    if opened is None:
        return None
    fd, key = opened
    try:
        starts = funcstarts.cached(fd, key, _files, MAX_FILES)
    except OSError:
        return None
    finally:
        os.close(fd)
    if starts is None:
        return None
    offset = v.offset + (at - v.start)
    vaddr = starts.to_vaddr(offset)
    fstart = starts.containing(vaddr, MAX_FUNCTION) if vaddr is not None else None
    foff = starts.to_offset(fstart) if fstart is not None else None
    if foff is None or foff < v.offset or offset - foff >= MAX_FUNCTION:
        return None
    here = at - (offset - foff)  # the function's start in the program's memory
    code = _read(p, here, end)
    return decode.instruction_ending_at(code, here, end) if code is not None else None
