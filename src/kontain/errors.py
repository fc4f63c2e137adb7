"""The two kinds of failure in the monitor, and the exceptions that end a thread's run.

``GuestError`` is an errno for the guest: a syscall handler raises it and the dispatcher
turns it into ``-errno`` in RAX.  ``KmError`` is for the user of ``km``: one line that says
what went wrong and what to do, and the exit status ``km`` ends with.
"""

from __future__ import annotations

import os

# where km's own messages go: its stderr, as a descriptor of the monitor's own once the
# program runs (kernel/process.py), which the program can neither close nor redirect
_MESSAGES = [2]


def messages_to(fd: int) -> None:
    _MESSAGES[0] = fd


def messages_fd() -> int:
    return _MESSAGES[0]


def say(text: str) -> None:
    """One line of km's on its stderr: ``km: text``.  Never fails (a message about a
    failure must not become another)."""
    data = f"km: {text}\n".encode("utf-8", "surrogateescape")
    try:
        while data:
            data = data[os.write(_MESSAGES[0], data):]
    except OSError:
        pass


class GuestError(Exception):
    """The current syscall fails with ``errno``."""

    __slots__ = ("errno",)

    def __init__(self, errno: int):
        self.errno = errno


class OwnThread(Exception):
    """This call must be made by the calling program thread itself (a monitor thread
    serving it for the thread, kernel/poll.py, gives it back): its answer depends on
    which host thread asks (/proc/thread-self)."""


class KmError(Exception):
    """A failure the user must see: ``km: <message>``, then exit with ``status``.
    ``about_program``: the message is about the program (``km: PROGRAM: <message>``).
    Its kinds: loader.load.ExecError (the program cannot be run: 126, 127),
    kvm.api.KvmError (/dev/kvm itself), cli.options.UsageError (2)."""

    about_program = False

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class ProcessExit(BaseException):
    """The guest process ends: ``status`` for exit_group, or ``signal`` if killed.

    A BaseException, so that no ``except Exception`` in a handler can swallow it."""

    def __init__(self, status: int = 0, signal: int = 0, message: str | None = None):
        super().__init__(status, signal)
        self.status = status
        self.signal = signal
        self.message = message


class ForkedChild(BaseException):
    """Raised in the child of a fork (kernel/fork.py), out of the syscall that forked:
    the thread that catches it runs ``task``, the child's only thread.  (Here rather
    than in kernel/fork.py, which is imported at the first fork.)"""

    def __init__(self, task):
        super().__init__()
        self.task = task
