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

So km closes it once the program has started up: when every one of its threads has been
waiting in a system call (``Task.in_wait``: a host wait on its own behalf, or
``Process.wait_for``) at two looks SETTLE apart, a shell in `wait`, a server in `accept`;
or at its end; or after LIMIT seconds of running (a program that keeps a CPU busy is not
kept from being "running" for long).  Running is counted in CPU time of km's process
(its vCPU threads' guest time and all of km's own work for the program), not on the
wall clock: a machine busy with other work gives km less of a CPU, and a wall-clock
limit then ran out before a shell had reached its `trap` (one round in a CI run with
more than two CPUs' worth of other work).  WALL_LIMIT bounds the wait all the same (a
program stopped, or starved for good).  Two looks, not the first wait: a call that may wait
but returns at once is no sign (busybox's shell makes `wait4(-1, WNOHANG)` before it sets
its trap).  A forked child closes its inherited copy at once: only the engine's own
process says when it runs.  Only krun passes the option; nothing of this runs otherwise.
"""

from __future__ import annotations

import _thread
import os
import time

LIMIT = 0.1  # seconds of CPU time after which the program counts as started anyway
WALL_LIMIT = 2.0  # seconds on the wall clock after which it does, whatever its CPU time
SETTLE = 0.001  # seconds between two looks at the threads


class ReadyFd:
    """The write end of krun's FIFO, closed exactly once (whichever thread gets there)."""

    def __init__(self, fd: int):
        self._fd = [fd]

    def watch(self, proc, limit: float = LIMIT) -> None:
        """The program is about to run its first instruction: a thread of km's looks at
        its threads until they all wait (or ``limit`` runs out), then closes the FIFO."""
        _thread.start_new_thread(self._watch, (proc, limit))

    def _watch(self, proc, limit: float) -> None:
        end = time.monotonic() + WALL_LIMIT
        spent = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) + limit
        waited = 0
        while self._fd and time.monotonic() < end and time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) < spent:
            time.sleep(SETTLE)
            tasks = list(proc.tasks.values())  # (another thread may add or remove one)
            waited = waited + 1 if tasks and all(t.in_wait for t in tasks) else 0
            if waited >= 2:
                break
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
