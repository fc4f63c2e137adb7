"""``km --serve SOCKET``: a warm km that starts programs for km clients (cli/client.py).

A direct km start spends most of its time before the program runs: the interpreter
starting, km importing itself, the VM being built.  The server pays for the first two
once, and keeps POOL workers ready (forks of itself, each with a VM already built, its
vCPU probed, waiting on the socket).  A worker that takes a client tells the server
(which forks the next one once that program has ended, or after DEFER seconds, or at once
when no other worker waits: building a VM takes ~10 ms of CPU, which on a small machine
slowed the program just started by a few milliseconds), takes on the client's situation
(descriptors, working directory, environment, umask, signal mask and ignored signals,
limits, CPU affinity),
loads the client's program into its VM, runs it, and reports how it ended; the client
then ends the same way.

Who may use it: the socket's directory is the user's own (0700), and a worker takes a
client only with the server's uid, gid, groups, namespaces and descriptor limit, and
options a prebuilt VM can serve (not --strace, --no-poll or KM_KVM_DEVICE); otherwise the
client starts directly.  A worker whose client goes away (killed with SIGKILL, say)
kills itself, as the program would have died with a direct km.
"""

from __future__ import annotations

import _signal
import _socket
import _thread
import os
import select
import sys
import time

from kontain import native
from kontain.cli import client, front

POOL = 2  # workers waiting with a VM built: one client at a time gets no wait, two at once neither
DEFER = 0.5  # seconds a taken worker's replacement waits at most for its program's end
USER_IDLE = 1800  # seconds without a client after which the user's server (cli/userserver.py) ends
_SIGCHLD, _SIGKILL, _SIGINT = 17, 9, 2
_PR_SET_PDEATHSIG = 1
RESERVE_CONN = 128  # the connection's place among the monitor's descriptors (kernel/fdtable.py)


def serve(path: str, warm: str | None = None, ready: int | None = None, idle: int = 0) -> int:
    """Listen on ``path`` until killed, or until no client came for ``idle`` seconds (0:
    never).  ``warm``: a snapshot file whose memory each worker maps before it has a
    client (``_Warm``).  ``ready``: a descriptor to write "ready" on once clients can
    connect, then close (the user's server, started by the native km front end, which is
    its client: no client is built next to the socket)."""
    from kontain import lazy
    from kontain.confine import Confinement

    lazy.preload(decoder=True)
    from kontain.kernel import nativepoll, process  # noqa: F401  (for the workers)

    nativepoll.load()  # (the native poller, loaded once here rather than at each worker's first switch-on)

    # the server confines itself as a km does (not dumpable, a Landlock domain, the
    # monitor's seccomp filter); each worker enters a Landlock domain below it
    if warm is not None:
        warm = os.path.abspath(warm)
        problem = _Warm.check(warm)
        if problem:
            sys.stderr.write(f"km: --serve --warm {warm}: {problem}\n")
            return 1
    Confinement().start()
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
        if st.st_uid != os.getuid():
            sys.stderr.write(f"km: --serve {path}: {directory} belongs to another user (use a directory of your own)\n")
            return 1
        if st.st_mode & 0o022:
            # another user could replace the socket with one of their own, and clients
            # would hand their descriptors to it
            sys.stderr.write(f"km: --serve {path}: others may write in {directory} (use a directory only you "
                             "can write, e.g. chmod 700)\n")
            return 1
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            listener.bind(path)
        finally:
            os.umask(old)
        listener.listen(64)
        bound = os.stat(path).st_ino
    except OSError as e:
        sys.stderr.write(f"km: --serve {path}: {e.strerror}\n")
        return 1
    if ready is not None:
        try:
            os.write(ready, b"ready\n")
            os.close(ready)
        except OSError:
            pass  # (the km that started it is gone: serve all the same)
    native_client = build_client(os.path.abspath(path)) if ready is None else None
    _signal.signal(_SIGCHLD, _signal.SIG_IGN)  # the kernel reaps the workers
    _signal.signal(_SIGINT, _signal.SIG_DFL)  # ^C ends the server (its waiting workers with it)
    taken_r, taken_w = os.pipe2(os.O_CLOEXEC)
    how = f"{native_client} PROGRAM, or " if native_client else ""
    sys.stderr.write(f"km: serving on {path} (run programs with {how}KM_SERVER={path} km PROGRAM)\n")
    sys.stderr.flush()
    waiting: dict[int, int | None] = {}  # worker -> its pidfd (None: ended already)
    deferred: dict[int, tuple[int, float]] = {}  # taken worker -> (its pidfd, when its replacement is due)
    last = time.monotonic()  # when a worker last took a client (or the server started)
    while True:
        while len(waiting) + len(deferred) < POOL or not waiting:
            if not waiting and deferred:  # (no worker waits: the next client's comes now)
                os.close(deferred.pop(min(deferred, key=lambda pid: deferred[pid][1]))[0])
            pid = _spawn(listener, taken_w, warm, directory)
            try:
                waiting[pid] = os.pidfd_open(pid)
            except ProcessLookupError:
                waiting[pid] = None
        pidfds = [fd for fd in waiting.values() if fd is not None]
        now = time.monotonic()
        left = max(last + idle - now, 0) if idle else None
        if deferred:
            due = max(min(when for _, when in deferred.values()) - now, 0)
            left = due if left is None else min(left, due)
        watched = [taken_r, *pidfds, *(fd for fd, _ in deferred.values())]
        ready = [] if None in waiting.values() else select.select(watched, [], [], left)[0]
        now = time.monotonic()
        for pid, (fd, when) in list(deferred.items()):
            if fd in ready or now >= when:  # (its program ended, or ran long enough)
                os.close(deferred.pop(pid)[0])
        if not ready and idle and now >= last + idle:
            return _idle_end(path, bound, idle)
        ended = [pid for pid, fd in waiting.items() if fd is None or fd in ready]
        if taken_r in ready or ended:  # (a worker that takes a client says so before anything else)
            last = time.monotonic()
            while select.select([taken_r], [], [], 0)[0]:
                for pid in os.read(taken_r, 4096).split():
                    _forget(waiting, int(pid))
                    try:
                        deferred[int(pid)] = (os.pidfd_open(int(pid)), last + DEFER)
                    except OSError:  # (ended already)
                        pass
        if any(pid in waiting for pid in ended):
            # A worker that ended before it took a client could not build its VM (no
            # /dev/kvm for this user now, say): so would the next.  The server ends rather
            # than take requests no worker will answer; the clients waiting start directly
            # (the connection closes before any "ok"), and the user sees km's own error.
            sys.stderr.write("km: server: a worker ended before it took a client (its error is above); "
                             "the server ends, km starts programs directly\n")
            return 1


def _idle_end(path: str, bound: int, idle: int) -> int:
    """No client for ``idle`` seconds: the socket goes (if it is still this server's), then
    the server, and its waiting workers with it (PR_SET_PDEATHSIG).  A worker that took a
    client has left that behind and runs its program on; a client whose connection no
    worker had taken yet sees it close before any "ok", and km starts its program
    directly (cli/kmc.c), as when the server is stopped."""
    try:
        if os.stat(path).st_ino == bound:
            os.unlink(path)
    except OSError:
        pass
    sys.stderr.write(f"km: server: no client for {idle} s, ending (the next km starts it again)\n")
    return 0


def _forget(waiting: dict[int, int | None], pid: int) -> None:
    fd = waiting.pop(pid, None)
    if fd is not None:
        os.close(fd)


def build_client(socket_path: str) -> str | None:
    """Compile the native client (kmc.c) next to the socket, with this km's paths baked
    in; None when there is no C compiler (KM_SERVER with the Python km still works)."""
    out = os.path.join(os.path.dirname(socket_path), "km")
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "km"
    try:
        front.compile_kmc(out, [f"-DKM_PYTHON={front.c_string(sys.executable)}",
                                f"-DKM_SCRIPT={front.c_string(script)}", f"-DKM_SOCKET={front.c_string(socket_path)}"])
    except front.BuildError:
        return None
    return out


def _snapshot_spec(spec):
    """When the client's program is a snapshot file (km FILE): the spec of the VM it
    needs (lifecycle.resume), for Spec.fits, and the file as read (the resume goes on
    from it, without reading it again); None otherwise, or when the file is not one km
    can read (the resume then says why, as a direct one would)."""
    from kontain.cli.main import _is_snapshot

    if spec is None or not _is_snapshot(spec.program):
        return None
    from kontain.kernel import snapfile
    from kontain.spec import Spec

    try:
        snap = snapfile.read(spec.program)
    except snapfile.SnapshotError:
        return None
    head = snap.state.get("head")
    if type(head) is not dict:
        os.close(snap.fd)
        return None
    return Spec(spec.program, poll=head.get("poll"), window=head.get("window"), kvm_device=spec.kvm_device), snap


class _Warm:
    """A worker's warm snapshot (``km --serve PATH --warm FILE``): read, checked and its
    memory mapped with its VMAs and memslots (resume.restore_memory) before a client
    comes, so that a client's ``km FILE`` only adds what the client gives the program
    (descriptors, directory, limits) and the program's threads.  The file must be the
    same one then (device, inode, size, modification time); a worker warm for it serves
    nothing else (the client starts directly)."""

    def __init__(self, proc, path: str):
        from kontain.kernel import resume, snapfile

        self.path = path
        self.snap = snapfile.read(path)
        st = os.fstat(self.snap.fd)
        self.identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        resume.check_host(proc, self.snap, path)
        resume.restore_memory(proc, self.snap, path)
        self.spec = _snapshot_spec_of(path, self.snap)

    @staticmethod
    def check(path: str) -> str:
        """Why ``path`` cannot be a server's warm snapshot ('' when it can)."""
        from kontain.kernel import snapfile
        from kontain.spec import Spec

        try:
            snap = snapfile.read(path)
        except snapfile.SnapshotError as e:
            return str(e)
        os.close(snap.fd)
        spec = _snapshot_spec_of(path, snap)
        if spec is None or not spec.fits(Spec()):
            return "taken with other VM options than a km server's (--poll, --window)"
        return ""

    def take(self, spec):
        """(its Spec, the file) when the client's program is this snapshot, else None."""
        if spec is None:
            return None
        try:
            st = os.stat(spec.program)
        except OSError:
            return None
        if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self.identity:
            return None
        self.snap.warm = True
        return self.spec, self.snap


def _snapshot_spec_of(path: str, snap):
    from kontain.spec import Spec

    head = snap.state.get("head")
    if type(head) is not dict:
        return None
    return Spec(path, poll=head.get("poll"), window=head.get("window"))


def _spawn(listener, taken_w: int, warm: str | None, directory: str) -> int:
    server = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    native.syscall(157, _PR_SET_PDEATHSIG, _SIGKILL)  # a waiting worker ends with the server
    if os.getppid() != server:
        os._exit(0)
    status = 1
    try:
        status = _worker(listener, taken_w, warm, directory)
    except BaseException as e:  # a worker never gets back into the server's loop
        os.write(2, f"km: server worker: {e!r}\n".encode())
    os._exit(status)


def _worker(listener, taken_w: int, warm: str | None = None, directory: str = "") -> int:
    """Build a VM (with a warm snapshot's memory), wait for a client, become it, run its
    program, report the end.  ``directory``: the server's own (the socket's), where the
    workers keep the syscall-site rewriter's proofs (kernel/sitecache.py) unless the
    client's KM_SITE_CACHE says otherwise."""
    native.reset_pid()  # process_vm_* name this process, not the server
    _signal.signal(_SIGCHLD, _signal.SIG_DFL)
    from kontain import lifecycle
    from kontain.cli import options
    from kontain.errors import KmError
    from kontain.spec import Spec

    proc = lifecycle.prepare(Spec())
    warmed = None
    if warm is not None:
        try:
            warmed = _Warm(proc, warm)
        except (KmError, OSError, KeyError, TypeError, ValueError) as e:  # (changed since the server checked it)
            os.write(2, f"km: server worker: {warm} cannot be kept warm ({e}); this worker is a plain one\n".encode())
            proc = lifecycle.prepare(Spec())
    while True:
        try:
            conn, _ = listener._accept()
            break
        except InterruptedError:
            continue
    native.syscall(157, _PR_SET_PDEATHSIG, 0)  # a running program outlives the server
    os.write(taken_w, b"%d\n" % os.getpid())
    listener.close()
    os.close(taken_w)
    sock = _socket.socket(fileno=conn)
    # who it is, before anything of the request is read: a client of another user gets
    # nothing parsed, no file opened on its behalf (--env-file) with the server's rights
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    uid, gid = int.from_bytes(cred[4:8], "little"), int.from_bytes(cred[8:12], "little")
    if (uid, gid) != (os.getuid(), os.getgid()):
        sock.sendall(b"no another user\n")
        return 0
    received = _receive(sock)
    if received is None:
        return 1
    try:
        req = Request(*received)
        if req.argv[:1] in ([b"resume"], [b"snapshot"]):  # (km's own commands: started directly)
            raise ValueError(req.argv[0])
        o = options.parse([os.fsdecode(a) for a in req.argv], out=_Discard())  # --help: the client's own
        spec = options.spec(o, req.env, server=directory) if isinstance(o, options.Options) else None
    except (IndexError, ValueError, options.UsageError):
        req = spec = None  # malformed, or a usage error that the client's direct start reports
    if req is None or spec is None:
        why = "a request to start directly"  # --help, --version, a usage error
    else:
        why = req.refusal(proc.fds.floor) or ("" if spec.fits(proc.spec) else "options")
    if why:
        sock.sendall(b"no " + why.encode() + b"\n")
        return 0
    sock = _socket.socket(fileno=req.adopt(sock.detach(), proc.fds))
    if warmed is not None:  # (its VM holds the warm snapshot's memory: that snapshot only)
        snapshot = warmed.take(spec)
        if snapshot is None:
            sock.sendall(b"no a km server warm for another snapshot\n")
            return 0
    else:
        snapshot = _snapshot_spec(spec)  # km FILE: a snapshot, resumed in this worker's VM
    if snapshot is not None and not snapshot[0].fits(proc.spec):
        sock.sendall(b"no a snapshot taken with other options\n")
        return 0
    me = os.getpid()
    sock.sendall(b"ok %d\n" % me)

    def report(end) -> None:
        if os.getpid() == me:  # not from a forked child of the program
            # The program's descriptors (the client's pipes among them) closed first, as
            # Linux closes an exiting process's files before its parent learns of the end:
            # else whoever reads the client's output to its end (a shell's $(km ...), a
            # pipe) waited, after the client had ended, for this worker's exit to tear down
            # its VM (~10 ms).  (The connection is above the floor, kept.)
            os.closerange(0, proc.fds.floor)
            word = b"signal %d\n" % end.signal if end.signal else b"exit %d\n" % end.status
            try:
                sock.sendall(word)
            except OSError:
                pass

    _thread.start_new_thread(_watch, (sock,))
    proc.inherited = (req.mask & ~(1 << 8 | 1 << 18), [s for s in range(1, 65) if req.ignored >> (s - 1) & 1])
    proc.rlimits.update({r: req.rlimit(r) for r in proc.rlimits})  # (in place: the address space holds it)
    try:
        status = lifecycle.run_program(spec, prepared=proc, report=report,
                                       snapshot=snapshot[1] if snapshot is not None else None)
    except Exception as e:  # a bug in km: as a direct km would, end with status 1
        os.write(2, f"km: internal error: {type(e).__name__}: {e} (please report it)\n".encode())
        status = 1
    report(_Exit(status))
    return status


def _watch(sock) -> None:
    """The client went away (its end of the connection closed): so does the program."""
    try:
        while sock.recv(64):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), _SIGKILL)


class _Discard:
    def write(self, _text: str) -> None:
        pass


class _Exit:
    def __init__(self, status: int):
        self.status, self.signal = status, 0


def _receive(sock) -> tuple[list[bytes], list[int]] | None:
    """The request's fields and the descriptors that came with it."""
    head, ancdata, _, _ = sock.recvmsg(8, _socket.CMSG_SPACE(4 * (client.MAX_FDS + 1)))
    fds: list[int] = []
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data) - len(data) % 4, 4)]
    if len(head) != 8:
        return None
    want = int.from_bytes(head, "little")
    if want > 64 << 20:
        return None
    chunks, got = [], 0
    while got < want:
        chunk = sock.recv(min(want - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks).split(b"\0"), fds


_U64 = (1 << 64) - 1
_RLIMITS = 16  # RLIM_NLIMITS: client.situation() sends every limit


def _number(field: bytes, top: int) -> int:
    """A field that must be a number in [0, top] (ValueError otherwise)."""
    n = int(field)
    if not 0 <= n <= top:
        raise ValueError("a number out of range")
    return n


def _limit(pair: bytes) -> tuple[int, int]:
    """``soft:hard``, each -1 (RLIM_INFINITY), -2 (the client could not say) or a limit."""
    soft, hard = (int(x) for x in pair.split(b":"))  # (ValueError: not two numbers)
    if not (-2 <= soft <= _U64 and -2 <= hard <= _U64):
        raise ValueError("a limit out of range")
    return soft, hard


class Request:
    """A client's situation, as client.situation() wrote it."""

    def __init__(self, fields: list[bytes], fds: list[int]):
        if fields[0] != client.VERSION:
            raise ValueError("version")
        n = int(fields[1])
        self.argv = fields[2:2 + n]
        m = int(fields[2 + n])
        self.env = dict(e.split(b"=", 1) for e in fields[3 + n:3 + n + m] if b"=" in e)
        (umask, mask, ignored, self.cwd, self.ns, self.groups, cpus, limits, numbers, cloexec,
         has_cwd) = fields[3 + n + m:3 + n + m + 11]
        self.umask, self.mask, self.ignored = _number(umask, 0o7777), _number(mask, _U64), _number(ignored, _U64)
        self.ns, self.groups = self.ns.decode("ascii"), self.groups.decode("ascii")  # (UnicodeDecodeError: a ValueError)
        self.cpus = [_number(c, 1 << 20) for c in cpus.split(b",") if c]
        self.limits = [_limit(pair) for pair in limits.split()]
        if len(self.limits) != _RLIMITS:
            raise ValueError("limits")
        self.numbers = [_number(x, 1 << 30) for x in numbers.split(b",") if x]
        self.cloexec = [x == b"1" for x in cloexec.split(b",") if x]
        self.fds = fds[:len(self.numbers)]
        self.cwd_fd = fds[len(self.numbers)] if has_cwd == b"1" and len(fds) > len(self.numbers) else -1
        if len(self.fds) != len(self.numbers) or len(self.cloexec) != len(self.numbers):
            raise ValueError("descriptors")

    def rlimit(self, r: int) -> tuple[int, int]:
        """The client's limit ``r`` as the program reads it (RLIM_INFINITY unsigned)."""
        from kontain.abi.flags import RLIM_INFINITY

        return tuple(RLIM_INFINITY if v == -1 else v for v in self.limits[r])  # type: ignore[return-value]

    def refusal(self, floor: int) -> str:
        """Why a worker whose descriptors start at ``floor`` cannot be the client ('' when
        it can)."""
        if self.ns != ",".join(str(client.ns_id(n)) for n in client.NAMESPACES):
            return "other namespaces"
        if self.groups != ",".join(map(str, os.getgroups())):
            return "other groups"
        import resource

        nofile = resource.RLIMIT_NOFILE
        if len(self.limits) <= nofile or self.limits[nofile][1] != resource.getrlimit(nofile)[1]:
            return "another descriptor limit"
        if any(fd >= floor for fd in self.numbers):
            return "a descriptor among the monitor's"
        return ""

    def adopt(self, conn: int, fds) -> int:
        """Take on the client's situation (but its signal state, which the program gets
        through Process.inherited); returns where the connection is now: among the
        monitor's descriptors (``fds``, the prepared process's table), out of reach."""
        import resource

        conn = _dup_at_least(conn, fds.floor + RESERVE_CONN)
        # every received descriptor out of the way first, then each to its number
        base = max(self.numbers, default=2) + 1
        parked = [_dup_at_least(fd, base) for fd in self.fds]
        for target, fd, ce in zip(self.numbers, parked, self.cloexec):
            os.dup2(fd, target, inheritable=not ce)
        if self.cwd_fd >= 0:
            try:
                os.fchdir(self.cwd_fd)
            except OSError:
                os.chdir(self.cwd)
        elif self.cwd:
            os.chdir(self.cwd)
        keep = set(self.numbers)
        for fd in _open_fds():
            if fd < fds.floor and fd not in keep or fd in parked:
                os.close(fd)
        for r, (soft, hard) in enumerate(self.limits):
            # (NOFILE: the same, or refused; AS and DATA: the monitor's own window would
            # not fit; SIGPENDING: it would bound km's own kicks; the program's view of
            # them is Process.rlimits, see _worker)
            if soft != -2 and r not in (resource.RLIMIT_NOFILE, resource.RLIMIT_AS, resource.RLIMIT_DATA,
                                        resource.RLIMIT_SIGPENDING):
                try:
                    resource.setrlimit(r, (soft, hard))
                except (ValueError, OSError):
                    pass  # above the server's hard limit: the server's
        fds.soft = min(self.limits[resource.RLIMIT_NOFILE][0], fds.floor)  # the program's own soft limit
        os.umask(self.umask)
        try:
            os.sched_setaffinity(0, self.cpus)
        except OSError:
            pass
        os.environb.clear()
        os.environb.update(self.env)
        return conn


def _dup_at_least(fd: int, lowest: int) -> int:
    new = native.dup_at_least(fd, lowest)
    if new < 0:
        raise OSError(-new, os.strerror(-new))
    return new


def _open_fds() -> list[int]:
    return [fd for fd in map(int, os.listdir("/proc/self/fd")) if client.is_open(fd)]
