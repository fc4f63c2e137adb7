"""The native poller: nativepoll.c, built on this machine, loaded by the polling tier.

The Python poller (kernel/poll.py) answers a polled call in ~6 us of interpreter work,
while the call itself (getppid, a read of a page of a file) costs the host well under
one.  nativepoll.c's ``km_poll`` scans the slots with the GIL released and makes the
calls that need nothing of Python's state itself (the ids, fstat, a path's stat, reads,
writes and seeks of regular files, reads and writes of sockets and pipes that need not
wait); it returns to Python for every other call, for the calls whose
answer Python must see (a site the rewriter still counts, a write past RLIMIT_FSIZE),
and after a number of idle rounds or TICK_NS without a request (on a loaded machine a
round's sched_yield can take milliseconds: a thread's 50 ms sleep went unnoticed), so
that the tier's switching on and off, parking and idling stay in poll.py.

pip installs no compiler output, so ``km --native`` (``make bytecode``; cli/front.py)
compiles it beside this module, as it compiles the native front end; without a compiler, or when
the library is missing or stale, the tier runs as before, in Python alone
(``km --timings`` says which).  The control block's layout is defined here and handed
to the compiler as -D definitions: the two sides cannot disagree.
"""

from __future__ import annotations

import os

from kontain import native
from kontain.abi.flags import MAX_RW_COUNT, SEEK_HOLE
from kontain.arch.x86_64 import layout as L
from kontain.kernel.fdtable import LOCKED_MAX

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nativepoll.c")
LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "libkmpoll.so")  # (not nativepoll.so: Python would import it)

# the control block: u64 words
(C_BASE, C_SIZE, C_GUARD, C_USER_LIMIT, C_NONCANONICAL, C_MAX_RW, C_FLOOR, C_EAGER, C_REWRITING, C_SERVING,
 C_NVID, C_SERVED, C_PATCHED, C_TICK_NS, C_WARM, C_PID) = range(16)  # (C_PID: for process_vm_readv/writev)
TICK_NS = 1_000_000  # km_poll returns after this long without a request, however few its rounds
C_VC = 16  # per vCPU id: VC_WORDS words
# V_DECLINED: km_poll declined the vCPU's last call (a socket's or a pipe's read that would wait),
# V_CARRY: bytes of it (a write) the socket took (both for the dispatcher, ``declined``),
# V_DECLINED_NR: which call it was (for the poller's count of declines, kernel/poll.py)
V_SLOT, V_KICK, V_ANSWERED, V_LAST, V_NATIVE, V_DECLINED, V_CARRY, V_DECLINED_NR = range(8)
VC_WORDS = 8
C_NR = C_VC + L.POLL_VCPUS * VC_WORDS  # 512 bytes: 1 where a call may be made natively
SITES_BITS = 10
# file systems known not to be procfs (ProcFs.is_proc_dev learns them): their count, then
# their st_dev; a path's stat on any other file system is left to Python (nativepoll.c)
PLAIN_MAX = 16
C_NPLAIN = C_NR + 512 // 8
C_PLAIN = C_NPLAIN + 1
C_SITES = C_PLAIN + PLAIN_MAX  # the rewriter's settled sites (nativepoll.c ``settled``)
# files the program took POSIX record locks on (kernel/poll.py ``posix_locking``): their count,
# then (st_dev, st_ino) of each; a count above LOCKED_MAX: too many to list, every file counts
C_NLOCKED = C_SITES + 2 * (1 << SITES_BITS)
C_LOCKED = C_NLOCKED + 1
# the program has one thread (kernel/poll.py ``_native_round`` sets it, ``attach`` clears it
# before a second one runs): its reads and writes of a regular file are made on its own
# descriptor, no other thread can change what the number names meanwhile; C_EPOCH: the
# address of Process.epoch; C_KNOWN_FD (the descriptor + 1) was a regular file at C_KNOWN_EPOCH
C_SOLO = C_LOCKED + 2 * LOCKED_MAX
# (C_KNOWN_KIND: and was a regular file, 1, a socket, 2, or a pipe, 3)
C_EPOCH, C_KNOWN_FD, C_KNOWN_EPOCH, C_KNOWN_KIND = C_SOLO + 1, C_SOLO + 2, C_SOLO + 3, C_SOLO + 4
C_STREAMS = C_SOLO + 5  # 1: km_poll makes reads and writes of sockets and pipes that need not wait (``stream_call``)
C_OWN_SIGNALS = C_SOLO + 6  # 1: no read or write at all (the program wants the signals its calls cause)
C_READ_WAIT_NS = C_SOLO + 7  # how long km_poll waits for a socket's data (kernel/poll.py READ_WAIT_NS), or 0
# host signals that may be on their way to the program (HostSignals.in_flight_words): the
# address of the posting lock's flag, and of the mask of signals other threads take
C_POSTING, C_SIG_TAKEN = C_SOLO + 8, C_SOLO + 9
WORDS = C_SOLO + 10

# what km_poll returns: TICK, or a vCPU id << 2 | RUN, ANSWER or DECLINED
TICK, RUN, ANSWER, DECLINED = -1, 0, 1, 2

# the calls nativepoll.c can make (``make``): the ids take no argument
SYS_read, SYS_write, SYS_fstat, SYS_lseek, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev = 0, 1, 5, 8, 17, 18, 19, 20
SYS_stat, SYS_lstat, SYS_newfstatat = 4, 6, 262
SYS_sendto, SYS_recvfrom = 44, 45  # (as send and recv, of a socket: nativepoll.c plain_message)
IDS = (39, 102, 104, 107, 108, 110, 111)  # getpid getuid getgid geteuid getegid getppid getpgrp
CALLS = (SYS_read, SYS_write, SYS_fstat, SYS_lseek, SYS_pread64, SYS_pwrite64, SYS_readv, SYS_writev, SYS_stat,
         SYS_lstat, SYS_newfstatat, SYS_sendto, SYS_recvfrom, *IDS)


def defines() -> list[str]:
    """The -D definitions nativepoll.c is compiled with."""
    from kontain.kernel.fdtable import NEVER_OPEN

    names = {
        "C_BASE": C_BASE, "C_SIZE": C_SIZE, "C_GUARD": C_GUARD, "C_USER_LIMIT": C_USER_LIMIT,
        "C_NONCANONICAL": C_NONCANONICAL, "C_MAX_RW": C_MAX_RW, "C_FLOOR": C_FLOOR, "C_EAGER": C_EAGER,
        "C_REWRITING": C_REWRITING, "C_SERVING": C_SERVING, "C_NVID": C_NVID, "C_SERVED": C_SERVED,
        "C_PATCHED": C_PATCHED, "C_TICK_NS": C_TICK_NS, "C_WARM": C_WARM, "C_PID": C_PID,
        "C_VC": C_VC, "V_SLOT": V_SLOT, "V_KICK": V_KICK,
        "V_ANSWERED": V_ANSWERED,
        "V_LAST": V_LAST, "V_NATIVE": V_NATIVE, "V_DECLINED": V_DECLINED, "V_CARRY": V_CARRY,
        "V_DECLINED_NR": V_DECLINED_NR, "VC_WORDS": VC_WORDS, "C_NR": C_NR, "C_SITES": C_SITES,
        "SITES_BITS": SITES_BITS, "POLL_VCPUS": L.POLL_VCPUS, "SLOT_STATE": L.SLOT_STATE,
        "SLOT_ON": L.SLOT_ON, "SLOT_NR": L.SLOT_NR, "SLOT_ARGS": L.SLOT_ARGS, "SLOT_RESULT": L.SLOT_RESULT,
        "SLOT_RCX": L.SLOT_RCX, "SLOT_POSTED": L.SLOT_POSTED, "SLOT_TAKEN": L.SLOT_TAKEN,
        "SLOT_DONE": L.SLOT_DONE, "SLOT_DONE_EXIT": L.SLOT_DONE_EXIT, "POLL_SPIN_EAGER": L.POLL_SPIN_MAX,
        "SEEK_MAX": SEEK_HOLE, "NEVER_OPEN": NEVER_OPEN, "C_NLOCKED": C_NLOCKED, "C_LOCKED": C_LOCKED,
        "C_NPLAIN": C_NPLAIN, "C_PLAIN": C_PLAIN, "PLAIN_MAX": PLAIN_MAX,
        "LOCKED_MAX": LOCKED_MAX, "C_SOLO": C_SOLO, "C_EPOCH": C_EPOCH, "C_KNOWN_FD": C_KNOWN_FD,
        "C_KNOWN_EPOCH": C_KNOWN_EPOCH, "C_KNOWN_KIND": C_KNOWN_KIND, "C_STREAMS": C_STREAMS,
        "C_OWN_SIGNALS": C_OWN_SIGNALS, "C_READ_WAIT_NS": C_READ_WAIT_NS, "C_POSTING": C_POSTING,
        "C_SIG_TAKEN": C_SIG_TAKEN,
        "SLOT_DECLINED": L.SLOT_DECLINED,
    }
    return [f"-D{k}={v}" for k, v in names.items()] + ["-shared", "-fPIC"]


_poll = None  # km_poll, once loaded (False: not available)


def load():
    """``km_poll`` as a function of (control block address, idle rounds), or None when
    the library is not built or is older than its source (a stale one may not match
    this module's layout)."""
    global _poll
    if _poll is None:
        _poll = False
        try:
            if os.stat(LIBRARY).st_mtime >= os.stat(SOURCE).st_mtime:
                _poll = native.library_function(LIBRARY, "km_poll", native.c_long, native.c_ulong, native.c_long)
        except OSError:
            pass
    return _poll or None


class Control:
    """One process's control block (the poller's; a forked child makes its own)."""

    def __init__(self, window, floor: int, pollable: list[bool], eager: bool, epoch: bytearray) -> None:
        from kontain.memory.window import GUARD, NONCANONICAL, USER_LIMIT

        self.buf = bytearray(8 * WORDS)
        self.addr = native.address_of(self.buf)
        self.w = memoryview(self.buf).cast("Q")
        w = self.w
        w[C_BASE], w[C_SIZE], w[C_GUARD] = window.base, window.size, GUARD
        w[C_USER_LIMIT], w[C_NONCANONICAL], w[C_MAX_RW] = USER_LIMIT, NONCANONICAL, MAX_RW_COUNT
        w[C_FLOOR], w[C_EAGER], w[C_TICK_NS], w[C_PID] = floor, int(eager), TICK_NS, os.getpid()
        w[C_STREAMS] = 1
        self.epoch = epoch  # (kept alive: the block points at it)
        w[C_EPOCH] = native.address_of(epoch)
        for nr in CALLS:
            if pollable[nr]:
                self.buf[8 * C_NR + nr] = 1
        self.kicks: list = [None] * L.POLL_VCPUS  # the kick flags the block points at, kept alive

    def attach(self, vid: int, slot_addr: int, task) -> None:
        w, o = self.w, C_VC + vid * VC_WORDS
        self.kicks[vid] = task.kick_flag
        w[o + V_KICK] = task.kick_addr
        w[o + V_NATIVE] = 0
        w[o + V_SLOT] = slot_addr
        if vid >= w[C_NVID]:
            w[C_NVID] = vid + 1

    def detach(self, vid: int) -> None:
        self.w[C_VC + vid * VC_WORDS + V_SLOT] = 0

    def native(self, vid: int, on: bool) -> None:
        """May the poller thread make this vCPU's calls (the same credentials)?"""
        self.w[C_VC + vid * VC_WORDS + V_NATIVE] = int(on)

    def answered(self, vid: int) -> tuple[int, int]:
        """(calls answered natively on ``vid``, when the last was)."""
        o = C_VC + vid * VC_WORDS
        return self.w[o + V_ANSWERED], self.w[o + V_LAST]

    def signals(self, posting: bytearray, taken: bytearray) -> None:
        """Where km_poll looks for host signals on their way to the program (a stream's
        call it made is then answered with an exit, which collects them first)."""
        self.signal_words = (posting, taken)  # (kept alive: the block points at them)
        self.w[C_POSTING], self.w[C_SIG_TAKEN] = native.address_of(posting), native.address_of(taken)

    def declined(self, vid: int) -> tuple[bool, int]:
        """Did km_poll decline ``vid``'s last call, and how many bytes of it (a write to a
        socket) were taken?  Both forgotten: asked once, at the exit that follows."""
        o = C_VC + vid * VC_WORDS
        w = self.w
        if not w[o + V_DECLINED]:
            return False, 0
        carry = w[o + V_CARRY]
        w[o + V_DECLINED] = w[o + V_CARRY] = 0
        return True, carry

    def declined_nr(self, vid: int) -> int:
        """The call km_poll declined last on ``vid``."""
        return self.w[C_VC + vid * VC_WORDS + V_DECLINED_NR]

    def locked(self, files: list[tuple[int, int]]) -> None:
        """The files (st_dev, st_ino) whose reads and writes km_poll leaves to Python
        (kernel/poll.py ``posix_locking``): each entry before the count that covers it."""
        w = self.w
        for i, (dev, ino) in enumerate(files[:LOCKED_MAX]):
            w[C_LOCKED + 2 * i], w[C_LOCKED + 2 * i + 1] = dev, ino
        w[C_NLOCKED] = len(files)

    def plain(self, dev: int) -> None:
        """File system ``dev`` is not procfs (ProcFs.is_proc_dev found so): km_poll may
        answer a stat of a path that ends on it.  (The entry before the count.)"""
        w = self.w
        n = w[C_NPLAIN]
        if n < PLAIN_MAX and dev not in w[C_PLAIN:C_PLAIN + n]:
            w[C_PLAIN + n] = dev
            w[C_NPLAIN] = n + 1

    def settle(self, ret: int, patched: bool) -> None:
        """The rewriter is done with the site returning to ``ret``: its calls need Python
        no more.  (A full neighbourhood leaves it out: its calls keep going to Python.)"""
        w = self.w
        h = ((ret * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> (64 - SITES_BITS)
        for i in range(16):
            o = C_SITES + 2 * ((h + i) & ((1 << SITES_BITS) - 1))
            if w[o] == 0 or w[o] == ret:
                w[o + 1] = int(patched)  # (the flag first: nativepoll.c reads the address first)
                w[o] = ret
                return

    def forget_sites(self) -> None:
        """exec: the sites were the old program's."""
        self.w[C_SITES:C_NLOCKED] = memoryview(bytes(8 * (C_NLOCKED - C_SITES))).cast("Q")
