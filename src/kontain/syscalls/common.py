"""What every syscall family needs: argument conversions and pass-through handlers.

Handler signature, for every syscall: ``handler(task, a0, a1, a2, a3, a4, a5) -> int``.
Arguments are the raw registers (signed 64-bit); the result is a value or ``-errno``
(from the host call), or the handler raises ``GuestError``.  Only the dispatcher writes
RAX.

:func:`passthrough` builds the handler of a call that the host kernel can serve as it
is, once its arguments are checked and translated: descriptors checked against the
monitor's, pointers checked against the guest window and moved to host addresses.
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi.errno import EFAULT, EINTR, EINVAL, EMFILE, ERESTARTNOINTR
from kontain.abi.flags import MAX_RW_COUNT, S_IFMT  # noqa: F401  (MAX_RW_COUNT: the syscall families take it from here)
from kontain.errors import GuestError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

if TYPE_CHECKING:
    from collections.abc import Callable

    Handler = Callable[..., int]
_EFAULT = GuestError(EFAULT)


def polled(t) -> bool:
    """Is a monitor thread (the polling tier's, kernel/poll.py) serving this call of
    ``t``'s, rather than ``t``'s own thread?  A pollable call that may block in some
    cases raises OwnThread in those when it is, and ``t``'s thread makes it: a poller
    blocked in one thread's call would serve no other thread's meanwhile, and no signal
    could interrupt the call."""
    return _thread.get_ident() != t.ident


def file_type(fd: int) -> int:
    """The S_IFMT bits of host descriptor ``fd``'s file (0 for an anonymous inode:
    eventfd, epoll, timerfd...), or -1 when fstat fails."""
    st = bytearray(144)
    if native.syscall(5, fd, native.address_of(st)) != 0:
        return -1
    return struct.unpack_from("<I", st, 24)[0] & S_IFMT


def s32(x: int) -> int:
    """A register as the kernel reads an ``int`` argument."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def u32(x: int) -> int:
    return x & 0xFFFFFFFF


def u64(x: int) -> int:
    return x & 0xFFFFFFFFFFFFFFFF


def dirfd(t, fd: int) -> int:
    """An ``int dirfd`` argument: AT_FDCWD, or a guest descriptor.  One of the monitor's
    is, for the program, not open: the host gets -1 instead, which it ignores for an
    absolute path and refuses with EBADF otherwise, as Linux does with a closed one."""
    fd = s32(fd)
    if fd < 0 or t.fds.allowed(fd):
        return fd
    return -1


def ptr(t, addr: int, size: int = 1) -> int:
    """A pointer to ``size`` bytes that may be NULL (the host sees NULL for NULL)."""
    if addr == 0:
        return 0
    return t.mem.host(addr, size)


def path(t, addr: int) -> int:
    """A path argument: the host kernel reads the string, stopping at the NUL or failing
    with EFAULT in the guard past the window."""
    if addr == 0:
        return 0
    return t.mem.host(addr, 1)


def buffer(t, addr: int, length: int) -> tuple[int, int]:
    """(host address, length) of a byte buffer, length capped as Linux caps it.  (No
    check of the whole range: many calls' lengths are ints the kernel cuts to 32 bits,
    or copy less than their length says.)"""
    length = u64(length)
    if length > MAX_RW_COUNT:
        length = MAX_RW_COUNT
    return t.mem.host(addr, length), length


# -- pass-through -----------------------------------------------------------------
#
# Argument kinds (the syscall table's ``args``, syscalls/table.py, says what each means):
# i and h (an int), f (a descriptor), a (a directory descriptor), s (a path), pN (a pointer
# to N bytes or NULL), bI/BI (a buffer whose length is argument I), and values passed as
# they are: d u x o m P M S A I F g.  Result: "fd" when the call makes a descriptor.
_VALUES = frozenset("duxomPMSAIFg")


def _convert(kind: str) -> Callable:
    if kind in _VALUES:
        return lambda t, a, args: a
    if kind in ("i", "h"):
        return lambda t, a, args: s32(a)
    if kind == "f":
        return lambda t, a, args: t.fds.host(a)
    if kind == "a":
        return lambda t, a, args: dirfd(t, a)
    if kind == "s":
        return lambda t, a, args: path(t, a)
    if kind[0] == "p" and kind[1:].isdigit():
        size = int(kind[1:])
        return lambda t, a, args: ptr(t, a, size)
    if kind[0] in "bB" and kind[1:].isdigit():
        index = int(kind[1:])
        return lambda t, a, args: buffer(t, a, args[index])[0] if a else 0
    raise ValueError(f"argument kind {kind!r} cannot be passed through (a pointer needs its size)")


def passthrough(nr: int, kinds: str, result: str = "", blocking: bool = False) -> Handler:
    """A handler that checks and translates its arguments and makes the host call.

    ``kinds`` is a space-separated list of argument kinds (see above).  The argument
    converters are built on the first call: km builds ~150 of these handlers at start-up
    and a program uses a handful.  ``blocking``: the call may wait (nanosleep, wait4,
    flock...), so it goes through Task.blocking, and a kick (a signal) that comes
    before it starts makes it fail as one that comes while it waits (EINTR, or a
    restart)."""
    convs: list[Callable] | None = None

    def call(t, *args: int) -> int:
        nonlocal convs
        cs = convs
        if cs is None:  # (two threads may build it at once: each its own whole list)
            cs = convs = [_convert(k) for k in kinds.split()]
        host = [c(t, a, args) for c, a in zip(cs, args)]
        r = t.blocking(nr, *host) if blocking else native.syscall(nr, *host)
        if r == -ERESTARTNOINTR and kinds[:1] == "f" and not_open(host[0]):
            r = native.syscall(nr, *host)  # (a call on a closed descriptor never waits: EBADF, not EINTR)
        if result == "fd" and r >= 0:
            return t.fds.new(r)
        return r

    return call


def io_call(t, fd: int, events: int, nr: int, *args: int) -> int:
    """A read or write of ``fd`` (host descriptor, first argument of call ``nr``) that may
    wait: through Task.blocking.  When a kick kept it from starting, it is made after
    all if ``fd`` is ready (Linux fails with EINTR only a call that would wait; regular
    files are always ready), else it fails with EINTR (restarted as SA_RESTART says)."""
    r = t.blocking(nr, fd, *args)
    if r == -ERESTARTNOINTR:
        pfd = bytearray(struct.pack("<ihh", fd, events, 0))
        if native.syscall(SYS_poll, native.address_of(pfd), 1, 0) > 0:
            return native.syscall(nr, fd, *args)
        return -EINTR
    return r


POLLIN, POLLOUT, SYS_poll = 1, 4, 7
SYS_fcntl, F_GETFD = 72, 1


def timeout_arg(t, addr: int) -> None:
    """A call's ``struct timespec`` timeout that Linux reads and checks before anything
    else (epoll_pwait2, recvmmsg): EFAULT, then EINVAL unless 0 <= tv_nsec < 10**9 and
    tv_sec >= 0.  The host gets the pointer all the same."""
    if addr:
        sec, nsec = struct.unpack("<qq", t.mem.read(addr, 16))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise GuestError(EINVAL)


def not_open(fd: int) -> bool:
    """Is host descriptor ``fd`` (one of the program's range, or fdtable.NEVER_OPEN) not
    open?  For the calls whose descriptor Linux looks at before an argument km checks."""
    return native.syscall(SYS_fcntl, fd, F_GETFD, 0) < 0


def check_flags(flags: int, allowed: int) -> None:
    if flags & ~allowed:
        raise GuestError(EINVAL)


def fd_pair(t, nr: int, before: tuple[int, ...], after: tuple[int, ...], addr: int) -> int:
    """pipe2 and socketpair: make the host call with an ``int[2]`` of the monitor's, and
    give the pair to the guest only if both fit under its descriptor limit and ``addr``
    takes them (else close them: the call fails as on Linux, with nothing left open)."""
    buf = bytearray(8)
    r = native.syscall(nr, *before, native.address_of(buf), *after)
    if r < 0:
        return r
    pair = struct.unpack("<ii", buf)
    if max(pair) >= t.fds.soft:
        r = -EMFILE
    else:
        try:
            t.mem.write(addr, bytes(buf))
            t.fds.seen(max(pair))
            return 0
        except GuestError:
            r = -EFAULT
    for fd in pair:
        os.close(fd)
    return r
