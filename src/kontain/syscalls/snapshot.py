"""km's own system call KM_SNAPSHOT (abi/syscalls.py): the program snapshots itself.

The calling thread writes the file while every other thread is paused
(kernel/snapshot.py); the call returns 0 here and 1 in each run resumed from the file.
What a snapshot cannot take along is said in one line on km's stderr, and the call
fails with EOPNOTSUPP (the program goes on); a file that cannot be written fails with
its errno.
"""

from __future__ import annotations

import os

from kontain.abi.errno import EOPNOTSUPP
from kontain.abi.syscalls import KM_SNAPSHOT_EXIT
from kontain.errors import GuestError, KmError, ProcessExit, say


def km_snapshot(t, path_addr: int, flags: int) -> int:
    from kontain.kernel import snapshot

    if flags & ~KM_SNAPSHOT_EXIT:
        return -22  # EINVAL
    try:
        path = os.fsdecode(t.mem.cstr(path_addr)) if path_addr else snapshot.default_path()
    except GuestError as e:
        return -e.errno
    if not path:
        return -2  # ENOENT, as for an empty path
    p = t.process
    snapshot.pause(p, t)
    try:
        snapshot.take(p, path, caller=t)
    except snapshot.Refused as e:
        say(str(e))
        return -EOPNOTSUPP
    except KmError as e:
        say(f"snapshot: {e}")
        return -EOPNOTSUPP
    except OSError as e:
        return -(e.errno or 5)
    finally:
        snapshot.unpause(p, t)
    if flags & KM_SNAPSHOT_EXIT:
        raise ProcessExit(status=0)
    return 0


def on_listen(t) -> None:
    """--snapshot-on-listen FILE: the program's first successful listen; the snapshot's
    resumed runs see listen return 0.  Then the program ends, or goes on
    (--leave-running).  A refusal is said once and the program goes on."""
    from kontain.kernel import snapshot

    p = t.process
    path, p.spec.snapshot_on_listen = p.spec.snapshot_on_listen, ""  # (once)
    snapshot.pause(p, t)
    try:
        snapshot.take(p, path, caller=t, result=0)
    except KmError as e:
        say(str(e) if isinstance(e, snapshot.Refused) else f"snapshot: {e}")
        return
    except OSError as e:
        say(f"snapshot: {path}: {e.strerror}")
        return
    finally:
        snapshot.unpause(p, t)
    if not p.spec.leave_running:
        raise ProcessExit(status=0)
