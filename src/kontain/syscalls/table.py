"""The syscall table: one line per system call, in number order.

Each entry is (number, name, handler, support level, note).  ``FULL`` means the call
behaves as on Linux; ``PARTIAL`` that it works with the difference in the note; calls
not listed fail with ENOSYS.  docs/compat.md is generated from this table
(``python -m kontain.syscalls.table > docs/compat.md``), and tests/unit/test_table.py
checks that every number and name agrees with the ABI.

``P(nr, kinds)`` is a pass-through handler (common.passthrough): the host kernel serves
the call once its arguments are checked and translated.
"""

from __future__ import annotations

from kontain.abi.syscalls import MAX_NR, NAMES
from kontain.syscalls.common import passthrough

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

if TYPE_CHECKING:
    from kontain.syscalls.common import Handler

FULL, PARTIAL, NONE = "full", "partial", "none"


class Entry(tuple):
    """(nr, name, handler, level, note): one line of the table."""

    __slots__ = ()

    def __new__(cls, nr: int, name: str, handler: Handler | None, level: str, note: str = ""):
        return tuple.__new__(cls, (nr, name, handler, level, note))

    nr = property(lambda self: self[0])
    name = property(lambda self: self[1])
    handler = property(lambda self: self[2])
    level = property(lambda self: self[3])
    note = property(lambda self: self[4])


def P(nr: int, kinds: str = "", result: str = "") -> Handler:
    return passthrough(nr, kinds, result)


class Deferred:
    """A handler whose family module is not imported yet (kontain/lazy.py): the first
    call imports it and puts the function itself in HANDLERS, so that later calls go
    straight to it."""

    __slots__ = ("module", "attr", "fn")

    def __init__(self, module: str, attr: str):
        self.module = module
        self.attr = attr
        self.fn: Handler | None = None

    def resolve(self) -> Handler:
        fn = self.fn
        if fn is None:
            fn = self.fn = getattr(__import__(self.module, fromlist=(self.attr,)), self.attr)
            for i, h in enumerate(HANDLERS):
                if h is self:
                    HANDLERS[i] = fn
        return fn

    def __call__(self, *args):
        return (self.fn or self.resolve())(*args)

    def __repr__(self) -> str:
        return f"<deferred {self.module}.{self.attr}>"


class _Family:
    """``family.name`` in the table below: a Deferred handler of that family."""

    def __init__(self, name: str):
        self.module = f"kontain.syscalls.{name}"

    def __getattr__(self, attr: str) -> Deferred:
        return Deferred(self.module, attr)


def resolve(handler: Handler | None) -> Handler | None:
    """The function behind a table entry (importing its family if need be)."""
    return handler.resolve() if isinstance(handler, Deferred) else handler


epoll, fs, futex, identity, ioctl, mm, net, poll, process, rw, signal, sysinfo, timer = (
    _Family(n) for n in
    ("epoll", "fs", "futex", "identity", "ioctl", "mm", "net", "poll", "process", "rw", "signal", "sysinfo", "timer"))


TABLE: tuple[Entry, ...] = (
    Entry(0, "read", rw.read, FULL),
    Entry(1, "write", rw.write, FULL),
    Entry(2, "open", fs.open, FULL),
    Entry(3, "close", fs.close, FULL),
    Entry(4, "stat", fs.stat, FULL),
    Entry(5, "fstat", P(5, "f p144"), FULL),
    Entry(6, "lstat", fs.lstat, FULL),
    Entry(7, "poll", poll.poll, FULL),
    Entry(8, "lseek", rw.lseek, FULL),
    Entry(9, "mmap", mm.mmap, PARTIAL, "PROT_EXEC is not separate from PROT_READ"),
    Entry(10, "mprotect", mm.mprotect, PARTIAL, "PROT_EXEC is not separate from PROT_READ"),
    Entry(11, "munmap", mm.munmap, FULL),
    Entry(12, "brk", mm.brk, FULL),
    Entry(13, "rt_sigaction", signal.rt_sigaction, FULL),
    Entry(14, "rt_sigprocmask", signal.rt_sigprocmask, FULL),
    Entry(15, "rt_sigreturn", signal.rt_sigreturn, FULL),
    Entry(16, "ioctl", ioctl.ioctl, PARTIAL, "terminal and FIO* requests; others ENOTTY"),
    Entry(17, "pread64", rw.pread64, FULL),
    Entry(18, "pwrite64", rw.pwrite64, FULL),
    Entry(19, "readv", rw.readv, FULL),
    Entry(20, "writev", rw.writev, FULL),
    Entry(21, "access", fs.access, FULL),
    Entry(22, "pipe", fs.pipe, FULL),
    Entry(23, "select", poll.select, FULL),
    Entry(24, "sched_yield", P(24), FULL),
    Entry(25, "mremap", mm.mremap, PARTIAL, "old_size 0 (duplicating a shared mapping) is EINVAL"),
    Entry(26, "msync", mm.msync, FULL),
    Entry(27, "mincore", mm.mincore, FULL),
    Entry(28, "madvise", mm.madvise, PARTIAL, "MADV_DONTFORK is ignored"),
    Entry(32, "dup", fs.dup, FULL),
    Entry(33, "dup2", fs.dup2, FULL),
    Entry(34, "pause", signal.pause, FULL),
    Entry(35, "nanosleep", P(35, "p16 p16"), FULL),
    Entry(36, "getitimer", P(36, "i p32"), FULL),
    Entry(37, "alarm", P(37, "v"), FULL),
    Entry(38, "setitimer", P(38, "i p32 p32"), FULL),
    Entry(39, "getpid", P(39), FULL),
    Entry(40, "sendfile", rw.sendfile, FULL),
    Entry(41, "socket", P(41, "i i i", "fd"), FULL),
    Entry(42, "connect", P(42, "f b2 v"), FULL),
    Entry(43, "accept", net.accept, FULL),
    Entry(44, "sendto", P(44, "f b2 v i b5 v"), FULL),
    Entry(45, "recvfrom", net.recvfrom, FULL),
    Entry(46, "sendmsg", net.sendmsg, FULL),
    Entry(47, "recvmsg", net.recvmsg, FULL),
    Entry(48, "shutdown", P(48, "f i"), FULL),
    Entry(49, "bind", P(49, "f b2 v"), FULL),
    Entry(50, "listen", P(50, "f i"), FULL),
    Entry(51, "getsockname", P(51, "f p128 p4"), FULL),
    Entry(52, "getpeername", P(52, "f p128 p4"), FULL),
    Entry(53, "socketpair", net.socketpair, FULL),
    Entry(54, "setsockopt", P(54, "f i i b4 v"), FULL),
    Entry(55, "getsockopt", net.getsockopt, FULL),
    Entry(56, "clone", process.clone, PARTIAL, "CLONE_VM without CLONE_THREAD needs CLONE_VFORK; exit signal is SIGCHLD"),
    Entry(57, "fork", process.fork, FULL),
    Entry(58, "vfork", process.vfork, PARTIAL, "the child has a copy of the parent's memory, not the memory itself"),
    Entry(59, "execve", process.execve, FULL),
    Entry(60, "exit", process.exit, FULL),
    Entry(61, "wait4", process.wait4, FULL),
    Entry(62, "kill", process.kill, FULL),
    Entry(63, "uname", P(63, "p390"), FULL),
    Entry(72, "fcntl", fs.fcntl, FULL),
    Entry(73, "flock", P(73, "f i"), FULL),
    Entry(74, "fsync", P(74, "f"), FULL),
    Entry(75, "fdatasync", P(75, "f"), FULL),
    Entry(76, "truncate", P(76, "s v"), FULL),
    Entry(77, "ftruncate", P(77, "f v"), FULL),
    Entry(78, "getdents", P(78, "f b2 v"), FULL),
    Entry(79, "getcwd", P(79, "b1 v"), FULL),
    Entry(80, "chdir", P(80, "s"), FULL),
    Entry(81, "fchdir", P(81, "f"), FULL),
    Entry(82, "rename", P(82, "s s"), FULL),
    Entry(83, "mkdir", P(83, "s v"), FULL),
    Entry(84, "rmdir", P(84, "s"), FULL),
    Entry(85, "creat", fs.creat, FULL),
    Entry(86, "link", P(86, "s s"), FULL),
    Entry(87, "unlink", P(87, "s"), FULL),
    Entry(88, "symlink", P(88, "s s"), FULL),
    Entry(89, "readlink", fs.readlink, FULL),
    Entry(90, "chmod", P(90, "s v"), FULL),
    Entry(91, "fchmod", P(91, "f v"), FULL),
    Entry(92, "chown", P(92, "s i i"), FULL),
    Entry(93, "fchown", P(93, "f i i"), FULL),
    Entry(94, "lchown", P(94, "s i i"), FULL),
    Entry(95, "umask", P(95, "v"), FULL),
    Entry(96, "gettimeofday", P(96, "p16 p8"), FULL),
    Entry(97, "getrlimit", sysinfo.getrlimit, FULL),
    Entry(98, "getrusage", P(98, "i p144"), PARTIAL, "counts the monitor's time too"),
    Entry(99, "sysinfo", P(99, "p112"), FULL),
    Entry(100, "times", P(100, "p32"), PARTIAL, "counts the monitor's time too"),
    Entry(102, "getuid", P(102), FULL),
    Entry(104, "getgid", P(104), FULL),
    Entry(105, "setuid", P(105, "v"), FULL),
    Entry(106, "setgid", P(106, "v"), FULL),
    Entry(107, "geteuid", P(107), FULL),
    Entry(108, "getegid", P(108), FULL),
    Entry(109, "setpgid", P(109, "i i"), FULL),
    Entry(110, "getppid", P(110), FULL),
    Entry(111, "getpgrp", P(111), FULL),
    Entry(112, "setsid", P(112), FULL),
    Entry(113, "setreuid", P(113, "v v"), FULL),
    Entry(114, "setregid", P(114, "v v"), FULL),
    Entry(115, "getgroups", identity.getgroups, FULL),
    Entry(116, "setgroups", identity.setgroups, FULL),
    Entry(117, "setresuid", P(117, "v v v"), FULL),
    Entry(118, "getresuid", P(118, "p4 p4 p4"), FULL),
    Entry(119, "setresgid", P(119, "v v v"), FULL),
    Entry(120, "getresgid", P(120, "p4 p4 p4"), FULL),
    Entry(121, "getpgid", P(121, "i"), FULL),
    Entry(122, "setfsuid", P(122, "v"), FULL),
    Entry(123, "setfsgid", P(123, "v"), FULL),
    Entry(124, "getsid", P(124, "i"), FULL),
    Entry(125, "capget", P(125, "p8 p24"), FULL),
    Entry(126, "capset", P(126, "p8 p24"), FULL),
    Entry(127, "rt_sigpending", signal.rt_sigpending, FULL),
    Entry(128, "rt_sigtimedwait", signal.rt_sigtimedwait, FULL),
    Entry(129, "rt_sigqueueinfo", process.rt_sigqueueinfo, FULL),
    Entry(130, "rt_sigsuspend", signal.rt_sigsuspend, FULL),
    Entry(131, "sigaltstack", signal.sigaltstack, FULL),
    Entry(132, "utime", P(132, "s p16"), FULL),
    Entry(133, "mknod", P(133, "s v v"), FULL),
    Entry(135, "personality", process.personality, PARTIAL, "recorded, has no effect"),
    Entry(137, "statfs", P(137, "s p120"), FULL),
    Entry(138, "fstatfs", P(138, "f p120"), FULL),
    Entry(140, "getpriority", P(140, "i i"), FULL),
    Entry(141, "setpriority", P(141, "i i i"), FULL),
    Entry(142, "sched_setparam", P(142, "i p4"), FULL),
    Entry(143, "sched_getparam", P(143, "i p4"), FULL),
    Entry(144, "sched_setscheduler", P(144, "i i p4"), FULL),
    Entry(145, "sched_getscheduler", P(145, "i"), FULL),
    Entry(146, "sched_get_priority_max", P(146, "i"), FULL),
    Entry(147, "sched_get_priority_min", P(147, "i"), FULL),
    Entry(148, "sched_rr_get_interval", P(148, "i p16"), FULL),
    Entry(149, "mlock", mm.mlock, FULL),
    Entry(150, "munlock", mm.munlock, FULL),
    Entry(151, "mlockall", mm.mlockall, PARTIAL,
          "MCL_CURRENT locks the monitor's memory too; MCL_FUTURE is accepted, not applied"),
    Entry(152, "munlockall", P(152), FULL),
    Entry(157, "prctl", process.prctl, PARTIAL, "common options; seccomp is EINVAL"),
    Entry(158, "arch_prctl", process.arch_prctl, FULL),
    Entry(159, "adjtimex", P(159, "p208"), FULL),
    Entry(160, "setrlimit", sysinfo.setrlimit, PARTIAL,
          "RLIMIT_AS, RLIMIT_DATA and RLIMIT_SIGPENDING are recorded, not enforced"),
    Entry(161, "chroot", fs.chroot, FULL),
    Entry(162, "sync", P(162), FULL),
    Entry(164, "settimeofday", P(164, "p16 p8"), FULL),
    Entry(170, "sethostname", P(170, "b1 v"), FULL),
    Entry(171, "setdomainname", P(171, "b1 v"), FULL),
    Entry(186, "gettid", P(186), FULL),
    Entry(187, "readahead", P(187, "f v v"), FULL),
    Entry(188, "setxattr", P(188, "s s b3 v i"), FULL),
    Entry(189, "lsetxattr", P(189, "s s b3 v i"), FULL),
    Entry(190, "fsetxattr", P(190, "f s b3 v i"), FULL),
    Entry(191, "getxattr", P(191, "s s b3 v"), FULL),
    Entry(192, "lgetxattr", P(192, "s s b3 v"), FULL),
    Entry(193, "fgetxattr", P(193, "f s b3 v"), FULL),
    Entry(194, "listxattr", P(194, "s b2 v"), FULL),
    Entry(195, "llistxattr", P(195, "s b2 v"), FULL),
    Entry(196, "flistxattr", P(196, "f b2 v"), FULL),
    Entry(197, "removexattr", P(197, "s s"), FULL),
    Entry(198, "lremovexattr", P(198, "s s"), FULL),
    Entry(199, "fremovexattr", P(199, "f s"), FULL),
    Entry(200, "tkill", process.tkill, FULL),
    Entry(201, "time", P(201, "p8"), FULL),
    Entry(202, "futex", futex.futex, PARTIAL, "FUTEX_FD is ENOSYS (as in Linux); a restarted wait restarts its timeout"),
    Entry(203, "sched_setaffinity", P(203, "i v b1"), FULL),
    Entry(204, "sched_getaffinity", P(204, "i v b1"), FULL),
    Entry(213, "epoll_create", P(213, "i", "fd"), FULL),
    Entry(217, "getdents64", fs.getdents64, FULL),
    Entry(218, "set_tid_address", process.set_tid_address, FULL),
    Entry(221, "fadvise64", P(221, "f v v i"), FULL),
    Entry(222, "timer_create", timer.timer_create, PARTIAL,
          "SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE; not with SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGRTMAX"),
    Entry(223, "timer_settime", P(223, "i i p32 p32"), FULL),
    Entry(224, "timer_gettime", P(224, "i p32"), FULL),
    Entry(225, "timer_getoverrun", P(225, "i"), FULL),
    Entry(226, "timer_delete", timer.timer_delete, FULL),
    Entry(227, "clock_settime", P(227, "i p16"), FULL),
    Entry(228, "clock_gettime", P(228, "i p16"), FULL),
    Entry(229, "clock_getres", P(229, "i p16"), FULL),
    Entry(230, "clock_nanosleep", P(230, "i i p16 p16"), FULL),
    Entry(231, "exit_group", process.exit_group, FULL),
    Entry(232, "epoll_wait", epoll.epoll_wait, FULL),
    Entry(233, "epoll_ctl", epoll.epoll_ctl, FULL),
    Entry(234, "tgkill", process.tgkill, FULL),
    Entry(235, "utimes", P(235, "s p32"), FULL),
    Entry(247, "waitid", process.waitid, FULL),
    Entry(253, "inotify_init", P(253, "", "fd"), FULL),
    Entry(254, "inotify_add_watch", P(254, "f s v"), FULL),
    Entry(255, "inotify_rm_watch", P(255, "f i"), FULL),
    Entry(257, "openat", fs.openat, FULL),
    Entry(258, "mkdirat", P(258, "d s v"), FULL),
    Entry(259, "mknodat", P(259, "d s v v"), FULL),
    Entry(260, "fchownat", P(260, "d s i i i"), FULL),
    Entry(261, "futimesat", P(261, "d s p32"), FULL),
    Entry(262, "newfstatat", fs.newfstatat, FULL),
    Entry(263, "unlinkat", P(263, "d s i"), FULL),
    Entry(264, "renameat", P(264, "d s d s"), FULL),
    Entry(265, "linkat", P(265, "d s d s i"), FULL),
    Entry(266, "symlinkat", P(266, "s d s"), FULL),
    Entry(267, "readlinkat", fs.readlinkat, FULL),
    Entry(268, "fchmodat", P(268, "d s v"), FULL),
    Entry(269, "faccessat", fs.faccessat, FULL),
    Entry(270, "pselect6", poll.pselect6, FULL),
    Entry(271, "ppoll", poll.ppoll, FULL),
    Entry(273, "set_robust_list", process.set_robust_list, FULL),
    Entry(274, "get_robust_list", process.get_robust_list, FULL),
    Entry(275, "splice", P(275, "f p8 f p8 v v"), FULL),
    Entry(276, "tee", P(276, "f f v v"), FULL),
    Entry(277, "sync_file_range", P(277, "f v v v"), FULL),
    Entry(278, "vmsplice", rw.vmsplice, FULL),
    Entry(280, "utimensat", P(280, "d s p32 i"), FULL),
    Entry(281, "epoll_pwait", epoll.epoll_pwait, FULL),
    Entry(282, "signalfd", signal.signalfd, PARTIAL, "read, poll, select, epoll; fstat shows a socket"),
    Entry(283, "timerfd_create", P(283, "i i", "fd"), FULL),
    Entry(284, "eventfd", P(284, "v", "fd"), FULL),
    Entry(285, "fallocate", P(285, "f i v v"), FULL),
    Entry(286, "timerfd_settime", P(286, "f i p32 p32"), FULL),
    Entry(287, "timerfd_gettime", P(287, "f p32"), FULL),
    Entry(288, "accept4", net.accept4, FULL),
    Entry(289, "signalfd4", signal.signalfd4, PARTIAL, "read, poll, select, epoll; fstat shows a socket"),
    Entry(290, "eventfd2", P(290, "v i", "fd"), FULL),
    Entry(291, "epoll_create1", P(291, "i", "fd"), FULL),
    Entry(292, "dup3", fs.dup3, FULL),
    Entry(293, "pipe2", fs.pipe2, FULL),
    Entry(294, "inotify_init1", P(294, "i", "fd"), FULL),
    Entry(295, "preadv", rw.preadv, FULL),
    Entry(296, "pwritev", rw.pwritev, FULL),
    Entry(297, "rt_tgsigqueueinfo", process.rt_tgsigqueueinfo, FULL),
    Entry(299, "recvmmsg", net.recvmmsg, FULL),
    Entry(302, "prlimit64", sysinfo.prlimit64, PARTIAL,
          "RLIMIT_AS, RLIMIT_DATA and RLIMIT_SIGPENDING are recorded, not enforced"),
    Entry(305, "clock_adjtime", P(305, "i p208"), FULL),
    Entry(306, "syncfs", P(306, "f"), FULL),
    Entry(307, "sendmmsg", net.sendmmsg, FULL),
    Entry(309, "getcpu", P(309, "p4 p4 v"), FULL),
    Entry(314, "sched_setattr", P(314, "i p56 v"), FULL),
    Entry(315, "sched_getattr", P(315, "i b2 v v"), FULL),
    Entry(316, "renameat2", P(316, "d s d s v"), FULL),
    Entry(318, "getrandom", P(318, "b1 v v"), FULL),
    Entry(319, "memfd_create", P(319, "s v", "fd"), FULL),
    Entry(322, "execveat", process.execveat, FULL),
    Entry(324, "membarrier", P(324, "i i i"), FULL),
    Entry(325, "mlock2", mm.mlock2, FULL),
    Entry(326, "copy_file_range", P(326, "f p8 f p8 v v"), FULL),
    Entry(327, "preadv2", rw.preadv2, FULL),
    Entry(328, "pwritev2", rw.pwritev2, FULL),
    Entry(332, "statx", fs.statx, FULL),
    Entry(334, "rseq", process.rseq, PARTIAL, "ENOSYS: C libraries then do without"),
    Entry(435, "clone3", process.clone3, PARTIAL, "as clone"),
    Entry(436, "close_range", fs.close_range, FULL),
    Entry(437, "openat2", fs.openat2, FULL),
    Entry(439, "faccessat2", fs.faccessat2, FULL),
    Entry(441, "epoll_pwait2", epoll.epoll_pwait2, FULL),
    Entry(452, "fchmodat2", P(452, "d s v i"), FULL),
)

# Not supported yet, with the reason (the compatibility table shows these notes).
PLANNED = {
    "name_to_handle_at": "needs CAP_DAC_READ_SEARCH on the host",
    "open_by_handle_at": "needs CAP_DAC_READ_SEARCH on the host",
    "ptrace": "not supported: use km's gdb stub",
    "seccomp": "a filter would bind the monitor itself",
}

HANDLERS: list[Handler | None] = [None] * (MAX_NR + 1)
for _e in TABLE:
    HANDLERS[_e.nr] = _e.handler


def name(nr: int) -> str:
    return NAMES[nr] if 0 <= nr <= MAX_NR and NAMES[nr] else f"syscall_{nr}"


def entries() -> list[Entry]:
    """Every syscall number, supported or not, in order."""
    known = {e.nr: e for e in TABLE}
    out = []
    for nr, n in enumerate(NAMES):
        if n is None:
            continue
        out.append(known.get(nr) or Entry(nr, n, None, NONE, PLANNED.get(n, "")))
    return out


def compat_markdown() -> str:
    """docs/compat.md."""
    rows = entries()
    counts = {lvl: sum(1 for e in rows if e.level == lvl) for lvl in (FULL, PARTIAL, NONE)}
    lines = [
        "# System call compatibility",
        "",
        "Generated from `src/kontain/syscalls/table.py` by `make compat`; do not edit.",
        "",
        f"x86-64 Linux system calls: {counts[FULL]} supported, {counts[PARTIAL]} partly supported "
        f"(see the note), {counts[NONE]} not supported (they fail with ENOSYS, and `km --strace` shows them).",
        "",
        "| nr | name | support | note |",
        "|---:|---|---|---|",
    ]
    for e in rows:
        lines.append(f"| {e.nr} | {e.name} | {e.level} | {e.note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(compat_markdown(), end="")
