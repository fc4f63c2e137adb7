"""execve inside the same monitor: the program is replaced, the VM and the process stay.

Everything that can fail is checked first (the file, its `#!` line, its ELF headers and
its interpreter): until then exec returns an error to the old program, as Linux does.
Past that point the other threads end, the address space is emptied, close-on-exec
descriptors are closed, caught signals go back to SIG_DFL, the alternate signal stack is
forgotten, and the new program is loaded into the same VM with a fresh stack and a
fresh vCPU state.  Re-executing km itself would cost a Python start-up (~30 ms) per exec.
"""

from __future__ import annotations

import os

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import E2BIG
from kontain.arch.x86_64 import cpu
from kontain.errors import GuestError
from kontain.kernel.task import DIRECT
from kontain.loader.exec import resolve_exec
from kontain.loader.load import ExecError

FD_CLOEXEC = 1
MAX_ARG_STRLEN = 32 * 4096  # Linux's limit on one argument or environment string
ARG_MAX = 32 * 4096
_PAGE = 4096


def execve(p, task, path: str, argv_addr: int, envp_addr: int, comm: bytes, nofollow: bool = False) -> None:
    """``argv_addr`` and ``envp_addr``: the program's NULL-terminated string arrays;
    ``comm``: the name the thread takes (the base name of the file as the program named
    it); ``nofollow``: a symlink is not followed (ELOOP), execveat's AT_SYMLINK_NOFOLLOW."""
    # As Linux: the file first (ENOENT, EACCES...), then the strings (EFAULT, E2BIG)
    try:
        prog = resolve_exec(path, [_ARGV0], p.spec.window, opener=lambda path: _open(p, path),
                            first_opener=(lambda path: _open(p, path, F.O_NOFOLLOW)) if nofollow else None)
    except ExecError as e:
        raise GuestError(e.errno) from None
    try:
        argv, envp = exec_strings(task.mem, argv_addr, envp_addr, _stack_limit())
    except GuestError:
        os.close(prog.fd)
        raise
    if not argv:
        argv = [b""]  # as Linux since 5.18: an empty argv gets an empty argv[0]
    # after `#!` lines, the interpreters and the script's path come first, then argv[1:]
    prog.argv = argv if prog.argv == [_ARGV0] else prog.argv + argv[1:]
    # -- the point of no return ---------------------------------------------------------
    if len(p.tasks) > 1:
        p.zap_threads(task)
    task.exit_thread()  # robust futexes, clear_child_tid (a vfork parent may wait on it)
    task.clear_child_tid = 0
    task.robust_list = (0, 0)
    if p.vfork_fd >= 0:  # a vfork child lets its parent go, with what it wrote (kernel/vforkmem.py)
        from kontain.kernel import vforkmem

        vforkmem.send(p)
    if p.parent_link:
        from kontain.kernel import fork

        fork.execed(p)  # (the parent's setpgid of it is EACCES from now on)
    # the old program's slots go and the new one's come in one batch (memory/slots.py):
    # registered at its end, neighbours merged, so fewer KVM slot changes
    p.slots.begin_batch()
    try:
        entry, sp = _replace_program(p, task, prog, path, envp, comm)
    finally:
        p.slots.end_batch()
    vcpu = task.vcpu
    vcpu.set_sregs(cpu.user_sregs(vcpu.get_sregs(), vcpu.id, p.gs_base(vcpu.id)))  # FS 0, GS 0 or km's; user mode
    vcpu.set_xsave(p.init_xsave)
    cpu.enter(vcpu, entry, sp)
    task.stop = DIRECT  # registers are final: not a syscall's result


def _replace_program(p, task, prog, path: str, envp: list[bytes], comm: bytes) -> tuple[int, int]:
    """The old program out, the new one in: (entry, stack pointer)."""
    for v in list(p.mm):
        p.mm.unmap_range(v.start, v.end)
    if p.forked:
        import gc

        gc.unfreeze()  # (frozen at the fork, kernel/fork.py: the old program's cycles may go now)
    if p.rewriter is not None:
        p.rewriter.reset()  # (before the GS base below: the new program's is km's again)
    _close_on_exec(p, keep=prog.fd)
    p.actions.reset_for_exec()
    p.confinement.dumpable = 1  # as execve makes it (SUID_DUMP_USER)
    p.timers.delete_all()
    p.aio = None  # (the rings went with the old program's memory)
    task.altstack = (0, S.SS_DISABLE, 0)
    task.saved_mask = None
    task.gs_own = False
    p.name = path
    return p._load(prog.path, prog.argv, envp, prog.fd, prog.head, prog.size, opener=lambda path: _open(p, path),
                   comm=comm)


_ARGV0 = object()  # argv[0] before the program's strings are read (resolve_exec may replace it)


def _stack_limit() -> int:
    """How much argument and environment strings (and their pointers) execve accepts:
    Linux's bprm_stack_limits, a quarter of RLIMIT_STACK, at most 6 MiB (3/4 of
    _STK_LIM), at least ARG_MAX (128 KiB)."""
    import resource

    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    limit = 6 << 20 if soft == resource.RLIM_INFINITY else min(6 << 20, soft // 4)
    return max(limit, ARG_MAX)


def exec_strings(mem, argv_addr: int, envp_addr: int, limit: int) -> tuple[list[bytes], list[bytes]]:
    """argv and envp of an execve, read as Linux reads them (copy_strings): the pointer
    arrays first, then each string, every one at most MAX_ARG_STRLEN and all of them,
    with their pointers, within ``limit`` (E2BIG otherwise), so that no program makes
    km copy more than Linux would."""
    argv_ptrs = _pointers(mem, argv_addr, limit)
    envp_ptrs = _pointers(mem, envp_addr, limit)
    left = limit - 8 * (max(len(argv_ptrs), 1) + len(envp_ptrs))
    if left <= 0:
        raise GuestError(E2BIG)
    out = []
    pages = _Pages(mem)
    for ptrs in (envp_ptrs, argv_ptrs):
        strings = []
        for ptr in ptrs:
            s = pages.cstr(ptr, MAX_ARG_STRLEN + 1, E2BIG)
            left -= len(s) + 1
            if len(s) + 1 > MAX_ARG_STRLEN or left < 0:
                raise GuestError(E2BIG)
            strings.append(s)
        out.append(strings)
    envp, argv = out
    return argv, envp


class _Pages:
    """The strings of an execve, read a page at a time, each page once: they mostly lie
    side by side in a page or two (on the stack, or where posix_spawn put them), and a
    read of each string on its own cost one host call apiece (~40 for an environment
    of ~40 strings, up to 0.1 ms each on a loaded host)."""

    def __init__(self, mem) -> None:
        self.mem = mem
        self.pages: dict[int, bytes] = {}

    def cstr(self, addr: int, limit: int, too_long: int) -> bytes:
        """As GuestMemory.cstr: EFAULT at a bad page before the NUL, ``too_long``
        without a NUL within ``limit`` bytes."""
        out = b""
        while len(out) < limit:
            at = addr + len(out)
            page = at & ~(_PAGE - 1)
            data = self.pages.get(page)
            if data is None:
                if len(self.pages) >= 64:
                    self.pages.clear()  # (a long argument: no need to keep all of it)
                data = self.pages[page] = self.mem.read(page, _PAGE)
            data = data[at - page:at - page + limit - len(out)]
            nul = data.find(b"\0")
            if nul >= 0:
                return out + data[:nul]
            out += data
        raise GuestError(too_long)


def _pointers(mem, addr: int, limit: int) -> list[int]:
    """A NULL-terminated pointer array: E2BIG as soon as its pointers alone would not fit."""
    out: list[int] = []
    if addr == 0:
        return out
    while True:
        # up to the end of the page at a time (the array may end at a page's end, with
        # nothing mapped after it), at most 64 pointers: one host read instead of one each
        at = addr + 8 * len(out)
        n = _PAGE - at % _PAGE
        n = 8 if n < 8 else min(n - n % 8, 512)
        chunk = mem.read(at, n)
        for i in range(0, n, 8):
            p = int.from_bytes(chunk[i:i + 8], "little")
            if p == 0:
                return out
            out.append(p)
            if 8 * len(out) >= limit:
                raise GuestError(E2BIG)


def _open(p, path: str, flags: int = 0) -> int:
    """The program's exec opens its file (and interpreter) as its open would
    (kernel/paths.py): never a file of the monitor's."""
    buf = bytearray(os.fsencode(path) + b"\0")
    # O_NONBLOCK, O_NOCTTY: a FIFO is refused at once, no terminal is taken (loader/load.py)
    how = F.O_RDONLY | F.O_CLOEXEC | F.O_LARGEFILE | F.O_NONBLOCK | F.O_NOCTTY | flags
    return p.opener.open(F.AT_FDCWD, native.address_of(buf), how, 0)


def _close_on_exec(p, keep: int) -> None:
    """Close the program's close-on-exec descriptors (the host does not exec, so the
    monitor does what the host's execve would)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(p.fds.floor))
    for fd in fds:
        if fd >= p.fds.floor or fd == keep:
            continue
        flags = native.syscall(72, fd, 1, 0)  # fcntl(F_GETFD)
        if flags > 0 and flags & FD_CLOEXEC:
            os.close(fd)
