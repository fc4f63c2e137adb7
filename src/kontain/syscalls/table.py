"""The syscall table: one line per system call, in number order, with every fact km
keeps about the call (gVisor's linux64.go is the model).

Each row is ``Entry(nr, name, handler, level, note, args=..., flags=...)``:

* ``handler``: the function that serves it (``family.name``: imported with its family at
  the first call, kontain/lazy.py), or ``PASS``: the host kernel serves it once its
  arguments are checked and translated as ``args`` says (common.passthrough);
* ``level``: ``FULL`` (as on Linux) or ``PARTIAL`` (with the difference in ``note``);
  calls not listed fail with ENOSYS;
* ``args``: one kind per argument, which both checks a pass-through's arguments and
  shows them in --strace (syscalls/strace.py):

    i   an int (sign-extended from 32 bits)      d u x   a value, shown signed/unsigned/hex
    h   an int shown in hex (flags, keys)
    f   a descriptor (the monitor's are EBADF)   a       a directory descriptor (AT_FDCWD too)
    s   a path                                   pN      a pointer to N bytes, or NULL
    bI  a buffer the kernel reads, of the length in argument I (BI: one it writes)
    p   a pointer (handlers only: a pass-through must say how much)
    o m P M S A I F g open flags, a mode, mmap prot, mmap flags, a signal, an arch_prctl
                      code, an ioctl request, an fcntl command, socket message flags (MSG_*:
                      MSG_NOSIGNAL spares SIGPIPE) (values)

* ``flags`` (abi/syscalls.py): POLL (the polling tier may serve it: it never blocks and
  needs no vCPU register, or its handler gives it back to the calling thread in the cases
  where it might block, syscalls/common.py ``polled``; sendto and recvfrom only the native
  poller makes, as a socket's send or recv that need not wait: kernel/nativepoll.c),
  NORESTART (never restarted after a handler, whatever SA_RESTART says: signal(7)),
  SIGPIPE (its EPIPE raises SIGPIPE), NEWFD (a pass-through that makes a descriptor for
  the program), BLOCKS (a pass-through that may wait: Task.blocking, so that a signal
  just before it interrupts it).

docs/compat.md is generated from this table (``make compat``); tests/unit/test_table.py
checks every row against the ABI and the kinds against the handlers.
"""

from __future__ import annotations

from kontain.abi.syscalls import BLOCKS, KM_SNAPSHOT, MAX_NR, NAMES, NEWFD, NORESTART, POLL, SIGPIPE
from kontain.syscalls.common import passthrough

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

if TYPE_CHECKING:
    from kontain.syscalls.common import Handler

FULL, PARTIAL, NONE = "full", "partial", "none"
PASS = "pass"  # the handler of a row the host kernel serves (common.passthrough)


class Entry(tuple):
    """(nr, name, handler, level, note, args, flags): one line of the table."""

    __slots__ = ()

    def __new__(cls, nr: int, name: str, handler, level: str, note: str = "", *, args: str = "", flags: int = 0):
        if handler == PASS:
            handler = passthrough(nr, args, "fd" if flags & NEWFD else "", bool(flags & BLOCKS))
        return tuple.__new__(cls, (nr, name, handler, level, note, args, flags))

    nr = property(lambda self: self[0])
    name = property(lambda self: self[1])
    handler = property(lambda self: self[2])
    level = property(lambda self: self[3])
    note = property(lambda self: self[4])
    args = property(lambda self: self[5])
    flags = property(lambda self: self[6])


class Deferred:
    """A handler whose family module is not imported yet (kontain/lazy.py): the first
    call imports it and puts the function itself in HANDLERS, so that later calls go
    straight to it."""

    __slots__ = ("module", "attr", "fn", "nr")

    def __init__(self, module: str, attr: str):
        self.module = module
        self.attr = attr
        self.fn: Handler | None = None
        self.nr = -1  # its row's number (each row has a Deferred of its own)

    def resolve(self) -> Handler:
        fn = self.fn
        if fn is None:
            fn = self.fn = getattr(__import__(self.module, fromlist=(self.attr,)), self.attr)
            # (its own entry only: a walk of the whole table took ~40 us, at each first
            # call of a handler, and again in each forked child for the calls its parent
            # never made: execve, dup2, open...)
            if self.nr >= 0 and HANDLERS[self.nr] is self:
                HANDLERS[self.nr] = fn
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


aio, epoll, fs, futex, identity, ioctl, ipc, mm, net, ns, poll, prio, process, rw, signal, sysinfo, timer = (
    _Family(n) for n in
    ("aio", "epoll", "fs", "futex", "identity", "ioctl", "ipc", "mm", "net", "ns", "poll", "prio", "process", "rw",
     "signal", "sysinfo", "timer"))


TABLE: tuple[Entry, ...] = (
    Entry(0, "read", rw.read, FULL, args="f B2 u", flags=POLL),
    Entry(1, "write", rw.write, FULL, args="f b2 u", flags=POLL|SIGPIPE),
    Entry(2, "open", fs.open, FULL, args="s o m", flags=POLL),
    Entry(3, "close", fs.close, FULL, args="f", flags=POLL),
    Entry(4, "stat", fs.stat, FULL, args="s p", flags=POLL),
    Entry(5, "fstat", PASS, FULL, args="f p144", flags=POLL),
    Entry(6, "lstat", fs.lstat, FULL, args="s p", flags=POLL),
    Entry(7, "poll", poll.poll, FULL, args="p u d", flags=NORESTART),
    Entry(8, "lseek", rw.lseek, FULL, args="f d d", flags=POLL),
    Entry(9, "mmap", mm.mmap, PARTIAL, "PROT_EXEC is not separate from PROT_READ", args="p u P M f x", flags=POLL),
    Entry(10, "mprotect", mm.mprotect, PARTIAL, "PROT_EXEC is not separate from PROT_READ", args="p u P", flags=POLL),
    Entry(11, "munmap", mm.munmap, FULL, args="p u", flags=POLL),
    Entry(12, "brk", mm.brk, FULL, args="p", flags=POLL),
    Entry(13, "rt_sigaction", signal.rt_sigaction, FULL, args="S p p u", flags=POLL),
    Entry(14, "rt_sigprocmask", signal.rt_sigprocmask, FULL, args="d p p u"),
    Entry(15, "rt_sigreturn", signal.rt_sigreturn, FULL),
    Entry(16, "ioctl", ioctl.ioctl, PARTIAL, "terminal, FIO*, SIOCGIF*, SIOCATMARK, FICLONE(RANGE) requests, "
          "a few device getters (RNDGETENTCNT, TUNGETFEATURES), a namespace file's NS_GET_*, a pidfd's "
          "PIDFD_GET_INFO, PROCMAP_QUERY of the program's own maps (which finds no build ids); others ENOTTY",
          args="f I p", flags=POLL),
    Entry(17, "pread64", rw.pread64, FULL, args="f B2 u d", flags=POLL),
    Entry(18, "pwrite64", rw.pwrite64, FULL, args="f b2 u d", flags=POLL|SIGPIPE),
    Entry(19, "readv", rw.readv, FULL, args="f p d", flags=POLL),
    Entry(20, "writev", rw.writev, FULL, args="f p d", flags=POLL|SIGPIPE),
    Entry(21, "access", fs.access, FULL, args="s o", flags=POLL),
    Entry(22, "pipe", fs.pipe, FULL, args="p"),
    Entry(23, "select", poll.select, FULL, args="d p p p p", flags=NORESTART),
    Entry(24, "sched_yield", PASS, FULL),
    Entry(25, "mremap", mm.mremap, PARTIAL, "old_size 0 (duplicating a shared mapping) is EINVAL", args="p u u x p"),
    Entry(26, "msync", mm.msync, FULL),
    Entry(27, "mincore", mm.mincore, FULL),
    Entry(28, "madvise", mm.madvise, PARTIAL, "MADV_DONTFORK is ignored", args="p u d", flags=POLL),
    Entry(29, "shmget", PASS, FULL, args="h u h"),
    Entry(30, "shmat", ipc.shmat, PARTIAL, "SHM_EXEC is not separate from read access", args="d p x"),
    Entry(31, "shmctl", ipc.shmctl, FULL, args="d d p"),
    Entry(32, "dup", fs.dup, FULL, args="f"),
    Entry(33, "dup2", fs.dup2, FULL, args="f f"),
    Entry(34, "pause", signal.pause, FULL, flags=NORESTART),
    Entry(35, "nanosleep", PASS, FULL, args="p16 p16", flags=BLOCKS|NORESTART),
    Entry(36, "getitimer", PASS, FULL, args="i p32"),
    Entry(37, "alarm", timer.alarm, FULL, args="x"),
    Entry(38, "setitimer", timer.setitimer, FULL, args="i p32 p32"),
    Entry(39, "getpid", PASS, FULL, flags=POLL),
    Entry(40, "sendfile", rw.sendfile, FULL, args="f f p u", flags=SIGPIPE),
    Entry(41, "socket", PASS, FULL, args="i i i", flags=NEWFD),
    Entry(42, "connect", PASS, FULL, args="f b2 x", flags=BLOCKS),
    Entry(43, "accept", net.accept, FULL),
    Entry(44, "sendto", PASS, FULL, args="f b2 u g b5 u", flags=POLL|BLOCKS|SIGPIPE),
    Entry(45, "recvfrom", net.recvfrom, FULL, flags=POLL),
    Entry(46, "sendmsg", net.sendmsg, FULL, args="f p g", flags=SIGPIPE),
    Entry(47, "recvmsg", net.recvmsg, FULL),
    Entry(48, "shutdown", PASS, FULL, args="f i"),
    Entry(49, "bind", PASS, FULL, args="f b2 x"),
    Entry(50, "listen", net.listen, FULL, "with --snapshot-on-listen, the first one snapshots the program",
          args="f i"),
    Entry(51, "getsockname", PASS, FULL, args="f p128 p4"),
    Entry(52, "getpeername", PASS, FULL, args="f p128 p4"),
    Entry(53, "socketpair", net.socketpair, FULL),
    Entry(54, "setsockopt", PASS, FULL, args="f i i b4 x"),
    Entry(55, "getsockopt", net.getsockopt, FULL),
    Entry(56, "clone", process.clone, PARTIAL,
          "a new process: CLONE_VM needs CLONE_VFORK, CLONE_FILES is EINVAL; new network, UTS, IPC namespaces made "
          "by the host, others EPERM; CLONE_PIDFD for a thread EINVAL"),
    Entry(57, "fork", process.fork, FULL),
    Entry(58, "vfork", process.vfork, PARTIAL,
          "the child has a copy of the parent's memory; what it wrote goes back when it execs or exits, "
          "if the parent has one thread (a vfork child of a multithreaded parent runs on its stack)"),
    Entry(59, "execve", process.execve, FULL),
    Entry(60, "exit", process.exit, FULL, args="d"),
    Entry(61, "wait4", process.wait4, FULL, args="d p x p"),
    Entry(62, "kill", process.kill, FULL, args="d S"),
    Entry(63, "uname", PASS, FULL, args="p390", flags=POLL),
    Entry(64, "semget", PASS, FULL, args="h i h"),
    Entry(65, "semop", ipc.semop, FULL, args="d p u", flags=NORESTART),
    Entry(66, "semctl", ipc.semctl, FULL, args="d d d x"),
    Entry(67, "shmdt", ipc.shmdt, FULL, args="p"),
    Entry(68, "msgget", PASS, FULL, args="h h"),
    Entry(69, "msgsnd", ipc.msgsnd, FULL, args="d p u x", flags=NORESTART),
    Entry(70, "msgrcv", ipc.msgrcv, FULL, args="d p u d x", flags=NORESTART),
    Entry(71, "msgctl", ipc.msgctl, FULL, args="d d p"),
    Entry(72, "fcntl", fs.fcntl, FULL, args="f F x"),
    Entry(73, "flock", PASS, FULL, args="f i", flags=BLOCKS),
    Entry(74, "fsync", PASS, FULL, args="f"),
    Entry(75, "fdatasync", PASS, FULL, args="f"),
    Entry(76, "truncate", fs.truncate, FULL, args="s d"),
    Entry(77, "ftruncate", PASS, FULL, args="f d"),
    Entry(78, "getdents", PASS, FULL, args="f b2 x"),
    Entry(79, "getcwd", PASS, FULL, args="b1 u", flags=POLL),
    Entry(80, "chdir", fs.chdir, FULL, args="s"),
    Entry(81, "fchdir", PASS, FULL, args="f"),
    Entry(82, "rename", PASS, FULL, args="s s"),
    Entry(83, "mkdir", PASS, FULL, args="s m"),
    Entry(84, "rmdir", PASS, FULL, args="s"),
    Entry(85, "creat", fs.creat, FULL),
    Entry(86, "link", PASS, FULL, args="s s"),
    Entry(87, "unlink", PASS, FULL, args="s"),
    Entry(88, "symlink", PASS, FULL, args="s s"),
    Entry(89, "readlink", fs.readlink, FULL, args="s p u"),
    Entry(90, "chmod", PASS, FULL, args="s m"),
    Entry(91, "fchmod", PASS, FULL, args="f x"),
    Entry(92, "chown", PASS, FULL, args="s i i"),
    Entry(93, "fchown", PASS, FULL, args="f i i"),
    Entry(94, "lchown", PASS, FULL, args="s i i"),
    Entry(95, "umask", PASS, FULL, args="m", flags=POLL),
    Entry(96, "gettimeofday", PASS, FULL, args="p16 p8", flags=POLL),
    Entry(97, "getrlimit", sysinfo.getrlimit, FULL, args="d p", flags=POLL),
    Entry(98, "getrusage", sysinfo.getrusage, PARTIAL, "counts the monitor's time too; ru_maxrss leaves its memory out",
          args="i p"),
    Entry(99, "sysinfo", PASS, FULL, args="p112", flags=POLL),
    Entry(100, "times", PASS, PARTIAL, "counts the monitor's time too", args="p32", flags=POLL),
    Entry(102, "getuid", PASS, FULL, flags=POLL),
    Entry(104, "getgid", PASS, FULL, flags=POLL),
    Entry(105, "setuid", identity.setuid, FULL),
    Entry(106, "setgid", identity.setgid, FULL),
    Entry(107, "geteuid", PASS, FULL, flags=POLL),
    Entry(108, "getegid", PASS, FULL, flags=POLL),
    Entry(109, "setpgid", process.setpgid, FULL, args="i i"),
    Entry(110, "getppid", PASS, FULL, flags=POLL),
    Entry(111, "getpgrp", PASS, FULL, flags=POLL),
    Entry(112, "setsid", PASS, FULL),
    Entry(113, "setreuid", identity.setreuid, FULL),
    Entry(114, "setregid", identity.setregid, FULL),
    Entry(115, "getgroups", identity.getgroups, FULL),
    Entry(116, "setgroups", identity.setgroups, FULL),
    Entry(117, "setresuid", identity.setresuid, FULL),
    Entry(118, "getresuid", PASS, FULL, args="p4 p4 p4", flags=POLL),
    Entry(119, "setresgid", identity.setresgid, FULL),
    Entry(120, "getresgid", PASS, FULL, args="p4 p4 p4", flags=POLL),
    Entry(121, "getpgid", PASS, FULL, args="i", flags=POLL),
    Entry(122, "setfsuid", identity.setfsuid, FULL),
    Entry(123, "setfsgid", identity.setfsgid, FULL),
    Entry(124, "getsid", PASS, FULL, args="i", flags=POLL),
    Entry(125, "capget", PASS, FULL, args="p8 p24"),
    Entry(126, "capset", identity.capset, FULL),
    Entry(127, "rt_sigpending", signal.rt_sigpending, FULL),
    Entry(128, "rt_sigtimedwait", signal.rt_sigtimedwait, FULL, flags=NORESTART),
    Entry(129, "rt_sigqueueinfo", process.rt_sigqueueinfo, FULL),
    Entry(130, "rt_sigsuspend", signal.rt_sigsuspend, FULL, flags=NORESTART),
    Entry(131, "sigaltstack", signal.sigaltstack, FULL, args="p p"),
    Entry(132, "utime", PASS, FULL, args="s p16"),
    Entry(133, "mknod", PASS, FULL, args="s x x"),
    Entry(135, "personality", process.personality, PARTIAL,
          "recorded; of its flags only STICKY_TIMEOUTS has an effect (select, pselect6, ppoll)"),
    Entry(136, "ustat", PASS, FULL, args="u p32"),
    Entry(137, "statfs", PASS, FULL, args="s p120"),
    Entry(138, "fstatfs", PASS, FULL, args="f p120"),
    Entry(140, "getpriority", prio.getpriority, FULL, args="i i"),
    Entry(141, "setpriority", prio.setpriority, FULL, args="i i i"),
    Entry(142, "sched_setparam", PASS, FULL, args="i p4"),
    Entry(143, "sched_getparam", PASS, FULL, args="i p4"),
    Entry(144, "sched_setscheduler", PASS, FULL, args="i i p4"),
    Entry(145, "sched_getscheduler", PASS, FULL, args="i"),
    Entry(146, "sched_get_priority_max", PASS, FULL, args="i"),
    Entry(147, "sched_get_priority_min", PASS, FULL, args="i"),
    Entry(148, "sched_rr_get_interval", PASS, FULL, args="i p16"),
    Entry(149, "mlock", mm.mlock, FULL),
    Entry(150, "munlock", mm.munlock, FULL),
    Entry(151, "mlockall", mm.mlockall, FULL),
    Entry(152, "munlockall", mm.munlockall, FULL),
    Entry(155, "pivot_root", ns.pivot_root, PARTIAL, "EPERM, as for a caller without CAP_SYS_ADMIN", args="s s"),
    Entry(157, "prctl", process.prctl, PARTIAL,
          "common options; PR_SET_SECCOMP and changing PR_SET_MM's fields are EINVAL; PR_SET_VMA names are not shown",
          args="i x x x x"),
    Entry(158, "arch_prctl", process.arch_prctl, FULL,
          "ARCH_SET_GS ends the rewriting of syscall sites (km owns GS meanwhile; the program sees 0)", args="A p"),
    Entry(159, "adjtimex", PASS, FULL, args="p208"),
    Entry(160, "setrlimit", sysinfo.setrlimit, PARTIAL,
          "RLIMIT_AS counts the stack as large as Linux's is at exec, not as it grows", args="d p"),
    Entry(161, "chroot", fs.chroot, FULL),
    Entry(162, "sync", PASS, FULL),
    Entry(164, "settimeofday", PASS, FULL, args="p16 p8"),
    Entry(165, "mount", ns.mount, PARTIAL, "arguments checked, then EPERM, as for a caller without CAP_SYS_ADMIN",
          args="s s s x p"),
    Entry(166, "umount2", ns.umount2, PARTIAL, "arguments checked, then EPERM, as for a caller without CAP_SYS_ADMIN",
          args="s x"),
    Entry(170, "sethostname", PASS, FULL, args="b1 x"),
    Entry(171, "setdomainname", PASS, FULL, args="b1 x"),
    Entry(186, "gettid", process.gettid, FULL, flags=POLL),
    Entry(187, "readahead", PASS, FULL, args="f x x"),
    Entry(188, "setxattr", PASS, FULL, args="s s b3 x i"),
    Entry(189, "lsetxattr", PASS, FULL, args="s s b3 x i"),
    Entry(190, "fsetxattr", PASS, FULL, args="f s b3 x i"),
    Entry(191, "getxattr", PASS, FULL, args="s s b3 x"),
    Entry(192, "lgetxattr", PASS, FULL, args="s s b3 x"),
    Entry(193, "fgetxattr", PASS, FULL, args="f s b3 x"),
    Entry(194, "listxattr", PASS, FULL, args="s b2 x"),
    Entry(195, "llistxattr", PASS, FULL, args="s b2 x"),
    Entry(196, "flistxattr", PASS, FULL, args="f b2 x"),
    Entry(197, "removexattr", PASS, FULL, args="s s"),
    Entry(198, "lremovexattr", PASS, FULL, args="s s"),
    Entry(199, "fremovexattr", PASS, FULL, args="f s"),
    Entry(200, "tkill", process.tkill, FULL, args="d S"),
    Entry(201, "time", PASS, FULL, args="p8", flags=POLL),
    Entry(202, "futex", futex.futex, PARTIAL,
          "FUTEX_FD is ENOSYS (as in Linux); a restarted wait restarts its timeout", args="p d d p p d"),
    Entry(203, "sched_setaffinity", PASS, FULL, args="i x b1"),
    Entry(204, "sched_getaffinity", PASS, FULL, args="i u b1"),
    Entry(206, "io_setup", aio.io_setup, FULL, args="u p"),
    Entry(207, "io_destroy", aio.io_destroy, FULL, args="x"),
    Entry(208, "io_getevents", aio.io_getevents, FULL, args="x d d p p", flags=NORESTART),
    Entry(209, "io_submit", aio.io_submit, PARTIAL,
          "each request is made within io_submit, as Linux makes it for a file not opened O_DIRECT (O_DIRECT too); "
          "IOCB_CMD_POLL is EINVAL", args="x d p"),
    Entry(210, "io_cancel", aio.io_cancel, FULL, args="x p p"),
    Entry(213, "epoll_create", PASS, FULL, args="i", flags=NEWFD),
    Entry(217, "getdents64", fs.getdents64, FULL, args="f p u", flags=POLL),
    Entry(218, "set_tid_address", process.set_tid_address, FULL, args="p"),
    Entry(220, "semtimedop", ipc.semtimedop, FULL, args="d p u p", flags=NORESTART),
    Entry(221, "fadvise64", PASS, FULL, args="f x x i"),
    Entry(222, "timer_create", timer.timer_create, PARTIAL,
          "SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE; not with SIGRTMAX (km's)"),
    Entry(223, "timer_settime", timer.timer_settime, FULL),
    Entry(224, "timer_gettime", PASS, FULL, args="i p32"),
    Entry(225, "timer_getoverrun", timer.timer_getoverrun, FULL),
    Entry(226, "timer_delete", timer.timer_delete, FULL),
    Entry(227, "clock_settime", PASS, FULL, args="i p16"),
    Entry(228, "clock_gettime", PASS, FULL, args="i p16", flags=POLL),
    Entry(229, "clock_getres", PASS, FULL, args="i p16", flags=POLL),
    Entry(230, "clock_nanosleep", PASS, FULL, args="i i p16 p16", flags=BLOCKS|NORESTART),
    Entry(231, "exit_group", process.exit_group, FULL, args="d"),
    Entry(232, "epoll_wait", epoll.epoll_wait, FULL, flags=NORESTART),
    Entry(233, "epoll_ctl", epoll.epoll_ctl, FULL),
    Entry(234, "tgkill", process.tgkill, FULL, args="d d S"),
    Entry(235, "utimes", PASS, FULL, args="s p32"),
    Entry(240, "mq_open", ipc.mq_open, FULL, args="s o m p"),
    Entry(241, "mq_unlink", PASS, FULL, args="s"),
    Entry(242, "mq_timedsend", PASS, FULL, args="f b2 u u p16", flags=BLOCKS),
    Entry(243, "mq_timedreceive", PASS, FULL, args="f B2 u p4 p16", flags=BLOCKS),
    Entry(244, "mq_notify", ipc.mq_notify, PARTIAL, "not with SIGEV_SIGNAL and SIGRTMAX (km's)", args="f p"),
    Entry(245, "mq_getsetattr", PASS, FULL, args="f p64 p64"),
    Entry(247, "waitid", process.waitid, FULL),
    Entry(251, "ioprio_set", prio.ioprio_set, PARTIAL,
          "reads and writes the polling tier makes for a thread run at its poller's I/O priority", args="d d x"),
    Entry(252, "ioprio_get", prio.ioprio_get, FULL, args="d d"),
    Entry(253, "inotify_init", PASS, FULL, flags=NEWFD),
    Entry(254, "inotify_add_watch", PASS, FULL, args="f s x"),
    Entry(255, "inotify_rm_watch", PASS, FULL, args="f i"),
    Entry(257, "openat", fs.openat, FULL, args="a s o m", flags=POLL),
    Entry(258, "mkdirat", PASS, FULL, args="a s m"),
    Entry(259, "mknodat", PASS, FULL, args="a s x x"),
    Entry(260, "fchownat", PASS, FULL, args="a s i i i"),
    Entry(261, "futimesat", PASS, FULL, args="a s p32"),
    Entry(262, "newfstatat", fs.newfstatat, FULL, args="a s p x", flags=POLL),
    Entry(263, "unlinkat", PASS, FULL, args="a s h"),
    Entry(264, "renameat", PASS, FULL, args="a s a s"),
    Entry(265, "linkat", PASS, FULL, args="a s a s i"),
    Entry(266, "symlinkat", PASS, FULL, args="s a s"),
    Entry(267, "readlinkat", fs.readlinkat, FULL, args="a s p u"),
    Entry(268, "fchmodat", PASS, FULL, args="a s x"),
    Entry(269, "faccessat", fs.faccessat, FULL, args="a s o", flags=POLL),
    Entry(270, "pselect6", poll.pselect6, FULL, args="d p p p p p", flags=NORESTART),
    Entry(271, "ppoll", poll.ppoll, FULL, args="p u p p u", flags=NORESTART),
    Entry(272, "unshare", ns.unshare, PARTIAL,
          "network, UTS, IPC namespaces and CLONE_FS made by the host for the thread; others EPERM, as for a "
          "caller without CAP_SYS_ADMIN; CLONE_FILES, CLONE_SYSVSEM EINVAL with more than one thread", args="x"),
    Entry(273, "set_robust_list", process.set_robust_list, FULL, args="p u"),
    Entry(274, "get_robust_list", process.get_robust_list, FULL),
    Entry(275, "splice", rw.splice, FULL, args="f p f p u x", flags=SIGPIPE),
    Entry(276, "tee", PASS, FULL, args="f f x x", flags=BLOCKS),
    Entry(277, "sync_file_range", PASS, FULL, args="f x x x"),
    Entry(278, "vmsplice", rw.vmsplice, FULL, flags=SIGPIPE),
    Entry(280, "utimensat", PASS, FULL, args="a s p32 i"),
    Entry(281, "epoll_pwait", epoll.epoll_pwait, FULL, flags=NORESTART),
    Entry(282, "signalfd", signal.signalfd, PARTIAL, "read, poll, select, epoll; fstat shows a socket"),
    Entry(283, "timerfd_create", PASS, FULL, args="i i", flags=NEWFD),
    Entry(284, "eventfd", PASS, FULL, args="x", flags=NEWFD),
    Entry(285, "fallocate", PASS, FULL, args="f i x x"),
    Entry(286, "timerfd_settime", PASS, FULL, args="f i p32 p32"),
    Entry(287, "timerfd_gettime", PASS, FULL, args="f p32"),
    Entry(288, "accept4", net.accept4, FULL),
    Entry(289, "signalfd4", signal.signalfd4, PARTIAL, "read, poll, select, epoll; fstat shows a socket"),
    Entry(290, "eventfd2", PASS, FULL, args="x i", flags=NEWFD),
    Entry(291, "epoll_create1", PASS, FULL, args="i", flags=NEWFD),
    Entry(292, "dup3", fs.dup3, FULL, args="f f o"),
    Entry(293, "pipe2", fs.pipe2, FULL, args="p o"),
    Entry(294, "inotify_init1", PASS, FULL, args="i", flags=NEWFD),
    Entry(295, "preadv", rw.preadv, FULL),
    Entry(296, "pwritev", rw.pwritev, FULL, flags=SIGPIPE),
    Entry(297, "rt_tgsigqueueinfo", process.rt_tgsigqueueinfo, FULL),
    Entry(299, "recvmmsg", net.recvmmsg, FULL),
    Entry(302, "prlimit64", sysinfo.prlimit64, PARTIAL,
          "RLIMIT_AS counts the stack as large as Linux's is at exec, not as it grows",
          args="d d p p"),
    Entry(303, "name_to_handle_at", fs.name_to_handle_at, FULL, args="a s p p x"),
    Entry(304, "open_by_handle_at", fs.open_by_handle_at, PARTIAL,
          "EPERM, as for a caller without CAP_DAC_READ_SEARCH", args="f p x"),
    Entry(305, "clock_adjtime", PASS, FULL, args="i p208"),
    Entry(306, "syncfs", PASS, FULL, args="f"),
    Entry(307, "sendmmsg", net.sendmmsg, FULL, args="f p u g", flags=SIGPIPE),
    Entry(308, "setns", ns.setns, PARTIAL, "into network, UTS, IPC namespaces by the host; others: arguments "
          "checked, then EPERM, as for a caller without CAP_SYS_ADMIN",
          args="f x"),
    Entry(309, "getcpu", PASS, FULL, args="p4 p4 x"),
    Entry(314, "sched_setattr", PASS, FULL, args="i p56 x"),
    Entry(315, "sched_getattr", PASS, FULL, args="i b2 x x"),
    Entry(316, "renameat2", PASS, FULL, args="a s a s x"),
    Entry(318, "getrandom", PASS, FULL, args="b1 u x", flags=POLL),
    Entry(319, "memfd_create", PASS, FULL, args="s x", flags=NEWFD),
    Entry(322, "execveat", process.execveat, FULL),
    Entry(324, "membarrier", PASS, FULL, args="i i i"),
    Entry(325, "mlock2", mm.mlock2, FULL),
    Entry(326, "copy_file_range", PASS, FULL, args="f p8 f p8 x x"),
    Entry(327, "preadv2", rw.preadv2, FULL),
    Entry(328, "pwritev2", rw.pwritev2, FULL, flags=SIGPIPE),
    Entry(332, "statx", fs.statx, FULL, args="a s x x p", flags=POLL),
    Entry(333, "io_pgetevents", aio.io_pgetevents, FULL, args="x d d p p p", flags=NORESTART),
    Entry(334, "rseq", process.rseq, PARTIAL, "ENOSYS: C libraries then do without", args="p u x x"),
    Entry(424, "pidfd_send_signal", process.pidfd_send_signal, FULL, "to this process itself: handled before "
          "the call returns", args="f i p128 x"),
    Entry(434, "pidfd_open", process.pidfd_open, PARTIAL, "PIDFD_THREAD is EINVAL", args="i x"),
    Entry(435, "clone3", process.clone3, PARTIAL, "as clone; set_tid and CLONE_INTO_CGROUP are EPERM", args="p u"),
    Entry(436, "close_range", fs.close_range, FULL, args="f f x"),
    Entry(437, "openat2", fs.openat2, FULL),
    Entry(439, "faccessat2", fs.faccessat2, FULL, args="a s o x", flags=POLL),
    Entry(441, "epoll_pwait2", epoll.epoll_pwait2, FULL, flags=NORESTART),
    Entry(449, "futex_waitv", futex.futex_waitv, FULL, args="p u x p i"),
    Entry(451, "cachestat", PASS, FULL, args="f p16 p40 u"),
    Entry(452, "fchmodat2", PASS, FULL, args="a s x i"),
    Entry(454, "futex_wake", futex.futex_wake, FULL, args="p x i x"),
    Entry(455, "futex_wait", futex.futex_wait, FULL, args="p x x x p i"),
    Entry(456, "futex_requeue", futex.futex_requeue, FULL, args="p x i i"),
    Entry(462, "mseal", mm.mseal, PARTIAL, "/proc/self/smaps shows no \"sl\" flag for a sealed mapping",
          args="x u x"),
)

# Not supported yet, with the reason (the compatibility table shows these notes).
PLANNED = {
    "ptrace": "not supported: use km's gdb stub",
    "seccomp": "a filter would bind the monitor itself",
}

HANDLERS: list[Handler | None] = [None] * (MAX_NR + 1)
FLAGS: list[int] = [0] * (MAX_NR + 1)  # each call's flags, by number (the dispatcher's and the poller's view)
ARGS: list[str] = [""] * (MAX_NR + 1)
MSG_FLAGS_ARG: list[int] = [-1] * (MAX_NR + 1)  # which argument holds MSG_* flags (g), or -1
POLLABLE: list[int] = []  # what the polling tier may serve
# (the rows as plain tuples: this loop runs at every km start, the properties cost ~0.3 ms)
for _nr, _name, _handler, _level, _note, _args, _flags in TABLE:
    HANDLERS[_nr] = _handler
    if type(_handler) is Deferred:
        _handler.nr = _nr
    FLAGS[_nr] = _flags
    ARGS[_nr] = _args
    if _flags & POLL:
        POLLABLE.append(_nr)
    if "g" in _args:
        MSG_FLAGS_ARG[_nr] = _args.split().index("g")


def deny(nr: int, errno: int) -> None:
    """Call ``nr`` fails with ``errno`` from now on, or (0) ends the program by SIGSYS:
    km --deny, what a container's seccomp profile says of a call that krun lets km itself
    make on the host (oci/config.py's seccomp), so that the program still meets the
    profile's verdict.  The polling tier leaves it to the calling thread (it may end it)."""
    HANDLERS[nr] = _Refused(errno)
    if nr in POLLABLE:
        POLLABLE.remove(nr)


class _Refused:
    """The handler of a call km --deny refuses."""

    __slots__ = ("errno",)

    def __init__(self, errno: int):
        self.errno = errno

    def __call__(self, t, *_) -> int:
        if self.errno:
            return -self.errno
        from kontain.abi import signals as S

        t.die(S.SIGSYS, f"{t.process.name}: killed by SIGSYS (a call the container's seccomp profile forbids)")
        return 0  # (not reached: die raises)


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
    lines += [
        "",
        "km's own system call, outside Linux's range (natively it fails with ENOSYS):",
        "",
        "| nr | name | what it does |",
        "|---:|---|---|",
        f"| {KM_SNAPSHOT:#x} | km_snapshot | snapshot the calling program to a file (rdi: its path or NULL for "
        "./kmsnap.PID; rsi: 1 to end the program once written); returns 0, and 1 in each run resumed from the "
        "file; EOPNOTSUPP when the program holds what a snapshot cannot take along (user guide, Snapshots; "
        "`src/kontain/guest/kontain.h`) |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(compat_markdown(), end="")
