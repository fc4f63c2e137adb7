"""km --ready-fd: the moment an engine may take the program as running.

``krun start`` waits until no writer of its FIFO is left (oci/ready.py), and km holds the
only one: closing it tells the engine the program runs.  An engine may signal the program
as soon as ``start`` returns (runtime-tools' killsig: SIGTERM once the state says running;
``podman run -d`` then ``podman stop``), and natively the program has long installed its
handlers by then: under crun, `sh -c "trap ... TERM; ..."` reaches its `trap` well within
the millisecond, while the engine's next runtime call takes several.  Under km the same
way takes ~7 ms (each of its first system calls and page touches an exit), more on a
loaded machine: closed before the program's first instruction, the descriptor let the
signal win that race.

So km closes it at the first of: the program's first wait in a system call (any thread's
host wait on its own behalf, ``Task.blocking``, ``Process.wait_for``: a program that waits
is past its start-up, a shell in `wait`, a server in `accept`), its end, or LIMIT seconds
of running (a program busy for long without waiting is not kept from being "running").
A forked child closes its inherited copy at once: only the engine's own process counts.
"""

from __future__ import annotations

import _thread
import os
import time

LIMIT = 0.1  # seconds of running after which the program counts as started anyway


class ReadyFd:
    """The write end of krun's FIFO, closed exactly once (whichever thread gets there)."""

    def __init__(self, fd: int):
        self._fd = [fd]

    def start(self, limit: float = LIMIT) -> None:
        """The program is about to run its first instruction: the limit's clock starts."""
        _thread.start_new_thread(self._after, (limit,))

    def _after(self, limit: float) -> None:
        time.sleep(limit)
        self.close()

    def close(self) -> None:
        try:
            fd = self._fd.pop()  # (atomic: one caller gets it)
        except IndexError:
            return
        try:
            os.close(fd)
        except OSError:
            pass
