"""km's client side of server mode: hand the program to a warm km (``km --serve``).

Most of a direct km start is Python importing km and building a VM.  With ``KM_SERVER``
set to the socket of a running ``km --serve``, km instead sends its whole situation
(arguments, environment, descriptors, working directory, umask, signal mask and ignored
signals, resource limits, CPU affinity) to the server, which forks a worker that has
imported everything already; the worker runs the program and reports how it ended, and
this process ends the same way.  Meanwhile signals sent to this process are passed on
to the worker.  docs/user-guide.md says what differs from a direct start (the program's
pid is the worker's, and it is not in the caller's session).

This module runs before anything else of km is imported, so it imports only C modules:
``run`` returns when the server cannot take the program, and km then starts directly.
"""

from __future__ import annotations

import _signal
import _socket
import os
import resource
import sys

VERSION = b"km-request-1"
# signals passed on to the worker (the others cannot be caught, or are the client's own)
FORWARDED = (1, 2, 3, 10, 12, 14, 15, 18, 20, 23, 24, 25, 26, 27, 28, 29, 30, 31, *range(34, 64))
SIGTSTP, SIGCONT, SIGSTOP, SIGKILL = 20, 18, 19, 9
NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "user", "cgroup")
MAX_FDS = 250  # SCM_RIGHTS takes at most 253 descriptors in one message


def situation(own: int) -> tuple[list[bytes], list[int], int]:
    """What the worker needs to be this process: the request's fields, the program's
    descriptors (all that are open here but ``own``), and one for the working directory."""
    fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    fds = [fd for fd in fds if fd != own and is_open(fd)]
    try:
        cwd_fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        cwd_fd = -1
    cloexec = [0 if os.get_inheritable(fd) else 1 for fd in fds]
    mask = sum(1 << (s - 1) for s in _signal.pthread_sigmask(_signal.SIG_BLOCK, []))
    # (SIGPIPE and SIGXFSZ: the interpreter ignores them itself; as a direct start, km
    # cannot tell whether its caller did, docs/known-issues.md)
    ignored = sum(1 << (s - 1) for s in range(1, 65) if s not in (13, 25) and _getsignal(s) == _signal.SIG_IGN)
    umask = os.umask(0)
    os.umask(umask)
    limits = []
    for r in range(16):
        try:
            soft, hard = resource.getrlimit(r)
        except (ValueError, OSError):
            soft = hard = -2  # not known here: the worker keeps its own
        limits.append(f"{soft}:{hard}")
    try:
        cwd = os.getcwdb()
    except OSError:
        cwd = b""
    ns = ",".join(str(ns_id(n)) for n in NAMESPACES)
    environ = os.environb
    if environ.get(b"LC_CTYPE") == b"C.UTF-8":  # perhaps the interpreter's own (PEP 538), not the program's
        from kontain.cli.options import given_environ

        environ = given_environ()
    env = [k + b"=" + v for k, v in environ.items()]
    argv = [os.fsencode(a) for a in sys.argv[1:]]
    fields = [VERSION, str(len(argv)).encode(), *argv, str(len(env)).encode(), *env,
              str(umask).encode(), str(mask).encode(), str(ignored).encode(), cwd,
              ns.encode(), ",".join(map(str, os.getgroups())).encode(),
              ",".join(map(str, sorted(os.sched_getaffinity(0)))).encode(), " ".join(limits).encode(),
              ",".join(map(str, fds)).encode(), ",".join(map(str, cloexec)).encode(), b"1" if cwd_fd >= 0 else b"0"]
    return fields, fds, cwd_fd


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
        return True
    except OSError:  # the listdir's own descriptor, closed since
        return False


def _getsignal(sig: int):
    try:
        return _signal.getsignal(sig)
    except (ValueError, OSError):
        return None


def ns_id(name: str) -> int:
    try:
        return os.stat(f"/proc/self/ns/{name}").st_ino
    except OSError:
        return 0


class _Lines:
    """The server's reply lines, one at a time.  The worker may send its "ok" and, a
    fast program later, its "exit" before this process reads either: a read that took
    both as one reply would start the program a second time directly."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(256)
            if not chunk:
                line, self.buf = self.buf, b""
                return line
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"


def run(path: str) -> None:
    """Run the program through the km server at ``path``; never returns when the
    server took it.  Returns (for a direct start) when it could not."""
    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        sock.connect(path)
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    except OSError:
        return
    if int.from_bytes(cred[4:8], "little") != os.getuid():
        sock.close()  # not a server of this user's: it gets none of this process's descriptors
        return
    fields, fds, cwd_fd = situation(sock.fileno())
    passed = fds + ([cwd_fd] if cwd_fd >= 0 else [])
    reply = []
    lines = _Lines(sock)
    if len(passed) <= MAX_FDS:
        message = len(payload := b"\0".join(fields)).to_bytes(8, "little") + payload
        try:
            sent = sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                             b"".join(fd.to_bytes(4, "little") for fd in passed))])
            if sent < len(message):  # the rest of a large environment (never an empty send: a
                sock.sendall(message[sent:])  # worker done already has closed, EPIPE)
            reply = lines.next().split()
        except OSError:
            pass
    if cwd_fd >= 0:
        os.close(cwd_fd)
    if len(reply) != 2 or reply[0] != b"ok":
        sock.close()
        return  # refused (another user, other namespaces, an old server): start directly
    # From here on the program may be running: whatever happens, this process never
    # starts it again; with no word from the worker it ends as a killed program would.
    try:
        worker = int(reply[1])
        _forward_signals(worker)
        end = lines.next().split()
    except (OSError, ValueError):
        end = []
    _end_like(end)


def _forward_signals(worker: int) -> None:
    def forward(sig, _frame):
        try:
            os.kill(worker, sig)
        except OSError:
            return
        if sig == SIGTSTP:  # stop with it, so that the shell sees the job stopped
            os.kill(os.getpid(), SIGSTOP)

    for sig in FORWARDED:
        if _getsignal(sig) != _signal.SIG_IGN:  # ignored here: ignored in the program too
            _signal.signal(sig, forward)


def _end_like(end: list[bytes]) -> None:
    """Exit with the worker's status, or die of its signal."""
    if len(end) == 2 and end[0] == b"exit":
        os._exit(int(end[1]))
    sig = int(end[1]) if len(end) == 2 and end[0] == b"signal" else SIGKILL  # no word: it was killed
    if sig != SIGKILL:
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, [sig])
    os.kill(os.getpid(), sig)
    os._exit(128 + sig)
