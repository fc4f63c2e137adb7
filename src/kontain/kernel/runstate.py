"""Run states of the program's threads: every vCPU is running, paused or gone, and only
events move it (Firecracker's vCPU states are the model).  No sleep stands in for an event.

::

                 kick + pause request                      resume
      RUNNING ────────────────────────▶ (safe point) ──▶ PAUSED ─────▶ RUNNING
         │                                                  │
         │ exit, exit_group, exec of another thread (zap)   │ zap
         ▼                                                  ▼
       GONE ◀───────────────────────────────────────────────┘

A thread stops only at a **safe point**, where its user registers are final and in the
synced register page (``Vcpu.q``), its FPU state in the vCPU, and no host call is in
progress for it: out of KVM_RUN after a kick (``Task.on_interrupt``, after the polling
tier's stub has been settled to before or after its call), on the way back to the
program after a call (``Task.after_syscall``: an interrupted call is set to run again),
in a wait of km's own (``Process.wait_for``), and before a new thread's first
instruction.  ``Process.pause_all`` kicks every other thread and returns when each is
PAUSED or GONE; meanwhile the pauser may read and write their registers, memory and
state (a debugger, a snapshot, a test).  ``Process.zap_threads`` (exec) is the same
machinery, with the others ending instead of waiting.

``Process.pause_others`` (a program thread about to rewrite code) also counts a thread
inside a host call that may wait (``Task.blocking``: ``in_host_wait``) as stopped and
leaves it there; it waits on its way out until that pause ends.
"""

from __future__ import annotations

import _thread

RUNNING, PAUSED, GONE = "running", "paused", "gone"


class Condition:
    """A condition variable over the process lock, built on _thread (importing
    threading would cost every km start for what exec and pauses alone use)."""

    __slots__ = ("lock", "waiters")

    def __init__(self, lock) -> None:
        self.lock = lock
        self.waiters: list = []

    def wait(self) -> None:
        """Wait for ``notify_all`` (call with ``lock`` held; it is released meanwhile)."""
        waiter = _thread.allocate_lock()
        waiter.acquire()
        self.waiters.append(waiter)
        self.lock.release()
        try:
            waiter.acquire()
        finally:
            self.lock.acquire()

    def notify_all(self) -> None:
        """(Call with ``lock`` held.)"""
        for waiter in self.waiters:
            waiter.release()
        self.waiters.clear()
