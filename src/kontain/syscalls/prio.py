"""setpriority and getpriority of a process group or a user; ioprio_set and ioprio_get.

Linux applies them to every thread of every process of the group (of the user), and
answers with the last thread it could not change (EPERM: another user's; EACCES: a nice
value it may not lower), or for getpriority with the highest priority of them all.  A
km process has threads of its own besides the program's (the signal thread, the
poller...), with the credentials and nice value km started with: the host would count
them.  So km goes over the threads itself, in Linux's order (the group's processes
newest first, a user's oldest first; each one's threads in order), leaving out km's
own (of this process: those that are not the program's; of another km: those it named
km-...), and changes each one with PRIO_PROCESS, which is one thread on Linux.  A
process of one thread only, the program's, gets the host's own answer.
"""

from __future__ import annotations

from kontain import native
from kontain.abi.errno import EINVAL, ESRCH
from kontain.errors import GuestError
from kontain.syscalls.common import s32

SYS_getpriority, SYS_setpriority = 140, 141
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
MONITOR_THREAD = b"km-"  # how km names its own threads (native.name_thread)


def _known(t, who: int) -> None:
    """A thread the program names (0: itself): ESRCH for one it does not know, km's own
    threads among them."""
    if who and not t.process.procfs.task_known(who):
        raise GuestError(ESRCH)


def setpriority(t, which, who, prio, *_):
    which, who, prio = s32(which), s32(who), s32(prio)
    if which == PRIO_PROCESS:
        _known(t, who)
        return native.syscall(SYS_setpriority, which, who, prio)
    threads = _threads(t, which, who)
    error = -ESRCH
    for tid in threads:
        r = native.syscall(SYS_setpriority, PRIO_PROCESS, tid, prio)
        if r == 0:
            error = 0 if error == -ESRCH else error
        elif r != -ESRCH:
            error = r
    if error != -ESRCH:
        for tid in _monitor_threads(t):  # (km's own follow, where they may)
            native.syscall(SYS_setpriority, PRIO_PROCESS, tid, prio)
    return error


def getpriority(t, which, who, *_):
    which, who = s32(which), s32(who)
    if which == PRIO_PROCESS:
        _known(t, who)
        return native.syscall(SYS_getpriority, which, who)
    best = -ESRCH
    for tid in _threads(t, which, who):
        r = native.syscall(SYS_getpriority, PRIO_PROCESS, tid)
        if r > best:
            best = r  # (the host's answer is 20 - nice: larger is higher priority)
    return best


def _threads(t, which: int, who: int) -> list[int]:
    """The program-visible threads Linux would go over, in its order."""
    if which == PRIO_PGRP:
        pgrp = who or native.syscall(121, 0)  # getpgid
        match = lambda stat, status: _stat_field(stat, 5) == pgrp  # noqa: E731
        newest_first = True
    elif which == PRIO_USER:
        uid = who if who else native.syscall(102)  # getuid
        match = lambda stat, status: _uid(status) == uid  # noqa: E731
        newest_first = False
    else:
        raise GuestError(EINVAL)
    procfs = t.process.procfs
    own = procfs.pid
    pids = sorted((int(n) for n in procfs.names(b".") if n.isdigit()), reverse=newest_first)
    out = []
    for pid in pids:
        stat = procfs.read(b"%d/stat" % pid)
        if not stat or not match(stat, procfs.read(b"%d/status" % pid) if which == PRIO_USER else b""):
            continue
        if pid == own:
            out += sorted(t.process.tasks)
            continue
        for name in sorted(procfs.names(b"%d/task" % pid), key=lambda n: int(n) if n.isdigit() else 0):
            if name.isdigit() and not procfs.read(b"%d/task/%s/comm" % (pid, name)).startswith(MONITOR_THREAD):
                out.append(int(name))
    return out


def _monitor_threads(t) -> list[int]:
    procfs = t.process.procfs
    return [int(n) for n in procfs.names(b"self/task") if n.isdigit() and int(n) not in t.process.tasks]


def _stat_field(stat: bytes, field: int) -> int:
    """Field ``field`` (as proc(5) numbers them) of a /proc/PID/stat line."""
    rest = stat.rpartition(b")")[2].split()
    try:
        return int(rest[field - 3])
    except (IndexError, ValueError):
        return -1


def _uid(status: bytes) -> int:
    for line in status.split(b"\n"):
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return -1


# -- I/O priorities ----------------------------------------------------------------------
#
# ioprio_set and ioprio_get name a thread (IOPRIO_WHO_PROCESS: one thread on Linux, as
# PRIO_PROCESS is), a process group or a user, and meet km's own threads the same way:
# the group and the user go through ``_threads`` too.

SYS_ioprio_set, SYS_ioprio_get = 251, 252
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
_AS_PRIO = {IOPRIO_WHO_PGRP: PRIO_PGRP, IOPRIO_WHO_USER: PRIO_USER}
_NO_PID = 0x7FFFFFFF  # above any pid_max: the host looks at the priority, then says ESRCH


def check_ioprio(ioprio: int) -> int:
    """0 if the host takes ``ioprio`` as an I/O priority, else its -errno (EINVAL; EPERM
    for the real-time class without the capability): asked for a thread that cannot
    exist, so the host checks the priority and then says ESRCH."""
    r = native.syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, _NO_PID, ioprio)
    return 0 if r == -ESRCH else r


def ioprio_set(t, which, who, ioprio, *_):
    """ioprio_set, in Linux's order: the priority (EINVAL; EPERM for the real-time class
    without the capability), which (EINVAL), who (ESRCH); a group or a user thread by
    thread, stopping at the first thread that refuses, as Linux does."""
    which, who, ioprio = s32(which), s32(who), s32(ioprio)
    check = check_ioprio(ioprio)
    if check:
        return check
    if which == IOPRIO_WHO_PROCESS:
        _known(t, who)
        return native.syscall(SYS_ioprio_set, which, who, ioprio)
    if which not in _AS_PRIO:
        raise GuestError(EINVAL)
    r = -ESRCH
    for tid in _threads(t, _AS_PRIO[which], who):
        r = native.syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, ioprio)
        if r not in (0, -ESRCH):  # (-ESRCH: a thread gone meanwhile)
            return r
    if r != -ESRCH:
        r = 0
        for tid in _monitor_threads(t):  # (km's own follow, where they may)
            native.syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, ioprio)
    return r


def ioprio_get(t, which, who, *_):
    """ioprio_get; of a group or a user the best (lowest) priority of their threads."""
    which, who = s32(which), s32(who)
    if which == IOPRIO_WHO_PROCESS:
        _known(t, who)
        return native.syscall(SYS_ioprio_get, which, who)
    if which not in _AS_PRIO:
        raise GuestError(EINVAL)
    best = -ESRCH
    for tid in _threads(t, _AS_PRIO[which], who):
        r = native.syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid)
        if r >= 0:
            best = r if best < 0 else min(best, r)
    return best
