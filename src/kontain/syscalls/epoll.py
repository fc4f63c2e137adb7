"""epoll, and the descriptors that deliver events: eventfd, timerfd, inotify.

All pass through: the program's descriptors are host descriptors.  What needs care is
that the program can only watch its own descriptors (never the monitor's), and the
signal mask of epoll_pwait, which the monitor applies (syscalls.signal.with_sigmask).
"""

from __future__ import annotations

from kontain import native
from kontain.abi.errno import EBADF, EINVAL
from kontain.errors import GuestError
from kontain.syscalls.common import not_open, ptr, s32, timeout_arg, u64
from kontain.syscalls.signal import with_sigmask

SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2 = 233, 232, 281, 441
EPOLL_EVENT_SIZE = 12  # struct epoll_event is packed on x86-64
EP_MAX_EVENTS = 0x7FFFFFFF // EPOLL_EVENT_SIZE
SIGSET_SIZE = 8


def epoll_ctl(t, epfd, op, fd, event, *_):
    """The host makes every check, in Linux's order (the event is read before the
    descriptors are looked at)."""
    return native.syscall(SYS_epoll_ctl, t.fds.host(epfd), s32(op), t.fds.host(fd), ptr(t, event, EPOLL_EVENT_SIZE))


def _events(t, epfd, events, maxevents) -> tuple[int, int, int]:
    """(epfd, events, maxevents) for the host.  Linux (since 6.x) looks at the descriptor
    before maxevents: a bad count on a closed descriptor is EBADF (looked at only then:
    epoll_wait is a hot call)."""
    epfd = t.fds.check(epfd)
    n = s32(maxevents)
    if n <= 0 or n > EP_MAX_EVENTS:
        raise GuestError(EBADF if not_open(epfd) else EINVAL)
    return epfd, ptr(t, events, n * EPOLL_EVENT_SIZE), n


def epoll_wait(t, epfd, events, maxevents, timeout, *_):
    epfd, host, n = _events(t, epfd, events, maxevents)
    return with_sigmask(t, None, lambda: t.blocking(SYS_epoll_wait, epfd, host, n, s32(timeout)),
                        lambda: native.syscall(SYS_epoll_wait, epfd, host, n, 0))


def _mask(t, sigmask, size) -> bytearray | None:
    if not sigmask:
        return None
    if u64(size) != SIGSET_SIZE:
        raise GuestError(EINVAL)
    return bytearray(t.mem.read(sigmask, SIGSET_SIZE))


def epoll_pwait(t, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    mask = _mask(t, sigmask, sigsetsize)  # (Linux sets the mask first)
    epfd, host, n = _events(t, epfd, events, maxevents)
    return with_sigmask(t, mask,
                        lambda: t.blocking(SYS_epoll_pwait, epfd, host, n, s32(timeout), 0, SIGSET_SIZE),
                        lambda: native.syscall(SYS_epoll_pwait, epfd, host, n, 0, 0, SIGSET_SIZE))


_ZERO_TS = bytearray(16)


def epoll_pwait2(t, epfd, events, maxevents, timeout, sigmask, sigsetsize):
    timeout_arg(t, timeout)  # (Linux: the timeout, the mask, then the descriptor)
    mask = _mask(t, sigmask, sigsetsize)
    epfd, host, n = _events(t, epfd, events, maxevents)
    ts = ptr(t, timeout, 16)
    return with_sigmask(t, mask, lambda: t.blocking(SYS_epoll_pwait2, epfd, host, n, ts, 0, SIGSET_SIZE),
                        lambda: native.syscall(SYS_epoll_pwait2, epfd, host, n, native.address_of(_ZERO_TS), 0,
                                               SIGSET_SIZE))
