"""The process and its threads: exit, thread ids, robust lists, arch_prctl, prctl,
personality, and signals sent to itself."""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import E2BIG, EINTR, EINVAL, ENODEV, ENOSYS, EPERM, ESRCH
from kontain.abi.signals import SIGINFO_SIZE, siginfo
from kontain.abi.structs import clone_args, robust_list_head
from kontain.errors import GuestError, ProcessExit
from kontain.memory.window import USER_LIMIT
from kontain.syscalls.common import passthrough, s32, u32, u64

SYS_kill, SYS_prctl, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo = 62, 157, 200, 234, 129, 297
_CANONICAL_LIMIT = 1 << 47


def exit_group(t, status, *_):
    raise ProcessExit(status=status & 0xFF)


def exit(t, status, *_):
    t.process.exit_thread(t, status)  # the last thread leaving ends the process
    return 0


def set_tid_address(t, addr, *_):
    t.clear_child_tid = u64(addr)
    return t.tid


def set_robust_list(t, head, length, *_):
    if u64(length) != robust_list_head.size:
        raise GuestError(EINVAL)
    t.robust_list = (u64(head), robust_list_head.size)
    return 0


def get_robust_list(t, pid, head_ptr, len_ptr, *_):
    pid = s32(pid)
    if pid not in (0, t.tid):
        task = t.process.tasks.get(pid)
        if task is None:
            raise GuestError(ESRCH)
    else:
        task = t
    t.mem.write_u64(head_ptr, task.robust_list[0])
    t.mem.write_u64(len_ptr, task.robust_list[1])
    return 0


def arch_prctl(t, code, addr, *_):
    code = s32(code)
    if code in (F.ARCH_SET_FS, F.ARCH_SET_GS):
        addr = u64(addr)
        if addr >= _CANONICAL_LIMIT:
            raise GuestError(EPERM)
        t.set_segment_base("fs" if code == F.ARCH_SET_FS else "gs", addr)
        return 0
    if code in (F.ARCH_GET_FS, F.ARCH_GET_GS):
        t.mem.write_u64(addr, t.segment_base("fs" if code == F.ARCH_GET_FS else "gs"))
        return 0
    if code == F.ARCH_GET_CPUID:
        return 1  # CPUID is not faulting
    if code == F.ARCH_SET_CPUID:
        raise GuestError(ENODEV)
    if code in (F.ARCH_GET_XCOMP_SUPP, F.ARCH_GET_XCOMP_PERM):
        t.mem.write_u64(addr, t.process.xcr0)
        return 0
    raise GuestError(EINVAL)


# prctl options the host can apply to km's thread exactly as to the program's
_PRCTL_PASS = {F.PR_SET_PDEATHSIG, F.PR_GET_PDEATHSIG, F.PR_GET_DUMPABLE, F.PR_SET_DUMPABLE, F.PR_CAPBSET_READ,
               F.PR_GET_TIMERSLACK, F.PR_SET_TIMERSLACK, F.PR_SET_NO_NEW_PRIVS, F.PR_GET_NO_NEW_PRIVS,
               F.PR_GET_THP_DISABLE, F.PR_SET_THP_DISABLE}


def prctl(t, option, arg2, arg3, arg4, arg5, *_):
    option = s32(option)
    if option in _PRCTL_PASS:
        pointer = option == F.PR_GET_PDEATHSIG
        return native.syscall(SYS_prctl, option, t.mem.host(arg2, 4) if pointer else arg2, arg3, arg4, arg5)
    if option == F.PR_SET_NAME:  # the thread's name: ps and top show it for km's thread
        name = t.mem.cstr(arg2, 4096)[:15] + b"\0"
        return native.syscall(SYS_prctl, option, native.address_of(bytearray(name)), 0, 0, 0)
    if option == F.PR_GET_NAME:
        host = t.mem.host(arg2, 16)
        return native.syscall(SYS_prctl, option, host, 0, 0, 0)
    if option == F.PR_SET_VMA:
        return 0  # naming anonymous memory: nothing to do
    if option == F.PR_GET_SECCOMP:
        return 0
    # PR_SET_SECCOMP and the rest: a seccomp filter would bind the monitor itself
    raise GuestError(EINVAL)


def personality(t, persona, *_):
    persona = u32(persona)
    old = t.process.personality
    if persona != 0xFFFFFFFF:
        t.process.personality = persona
    return old


def rseq(t, *_):
    raise GuestError(ENOSYS)


def kill(t, pid, sig, *_):
    pid, sig = s32(pid), s32(sig)
    if sig < 0 or sig > S.NSIG:
        raise GuestError(EINVAL)
    if pid == os.getpid():
        if sig:
            t.process.post(sig, siginfo(sig, S.SI_USER, pid=os.getpid(), uid=os.getuid()))
        return 0
    # 0, -1 and -pgrp include this process: the host delivers to km, which posts the
    # signal to the program through its signal thread
    return native.syscall(SYS_kill, pid, sig)


def _to_thread(t, tid: int, sig: int, info: bytes | None = None) -> int:
    target = t.process.tasks.get(tid)
    if target is None:
        raise GuestError(ESRCH)
    if sig:
        t.process.post(sig, info or siginfo(sig, S.SI_TKILL, pid=os.getpid(), uid=os.getuid()), task=target)
    return 0


def tkill(t, tid, sig, *_):
    tid, sig = s32(tid), s32(sig)
    if tid <= 0 or sig < 0 or sig > S.NSIG:
        raise GuestError(EINVAL)
    if tid in t.process.tasks:
        return _to_thread(t, tid, sig)
    return native.syscall(SYS_tkill, tid, sig)


def tgkill(t, tgid, tid, sig, *_):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    if tid <= 0 or tgid <= 0 or sig < 0 or sig > S.NSIG:
        raise GuestError(EINVAL)
    if tgid == os.getpid():
        return _to_thread(t, tid, sig)
    return native.syscall(SYS_tgkill, tgid, tid, sig)


def _queued_info(t, sig: int, uinfo: int, to_self: bool) -> bytes:
    info = bytearray(t.mem.read(uinfo, SIGINFO_SIZE))
    code = struct.unpack_from("<i", info, 8)[0]
    if code >= 0 and not to_self:
        raise GuestError(EPERM)  # only the kernel may send positive codes to others
    struct.pack_into("<i", info, 0, sig)
    return bytes(info)


def rt_sigqueueinfo(t, tgid, sig, uinfo, *_):
    tgid, sig = s32(tgid), s32(sig)
    if sig <= 0 or sig > S.NSIG:
        raise GuestError(EINVAL)
    if tgid == os.getpid():
        t.process.post(sig, _queued_info(t, sig, uinfo, True))
        return 0
    return native.syscall(SYS_rt_sigqueueinfo, tgid, sig, native.address_of(bytearray(_queued_info(t, sig, uinfo, False))))


def rt_tgsigqueueinfo(t, tgid, tid, sig, uinfo, *_):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    if sig <= 0 or sig > S.NSIG or tid <= 0:
        raise GuestError(EINVAL)
    if tgid == os.getpid():
        return _to_thread(t, tid, sig, _queued_info(t, sig, uinfo, True))
    return native.syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig,
                          native.address_of(bytearray(_queued_info(t, sig, uinfo, False))))


# -- threads -------------------------------------------------------------------------
_THREAD_FLAGS = F.CLONE_VM | F.CLONE_FS | F.CLONE_FILES | F.CLONE_SIGHAND | F.CLONE_THREAD | F.CLONE_SYSVSEM | \
    F.CLONE_SETTLS | F.CLONE_PARENT_SETTID | F.CLONE_CHILD_CLEARTID | F.CLONE_CHILD_SETTID | F.CLONE_DETACHED
_NEEDED = F.CLONE_VM | F.CLONE_SIGHAND | F.CLONE_THREAD


# (CLONE_IO: the child's I/O context, nothing to share between two km processes;
# CLONE_SYSVSEM: SysV semaphores, which km does not have; CLONE_DETACHED: ignored by Linux)
_FORK_FLAGS = F.CSIGNAL | F.CLONE_VFORK | F.CLONE_VM | F.CLONE_PARENT_SETTID | F.CLONE_CHILD_SETTID | \
    F.CLONE_CHILD_CLEARTID | F.CLONE_SETTLS | F.CLONE_FS | F.CLONE_PTRACE | F.CLONE_UNTRACED | F.CLONE_IO | \
    F.CLONE_SYSVSEM | F.CLONE_DETACHED


def _clone(t, flags: int, stack: int, ptid: int, ctid: int, tls: int) -> int:
    if flags & F.CLONE_THREAD and not flags & F.CLONE_SIGHAND or flags & F.CLONE_SIGHAND and not flags & F.CLONE_VM:
        raise GuestError(EINVAL)
    if flags & F.CLONE_THREAD:
        if flags & _NEEDED != _NEEDED or flags & ~(_THREAD_FLAGS | F.CSIGNAL):
            raise GuestError(EINVAL)
        return t.process.clone_thread(t, flags, stack, ptid, ctid, tls)
    # a new process: the monitor forks.  Memory cannot be shared with another process,
    # so CLONE_VM is only accepted with CLONE_VFORK (the child execs or exits).
    if flags & F.CLONE_VM and not flags & F.CLONE_VFORK or flags & ~_FORK_FLAGS:
        raise GuestError(EINVAL)
    return t.process.fork(t, flags, stack, ptid, ctid)


def fork(t, *_):
    return _clone(t, S.SIGCHLD, 0, 0, 0, 0)


def vfork(t, *_):
    return _clone(t, F.CLONE_VM | F.CLONE_VFORK | S.SIGCHLD, 0, 0, 0, 0)


def _exec(t, path: str, argv_addr: int, envp_addr: int) -> int:
    # Linux opens the program before it reads argv and envp: a missing or unrunnable
    # program is ENOENT or EACCES even when argv is a bad pointer (the headers, ENOEXEC,
    # come after argv, in Process.execve)
    from kontain.loader.load import ExecError, open_program

    try:
        fd, _head, _size = open_program(path)
    except ExecError as e:
        raise GuestError(e.errno) from None
    os.close(fd)
    argv = t.mem.cstr_array(argv_addr)
    envp = t.mem.cstr_array(envp_addr)
    if not argv:
        argv = [b""]  # as Linux since 5.18: an empty argv gets an empty argv[0]
    t.process.execve(t, path, argv, envp)
    return 0


def _exec_path(t, addr: int) -> str:
    name = t.mem.cstr(addr)
    if t.process.procfs.name(name) == b"exe":
        return os.fsdecode(t.process.exe_path)
    return os.fsdecode(name)


def execve(t, path, argv, envp, *_):
    return _exec(t, _exec_path(t, path), argv, envp)


AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = F.AT_EMPTY_PATH, F.AT_SYMLINK_NOFOLLOW


def execveat(t, dfd, path, argv, envp, flags, *_):
    dfd, flags = s32(dfd), s32(flags)
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise GuestError(EINVAL)
    name = t.mem.cstr(path)
    if not name and flags & AT_EMPTY_PATH:  # fexecve: the descriptor itself
        target = f"/proc/self/fd/{t.fds.check(dfd)}"
    elif name.startswith(b"/") or dfd == F.AT_FDCWD:
        target = _exec_path(t, path)
    else:
        target = f"/proc/self/fd/{t.fds.check(dfd)}/{os.fsdecode(name)}"
    return _exec(t, target, argv, envp)


def _register(value: int) -> int:
    """A 64-bit value as a vCPU register holds it (signed): the child's stack pointer is
    whatever the program passed, a kernel address or a non-canonical one included; the
    child faults when it uses it, as on Linux."""
    value = u64(value)
    return value - (1 << 64) if value >> 63 else value


def clone(t, flags, stack, ptid, ctid, tls, *_):
    return _clone(t, u64(flags), _register(stack), u64(ptid), u64(ctid), u64(tls))


CLONE_ARGS_SIZE_VER0 = 64


def clone3(t, uargs, size, *_):
    size = u64(size)
    if size > 4096:
        raise GuestError(E2BIG)  # as Linux: past a page, E2BIG (not EINVAL)
    if size < CLONE_ARGS_SIZE_VER0:
        raise GuestError(EINVAL)
    raw = t.mem.read(uargs, size).ljust(clone_args.size, b"\0")
    if any(raw[clone_args.size:]):
        raise GuestError(E2BIG)  # fields this kernel does not know
    a = dict(zip(clone_args.names, clone_args.unpack(raw[:clone_args.size])))
    if a["set_tid"] or a["set_tid_size"] or a["cgroup"]:
        raise GuestError(EINVAL)
    # as Linux's clone3_stack_valid: both or neither, and a range of user addresses
    stack, size = a["stack"], a["stack_size"]
    if bool(stack) != bool(size) or stack and (stack + size > USER_LIMIT):
        raise GuestError(EINVAL)
    stack = stack + size if stack else 0
    if a["exit_signal"] & ~F.CSIGNAL or a["exit_signal"] > S.NSIG:
        raise GuestError(EINVAL)
    return _clone(t, a["flags"] | (a["exit_signal"] & F.CSIGNAL), stack, a["parent_tid"], a["child_tid"], a["tls"])


# -- wait ------------------------------------------------------------------------
#
# On Linux a child's exit makes it a zombie after its SIGCHLD is queued, so the signal
# is delivered on the way out of the wait4 that reaps it, and a parent blocked in wait4
# always reaps the child before its handler runs.  Here the host SIGCHLD goes through the
# signal thread: when a wait reports a child, the monitor collects the SIGCHLD itself so
# that it is delivered now, not in the middle of the program's next call; and a wait
# interrupted by the kick of a SIGCHLD looks once more with WNOHANG.

_wait4 = passthrough(61, "i p4 i p144")
_waitid = passthrough(247, "i i p128 i p144")


def wait4(t, pid, status, options, rusage, *_):
    r = _wait4(t, pid, status, options, rusage)
    if r == -EINTR and not options & F.WNOHANG:
        again = _wait4(t, pid, status, options | F.WNOHANG, rusage)
        r = again if again > 0 else r
    if r > 0:
        t.process.host_signals.child_reported(r)
    return r


def waitid(t, idtype, id_, infop, options, rusage, *_):
    r = _waitid(t, idtype, id_, infop, options, rusage)
    found = infop and r == 0 and t.mem.read(infop, 4) != b"\0\0\0\0"  # si_signo is set for a child
    if r == -EINTR and not options & F.WNOHANG and infop:
        again = _waitid(t, idtype, id_, infop, options | F.WNOHANG, rusage)
        found = again == 0 and t.mem.read(infop, 4) != b"\0\0\0\0"
        r = 0 if found else r
    if found:
        t.process.host_signals.child_reported(int.from_bytes(t.mem.read(infop + 16, 4), "little"))
    return r
