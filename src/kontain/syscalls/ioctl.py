"""ioctl: only requests known to be safe pass through, with their argument checked.

An ioctl argument can be a pointer to anything, so the monitor must know each request
it lets through: terminals, FIONREAD and friends.  Everything else fails with ENOTTY
(and shows in --strace), as for a descriptor that does not support the request.
"""

from __future__ import annotations

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import ENOTTY
from kontain.errors import GuestError
from kontain.syscalls.common import ptr, u32

SYS_ioctl = 16
_TERMIOS, _TERMIOS2, _INT = 36, 44, 4
NONE, VALUE = -1, 0
# request -> size of the structure the argument points to; VALUE: the argument is a
# number; NONE: no argument
REQUESTS: dict[int, int] = {
    F.TCGETS: _TERMIOS, F.TCSETS: _TERMIOS, F.TCSETSW: _TERMIOS, F.TCSETSF: _TERMIOS,
    F.TCGETS2: _TERMIOS2, F.TCSETS2: _TERMIOS2, F.TCSETSW2: _TERMIOS2, F.TCSETSF2: _TERMIOS2,
    F.TCGETA: 18, F.TCSETA: 18, F.TCSETAW: 18, F.TCSETAF: 18,
    F.TCSBRK: VALUE, F.TCSBRKP: VALUE, F.TCXONC: VALUE, F.TCFLSH: VALUE,
    F.TIOCGWINSZ: 8, F.TIOCSWINSZ: 8,
    F.TIOCGPGRP: _INT, F.TIOCSPGRP: _INT, F.TIOCGSID: _INT, F.TIOCOUTQ: _INT, F.FIONREAD: _INT,
    F.FIONBIO: _INT, F.FIOASYNC: _INT, F.TIOCGPTN: _INT, F.TIOCSPTLCK: _INT, F.TIOCGDEV: _INT,
    F.TIOCMGET: _INT, F.TIOCMSET: _INT, F.TIOCMBIS: _INT, F.TIOCMBIC: _INT, F.TIOCGETD: _INT,
    F.TIOCSETD: _INT, F.FIGETBSZ: _INT, F.TIOCGLCKTRMIOS: _TERMIOS, F.TIOCSLCKTRMIOS: _TERMIOS,
    F.TIOCSCTTY: VALUE, F.TIOCNOTTY: NONE, F.TIOCEXCL: NONE, F.TIOCNXCL: NONE,
    F.TIOCSBRK: NONE, F.TIOCCBRK: NONE, F.FIOCLEX: NONE, F.FIONCLEX: NONE,
    F.TIOCSTI: 1, F.FIOQSIZE: 8, F.BLKGETSIZE64: 8,
}


def ioctl(t, fd, request, arg, *_):
    fd = t.fds.check(fd)
    request = u32(request)
    size = REQUESTS.get(request)
    if size is None:
        raise GuestError(ENOTTY)
    if size == NONE:
        arg = 0
    elif size != VALUE:
        arg = ptr(t, arg, size)
    return native.syscall(SYS_ioctl, fd, request, arg)
