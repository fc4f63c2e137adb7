"""Job control on the controlling terminal: a background read stops the reader.

On Linux, a process of a background process group that reads its controlling terminal
makes the kernel send SIGTTIN to its group and restart the read; only if SIGTTIN is
ignored or blocked, or the group is orphaned, does the read fail with EIO.  km keeps every
forwarded signal blocked in its own threads, so the host kernel always takes the EIO
branch.  ``background_read`` takes Linux's branch instead, with the program's own
disposition and mask, when the host says EIO.
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EINTR, EIO


def _tty_int(fd: int, request: int) -> int | None:
    buf = bytearray(4)
    if native.syscall(16, fd, request, native.address_of(buf)) < 0:  # ioctl
        return None
    return struct.unpack("<i", buf)[0]


def background_read(t, fd: int) -> int:
    """A read of ``fd`` failed with EIO: -EINTR once SIGTTIN is on its way to the process
    group (the read then restarts, as SA_RESTART and the handler say), else -EIO."""
    if _tty_int(fd, F.TIOCGSID) != os.getsid(0):
        return -EIO  # not our controlling terminal: a real I/O error
    foreground = _tty_int(fd, F.TIOCGPGRP)
    pgrp = os.getpgrp()
    if not foreground or foreground == pgrp:
        return -EIO
    p = t.process
    bit = 1 << (S.SIGTTIN - 1)
    if t.sigmask & bit or p.actions.handler(S.SIGTTIN) == S.SIG_IGN or orphaned(pgrp):
        return -EIO
    os.killpg(pgrp, S.SIGTTIN)  # every process of the group, this one included (via the signal thread)
    p.wait_for(t, lambda: bool((t.pending.mask | t.shared.mask) & bit), 100_000_000)
    return -EINTR


def orphaned(pgrp: int) -> bool:
    """Is process group ``pgrp`` orphaned (no member has a parent in another group of the
    same session)?  Stop signals from the terminal do not stop an orphaned group."""
    sid = os.getsid(0)
    procs: dict[int, tuple[int, int, int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        procs[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))  # ppid, pgrp, session
    for ppid, group, _ in procs.values():
        if group != pgrp:
            continue
        parent = procs.get(ppid)
        if parent and parent[1] != pgrp and parent[2] == sid:
            return False
    return True
