"""Users, groups and capabilities: the host thread's credentials are the program
thread's, so the calls pass through, on the vCPU thread that made them (Linux's
credentials are per thread; the C library makes setuid process-wide by calling it in
every thread, which km serves the same way).

What km adds: a thread about to give up privileges first imports what km imports at
first use (kontain/lazy.py; its files may not be readable by the new user), and once it
has changed them, its new credentials are recorded (``Task.creds``) so that no monitor
thread acts for it with others: the polling tier serves a thread only with that
thread's credentials (kernel/poll.py), and a program that changed its effective ids is
no longer dumpable (Linux's rule, for PR_GET_DUMPABLE)."""

from __future__ import annotations

from kontain import native
from kontain.abi.errno import EINVAL
from kontain.errors import GuestError
from kontain.syscalls.common import s32, u32

SYS_getgroups, SYS_setgroups = 115, 116
SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid = 105, 106, 113, 114, 117, 119
SYS_setfsuid, SYS_setfsgid, SYS_capset = 122, 123, 126
NGROUPS_MAX = 65536


def getgroups(t, size, lst, *_):
    size = s32(size)
    if size < 0:
        raise GuestError(EINVAL)
    return native.syscall(SYS_getgroups, size, t.mem.host(lst, 4 * size) if size else 0)


def changing(t, nr: int, *args: int) -> int:
    """Make a call that may change the calling thread's credentials, and record them."""
    from kontain import lazy

    lazy.preload(decoder=t.process.rewriter is not None)  # (before the thread may no longer read km's own files)
    before = ids()
    r = native.syscall(nr, *args)
    if r >= 0:
        after = ids()
        if after != before:  # effective or file system ids: no longer dumpable (commit_creds)
            t.process.confinement.dumpable = _suid_dumpable()
        t.credentials_changed()
    return r


def ids() -> tuple[int, ...]:
    """The calling thread's effective and file system uid and gid."""
    uid = bytearray(12)
    gid = bytearray(12)
    native.syscall(118, native.address_of(uid), native.address_of(uid) + 4, native.address_of(uid) + 8)  # getresuid
    native.syscall(120, native.address_of(gid), native.address_of(gid) + 4, native.address_of(gid) + 8)  # getresgid
    fsuid = native.syscall(SYS_setfsuid, 0xFFFFFFFF)  # (an invalid id changes nothing, returns the current)
    fsgid = native.syscall(SYS_setfsgid, 0xFFFFFFFF)
    return uid[4:8], gid[4:8], fsuid, fsgid


def _suid_dumpable() -> int:
    try:
        with open("/proc/sys/fs/suid_dumpable", "rb") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def setgroups(t, size, lst, *_):
    size = s32(size)
    if size < 0 or size > NGROUPS_MAX:  # the host refuses it (EINVAL) after its permission check (EPERM)
        return changing(t, SYS_setgroups, size, 0)
    return changing(t, SYS_setgroups, size, t.mem.host(lst, 4 * size) if size else 0)


def setuid(t, uid, *_):
    return changing(t, SYS_setuid, u32(uid))


def setgid(t, gid, *_):
    return changing(t, SYS_setgid, u32(gid))


def setreuid(t, ruid, euid, *_):
    return changing(t, SYS_setreuid, u32(ruid), u32(euid))


def setregid(t, rgid, egid, *_):
    return changing(t, SYS_setregid, u32(rgid), u32(egid))


def setresuid(t, ruid, euid, suid, *_):
    return changing(t, SYS_setresuid, u32(ruid), u32(euid), u32(suid))


def setresgid(t, rgid, egid, sgid, *_):
    return changing(t, SYS_setresgid, u32(rgid), u32(egid), u32(sgid))


def setfsuid(t, uid, *_):
    return changing(t, SYS_setfsuid, u32(uid))


def setfsgid(t, gid, *_):
    return changing(t, SYS_setfsgid, u32(gid))


def capset(t, header, data, *_):
    # the header's version decides how much data there is: 1 or 2 structs of 12 bytes
    head = t.mem.read(header, 8)
    version = int.from_bytes(head[:4], "little")
    size = 12 if version == 0x19980330 else 24
    return changing(t, SYS_capset, t.mem.host(header, 8), t.mem.host(data, size) if data else 0)

