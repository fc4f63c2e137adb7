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
mapped and anonymous in /proc/self/pagemap (bits 63, 56, not 61).  The child sends what
it wrote of such pages of its private mappings, with the address, through the pipe its
parent waits on (``send``); the parent writes it into its own memory before it goes on
(``receive``).

What it wrote depends on the parent's threads.  Linux's vfork stops only the calling
thread: other threads of the parent run on, and write pages that the child's copies of
must not overwrite (a Go program's os/exec, vfork children with goroutine stacks of 2 KiB
sharing pages and threads running on, died of exactly that).  And a page the parent
wrote is the child's alone too (the parent took a copy of its own), whether or not the
child wrote it.
- When the calling thread is the parent's only one, nothing writes the parent's memory
  while the child runs (the caller waits; km writes nothing but CLONE_PARENT_SETTID's
  word, which the child writes into its own copy too): the child sends its own pages
  whole.
- Otherwise the child starts a keeper first (``Keeper``): a copy of itself made before
  anything wrote its memory, which holds the memory as it was at the fork (copy-on-write
  again, so it costs what the child writes).  Its pages are shared with the child's
  until the child writes one, so a page the child alone maps is one the child wrote; and
  the keeper gives the page as it was, so the child sends only the bytes it changed.  A
  byte of the same page that another thread of the parent wrote stays that thread's.
  The keeper is a host clone with no exit signal (kernel/fork.py, ``quiet_fork``): the
  child's own waits, which the program makes, never see it.

What differs from Linux: the writes come back once the child lets go, not as it makes
them; a byte both the child and another thread of the parent wrote is the child's; a
mapping the child made or removed is not the parent's (docs/known-issues.md).
"""

from __future__ import annotations

import _signal  # (the C module: `signal` imports enum, ~2 ms at a program's first fork)
import itertools
import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.errors import GuestError
from kontain.memory.mm import VM_SPECIAL

PAGE = F.PAGE_SIZE
_ENTRY = struct.Struct("<QH")  # the guest address of what the child wrote and its length (at most PAGE); the bytes follow
# pagemap's top byte: present (bit 63), file page or shared anonymous (61), exclusive (56)
_TOP_MASK, _TOP_OWN = 0xA1, 0x81
_OWN = bytes(1 if b & _TOP_MASK == _TOP_OWN else 0 for b in range(256))  # (bytes.translate)
MAX_PAGES = 1 << 16  # pages sent at most (256 MiB): a child that writes more is not a spawn helper
_CHUNK = 1 << 16
_BATCH = 16  # pages asked of the keeper at once
_NONZERO = bytes([0]) + bytes([1]) * 255  # (bytes.translate: which bytes are not 0)
_WALL, _WNOHANG = 0x40000000, 1  # (wait4's __WALL: the keeper has no exit signal)


def send(p) -> None:
    """The child's side, at its exec or its end: send what it wrote to the parent waiting
    on ``p.vfork_fd`` (if it shares the parent's memory: ``p.vfork_shares``), then close
    it (the parent goes on)."""
    fd, p.vfork_fd = p.vfork_fd, -1
    keeper, p.vfork_keeper = p.vfork_keeper, None
    try:
        if p.vfork_shares:
            _send(p, fd, keeper)
    except OSError:
        pass  # (the parent is gone: nobody waits; or the keeper is: what was sent is sent)
    finally:
        if keeper is not None:
            keeper.finish(p)
        os.close(fd)


def _send(p, fd: int, keeper: Keeper | None) -> None:
    pages = _own_pages(p)
    out, size, sent = [], 0, 0
    while sent < MAX_PAGES:
        batch = list(itertools.islice(pages, _BATCH))
        if not batch:
            break
        sent += len(batch)
        olds = keeper.originals(batch) if keeper is not None else [None] * len(batch)
        for addr, old in zip(batch, olds):
            try:
                data = p.mem.read(addr, PAGE)
            except GuestError:
                continue
            for off, piece in _changes(old, data):
                out.append(_ENTRY.pack(addr + off, len(piece)) + piece)
                size += len(piece)
        if size >= _CHUNK:
            _write_all(fd, b"".join(out))
            out, size = [], 0
    if out:
        _write_all(fd, b"".join(out))


def _changes(old: bytes | None, new: bytes):
    """(offset, bytes) of each run of bytes where ``new`` differs from ``old`` (the whole
    page when there is no ``old``): exactly those bytes, none that stayed the same, which
    another thread of the parent may have written meanwhile."""
    if old is None:
        yield 0, new
        return
    if old == new:
        return
    # (the runs found by C: a byte of the XOR is 0 where the page did not change)
    differ = (int.from_bytes(old, "little") ^ int.from_bytes(new, "little")).to_bytes(PAGE, "little").translate(_NONZERO)
    i = differ.find(1)
    while i >= 0:
        j = differ.find(0, i)
        if j < 0:
            j = PAGE
        yield i, new[i:j]
        i = differ.find(1, j)


class Keeper:
    """The guest's memory as it was at the fork, kept by a copy of the vfork child made
    before anything wrote its memory (module doc): the child asks it for the pages it
    wrote, to send only the bytes it changed."""

    def __init__(self, pid: int, ask: int, answers: int):
        self.pid, self.ask, self.answers = pid, ask, answers

    @classmethod
    def start(cls, p) -> Keeper | None:
        """In the vfork child, right after its fork: the keeper, or None when none can be
        made (the child then gives nothing back, as a thread could be undone otherwise)."""
        from kontain.kernel.fork import _above, quiet_fork

        reap(p, block=False)  # (an earlier keeper of this process, once the vfork child it served went on)
        fds: list[int] = []
        try:
            for _ in range(2):
                pair = list(os.pipe2(os.O_CLOEXEC))
                try:
                    while pair:
                        fds.append(_above(p, pair.pop(0)))  # (which closes its argument, also when it fails)
                finally:
                    for fd in pair:
                        os.close(fd)
            ask_r, ask_w, ans_r, ans_w = fds
            parent = os.getpid()
            pid = quiet_fork(p)
        except OSError:
            pid = -1
        if pid == 0:
            _keep(p, parent, ask_r, ans_w)  # (never returns)
        for fd in fds[0::3] if pid > 0 else fds:  # (the child keeps its ends: ask_w, ans_r)
            os.close(fd)
        return cls(pid, ask_w, ans_r) if pid > 0 else None

    def originals(self, addrs: list[int]) -> list[bytes | None]:
        """The pages at ``addrs`` as they were at the fork (None: the keeper could not
        read one, a mapping made since)."""
        _write_all(self.ask, struct.pack(f"<I{len(addrs)}Q", len(addrs), *addrs))
        got = _read_exact(self.answers, len(addrs) * (1 + PAGE))
        if got is None:
            raise OSError("the keeper is gone")
        step = 1 + PAGE
        return [bytes(got[i + 1:i + step]) if got[i] else None for i in range(0, len(got), step)]

    def finish(self, p) -> None:
        """Let the keeper end (it reads the end of its requests), and reap it if it has
        ended, else later (``reap``): the child does not wait for its memory to go."""
        self.drop()
        p.keepers.append(self.pid)
        reap(p, block=False)

    def drop(self) -> None:
        """Close the child's ends (a child of the vfork child: the keeper is not its own)."""
        for fd in (self.ask, self.answers):
            try:
                os.close(fd)
            except OSError:
                pass


def reap(p, block: bool) -> None:
    """Reap the keepers ``p`` told to end (``p.keepers``) that have ended (``block``:
    wait for them: the process is ending, and an orphan would go to a reaper that does
    not know it)."""
    for pid in list(p.keepers):
        r = native.syscall(61, pid, 0, _WALL | (0 if block else _WNOHANG), 0)  # wait4
        if r != 0:  # (reaped, or not this process's child: ECHILD)
            p.keepers.remove(pid)


def _keep(p, parent: int, ask: int, answers: int) -> None:
    """The keeper's life: answer each request with the pages asked for, until the child's
    end of the requests closes (or the child dies: PR_SET_PDEATHSIG).  It runs no guest
    code and holds no descriptor but its two: every other one is closed, so that no pipe
    or socket of the program stays open in it."""
    try:
        native.reset_pid()
        _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
        native.syscall(157, F.PR_SET_PDEATHSIG, 9)  # prctl: SIGKILL when the child ends
        if os.getppid() != parent:
            os._exit(0)
        lo, hi = sorted((ask, answers))
        for first, last in ((0, lo - 1), (lo + 1, hi - 1), (hi + 1, 0xFFFFFFFF)):
            if first <= last:
                native.syscall(436, first, last, 0)  # close_range
        base = p.mem.base
        while True:
            head = _read_exact(ask, 4)
            if head is None:
                break
            n = struct.unpack("<I", head)[0]
            body = _read_exact(ask, 8 * n)
            if body is None:
                break
            out = bytearray()
            for addr in struct.unpack(f"<{n}Q", body):
                data = native.read_mem(base + addr, PAGE)
                out += b"\1" + data if isinstance(data, bytes) else b"\0" + bytes(PAGE)
            _write_all(answers, out)
    finally:
        os._exit(0)


def _read_exact(fd: int, n: int) -> bytearray | None:
    got = bytearray()
    while len(got) < n:
        data = os.read(fd, n - len(got))
        if not data:
            return None
        got += data
    return got


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
    at, n = 0, len(got)
    while at + _ENTRY.size <= n:
        addr, length = _ENTRY.unpack_from(got, at)
        at += _ENTRY.size
        data = bytes(got[at:at + length])
        at += length
        v = p.mm.find(addr)
        if (v is None or v.shared or not v.prot & F.PROT_WRITE or v.flags & VM_SPECIAL or len(data) != length
                or addr + length > v.end):
            continue
        try:
            p.mem.write(addr, data)
        except GuestError:
            pass
