"""Core files of the guest program (``km --core``), in the ELF core format gdb reads.

The host's own core dump of km would show a Python interpreter; what a user wants is the
program's: its registers at the fatal signal and its memory.  This writes what Linux's
ELF core writer writes for a single thread:

- a PT_NOTE segment with NT_PRSTATUS (signal, ids, the general registers),
  NT_PRPSINFO (state, name, arguments), NT_SIGINFO, NT_AUXV and NT_FPREGSET (the
  x87/SSE state, from the vCPU's XSAVE area);
- one PT_LOAD per mapping of the guest, its readable contents in the file (all-zero
  pages left as holes, so a sparse heap costs no disk).

Every thread is in the file (an NT_PRSTATUS and NT_FPREGSET each), the one that received
the fatal signal first, as Linux orders them: the others are stopped first
(``Process.stop_others``), each wherever it was (``Task.user_context``).  ``gdb
PROGRAM core.PID`` then shows the backtrace, registers and variables as for a native
core, and ``info threads`` every thread.
"""

from __future__ import annotations

import os
import struct

ET_CORE, EM_X86_64 = 4, 62
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4
NT_PRSTATUS, NT_FPREGSET, NT_PRPSINFO, NT_AUXV = 1, 2, 3, 6
NT_SIGINFO = 0x53494749
PAGE = 4096
CHUNK = 1 << 20
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
# user_regs_struct, the order of elf_gregset_t
GREGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
         "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs")
_USER_CS, _USER_SS = 0x33, 0x2B


def _note(kind: int, desc: bytes, name: bytes = b"CORE") -> bytes:
    name += b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def prstatus(sig: int, pid: int, ppid: int, pgrp: int, sid: int, regs: dict[str, int], sigpend: int,
             sighold: int) -> bytes:
    """struct elf_prstatus (336 bytes on x86-64)."""
    head = struct.pack("<iiih2xQQiiii", sig, 0, 0, sig, sigpend, sighold, pid, ppid, pgrp, sid)
    times = bytes(64)  # utime, stime, cutime, cstime
    greg = struct.pack("<27Q", *(regs.get(r, 0) & 0xFFFFFFFFFFFFFFFF for r in GREGS))
    return head + times + greg + struct.pack("<i4x", 1)  # pr_fpvalid


def prpsinfo(pid: int, ppid: int, pgrp: int, sid: int, uid: int, gid: int, name: bytes, args: bytes) -> bytes:
    """struct elf_prpsinfo (136 bytes on x86-64)."""
    return struct.pack("<bcbb4xQIIiiii16s80s", 0, b"R", 0, 0, 0, uid, gid, pid, ppid, pgrp, sid,
                       name[:15], args[:79])


def native_path(process, sig: int) -> tuple[str | None, int | None]:
    """Where Linux would write this program's core, and how much of it (RLIMIT_CORE):
    (None, None) when it would write none (RLIMIT_CORE 0, the program made itself not
    dumpable, or core_pattern pipes cores to a program, which km does not run)."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_CORE)[0]
    if soft == 0 or not process.confinement.dumpable:
        return None, None
    try:
        with open("/proc/sys/kernel/core_pattern", "rb") as f:
            pattern = f.read().strip() or b"core"
        with open("/proc/sys/kernel/core_uses_pid", "rb") as f:
            uses_pid = f.read().strip() == b"1"
    except OSError:
        pattern, uses_pid = b"core", False
    if pattern.startswith(b"|"):
        return None, None
    path = expand_pattern(pattern, process, sig, uses_pid)
    return os.fsdecode(path), None if soft == resource.RLIM_INFINITY else soft


def expand_pattern(pattern: bytes, process, sig: int, uses_pid: bool) -> bytes:
    """core_pattern's specifiers, as Linux's format_corename expands them."""
    import socket
    import time

    pid = os.getpid()
    name = os.path.basename(process.path.encode() if isinstance(process.path, str) else process.path)[:15]
    values = {b"%": b"%", b"p": b"%d" % pid, b"P": b"%d" % pid, b"i": b"%d" % pid, b"I": b"%d" % pid,
              b"u": b"%d" % os.getuid(), b"g": b"%d" % os.getgid(), b"s": b"%d" % sig,
              b"t": b"%d" % int(time.time()), b"h": socket.gethostname().encode(), b"e": name.replace(b"/", b"!"),
              b"E": process.exe_path.replace(b"/", b"!"), b"d": b"%d" % process.confinement.dumpable}
    out = bytearray()
    i = 0
    seen_pid = False
    while i < len(pattern):
        c = pattern[i:i + 1]
        if c == b"%" and i + 1 < len(pattern):
            spec = pattern[i + 1:i + 2]
            seen_pid |= spec == b"p"
            out += values.get(spec, b"")
            i += 2
        else:
            out += c
            i += 1
    if uses_pid and not seen_pid:
        out += b".%d" % pid
    return bytes(out)


def write(process, task, sig: int, info: bytes, ctx, path: str, limit: int | None = None,
          others: list | None = None) -> None:
    """Write the core file of ``process`` killed by ``sig`` in ``task`` (context ``ctx``);
    at most ``limit`` bytes of it (RLIMIT_CORE: Linux stops there).  ``others``: the
    other threads, stopped, with their contexts ((task, ctx) pairs)."""
    pid = os.getpid()
    ppid, pgrp, sid = os.getppid(), os.getpgrp(), os.getsid(0)
    notes = _thread_status(task, ctx, sig, ppid, pgrp, sid)
    argv = process.argv
    notes += _note(NT_PRPSINFO, prpsinfo(pid, ppid, pgrp, sid, os.getuid(), os.getgid(),
                                         os.path.basename(argv[0]) if argv else b"", b" ".join(argv)))
    notes += _note(NT_SIGINFO, info)
    notes += _note(NT_AUXV, process.auxv_bytes)
    notes += _fpregs(task)
    for t, t_ctx in others or ():
        notes += _thread_status(t, t_ctx, sig, ppid, pgrp, sid) + _fpregs(t)
    vmas = [v for v in process.mm if not v.name.startswith("[vvar")]
    phoff = _EHDR.size
    offset = phoff + _PHDR.size * (1 + len(vmas))
    note_off = offset
    offset = (offset + len(notes) + PAGE - 1) & ~(PAGE - 1)
    phdrs = [_PHDR.pack(PT_NOTE, 0, note_off, 0, 0, len(notes), 0, 4)]
    placed = []
    for v in vmas:
        size = v.end - v.start
        readable = bool(v.prot & 1) and not v.dontdump  # (MADV_DONTDUMP: no contents, as Linux)
        flags = (PF_R if v.prot & 1 else 0) | (PF_W if v.prot & 2 else 0) | (PF_X if v.prot & 4 else 0)
        phdrs.append(_PHDR.pack(PT_LOAD, flags, offset, v.start, 0, size if readable else 0, size, PAGE))
        if readable:
            placed.append((v.start, size, offset))
            offset += size
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = _EHDR.pack(ident, ET_CORE, EM_X86_64, 1, 0, phoff, 0, 0, _EHDR.size, _PHDR.size, len(phdrs), 64, 0, 0)
    # (no symlink followed, as Linux's core writer)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, ehdr + b"".join(phdrs) + notes, 0)
        for start, size, off in placed:
            if limit is not None and off >= limit:
                break
            _copy(process.mem, fd, start, size, off, process.rewriter)
        os.ftruncate(fd, offset if limit is None else min(offset, limit))
    finally:
        os.close(fd)


def _thread_status(task, ctx, sig: int, ppid: int, pgrp: int, sid: int) -> bytes:
    """One thread's NT_PRSTATUS (pr_pid: its thread id, as Linux writes it)."""
    regs = dict(ctx.regs)
    regs.update(eflags=ctx.rflags, orig_rax=0xFFFFFFFFFFFFFFFF, cs=_USER_CS, ss=_USER_SS,
                fs_base=task.segment_base("fs"), gs_base=task.user_segment_base("gs"))
    pend = task.pending.mask | task.shared.mask
    return _note(NT_PRSTATUS, prstatus(sig, task.tid, ppid, pgrp, sid, regs, pend, task.sigmask))


def _fpregs(task) -> bytes:
    try:
        return _note(NT_FPREGSET, bytes(task.vcpu.get_xsave()[:512]))
    except Exception:  # (the general registers are what matters most)
        return b""


_ZERO = bytes(CHUNK)


def _copy(mem, fd: int, start: int, size: int, off: int, rewriter=None) -> None:
    """Guest memory [start, start+size) to the file at ``off``, leaving zero pages as
    holes; pages that cannot be read (a file mapping past its end) stay holes too.
    Rewritten syscall sites are written as they were (``rewriter``, kernel/rewrite.py)."""
    done = 0
    while done < size:
        n = min(CHUNK, size - done)
        try:
            chunk = mem.read(start + done, n)
        except Exception:
            chunk = b"".join(_page_or_zero(mem, start + done + i) for i in range(0, n, PAGE))
        if rewriter is not None:
            chunk = rewriter.original(start + done, chunk)
        if chunk != _ZERO[:n]:
            for i in range(0, n, PAGE):
                page = chunk[i:i + PAGE]
                if page != _ZERO[:len(page)]:
                    os.pwrite(fd, page, off + done + i)
        done += n


def _page_or_zero(mem, addr: int) -> bytes:
    try:
        return mem.read(addr, PAGE)
    except Exception:
        return bytes(PAGE)
