"""The memory a vfork child shares with its parent (clone with CLONE_VM | CLONE_VFORK).

On Linux such a child runs in its parent's memory until it execs or exits, and what it
writes there stays: glibc's posix_spawn reports a failed exec that way (the child
stores errno in the parent's frame, then _exit(127)), as do other spawn helpers.  Under
km the child is a forked km with a copy-on-write copy of the guest's memory
(kernel/fork.py), so those writes were lost: posix_spawn of a missing program returned
0 instead of ENOENT (Rust's Command::spawn, which uses it, then "succeeded").

So the child hands its writes back when it lets its parent go: at its exec, before the
old memory goes, and at its end.  The pages it wrote are the ones that are now its own:
since the fork, parent and child map the same physical pages (copy-on-write), and a
page the child wrote, or touched first, is mapped by it alone: present, exclusively
mapped and anonymous in /proc/self/pagemap (bits 63, 56, not 61).  The child sends each
such page of its private mappings, with its address, through the pipe its parent waits
on (``send``); the parent writes them into its own memory before it goes on
(``receive``).

Only a child of a parent with one thread does this (kernel/fork.py).  A page is the
child's alone not only once the child wrote it but also once the parent wrote its own
copy, and another thread of the parent runs on while the child does (Linux's vfork stops
only the calling thread): the child's copy of such a page would undo that thread's write.
A Go program's os/exec (vfork children, goroutine stacks of 2 KiB sharing pages, threads
running on) died of exactly that.  The calling thread itself waits, and km writes
nothing into the program's memory meanwhile but CLONE_PARENT_SETTID's word, which the
child writes into its own copy too.

What differs from Linux: the writes come back once the child lets go, not as it makes
them; a multithreaded parent gets none of them; a mapping the child made or removed is
not the parent's (docs/known-issues.md).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.errors import GuestError
from kontain.memory.mm import VM_SPECIAL

PAGE = F.PAGE_SIZE
_ENTRY = struct.Struct("<Q")  # a page's guest address; its PAGE bytes follow
# pagemap's top byte: present (bit 63), file page or shared anonymous (61), exclusive (56)
_TOP_MASK, _TOP_OWN = 0xA1, 0x81
_OWN = bytes(1 if b & _TOP_MASK == _TOP_OWN else 0 for b in range(256))  # (bytes.translate)
MAX_PAGES = 1 << 16  # pages sent at most (256 MiB): a child that writes more is not a spawn helper
_CHUNK = 1 << 16


def send(p) -> None:
    """The child's side, at its exec or its end: send the pages it wrote to the parent
    waiting on ``p.vfork_fd`` (if it shares the parent's memory: ``p.vfork_shares``), then
    close it (the parent goes on)."""
    fd, p.vfork_fd = p.vfork_fd, -1
    if not p.vfork_shares:
        os.close(fd)
        return
    try:
        out, sent = [], 0
        for addr in _own_pages(p):
            try:
                data = p.mem.read(addr, PAGE)
            except GuestError:
                continue
            out.append(_ENTRY.pack(addr) + data)
            if len(out) >= 16:
                _write_all(fd, b"".join(out))
                out.clear()
            sent += 1
            if sent >= MAX_PAGES:
                break
        if out:
            _write_all(fd, b"".join(out))
    except OSError:
        pass  # (the parent is gone: nobody waits)
    finally:
        os.close(fd)


def _own_pages(p):
    """The guest addresses of the pages of the process's private mappings that it alone
    maps (module doc)."""
    base = p.mem.base
    try:  # (km's own /proc: the program may have changed its root; a moment below the floor,
        # while no thread of the program runs: at its exec or its end)
        pm = os.open("self/pagemap", os.O_RDONLY | os.O_CLOEXEC, dir_fd=p.procfd)
    except (OSError, ValueError):
        return
    try:
        for v in list(p.mm):
            if v.shared or not v.prot or v.flags & VM_SPECIAL:
                continue
            for start in range(v.start, v.end, _CHUNK * PAGE):
                end = min(v.end, start + _CHUNK * PAGE)
                n = (end - start) // PAGE
                entries = os.pread(pm, 8 * n, (base + start) // PAGE * 8)
                own = entries[7::8].translate(_OWN)
                i = own.find(1)
                while i >= 0:
                    yield start + i * PAGE
                    i = own.find(1, i + 1)
    finally:
        os.close(pm)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def receive(p, task, fd: int) -> None:
    """The parent's side: wait, unkillable but by SIGKILL as on Linux, until the child's
    exec or exit closes the pipe, reading the pages it sends; then put them into this
    process's memory, where it still has a writable private mapping."""
    buf = bytearray(_CHUNK)
    addr = native.address_of(buf)
    got = bytearray()
    # (through Task.blocking: a kick that comes just before the read is not lost, so a
    # pause, a snapshot or gdb never waits for the child instead)
    while True:
        n = task.blocking(0, fd, addr, len(buf))
        if n > 0:
            got += buf[:n]
            continue
        if n in (0, -9):
            break
        task.checkpoint()  # (a kick: a pause or an exec elsewhere)
        task.kicked = False  # (a signal's: it stays pending, for after the wait, as on Linux)
        task.vcpu.set_immediate_exit(False)
    task.kicked = False
    task.vcpu.set_immediate_exit(False)
    size = _ENTRY.size + PAGE
    for at in range(0, len(got) - size + 1, size):
        page = _ENTRY.unpack_from(got, at)[0]
        v = p.mm.find(page)
        if v is None or v.shared or not v.prot & F.PROT_WRITE or v.flags & VM_SPECIAL:
            continue
        try:
            p.mem.write(page, bytes(got[at + _ENTRY.size:at + size]))
        except GuestError:
            pass
