"""Linux x86-64 signal numbers, names, default actions, siginfo codes and layout."""

from __future__ import annotations

import struct

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT = 9, 10, 11, 12, 13, 14, 15, 16
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGXCPU = 17, 18, 19, 20, 21, 22, 23, 24
SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR, SIGSYS = 25, 26, 27, 28, 29, 30, 31
SIGRTMIN, SIGRTMAX = 32, 64
NSIG = 64

NAMES = {
    1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
    8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
    14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
    20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
    26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}


def name(sig: int) -> str:
    if sig in NAMES:
        return NAMES[sig]
    if SIGRTMIN <= sig <= SIGRTMAX:
        return f"SIGRT{sig - SIGRTMIN}" if sig != SIGRTMIN else "SIGRTMIN"
    return str(sig)


# Default actions (signal(7)).
TERM, CORE, IGNORE, STOP, CONT = "term", "core", "ignore", "stop", "cont"
_CORE = {SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU, SIGXFSZ, SIGSYS}
_IGNORE = {SIGCHLD, SIGURG, SIGWINCH}
_STOP = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU}


def default_action(sig: int) -> str:
    if sig in _CORE:
        return CORE
    if sig in _IGNORE:
        return IGNORE
    if sig in _STOP:
        return STOP
    if sig == SIGCONT:
        return CONT
    return TERM


# sigaction handler values and flags
SIG_DFL, SIG_IGN = 0, 1
SA_NOCLDSTOP, SA_NOCLDWAIT, SA_SIGINFO = 0x1, 0x2, 0x4
SA_RESTORER, SA_ONSTACK, SA_RESTART = 0x04000000, 0x08000000, 0x10000000
SA_NODEFER, SA_RESETHAND = 0x40000000, 0x80000000
SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
MINSIGSTKSZ = 2048
# Signals that can be neither caught, blocked nor ignored.
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

# si_code values
SI_USER, SI_KERNEL, SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO, SI_SIGIO, SI_TKILL = 0, 0x80, -1, -2, -3, -4, -5, -6
POLL_IN, POLL_HUP = 1, 6  # the si_code range of an O_ASYNC signal with F_SETSIG (si_band, si_fd)
SEGV_MAPERR, SEGV_ACCERR = 1, 2
BUS_ADRALN, BUS_ADRERR, BUS_OBJERR = 1, 2, 3
ILL_ILLOPC, ILL_ILLOPN, ILL_PRVOPC = 1, 2, 5
FPE_INTDIV, FPE_INTOVF, FPE_FLTDIV, FPE_FLTOVF, FPE_FLTUND, FPE_FLTRES, FPE_FLTINV = 1, 2, 3, 4, 5, 6, 7
TRAP_BRKPT, TRAP_TRACE = 1, 2
SI_DETHREAD, SI_ASYNCNL = -7, -60
# how many positive si_codes each signal with codes of its own has (<asm-generic/siginfo.h>
# NSIGILL...; NSIGSEGV is 10 since Linux 6.6's SEGV_CPERR); every other signal has NSIGPOLL
SIG_CODE_LIMITS = {SIGILL: 11, SIGFPE: 15, SIGSEGV: 10, SIGBUS: 5, SIGTRAP: 6, SIGCHLD: 6, SIGIO: 6, SIGSYS: 2}
NSIGPOLL = 6
# the part of a siginfo the kernel keeps (struct kernel_siginfo): the rest is the
# "expansion", which a siginfo with a layout the kernel knows never carries
KERNEL_SIGINFO_SIZE = 48
CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3


SIGINFO_SIZE = 128


def siginfo(sig: int, code: int = SI_USER, *, pid: int = 0, uid: int = 0, addr: int | None = None,
            status: int | None = None, value: int = 0) -> bytes:
    """A siginfo_t (x86-64): signo, errno, code, then the union member the code selects
    (a fault's address; a child's pid, uid and status; a sender's pid, uid and value)."""
    head = struct.pack("<iii4x", sig, 0, code)
    if addr is not None:
        body = struct.pack("<Q", addr & 0xFFFFFFFFFFFFFFFF)
    elif status is not None:
        body = struct.pack("<iIi4xqq", pid, uid, status, 0, 0)
    else:
        body = struct.pack("<iIQ", pid, uid, value & 0xFFFFFFFFFFFFFFFF)
    return (head + body).ljust(SIGINFO_SIZE, b"\0")
