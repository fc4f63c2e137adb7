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

import os
import struct

from kontain import native
from kontain.abi.errno import EFAULT, EINTR, EINVAL, EMFILE
from kontain.abi.flags import AT_FDCWD
from kontain.abi.signals import UNBLOCKABLE
from kontain.errors import GuestError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (~3 ms)

if TYPE_CHECKING:
    from collections.abc import Callable

    Handler = Callable[..., int]
MAX_RW_COUNT = 0x7FFFF000  # Linux caps one read/write at INT_MAX rounded down to a page
_EFAULT = GuestError(EFAULT)


def s32(x: int) -> int:
    """A register as the kernel reads an ``int`` argument."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def u32(x: int) -> int:
    return x & 0xFFFFFFFF


def u64(x: int) -> int:
    return x & 0xFFFFFFFFFFFFFFFF


def dirfd(t, fd: int) -> int:
    """An ``int dirfd`` argument: AT_FDCWD, or a guest descriptor.  One in the monitor's
    range is, for the guest, not open: the host gets -1, which it ignores for an
    absolute path (as Linux ignores any dirfd then) and refuses for a relative one
    (EBADF); refusing it here made openat(100000, "/dev/null") fail."""
    fd = s32(fd)
    if fd == AT_FDCWD or fd < 0:
        return fd
    return fd if t.fds.allowed(fd) else -1


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
    """(host address, length) of a byte buffer, length capped as Linux caps it."""
    length = u64(length)
    if length > MAX_RW_COUNT:
        length = MAX_RW_COUNT
    return t.mem.host(addr, length), length


# -- pass-through -----------------------------------------------------------------
#
# Argument kinds:
#   "v"  a value, as it is            "i"  an int (sign-extended from 32 bits)
#   "f"  a descriptor                 "d"  a directory descriptor (AT_FDCWD allowed)
#   "s"  a path string                "p<N>" a pointer to N bytes, or NULL
#   "b<i>" a buffer whose length is argument i
# Result kinds: "" a value; "fd" a new descriptor for the guest.


def _convert(kind: str) -> Callable:
    if kind == "v":
        return lambda t, a, args: a
    if kind == "i":
        return lambda t, a, args: s32(a)
    if kind == "f":
        return lambda t, a, args: t.fds.check(a)
    if kind == "d":
        return lambda t, a, args: dirfd(t, a)
    if kind == "s":
        return lambda t, a, args: path(t, a)
    if kind.startswith("p"):
        size = int(kind[1:])
        return lambda t, a, args: ptr(t, a, size)
    if kind.startswith("b"):
        index = int(kind[1:])
        return lambda t, a, args: buffer(t, a, args[index])[0] if a else 0
    raise ValueError(f"unknown argument kind {kind!r}")


def passthrough(nr: int, kinds: str, result: str = "") -> Handler:
    """A handler that checks and translates its arguments and makes the host call.

    ``kinds`` is a space-separated list of argument kinds (see above).  The argument
    converters are built on the first call: km builds ~150 of these handlers at start-up
    and a program uses a handful."""
    sc = native.syscall
    convs: list[Callable] = []

    def call(t, *args: int) -> int:
        if not convs and kinds:
            convs.extend(_convert(k) for k in kinds.split())
        r = sc(nr, *[c(t, a, args) for c, a in zip(convs, args)])
        if result == "fd" and r >= 0:
            return t.fds.new(r)
        return r

    return call


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
            return 0
        except GuestError:
            r = -EFAULT
    for fd in pair:
        os.close(fd)
    return r


SIGSET_SIZE = 8


def sigmask_arg(t, addr: int, size: int) -> int | None:
    """The signal mask argument of ppoll, pselect6, epoll_pwait(2): None for NULL."""
    if not addr:
        return None
    if u64(size) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    return struct.unpack("<Q", t.mem.read(addr, SIGSET_SIZE))[0]


def with_sigmask(t, mask: int | None, call: Callable[[], int]) -> int:
    """Make a host call that waits (``call``, with no mask of its own) under the program's
    signal mask ``mask``, as ppoll, pselect6 and epoll_pwait do on Linux.

    The mask is the guest thread's, kept by the monitor, never given to the host thread:
    there every signal but the kick stays blocked (the signal thread takes them), or a
    signal the program handles would take its default action on km.  So the thread's
    mask becomes ``mask`` (the old one saved, as rt_sigsuspend does): a signal it lets
    through kicks the call (EINTR), the handler runs under it and rt_sigreturn puts the
    old one back; one pending already ends the call at once.  Any other end puts the
    old mask back now.  (A restarted call finds the old mask saved already.)"""
    if mask is None:
        return call()
    if t.saved_mask is None:
        t.saved_mask = t.sigmask
    t.sigmask = mask & ~UNBLOCKABLE
    r = -EINTR if t.has_signals() else call()
    if r != -EINTR:
        t.sigmask = t.saved_mask
        t.saved_mask = None
    return r
