"""For programs running under km: ask km itself (C programs: kontain.h beside this file).

``snapshot(path=None, exit=False)`` writes a snapshot of the calling program (every
thread) to ``path`` (None: km's default, ./kmsnap.PID) and returns False in the run that
took it, True in each run resumed from it.  Outside km it raises OSError(ENOSYS); a
program km cannot snapshot gets OSError(EOPNOTSUPP), with km's reason on its stderr.
``exit=True`` ends the program once the file is written.  Pure Python (ctypes'
``syscall``), so a program can carry this file without installing km.
"""

from __future__ import annotations

KM_SNAPSHOT = 0x4B4D00
KM_SNAPSHOT_EXIT = 1


def snapshot(path: str | bytes | None = None, exit: bool = False) -> bool:
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    arg = ctypes.c_char_p(os.fsencode(path)) if path is not None else ctypes.c_char_p(None)
    r = libc.syscall(ctypes.c_long(KM_SNAPSHOT), arg, ctypes.c_long(KM_SNAPSHOT_EXIT if exit else 0))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r == 1
