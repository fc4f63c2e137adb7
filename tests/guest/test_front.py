"""The native km front end (cli/kmc.c with KM_FRONT, cli/front.py) and the user's own
server (cli/userserver.py): without a server it is the Python km; opted in, the first
run starts the server and the output stays the same; two first runs at once start one
server; a stale socket, a killed server, another user, a server that dies mid-request
all end in a direct start, and no program ever runs twice.

Each test has a runtime and a configuration directory of its own (XDG_RUNTIME_DIR,
XDG_CONFIG_HOME), and stops the servers it started."""

import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kt import KM, KM_PYTHON, build, compare, run, wait_for

HELLO = "hello from a kontain guest\n"


class User:
    """One user's km setup: its directories, its environment, its server."""

    def __init__(self, root: Path):
        self.run_dir = root / "run"
        self.run_dir.mkdir(mode=0o700)
        self.config = root / "config"
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(self.run_dir), "XDG_CONFIG_HOME": str(self.config)}
        self.env.pop("KM_SERVER", None)
        self.dir = self.run_dir / "kontain"
        self.sock = self.dir / "km.sock"

    def km(self, *args, **kw):
        return run(KM + [str(a) for a in args], env=self.env, **kw)

    def server(self, what: str):
        return run(KM + ["--server", what], env=self.env)

    def pid(self) -> int | None:
        r = self.server("status")
        if r.returncode != 0:
            return None
        return int(r.text.split("running, pid ")[1].split(",")[0])

    def starts(self) -> int:
        """How many servers started here (each says so once in the log)."""
        log = self.dir / "server.log"
        return log.read_text().count("km: serving on") if log.exists() else 0


@pytest.fixture
def user(tmp_path):
    if not open(KM[0], "rb").read(4) == b"\x7fELF":
        pytest.fail(f"{KM[0]} is not the native km front end (make bytecode, with a C compiler)", pytrace=False)
    u = User(tmp_path)
    yield u
    r = u.server("off")
    assert r.returncode == 0, r.err
    assert u.pid() is None


def _ended(pid: int) -> None:
    """Wait (on its pidfd, not for a time) until process ``pid`` has ended."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)


def test_without_a_server_it_is_the_python_km(user):
    for argv in ([build("hello")], [build("exit_code"), "42"], [build("args_env", "glibc"), "a", "with space"],
                 [build("crash"), "segv"], ["/bin/busybox", "sh", "-c", "kill -TERM $$"]):
        _, front = compare(argv, env=user.env)
        python = run(KM_PYTHON + [str(a) for a in argv], env=user.env)
        assert (front.returncode, front.stdout) == (python.returncode, python.stdout)
    assert front.returncode == -signal.SIGTERM
    sh = run(["/bin/sh", "-c", f"{KM[0]} {build('crash')} segv; echo $?"], env=user.env)
    assert sh.text.endswith(f"\n{128 + signal.SIGSEGV}\n")
    assert not user.dir.exists()  # no server, no trace: a plain direct km
    # km's own commands reach the Python km
    assert user.km("--version").returncode == 0
    assert user.km().returncode == 2


def test_opted_in_the_first_run_starts_the_server(user):
    assert user.server("on").returncode == 0
    assert user.pid() is None
    _, first = compare([build("args_env", "glibc"), "one"], runner=KM, env=user.env)
    pid = user.pid()
    assert pid is not None and user.starts() == 1
    assert oct(user.dir.stat().st_mode & 0o777) == "0o700"
    _, warm = compare([build("args_env", "glibc"), "one"], runner=KM, env=user.env)
    assert warm.stdout == first.stdout
    compare([build("crash"), "segv"], env=user.env)
    # the program ran in the server's worker (its parent is the server)
    r = user.km("/bin/busybox", "sh", "-c", "echo $PPID")
    assert int(r.text) == pid and user.starts() == 1


def test_two_first_runs_start_one_server(user, tmp_path):
    """Both km find no server and want to start one: the second waits on the lock the
    first holds (held here until both wait on it), then uses the first one's server."""
    import fcntl

    assert user.server("on").returncode == 0
    user.dir.mkdir(mode=0o700)
    out = tmp_path / "ran"
    lock = os.open(user.dir / "km.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    inode = os.fstat(lock).st_ino
    procs = [subprocess.Popen(KM + ["/bin/busybox", "sh", "-c", f"echo {i} >> {out}; echo {i}"], env=user.env,
                              stdout=subprocess.PIPE) for i in range(2)]
    wait_for(lambda: _waiters(inode) == 2, what="both km waiting on the lock")
    os.close(lock)
    ends = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [o for o, _ in ends] == [b"0\n", b"1\n"]
    assert sorted(out.read_text().split()) == ["0", "1"]  # each ran once
    assert user.starts() == 1 and user.pid() is not None


def _waiters(inode: int) -> int:
    """How many wait for a lock on the file with ``inode`` (/proc/locks' "->" lines)."""
    n = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[fields.index("->") + 5].endswith(f":{inode}"):
            n += 1
    return n


def _stale(path: Path) -> None:
    """A socket file nobody listens on (a server that died)."""
    path.parent.mkdir(mode=0o700, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def test_a_stale_socket(user):
    _stale(user.sock)
    compare([build("hello")], env=user.env)  # not opted in: direct
    assert user.starts() == 0 and user.sock.exists()
    assert user.server("on").returncode == 0
    compare([build("hello")], env=user.env)  # opted in: a server in its place
    assert user.starts() == 1 and user.pid() is not None


@pytest.mark.parametrize("opted_in", [True, False])
def test_a_killed_server_leaves_the_next_run_working(user, opted_in):
    assert user.server("on").returncode == 0
    # the worker that ran it, and the server (asked here rather than by km --server status,
    # which would cost the server a worker: a fork of it under way when it is killed)
    worker, pid = map(int, user.km("/bin/busybox", "sh", "-c", "echo $$ $PPID").text.split())
    if not opted_in:
        os.unlink(user.config / "kontain" / "server")

    def children() -> list[int]:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    # (two waiting workers, neither the one that ran the shell: its replacement is there,
    # no fork of the server's under way)
    wait_for(lambda: len(children()) == 2 and worker not in children(), what="two waiting workers")
    workers = children()
    os.kill(pid, signal.SIGKILL)
    for p in [pid, *workers]:  # (its waiting workers die with it, and with them the listener)
        _ended(p)
    _, r = compare([build("exit_code"), "7"], env=user.env)
    if opted_in:  # a new server took the program
        assert user.starts() == 2 and user.pid() not in (None, pid)
    else:  # started directly
        assert user.starts() == 1 and user.pid() is None


def test_another_user_cannot_use_your_server(user, tmp):
    from kt import as_user, user_dir

    if os.geteuid() != 0:
        pytest.fail("this test needs root (km run by another user)", pytrace=False)
    assert user.server("on").returncode == 0
    compare([build("hello")], env=user.env)
    assert user.pid() is not None
    home = user_dir(tmp)
    other = {"PATH": os.environ["PATH"], "HOME": str(home)}
    script = ["/bin/busybox", "sh", "-c", "id -u; echo $PPID"]
    for env in ({**other, "KM_SERVER": str(user.sock)}, {**other, "XDG_RUNTIME_DIR": str(user.run_dir)}):
        r = run(as_user(KM + script), env=env, cwd=home)
        assert r.returncode == 0, r.err
        uid, parent = r.text.split()
        assert r.returncode == 0 and uid == "65534", r.err  # started directly, as that user
        assert int(parent) != user.pid()
    assert user.starts() == 1


def _append(path: Path) -> list[str]:
    return ["/bin/busybox", "sh", "-c", f"echo ran >> {path}"]


def test_a_refused_request_runs_once(user, tmp_path):
    out = tmp_path / "ran"
    assert user.server("on").returncode == 0
    assert user.km(*_append(out)).returncode == 0
    r = user.km("--strace", *_append(out))  # an option the server refuses: started directly
    assert r.returncode == 0 and "exit_group(0)" in r.err
    assert out.read_text() == "ran\nran\n"


class _DyingServer:
    """A server on the user's socket that takes a request and dies before it answers,
    or after its "ok" (the worker killed as the program started)."""

    def __init__(self, path: Path, answer: bytes):
        path.parent.mkdir(mode=0o700, exist_ok=True)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.answer = answer
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        head, anc, _, _ = conn.recvmsg(8, socket.CMSG_SPACE(4 * 256))
        for _level, _kind, data in anc:
            for i in range(0, len(data) - len(data) % 4, 4):
                os.close(int.from_bytes(data[i:i + 4], sys.byteorder))
        size = int.from_bytes(head, "little")
        while size > 0:
            size -= len(conn.recv(size))
        conn.sendall(self.answer)
        conn.close()
        self.listener.close()


@pytest.mark.parametrize("answer", [b"", b"ok 2147483647\n"])
def test_a_server_that_dies_mid_request(user, tmp_path, answer):
    """No "ok": nothing started, so km starts the program directly; an "ok": the program
    may have started, so km never starts it again (it ends as a killed program)."""
    out = tmp_path / "ran"
    server = _DyingServer(user.sock, answer)
    r = user.km(*_append(out))
    server.thread.join(timeout=60)
    if answer:
        assert r.returncode == -signal.SIGKILL and not out.exists()
    else:
        assert r.returncode == 0 and out.read_text() == "ran\n"


def test_server_commands(user):
    r = user.server("status")
    assert r.returncode == 3 and "off" in r.text and "not running" in r.text
    assert user.server("stop").text == "km server: not running\n"
    r = user.server("bogus")
    assert r.returncode == 2 and r.err.count("\n") == 1 and r.err.startswith("km: --server")
    assert user.server("on").returncode == 0
    compare([build("hello")], env=user.env)
    r = user.server("stop")
    assert r.returncode == 0 and "stopped" in r.text and user.pid() is None
    assert (user.config / "kontain" / "server").exists()  # stop leaves the opt-in
    assert user.server("off").returncode == 0
    assert not (user.config / "kontain" / "server").exists()
    compare([build("hello")], env=user.env)
    assert user.pid() is None and user.starts() == 1


def test_other_namespaces_and_options_start_directly(user):
    assert user.server("on").returncode == 0
    compare([build("hello")], env=user.env)
    pid = user.pid()
    parent = ["/bin/busybox", "sh", "-c", "echo $PPID"]
    assert int(user.km(*parent).text) == pid  # (served)
    r = run(["unshare", "--net"] + KM + parent, env=user.env)
    assert r.returncode == 0 and int(r.text) != pid, r.err
    r = user.km("--strace", *parent)
    assert r.returncode == 0 and int(r.text) != pid and "exit_group" in r.err
    assert user.starts() == 1


def test_building_the_front_end(tmp_path):
    """km --native builds a front end wherever -o says (it execs the km-python beside the
    km that built it); without a C compiler it says so in one line, and km stays as it was."""
    out = tmp_path / "km"
    r = run(KM_PYTHON + ["--native", "-o", out], env={**os.environ, "CC": "/nonexistent/cc"})
    assert r.returncode == 2 and r.err.count("\n") == 1 and r.err.startswith("km: --native: ") and not out.exists()
    r = run(KM_PYTHON + ["--native", "-o", out])
    assert r.returncode == 0 and r.text == f"{out}\n", r.err
    alone = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "none"), "XDG_RUNTIME_DIR": str(tmp_path)}
    compare([build("hello")], runner=[str(out)], env=alone)
    r = run(KM_PYTHON + ["--native", "surplus"])
    assert r.returncode == 2 and r.err.startswith("km: --native")


def test_a_first_run_with_stdio_closed(user, tmp_path):
    """The km that starts the server has no stdin or stdout: the server still gets its
    "ready" pipe (not a descriptor that stdio's set-up took over), and serves that km."""
    out = tmp_path / "ran"
    assert user.server("on").returncode == 0
    program = " ".join(KM + ["/bin/busybox", "sh", "-c", f"'echo $PPID >> {out}'"])
    r = run(["/bin/sh", "-c", f"exec <&- >&-; {program}"], env=user.env)
    assert r.returncode == 0, r.err
    assert out.read_text().split() == [str(user.pid())] and user.starts() == 1


def test_the_output_ends_with_km(user):
    """When km (served) has ended, its output is at its end: the worker closed the
    program's descriptors before it reported the end (a shell's $(km ...) waited for the
    worker's teardown before)."""
    assert user.server("on").returncode == 0
    compare([build("hello")], env=user.env)
    for _ in range(5):
        p = subprocess.Popen(KM + [str(build("hello"))], env=user.env, stdout=subprocess.PIPE)
        assert p.wait(timeout=60) == 0
        os.set_blocking(p.stdout.fileno(), False)
        out = b""
        while chunk := os.read(p.stdout.fileno(), 4096):  # (BlockingIOError: someone still holds it)
            out += chunk
        p.stdout.close()
        assert out == HELLO.encode()
    assert user.starts() == 1


def test_a_server_whose_workers_cannot_start_ends(tmp):
    """Opted in, but /dev/kvm not for this user: the server's first worker cannot build
    its VM, so the server ends, and km starts directly and says why (it waited forever
    for a worker before)."""
    from kt import UNPRIVILEGED_UID, as_user, user_dir

    if os.geteuid() != 0:
        pytest.fail("this test needs root (km run by a user without /dev/kvm)", pytrace=False)
    as_user([])  # (lets user nobody through to km)
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.fail("/dev/kvm is open to every user here: this test needs it for group kvm only (chmod o-rw /dev/kvm)",
                    pytrace=False)
    home = user_dir(tmp)
    (home / "run").mkdir(mode=0o700)
    os.chown(home / "run", UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_RUNTIME_DIR": str(home / "run")}
    without_kvm = ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", "--clear-groups",
                   "--inh-caps=-all", "--"]
    assert run(without_kvm + KM + ["--server", "on"], env=env, cwd=home).returncode == 0
    r = run(without_kvm + KM + ["/bin/busybox", "true"], env=env, cwd=home)
    assert r.returncode == 1 and r.err.startswith("km: /dev/kvm: permission denied"), r.err
    log = (home / "run" / "kontain" / "server.log").read_text()
    assert "the server ends" in log
    r = run(without_kvm + KM + ["--server", "status"], env=env, cwd=home)
    assert r.returncode == 3 and "not running" in r.text
