"""The process and its threads: exit, thread ids, robust lists, arch_prctl, prctl,
personality, and signals sent to itself."""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import E2BIG, EACCES, EBADF, EINTR, EINVAL, ENODEV, ENOENT, ENOSYS, EPERM, ERESTARTNOINTR, ESRCH
from kontain.abi.signals import SIGINFO_SIZE, siginfo
from kontain.abi.structs import clone_args, prctl_mm_map, robust_list_head
from kontain.arch.x86_64 import hostcode
from kontain.errors import GuestError, ProcessExit
from kontain.kernel.fdtable import NEVER_OPEN
from kontain.memory.window import USER_LIMIT
from kontain.syscalls.common import passthrough, s32, u32, u64

SYS_kill, SYS_prctl, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo = 62, 157, 200, 234, 129, 297
SYS_capget, SYS_readlinkat, SYS_fcntl, SYS_pidfd_send_signal = 125, 267, 72, 424
PIDFD_SIGNAL_PROCESS_GROUP = 4  # <linux/pidfd.h>
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CANONICAL_LIMIT = 1 << 47


def exit_group(t, status, *_):
    raise ProcessExit(status=status & 0xFF)


def exit(t, status, *_):
    t.process.exit_thread(t, status)  # the last thread leaving ends the process
    return 0


def gettid(t, *_):
    """The calling thread's id (guest tid = host tid), from the task: served by the
    polling tier's thread, a host gettid would be that thread's."""
    return t.tid


def set_tid_address(t, addr, *_):
    t.clear_child_tid = u64(addr)
    return t.tid


def set_robust_list(t, head, length, *_):
    if u64(length) != robust_list_head.size:
        raise GuestError(EINVAL)
    t.robust_list = (u64(head), robust_list_head.size)
    return 0


def get_robust_list(t, pid, head_ptr, len_ptr, *_):
    """A thread's robust list: one of the program's.  Another process's lives in its own
    km, out of reach: EPERM, as Linux answers a caller its ptrace rules refuse (ESRCH when
    there is no such task, km's own threads included)."""
    pid = s32(pid)
    if pid in (0, t.tid):
        task = t
    else:
        task = t.process.tasks.get(pid)
        if task is None:
            raise GuestError(EPERM if t.process.procfs.task_known(pid) else ESRCH)
    t.mem.write_u64(head_ptr, task.robust_list[0])
    t.mem.write_u64(len_ptr, task.robust_list[1])
    return 0


def arch_prctl(t, code, addr, *_):
    code = s32(code)
    if code in (F.ARCH_SET_FS, F.ARCH_SET_GS):
        addr = u64(addr)
        if addr >= _CANONICAL_LIMIT:
            raise GuestError(EPERM)
        if code == F.ARCH_SET_GS:
            rw = t.process.rewriter
            if rw is not None and rw.owns_gs:
                rw.gs_taken(t)  # (its trampolines find the stub through GS: kernel/rewrite.py)
            t.gs_own = True
        t.set_segment_base("fs" if code == F.ARCH_SET_FS else "gs", addr)
        return 0
    if code in (F.ARCH_GET_FS, F.ARCH_GET_GS):
        t.mem.write_u64(addr, t.user_segment_base("fs" if code == F.ARCH_GET_FS else "gs"))
        return 0
    if code == F.ARCH_GET_CPUID:
        return 1  # CPUID is not faulting
    if code == F.ARCH_SET_CPUID:
        raise GuestError(ENODEV)
    if code in (F.ARCH_GET_XCOMP_SUPP, F.ARCH_GET_XCOMP_PERM):
        t.mem.write_u64(addr, t.process.xcr0)
        return 0
    if code in (F.ARCH_MAP_VDSO_X32, F.ARCH_MAP_VDSO_32, F.ARCH_MAP_VDSO_64) and \
            any(v.name == "[vdso]" for v in t.mm):
        # (CRIU's: map a vDSO, refused while one is mapped.  km's host process has one
        # too: the host's answer, EEXIST or EINVAL for an image its kernel lacks, is
        # Linux's for the program's, and maps nothing)
        return native.syscall(158, code, 0)
    raise GuestError(EINVAL)


# prctl options the host applies to km's thread (or process) exactly as to the program's:
# a thread's flags (timer slack, THP, I/O flusher, parent-death signal) and the process's
# child-subreaper flag (km's children are the program's, its orphans come to km)
_PRCTL_PASS = {F.PR_SET_PDEATHSIG, F.PR_CAPBSET_READ, F.PR_GET_KEEPCAPS, F.PR_GET_SECUREBITS, F.PR_GET_TIMERSLACK,
               F.PR_SET_TIMERSLACK, F.PR_GET_THP_DISABLE, F.PR_SET_THP_DISABLE, F.PR_SET_CHILD_SUBREAPER,
               F.PR_SET_IO_FLUSHER, F.PR_GET_IO_FLUSHER}
_PRCTL_PASS_INT = {F.PR_GET_PDEATHSIG, F.PR_GET_CHILD_SUBREAPER}  # ... that write an int where arg2 points
SUID_DUMP_DISABLE, SUID_DUMP_ROOT = 0, 2
_VMA_NAME_BAD = frozenset(b"[]\\$`")


def prctl(t, option, arg2, arg3, arg4, arg5, *_):
    option = s32(option)
    c = t.process.confinement  # the flags the monitor keeps for itself (kontain/confine.py)
    if option == F.PR_GET_DUMPABLE:
        return c.dumpable
    if option == F.PR_SET_DUMPABLE:
        if u64(arg2) not in (SUID_DUMP_DISABLE, 1):
            raise GuestError(EINVAL)
        c.dumpable = u64(arg2)
        return 0
    if option == F.PR_GET_NO_NEW_PRIVS:
        if arg2 or arg3 or arg4 or arg5:
            raise GuestError(EINVAL)
        return int(c.no_new_privs)
    if option == F.PR_SET_NO_NEW_PRIVS:
        if u64(arg2) != 1 or arg3 or arg4 or arg5:
            raise GuestError(EINVAL)
        c.no_new_privs = 1
        return native.syscall(SYS_prctl, option, 1, 0, 0, 0)
    if option in (F.PR_SET_KEEPCAPS, F.PR_CAPBSET_DROP, F.PR_SET_SECUREBITS, F.PR_CAP_AMBIENT):
        from kontain.syscalls import identity

        return identity.changing(t, SYS_prctl, option, arg2, arg3, arg4, arg5)
    if option in _PRCTL_PASS:
        return native.syscall(SYS_prctl, option, arg2, arg3, arg4, arg5)
    if option in _PRCTL_PASS_INT:
        return native.syscall(SYS_prctl, option, t.mem.host(arg2, 4), arg3, arg4, arg5)
    if option == F.PR_SET_NAME:  # the thread's name: ps, top and /proc show it for km's thread
        buf = bytearray(_comm(t, u64(arg2)) + b"\0")  # (alive until the call returns)
        return native.syscall(SYS_prctl, option, native.address_of(buf), 0, 0, 0)
    if option == F.PR_GET_NAME:
        return native.syscall(SYS_prctl, option, t.mem.host(arg2, F.TASK_COMM_LEN), 0, 0, 0)
    if option == F.PR_GET_TSC:
        t.mem.write(arg2, struct.pack("<I", F.PR_TSC_SIGSEGV if hostcode.tsc_sigsegv(t.vcpu) else F.PR_TSC_ENABLE))
        return 0
    if option == F.PR_SET_TSC:
        if u32(arg2) not in (F.PR_TSC_ENABLE, F.PR_TSC_SIGSEGV):
            raise GuestError(EINVAL)
        hostcode.set_tsc(t.vcpu, u32(arg2) == F.PR_TSC_SIGSEGV)
        return 0
    if option == F.PR_SET_MM:
        return _set_mm(t, u64(arg2), u64(arg3), arg4, arg5)
    if option == F.PR_SET_VMA:
        return _set_vma(t, u64(arg2), u64(arg3), u64(arg4), u64(arg5))
    if option == F.PR_GET_SECCOMP:
        return c.inherited_seccomp[0]  # (a container's profile filters the program's calls too; km's own does not)
    # PR_SET_SECCOMP and the rest: a seccomp filter would bind the monitor itself
    raise GuestError(EINVAL)


def _comm(t, addr: int) -> bytes:
    """PR_SET_NAME's string as Linux copies it (strncpy_from_user of TASK_COMM_LEN - 1
    bytes): no more than 15 bytes are read, so a name needs no NUL within the page."""
    out = b""
    limit = F.TASK_COMM_LEN - 1
    while len(out) < limit:
        here = addr + len(out)
        chunk = t.mem.read(here, min(limit - len(out), F.PAGE_SIZE - here % F.PAGE_SIZE))
        nul = chunk.find(b"\0")
        if nul >= 0:
            return out + chunk[:nul]
        out += chunk
    return out


def _set_mm(t, opt: int, addr: int, arg4: int, arg5: int) -> int:
    """PR_SET_MM in Linux's order of checks.  The program's address-space fields are
    km's to lay out (the host's mm is km's): a caller allowed to change them gets EINVAL,
    as from a kernel that does not offer it; PR_SET_MM_MAP_SIZE is answered."""
    if arg5 or arg4 and opt not in (F.PR_SET_MM_AUXV, F.PR_SET_MM_MAP, F.PR_SET_MM_MAP_SIZE):
        raise GuestError(EINVAL)
    if opt == F.PR_SET_MM_MAP_SIZE:
        t.mem.write(addr, struct.pack("<I", prctl_mm_map.size))
        return 0
    if opt != F.PR_SET_MM_MAP and not native.capable(F.CAP_SYS_RESOURCE):
        raise GuestError(EPERM)
    raise GuestError(EINVAL)


def _set_vma(t, attr: int, addr: int, size: int, name_addr: int) -> int:
    """PR_SET_VMA: naming anonymous memory, which km checks as Linux does (the name,
    then the range) but does not record: /proc/self/maps shows no [anon:NAME]."""
    if attr != F.PR_SET_VMA_ANON_NAME:
        raise GuestError(EINVAL)
    if name_addr:
        name = t.mem.cstr(name_addr, F.ANON_VMA_NAME_MAX_LEN, EINVAL)
        if any(ch < 0x20 or ch > 0x7E or ch in _VMA_NAME_BAD for ch in name):
            raise GuestError(EINVAL)
    length = (size + F.PAGE_SIZE - 1) & F.PAGE_MASK & 0xFFFFFFFFFFFFFFFF
    if addr & (F.PAGE_SIZE - 1) or size and not length or addr + length > 0xFFFFFFFFFFFFFFFF:
        raise GuestError(EINVAL)
    return 0


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
    if pid == os.getpid():
        if sig < 0 or sig > S.NSIG:
            raise GuestError(EINVAL)
        return t.process.post(sig, siginfo(sig, S.SI_USER, pid=os.getpid(), uid=os.getuid())) if sig else 0
    # 0, -1 and -pgrp include this process: the host delivers to km, which posts the
    # signal to the program through its signal thread.  (A bad signal number the host
    # refuses too, after looking for the target: ESRCH first, as Linux.)
    return native.syscall(SYS_kill, pid, sig)


def pidfd_send_signal(t, fd, sig, uinfo, flags, *_):
    """A signal to this process itself is posted here, as kill's, so that it is handled
    before the call returns, as on Linux (the host would deliver it to km, whose signal
    thread posts it a moment later).  Any other target the host serves."""
    host, sig = t.fds.host(fd), s32(sig)
    if host == NEVER_OPEN or not t.process.procfs.names_self(host):
        return _pidfd_send_signal(t, fd, sig, uinfo, flags)
    r = native.syscall(SYS_pidfd_send_signal, host, 0, 0, flags)  # the host's checks of the flags (its version's)
    if r < 0 or u32(flags) & PIDFD_SIGNAL_PROCESS_GROUP:
        return r if r < 0 else _pidfd_send_signal(t, fd, sig, uinfo, flags)  # (a process group: km's too)
    if uinfo:
        info, _code = _queued_info(t, sig, uinfo)
        if struct.unpack("<i", t.mem.read(uinfo, 4))[0] != sig:
            raise GuestError(EINVAL)  # (any si_code: a process may send itself what it likes)
    else:
        info = siginfo(sig, S.SI_USER, pid=os.getpid(), uid=os.getuid())
    if not 0 <= sig <= S.NSIG:
        raise GuestError(EINVAL)
    return t.process.post(sig, info) if sig else 0


_pidfd_send_signal = passthrough(SYS_pidfd_send_signal, "f i p128 x")


def _to_thread(t, tid: int, sig: int, info: bytes | None = None) -> int:
    target = t.process.tasks.get(tid)
    if target is None:
        raise GuestError(ESRCH)
    if sig:
        return t.process.post(sig, info or siginfo(sig, S.SI_TKILL, pid=os.getpid(), uid=os.getuid()), task=target)
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


def _known_layout(sig: int, code: int) -> bool:
    """Linux's known_siginfo_layout: does the kernel know what a siginfo with this signal
    and si_code holds?  (``sig`` as unsigned: a bad one has no codes of its own.)"""
    if code == S.SI_KERNEL:
        return True
    if code > 0:
        return code <= S.SIG_CODE_LIMITS.get(sig & 0xFFFFFFFF, S.NSIGPOLL)
    return code >= S.SI_DETHREAD or code == S.SI_ASYNCNL


def _queued_info(t, sig: int, uinfo: int) -> tuple[bytes, int]:
    """The program's siginfo as Linux's copy_siginfo_from_user takes it, before anything
    else is looked at (EFAULT, then E2BIG for a layout it does not know with something in
    the part past the kernel's own): (the siginfo as it is sent, its si_code)."""
    info = bytearray(t.mem.read(uinfo, S.KERNEL_SIGINFO_SIZE))
    code = struct.unpack_from("<i", info, 8)[0]
    if _known_layout(sig, code):
        info += bytes(SIGINFO_SIZE - S.KERNEL_SIGINFO_SIZE)  # (the kernel never keeps the rest)
    else:
        rest = t.mem.read(uinfo + S.KERNEL_SIGINFO_SIZE, SIGINFO_SIZE - S.KERNEL_SIGINFO_SIZE)
        if any(rest):
            raise GuestError(E2BIG)
        info += rest
    struct.pack_into("<i", info, 0, sig)
    return bytes(info), code


def rt_sigqueueinfo(t, tgid, sig, uinfo, *_):
    """As Linux: the siginfo first, then who may send it, the target, the signal."""
    tgid, sig = s32(tgid), s32(sig)
    info, code = _queued_info(t, sig, uinfo)
    if tgid != os.getpid():  # the host checks the rest, in its order, on the same siginfo
        return native.syscall(SYS_rt_sigqueueinfo, tgid, sig, native.address_of(bytearray(info)))
    if not 0 <= sig <= S.NSIG:
        raise GuestError(EINVAL)
    return t.process.post(sig, info) if sig else 0


def rt_tgsigqueueinfo(t, tgid, tid, sig, uinfo, *_):
    tgid, tid, sig = s32(tgid), s32(tid), s32(sig)
    info, code = _queued_info(t, sig, uinfo)
    if tgid != os.getpid():
        return native.syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, native.address_of(bytearray(info)))
    if tid <= 0 or tgid <= 0:
        raise GuestError(EINVAL)
    if (code >= 0 or code == S.SI_TKILL) and tid != t.tid:
        raise GuestError(EPERM)  # only the kernel sends these to another thread
    if tid not in t.process.tasks:
        raise GuestError(ESRCH)
    if not 0 <= sig <= S.NSIG:
        raise GuestError(EINVAL)
    return _to_thread(t, tid, sig, info)


# -- clone -------------------------------------------------------------------------
_THREAD_FLAGS = F.CLONE_VM | F.CLONE_FS | F.CLONE_FILES | F.CLONE_SIGHAND | F.CLONE_THREAD | F.CLONE_SYSVSEM | \
    F.CLONE_SETTLS | F.CLONE_PARENT_SETTID | F.CLONE_CHILD_CLEARTID | F.CLONE_CHILD_SETTID | F.CLONE_DETACHED | \
    F.CLONE_IO
_NEEDED = F.CLONE_VM | F.CLONE_SIGHAND | F.CLONE_THREAD
# what a new process can be given: the monitor forks (kernel/fork.py).  CLONE_FS,
# CLONE_SYSVSEM and CLONE_IO ask to share what a forked monitor cannot share, and are
# ignored; CLONE_FILES is refused (docs/known-issues.md)
_FORK_FLAGS = F.CLONE_VFORK | F.CLONE_VM | F.CLONE_PARENT_SETTID | F.CLONE_CHILD_SETTID | F.CLONE_CHILD_CLEARTID | \
    F.CLONE_SETTLS | F.CLONE_FS | F.CLONE_PTRACE | F.CLONE_UNTRACED | F.CLONE_PARENT | F.CLONE_PIDFD | \
    F.CLONE_SYSVSEM | F.CLONE_IO | F.CLONE_DETACHED | F.CLONE_CLEAR_SIGHAND | F.CLONE_NEW_SERVED
SYS_pidfd_open, SYS_fstat = 434, 5
PID_MAX_LIMIT = 4 * 1024 * 1024  # (Linux's: no pid is above it, whatever pid_max says)


def _clone(t, flags: int, exit_signal: int, stack: int, ptid: int, ctid: int, tls: int, pidfd: int = 0,
           set_tid: tuple[int, ...] = (), cgroup: int = -1) -> int:
    """clone and clone3, their checks in Linux's order (kernel_clone, copy_process); what
    km cannot make fails as it fails for an unprivileged caller (new namespaces, a chosen
    pid: EPERM), or with EINVAL (docs/known-issues.md).  ``pidfd``: where CLONE_PIDFD's
    descriptor goes."""
    if flags & F.CLONE_PIDFD and flags & F.CLONE_PARENT_SETTID and pidfd == ptid:
        raise GuestError(EINVAL)
    if flags & (F.CLONE_NEWNS | F.CLONE_FS) == F.CLONE_NEWNS | F.CLONE_FS or \
            flags & (F.CLONE_NEWUSER | F.CLONE_FS) == F.CLONE_NEWUSER | F.CLONE_FS:
        raise GuestError(EINVAL)
    if flags & F.CLONE_THREAD and not flags & F.CLONE_SIGHAND or flags & F.CLONE_SIGHAND and not flags & F.CLONE_VM:
        raise GuestError(EINVAL)
    if flags & F.CLONE_THREAD and flags & (F.CLONE_NEWUSER | F.CLONE_NEWPID):
        raise GuestError(EINVAL)
    if flags & F.CLONE_PIDFD and flags & (F.CLONE_DETACHED | F.CLONE_THREAD):
        raise GuestError(EINVAL)  # (a thread's pidfd, Linux 6.9's: not served)
    if flags & F.CLONE_NEW_ANY and (flags & F.CLONE_THREAD or flags & F.CLONE_NEW_ANY & ~F.CLONE_NEW_SERVED):
        raise GuestError(EPERM)  # namespaces km does not serve: as for a caller without CAP_SYS_ADMIN (syscalls/ns.py)
    for tid in set_tid:
        if tid < 1 or tid >= PID_MAX_LIMIT:
            raise GuestError(EINVAL)
    if set_tid:
        raise GuestError(EPERM)  # a chosen pid: as without CAP_CHECKPOINT_RESTORE
    if flags & F.CLONE_INTO_CGROUP:
        _check_fd(t, cgroup)
        raise GuestError(EPERM)  # km's cgroup is the program's
    if flags & F.CLONE_THREAD:
        if flags & _NEEDED != _NEEDED or flags & ~_THREAD_FLAGS:
            raise GuestError(EINVAL)
        return t.process.clone_thread(t, flags, stack, ptid, ctid, tls)
    # a new process: the monitor forks.  Memory cannot be shared with another process,
    # so CLONE_VM is only accepted with CLONE_VFORK (the child execs or exits).
    if flags & F.CLONE_VM and not flags & F.CLONE_VFORK or flags & ~_FORK_FLAGS:
        raise GuestError(EINVAL)
    if not flags & F.CLONE_PIDFD:
        return t.process.fork(t, flags, exit_signal, stack, ptid, ctid)
    # the pidfd's place and a descriptor for it first: a clone that fails makes no child
    t.mem.write(pidfd, t.mem.read(pidfd, 4))
    probe = native.syscall(SYS_pidfd_open, os.getpid(), 0)
    if probe < 0:
        return probe
    os.close(probe)
    pid = t.process.fork(t, flags, exit_signal, stack, ptid, ctid)
    fd = native.syscall(SYS_pidfd_open, pid, 0)  # (close-on-exec, as CLONE_PIDFD's)
    fd = t.fds.new(fd) if fd >= 0 else fd
    t.mem.write(pidfd, struct.pack("<i", fd))
    return pid


def _check_fd(t, fd: int) -> None:
    st = bytearray(144)
    r = native.syscall(SYS_fstat, t.fds.check(fd), native.address_of(st))
    if r < 0:
        raise GuestError(-r)


def fork(t, *_):
    return _clone(t, 0, S.SIGCHLD, 0, 0, 0, 0)


def vfork(t, *_):
    return _clone(t, F.CLONE_VM | F.CLONE_VFORK, S.SIGCHLD, 0, 0, 0, 0)


def _exec(t, path: str, argv_addr: int, envp_addr: int, comm: bytes, nofollow: bool = False) -> int:
    t.process.execve(t, path, argv_addr, envp_addr, comm, nofollow)
    return 0


def _exec_path(t, name: bytes) -> str:
    if t.process.procfs.is_exe(name):
        return os.fsdecode(t.process.exe_path)
    return os.fsdecode(name)


def _basename(name: bytes) -> bytes:
    """The comm an exec gives (Linux's kbasename of the file name as the caller gave
    it, before any symlink is followed: "exe" for /proc/self/exe)."""
    return name.rsplit(b"/", 1)[-1]


def execve(t, path, argv, envp, *_):
    name = t.mem.cstr(path)
    return _exec(t, _exec_path(t, name), argv, envp, _basename(name))


AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW = F.AT_EMPTY_PATH, F.AT_SYMLINK_NOFOLLOW


def execveat(t, dfd, path, argv, envp, flags, *_):
    dfd, flags = s32(dfd), s32(flags)
    name = t.mem.cstr(path)  # (Linux: the path first, then the flags)
    if not name and not flags & AT_EMPTY_PATH:
        raise GuestError(ENOENT)
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise GuestError(EINVAL)
    if not name:  # fexecve: the descriptor itself, named by its file
        fd = _open_fd(t, dfd)
        return _exec(t, f"/proc/self/fd/{fd}", argv, envp, _file_name(t, fd))
    nofollow = bool(flags & AT_SYMLINK_NOFOLLOW)
    if name.startswith(b"/") or dfd == F.AT_FDCWD:
        return _exec(t, _exec_path(t, name), argv, envp, _basename(name), nofollow)
    return _exec(t, f"/proc/self/fd/{_open_fd(t, dfd)}/{os.fsdecode(name)}", argv, envp, _basename(name), nofollow)


def _open_fd(t, fd: int) -> int:
    """A descriptor the program has open (EBADF otherwise: a path through /proc/self/fd
    would say ENOENT)."""
    fd = t.fds.check(fd)
    if native.syscall(SYS_fcntl, fd, F.F_GETFD, 0) < 0:
        raise GuestError(EBADF)
    return fd


def _file_name(t, fd: int) -> bytes:
    """The name of the file ``fd`` is open on (its dentry's: fexecve's comm)."""
    buf = bytearray(4096)
    link = bytearray(b"self/fd/%d\0" % fd)
    n = native.syscall(SYS_readlinkat, t.process.procfd, native.address_of(link), native.address_of(buf), len(buf))
    name = bytes(buf[:max(n, 0)])
    return _basename(name[:-len(_DELETED)] if name.endswith(_DELETED) else name)


_DELETED = b" (deleted)"


def clone(t, flags, stack, ptid, ctid, tls, *_):
    """The stack argument is the child's RSP, whatever the program passed (a kernel or
    non-canonical address included: the child faults when it uses it, as on Linux), so it
    goes to the register view as a signed value."""
    from kontain.kernel.task import s64

    flags = u32(flags)  # (the upper half is not looked at; the low byte is the exit signal)
    return _clone(t, flags & ~F.CSIGNAL, flags & F.CSIGNAL, s64(stack), u64(ptid), u64(ctid), u64(tls), pidfd=u64(ptid))


CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER2 = 64, 88
MAX_PID_NS_LEVEL = 32
_CLONE3_FLAGS = 0xFFFFFFFF | F.CLONE_CLEAR_SIGHAND | F.CLONE_INTO_CGROUP
_INT_MAX = 0x7FFFFFFF


def clone3(t, uargs, size, *_):
    """clone3: its arguments read and checked as Linux's copy_clone_args_from_user and
    clone3_args_valid do, then as clone."""
    size = u64(size)
    if size > F.PAGE_SIZE:
        raise GuestError(E2BIG)
    if size < CLONE_ARGS_SIZE_VER0:
        raise GuestError(EINVAL)
    raw = t.mem.read(uargs, size).ljust(clone_args.size, b"\0")
    if any(raw[clone_args.size:]):
        raise GuestError(E2BIG)  # fields this kernel does not know
    a = dict(zip(clone_args.names, clone_args.unpack(raw[:clone_args.size])))
    flags, exit_signal, n_tids = a["flags"], a["exit_signal"], a["set_tid_size"]
    if n_tids > MAX_PID_NS_LEVEL or n_tids and not a["set_tid"] or a["set_tid"] and not n_tids:
        raise GuestError(EINVAL)
    if exit_signal & ~F.CSIGNAL or exit_signal > S.NSIG:
        raise GuestError(EINVAL)
    if flags & F.CLONE_INTO_CGROUP and (a["cgroup"] > _INT_MAX or size < CLONE_ARGS_SIZE_VER2):
        raise GuestError(EINVAL)
    set_tid = struct.unpack(f"<{n_tids}i", t.mem.read(a["set_tid"], 4 * n_tids)) if n_tids else ()
    stack, stack_size = a["stack"], a["stack_size"]
    if flags & ~_CLONE3_FLAGS or flags & (F.CLONE_DETACHED | (F.CSIGNAL & ~F.CLONE_NEWTIME)) or \
            flags & (F.CLONE_SIGHAND | F.CLONE_CLEAR_SIGHAND) == F.CLONE_SIGHAND | F.CLONE_CLEAR_SIGHAND or \
            flags & (F.CLONE_THREAD | F.CLONE_PARENT) and exit_signal or \
            bool(stack) != bool(stack_size) or stack + stack_size > USER_LIMIT:  # (access_ok: TASK_SIZE_MAX)
        raise GuestError(EINVAL)
    return _clone(t, flags, exit_signal, stack + stack_size if stack else 0, a["parent_tid"], a["child_tid"], a["tls"],
                  pidfd=a["pidfd"], set_tid=set_tid, cgroup=s32(a["cgroup"]))


def pidfd_open(t, pid, flags, *_):
    """A pidfd of a process; PIDFD_THREAD (a thread's, Linux 6.9) is not served."""
    pid, flags = s32(pid), u32(flags)
    if flags & ~F.PIDFD_NONBLOCK or pid <= 0:
        raise GuestError(EINVAL)
    if not t.process.procfs.task_known(pid):
        raise GuestError(ESRCH)  # (km's own threads do not exist for the program)
    fd = native.syscall(SYS_pidfd_open, pid, flags)
    return t.fds.new(fd) if fd >= 0 else fd


SYS_setpgid, SYS_getsid = 109, 124


def setpgid(t, pid, pgid, *_):
    """setpgid; of a child that has exec'd, EACCES (kernel/fork.py: the host does not
    know of km's execs)."""
    pid, pgid = s32(pid), s32(pgid)
    if pgid >= 0 and pid > 0 and pid != os.getpid() and t.process.children:
        from kontain.kernel import fork

        if fork.child_execed(t.process, pid) and native.syscall(SYS_getsid, pid) == native.syscall(SYS_getsid, 0):
            raise GuestError(EACCES)
    return native.syscall(SYS_setpgid, pid, pgid)


# -- wait ------------------------------------------------------------------------
#
# On Linux a child's exit makes it a zombie after its SIGCHLD is queued, so the signal
# is delivered on the way out of the wait4 that reaps it, and a parent blocked in wait4
# always reaps the child before its handler runs.  Here the host SIGCHLD goes through the
# signal thread: when a wait reports a child, the monitor collects the SIGCHLD itself so
# that it is delivered now, not in the middle of the program's next call; and a wait
# interrupted by the kick of a SIGCHLD looks once more with WNOHANG.

_wait4 = passthrough(61, "i p4 i p144", blocking=True)
_waitid = passthrough(247, "i i p128 i p144", blocking=True)
_wait4_now = passthrough(61, "i p4 i p144")  # with WNOHANG: never waits, kicked or not
_waitid_now = passthrough(247, "i i p128 i p144")


def wait4(t, pid, status, options, rusage, *_):
    r = _wait4(t, pid, status, options, rusage)
    if r in (-EINTR, -ERESTARTNOINTR) and not options & F.WNOHANG:
        again = _wait4_now(t, pid, status, options | F.WNOHANG, rusage)
        r = again if again > 0 else r
    if r > 0:
        if status:
            _core_bit(t, r, status)
        if rusage:
            _program_maxrss(t, rusage)
        t.process.host_signals.child_reported(r)
    return r


def _core_bit(t, pid: int, status: int) -> None:
    """WCOREDUMP for a child that wrote its core file: its km died without one."""
    value = int.from_bytes(t.mem.read(status, 4), "little")
    if value & 0x7F not in (0, 0x7F) and not value & 0x80 and _dumped_core(t, pid):
        t.mem.write(status, (value | 0x80).to_bytes(4, "little"))


def _dumped_core(t, pid: int) -> bool:
    from kontain.kernel import fork as forking  # (this module's fork is the system call)

    return forking.child_dumped_core(t.process, pid)


def _program_maxrss(t, rusage: int) -> None:
    """The child's ru_maxrss without its monitor's memory (syscalls/sysinfo.py)."""
    from kontain.syscalls import sysinfo

    sysinfo.program_maxrss_at(t, rusage)


P_PIDFD = 3


def waitid(t, idtype, id_, infop, options, rusage, *_):
    if s32(idtype) == P_PIDFD and s32(id_) >= 0:
        # a pidfd is a descriptor: one of the monitor's is, for the program, not open; the
        # host says EBADF after the options and the id's sign, as Linux
        id_ = t.fds.host(id_)
    r = _waitid(t, idtype, id_, infop, options, rusage)
    found = infop and r == 0 and t.mem.read(infop, 4) != b"\0\0\0\0"  # si_signo is set for a child
    if r in (-EINTR, -ERESTARTNOINTR) and not options & F.WNOHANG and infop:
        again = _waitid_now(t, idtype, id_, infop, options | F.WNOHANG, rusage)
        found = again == 0 and t.mem.read(infop, 4) != b"\0\0\0\0"
        r = 0 if found else r
    if found:
        pid = int.from_bytes(t.mem.read(infop + 16, 4), "little")
        if int.from_bytes(t.mem.read(infop + 8, 4), "little") == S.CLD_KILLED and _dumped_core(t, pid):
            t.mem.write(infop + 8, S.CLD_DUMPED.to_bytes(4, "little"))
        if rusage:
            _program_maxrss(t, rusage)
        t.process.host_signals.child_reported(pid)
    return r
