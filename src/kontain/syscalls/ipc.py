"""System V IPC: shared memory segments, semaphore sets and message queues; and POSIX
message queues' mq_notify (the other mq_* calls are pass-throughs, syscalls/table.py).

The host kernel's IPC namespace is the store.  Every km process shares it, so unrelated
guest processes (and native ones) see the same segments, sets and queues by key and id,
as processes do on Linux; a guest pid is a host pid, so the pids the kernel records
(shm_cpid, sempid, msg_lspid...) are the guest's; and the host kernel undoes a process's
SEM_UNDO adjustments when its km exits, as Linux does when the process exits.

So every call passes through once its pointers are checked: each becomes a host address
inside the window (memory/window.py), for as many bytes as the host kernel may copy
there.  The *ctl calls take a buffer whose size, and whether it is a pointer at all
(semctl's argument is a union), depends on the command: a command km does not know
fails with EINVAL without reaching the host (as this kernel fails an unknown one), so
that no command can ever hand the host an unchecked guest address.

shmat and shmdt change the address space: memory/mm.py attaches the segment inside the
window (AddressSpace.shmat) and detaches it (AddressSpace.shmdt).

POSIX message queues are the host's too (its mqueue file system, by name): a queue is a
descriptor of the program's, guest fd = host fd.  The host sends a queue's SIGEV_SIGNAL
notification to km's process, whose signal thread forwards it with the host's siginfo
(SI_MESGQ, si_value), as it forwards a timer's.
"""

from __future__ import annotations

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as SIG
from kontain.abi import structs as S
from kontain.abi.errno import EAGAIN, EINVAL, EMFILE, ENOMSG, ERESTARTNOINTR
from kontain.abi.syscalls import NR
from kontain.errors import GuestError
from kontain.syscalls.common import MAX_RW_COUNT, path, ptr, s32, u32, u64
from kontain.syscalls.mm import _lock_new as lock_new  # mlockall(MCL_FUTURE) locks attachments as it locks mmaps

_SYS_shmctl, _SYS_semop, _SYS_semtimedop, _SYS_semctl = NR["shmctl"], NR["semop"], NR["semtimedop"], NR["semctl"]
_SYS_msgsnd, _SYS_msgrcv, _SYS_msgctl = NR["msgsnd"], NR["msgrcv"], NR["msgctl"]
_INT_MAX = 0x7FFFFFFF
# GETALL and SETALL copy an unsigned short per semaphore, and the kernel makes no set of
# INT_MAX / sizeof(struct sem) semaphores or more (sizeof(struct sem) is at least 8)
_SEM_ARRAY_MAX = _INT_MAX // 8 * 2
_VALUE = -1  # semctl's argument is a value, not a pointer (SETVAL)

# command -> bytes the host reads or writes at the argument (0: the argument is unused)
_SHMCTL = {
    F.IPC_RMID: 0, F.SHM_LOCK: 0, F.SHM_UNLOCK: 0,
    F.IPC_SET: S.shmid64_ds.size, F.IPC_STAT: S.shmid64_ds.size, F.SHM_STAT: S.shmid64_ds.size,
    F.SHM_STAT_ANY: S.shmid64_ds.size, F.IPC_INFO: S.shminfo64.size, F.SHM_INFO: S.shm_info.size,
}
_SEMCTL = {
    F.IPC_RMID: 0, F.GETPID: 0, F.GETVAL: 0, F.GETNCNT: 0, F.GETZCNT: 0, F.SETVAL: _VALUE,
    F.IPC_SET: S.semid64_ds.size, F.IPC_STAT: S.semid64_ds.size, F.SEM_STAT: S.semid64_ds.size,
    F.SEM_STAT_ANY: S.semid64_ds.size, F.IPC_INFO: S.seminfo.size, F.SEM_INFO: S.seminfo.size,
    F.GETALL: _SEM_ARRAY_MAX, F.SETALL: _SEM_ARRAY_MAX,
}
_MSGCTL = {
    F.IPC_RMID: 0,
    F.IPC_SET: S.msqid64_ds.size, F.IPC_STAT: S.msqid64_ds.size, F.MSG_STAT: S.msqid64_ds.size,
    F.MSG_STAT_ANY: S.msqid64_ds.size, F.IPC_INFO: S.msginfo.size, F.MSG_INFO: S.msginfo.size,
}


def _ctl(nr: int, sizes: dict[int, int], t, ident: int, cmd: int, arg: int, *before: int) -> int:
    """A *ctl call: ``arg`` checked and translated as ``cmd`` uses it."""
    cmd = s32(cmd)
    size = sizes.get(cmd)
    if size is None:
        raise GuestError(EINVAL)
    if size == _VALUE:
        host_arg = arg
    elif size:
        host_arg = ptr(t, arg, size)
    else:
        host_arg = 0  # unused by the command: the host gets no guest address
    return native.syscall(nr, s32(ident), *before, cmd, host_arg)


# -- shared memory ---------------------------------------------------------------------

def shmat(t, shmid, addr, flags, *_):
    start = t.mm.shmat(s32(shmid), u64(addr), s32(flags))
    v = t.mm.find(start) if t.mm.lock_future >= 0 else None
    if v is not None:  # (None: another thread unmapped it already)
        lock_new(t, start, v.end - start)
    return start


def shmdt(t, addr, *_):
    t.mm.shmdt(u64(addr))
    return 0


def shmctl(t, shmid, cmd, buf, *_):
    return _ctl(_SYS_shmctl, _SHMCTL, t, shmid, cmd, buf)


# -- semaphores ------------------------------------------------------------------------

def semctl(t, semid, semnum, cmd, arg, *_):
    return _ctl(_SYS_semctl, _SEMCTL, t, semid, cmd, arg, s32(semnum))


def _sops(t, addr: int, nsops: int) -> int:
    """The host address of ``nsops`` struct sembuf.  The kernel refuses more than semopm
    of them (E2BIG) before it reads any; a count whose array could reach past the guard
    (only if semopm were raised past 350 million) gets NULL: E2BIG or EFAULT."""
    size = u32(nsops) * S.sembuf.size
    return t.mem.host(addr, size) if size <= MAX_RW_COUNT else 0


# A call that may wait, kept from starting by a signal (native.blocking's ERESTARTNOINTR),
# fails with EINTR on Linux only if it would have waited: otherwise it has its result
# (an error in its arguments, or done at once).  So it is made again without waiting
# (IPC_NOWAIT), and only "it would wait" (EAGAIN; ENOMSG for msgrcv) becomes the EINTR.
_SEMBUF_FLG = S.sembuf.offsets["sem_flg"]


def _semop(t, nr: int, semid, sops, nsops, *rest) -> int:
    semid, n, host_sops = s32(semid), u32(nsops), _sops(t, sops, nsops)
    r = t.blocking(nr, semid, host_sops, n, *rest)  # may wait
    if r != -ERESTARTNOINTR:
        return r
    try:
        raw = bytearray(t.mem.read(sops, n * S.sembuf.size)) if 0 < n <= 4096 else None
    except GuestError:
        raw = None
    if raw is None:  # EINVAL, E2BIG or EFAULT: the host says which, at once
        return native.syscall(nr, semid, host_sops, n, *rest)
    waits = False
    for at in range(_SEMBUF_FLG, len(raw), S.sembuf.size):
        flg = int.from_bytes(raw[at:at + 2], "little")
        waits |= not flg & F.IPC_NOWAIT
        raw[at:at + 2] = (flg | F.IPC_NOWAIT).to_bytes(2, "little")
    r = native.syscall(nr, semid, native.address_of(raw), n, *rest)
    return -ERESTARTNOINTR if r == -EAGAIN and waits else r


def semop(t, semid, sops, nsops, *_):
    return _semop(t, _SYS_semop, semid, sops, nsops)


def semtimedop(t, semid, sops, nsops, timeout, *_):
    return _semop(t, _SYS_semtimedop, semid, sops, nsops, ptr(t, timeout, S.timespec.size))


# -- message queues --------------------------------------------------------------------

def _msgbuf(t, addr: int, msgsz: int) -> int:
    """The host address of a struct msgbuf of ``msgsz`` text bytes.  The kernel copies
    the type and at most msgmax (an int) text bytes, whatever msgsz says: msgsnd refuses
    more (EINVAL), msgrcv copies only the message."""
    return t.mem.host(addr, S.MSGBUF_MTEXT + min(u64(msgsz), _INT_MAX))


def _msg_call(t, nr: int, would_wait: int, args: tuple, flags: int) -> int:
    r = t.blocking(nr, *args, flags)  # may wait
    if r != -ERESTARTNOINTR:
        return r
    if flags & F.MSG_COPY:  # (without IPC_NOWAIT: EINVAL at once; with it the call never waits)
        return native.syscall(nr, *args, flags)
    r = native.syscall(nr, *args, flags | F.IPC_NOWAIT)  # (see _semop)
    return -ERESTARTNOINTR if r == -would_wait and not flags & F.IPC_NOWAIT else r


def msgsnd(t, msqid, msgp, msgsz, msgflg, *_):
    return _msg_call(t, _SYS_msgsnd, EAGAIN, (s32(msqid), _msgbuf(t, msgp, msgsz), u64(msgsz)), s32(msgflg))


def msgrcv(t, msqid, msgp, msgsz, msgtyp, msgflg, *_):
    return _msg_call(t, _SYS_msgrcv, ENOMSG, (s32(msqid), _msgbuf(t, msgp, msgsz), u64(msgsz), msgtyp), s32(msgflg))


def msgctl(t, msqid, cmd, buf, *_):
    return _ctl(_SYS_msgctl, _MSGCTL, t, msqid, cmd, buf)


# -- POSIX message queues --------------------------------------------------------------

_SYS_mq_open, _SYS_mq_notify = NR["mq_open"], NR["mq_notify"]
SIGEV_SIGNAL, SIGEV_THREAD = 0, 2
NOTIFY_COOKIE_LEN = 32  # <linux/mqueue.h>


def mq_open(t, name, oflag, mode, attr, *_):
    """mq_open, in Linux's order: the attributes are copied (EFAULT), the name read, the
    descriptor's number taken (EMFILE: before the queue is made, FdTable.room), then the
    queue opened or made."""
    host_attr = ptr(t, attr, S.mq_attr.size)
    host_name = path(t, name)
    if not t.fds.room():
        raise GuestError(EMFILE)
    r = native.syscall(_SYS_mq_open, host_name, s32(oflag), u32(mode), host_attr)
    return t.fds.new(r) if r >= 0 else r


def mq_notify(t, mqdes, sevp, *_):
    """mq_notify: the struct sigevent is copied (EFAULT first, as Linux copies it first),
    and its nested parts made safe for the host.  SIGEV_THREAD (the C library's thread
    notification: the kernel sends ``sigev_value.sival_ptr``'s NOTIFY_COOKIE_LEN bytes to
    the netlink socket ``sigev_signo``) has a guest pointer, which the host gets
    translated once its bytes are checked to be in the window, and a descriptor, which
    gets fdtable's treatment (the monitor's are EBADF).  SIGEV_SIGNAL with SIGRTMAX, km's
    own kick signal, fails with EINVAL (as timer_create's does: known-issues.md)."""
    if not sevp:
        return native.syscall(_SYS_mq_notify, t.fds.host(mqdes), 0)
    value, signo, notify, tid, pad = S.sigevent.unpack(t.mem.read(sevp, S.sigevent.size))
    notify = s32(notify)
    if notify == SIGEV_SIGNAL and signo == SIG.SIGRTMAX:
        raise GuestError(EINVAL)
    if notify == SIGEV_THREAD:
        # (NULL stays NULL: the host's copy of the cookie fails with EFAULT, as Linux's)
        value = ptr(t, value, NOTIFY_COOKIE_LEN)
        signo = t.fds.host(signo)
    host_ev = bytearray(S.sigevent.pack(value, s32(signo), notify, tid, pad))
    return native.syscall(_SYS_mq_notify, t.fds.host(mqdes), native.address_of(host_ev))
