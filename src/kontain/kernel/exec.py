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
from kontain.abi import signals as S
from kontain.arch.x86_64 import cpu
from kontain.errors import GuestError
from kontain.kernel.task import DIRECT
from kontain.loader.exec import resolve_exec
from kontain.loader.load import ExecError

FD_CLOEXEC = 1


def execve(p, task, path: str, argv: list[bytes], envp: list[bytes]) -> None:
    try:
        prog = resolve_exec(path, argv, p.config.window, opener=lambda path: _open(p, path))
    except ExecError as e:
        raise GuestError(e.errno) from None
    # -- the point of no return ---------------------------------------------------------
    if len(p.tasks) > 1:
        p.zap_threads(task)
    task.exit_thread()  # robust futexes, clear_child_tid (a vfork parent may wait on it)
    task.clear_child_tid = 0
    task.robust_list = (0, 0)
    if p.vfork_fd >= 0:
        os.close(p.vfork_fd)
        p.vfork_fd = -1
    for v in list(p.mm):
        p.mm.unmap_range(v.start, v.end)
    _close_on_exec(p, keep=prog.fd)
    p.actions.reset_for_exec()
    p.confinement.dumpable = 1  # as execve makes it (SUID_DUMP_USER)
    p.timers.delete_all()
    task.altstack = (0, S.SS_DISABLE, 0)
    task.saved_mask = None
    entry, sp = p._load(prog.path, prog.argv, envp, prog.fd, prog.head, prog.size, opener=lambda path: _open(p, path))
    p.name = path
    vcpu = task.vcpu
    vcpu.set_sregs(cpu.user_sregs(vcpu.get_sregs(), vcpu.id))  # FS and GS bases 0; user mode
    vcpu.set_xsave(p.init_xsave)
    cpu.enter(vcpu, entry, sp)
    task.stop = DIRECT  # registers are final: not a syscall's result


def _open(p, path: str) -> int:
    """The program's exec opens its file (and interpreter) as its open would
    (kernel/paths.py): never a file of the monitor's."""
    from kontain.abi import flags as F

    buf = bytearray(os.fsencode(path) + b"\0")
    return p.opener.open(F.AT_FDCWD, native.address_of(buf), F.O_RDONLY | F.O_CLOEXEC | F.O_LARGEFILE, 0)


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
