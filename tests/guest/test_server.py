"""Server mode (km --serve, cli/server.py): programs started through a warm km by the
native client (cli/kmc.c) and by km with KM_SERVER, compared with native runs; signals,
descriptors, the working directory and limits carried over; the fallbacks to a direct
start; a worker that loses its client."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from kt import KM_PYTHON, build, compare, run


class _Server(tuple):
    pid = 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("server")
    sock = d / "km.sock"
    proc = subprocess.Popen(KM_PYTHON + ["--serve", str(sock)], stderr=subprocess.PIPE)
    client = d / "km"
    deadline = time.monotonic() + 30
    while not (sock.exists() and client.exists()):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"km --serve did not start: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    served = _Server((sock, client))
    served.pid = proc.pid
    yield served
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["native", "python"])
def runner(request, server):
    sock, client = server
    if request.param == "native":
        return [str(client)]
    return ["env", f"KM_SERVER={sock}"] + KM_PYTHON


def test_programs_as_natively(runner, tmp):
    compare([build("hello")], runner=runner)
    compare([build("exit_code"), "42"], runner=runner)
    compare([build("args_env", "glibc"), "a", "with space"], runner=runner, env={"KT_ONE": "1", "PATH": "/usr/bin:/bin"})
    compare([build("files"), str(tmp / "dir")], runner=runner)
    compare(["/bin/busybox", "sort"], runner=runner, stdin=b"b\na\nc\n")
    compare([build("thread_exit", extra=("-lpthread",))], runner=runner)  # the end reported from another thread


def test_working_directory_umask_and_limits(runner, tmp):
    script = "pwd; umask; ulimit -s; ulimit -c; echo a | busybox tr a b"  # (-n: known-issues.md)

    def setup():
        os.umask(0o027)

    native = subprocess.run(["/bin/busybox", "sh", "-c", script], cwd=tmp, capture_output=True, preexec_fn=setup)
    guest = subprocess.run(runner + ["/bin/busybox", "sh", "-c", script], cwd=tmp, capture_output=True,
                           preexec_fn=setup)
    assert (guest.returncode, guest.stdout) == (native.returncode, native.stdout), guest.stderr


def test_descriptors_beyond_stdio(runner):
    r, w = os.pipe()
    os.write(w, b"through another descriptor\n")
    os.close(w)
    try:
        out = subprocess.run(runner + ["/bin/busybox", "sh", "-c", f"cat <&{r}"], pass_fds=(r,), capture_output=True,
                             timeout=30)
    finally:
        os.close(r)
    assert out.stdout == b"through another descriptor\n", out.stderr


def test_killed_by_a_signal_ends_the_same_way(runner):
    native, guest = compare([build("crash"), "segv"], runner=runner)
    assert guest.returncode == -signal.SIGSEGV
    assert "killed by SIGSEGV" in guest.err


def test_signals_reach_the_program(runner):
    script = 'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.05; done'
    p = subprocess.Popen(runner + ["/bin/busybox", "sh", "-c", script], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=30)
    assert (p.returncode, out) == (3, b"got TERM\n")


def test_a_worker_dies_with_its_client(server):
    _, client = server
    p = subprocess.Popen([str(client), "/bin/busybox", "sh", "-c", "echo $$; exec /bin/busybox sleep 60"],
                         stdout=subprocess.PIPE)
    worker = int(p.stdout.readline())
    assert worker != p.pid  # the program runs in the server's worker
    p.kill()
    p.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"worker {worker} outlived its client")


def test_options_a_prepared_vm_cannot_serve_start_directly(runner):
    r = run(runner + ["--strace", str(build("hello"))])
    assert r.returncode == 0 and r.text == "hello from a kontain guest\n"
    assert "write" in r.err
    r = run(runner + [str(build("hello"))], env={**os.environ, "KM_KVM_DEVICE": "/dev/no-such-kvm"})
    assert r.returncode == 1 and "/dev/no-such-kvm" in r.err  # the client's own device, not the server's


def test_other_namespaces_start_directly(server):
    _, client = server
    r = run(["unshare", "--net", str(client), str(build("hello"))])
    assert (r.returncode, r.text) == (0, "hello from a kontain guest\n"), r.err


def test_clients_at_once(server):
    _, client = server
    procs = [subprocess.Popen([str(client), str(build("exit_code")), str(i)]) for i in range(8)]
    assert [p.wait(timeout=60) for p in procs] == list(range(8))


def test_clients_while_programs_run_are_served(server):
    """A taken worker's replacement waits for its program's end (cli/server.py DEFER):
    clients that come while programs run are still the server's, none started directly,
    whether a worker waits for them or none does and one is built at once."""
    _, client = server
    ppid = [str(client), "/bin/busybox", "sh", "-c", "echo $PPID"]
    long = [subprocess.Popen([str(client), "/bin/busybox", "sh", "-c", "echo $PPID; sleep 3"], stdout=subprocess.PIPE)
            for _ in range(2)]
    try:
        for _ in range(3):
            r = run(ppid)
            assert (r.returncode, r.text) == (0, f"{server.pid}\n"), r.err
    finally:
        outs = [p.communicate(timeout=60)[0] for p in long]
    assert outs == [f"{server.pid}\n".encode()] * 2


def test_without_a_server_the_client_starts_directly(server, tmp):
    _, client = server
    r = run([str(client), str(build("hello"))], env={**os.environ, "KM_SERVER": str(tmp / "no-such.sock")})
    assert (r.returncode, r.text) == (0, "hello from a kontain guest\n"), r.err


def test_the_server_runs_them(runner, server):
    """Not a silent direct start: the program's parent is the server."""
    r = run(runner + ["/bin/busybox", "sh", "-c", "echo $PPID"])
    assert int(r.text) == server.pid, r.err


def test_a_large_environment(runner, server):
    """Bigger than a socket buffer: the request goes in more than one piece."""
    big = {f"KT_BIG{i}": "x" * 100_000 for i in range(4)}
    r = run(runner + ["/bin/busybox", "sh", "-c", "echo ${#KT_BIG0} ${#KT_BIG3} $PPID"], env={**os.environ, **big})
    assert (r.returncode, r.text) == (0, f"100000 100000 {server.pid}\n"), r.err


@pytest.mark.parametrize("kind", ["native", "python"])
def test_an_end_that_comes_with_the_ok_is_not_a_refusal(server, tmp, kind):
    """A fast program's "exit" can reach the client in the same read as the worker's
    "ok": the client must end with that status, never start the program again
    directly (a program must never run twice)."""
    import socket
    import threading

    _, client = server
    path = str(tmp / "fake.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def fake_worker():
        conn, _ = listener.accept()
        with conn:
            head, anc, _, _ = conn.recvmsg(8, socket.CMSG_SPACE(4 * 256))
            for _level, _kind, data in anc:  # the client's descriptors: its stdout among them
                for i in range(0, len(data) - 3, 4):
                    os.close(int.from_bytes(data[i:i + 4], "little"))
            want = int.from_bytes(head, "little")
            while want > 0:
                want -= len(conn.recv(min(want, 1 << 16)))
            conn.sendall(b"ok %d\nexit 7\n" % os.getpid())  # both lines in one piece

    t = threading.Thread(target=fake_worker)
    t.start()
    argv = [str(client)] if kind == "native" else KM_PYTHON
    r = run(argv + [str(build("hello"))], env={**os.environ, "KM_SERVER": path})
    t.join(timeout=30)
    listener.close()
    assert (r.returncode, r.text) == (7, ""), r.err


def test_the_server_refuses_a_directory_others_can_write(tmp):
    d = tmp / "open"
    d.mkdir()
    d.chmod(0o777)
    r = run(KM_PYTHON + ["--serve", str(d / "km.sock")], timeout=30)
    assert r.returncode == 1 and "others may write" in r.err, r.err


_LISTENER = """
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1)
print("listening", flush=True)
c, _ = s.accept()
head, anc, _, _ = c.recvmsg(8, socket.CMSG_SPACE(4 * 256))
print("descriptors received:", sum(len(d) // 4 for _, _, d in anc), flush=True)
"""


@pytest.mark.parametrize("kind", ["native", "python"])
def test_a_client_gives_nothing_to_another_users_socket(server, tmp, kind):
    """KM_SERVER naming a socket another user listens on: the client hands it none of
    its descriptors and starts the program itself."""
    from kt import as_user, user_dir

    if os.geteuid() != 0:
        pytest.fail("this test needs root (a listener of another user)", pytrace=False)
    _, client = server
    d = user_dir(tmp)
    sock = d / "other.sock"
    listener = subprocess.Popen(as_user([sys.executable, "-c", _LISTENER, str(sock)]), stdout=subprocess.PIPE,
                                text=True)
    try:
        assert listener.stdout.readline() == "listening\n"
        argv = [str(client)] if kind == "native" else KM_PYTHON
        r = run(argv + [str(build("hello"))], env={**os.environ, "KM_SERVER": str(sock)})
        assert (r.returncode, r.text) == (0, "hello from a kontain guest\n"), r.err
    finally:
        listener.kill()
        out, _ = listener.communicate(timeout=10)
    assert "descriptors received: " not in out or "descriptors received: 0" in out, out


def test_a_request_from_another_user_is_not_read(tmp):
    """A worker answers a client of another user before reading its request: nothing of
    it is parsed (an --env-file naming a FIFO would hang a worker that read it)."""
    import socket

    from kt import as_user, user_dir

    if os.geteuid() != 0:
        pytest.fail("this test needs root (a server of another user)", pytrace=False)
    d = user_dir(tmp) / "srv"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    fifo = d / "fifo"
    os.mkfifo(fifo)
    os.chown(fifo, 65534, 65534)
    sock = d / "km.sock"
    srv = subprocess.Popen(as_user(KM_PYTHON + ["--serve", str(sock)]), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(30)
        while True:  # (the socket's file exists from its bind, a moment before it listens)
            try:
                c.connect(str(sock))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert srv.poll() is None and time.monotonic() < deadline, srv.stderr.read()
                time.sleep(0.05)
        # a well-formed request (cli/client.py situation()): arguments, no environment,
        # umask, mask, ignored, cwd, namespaces, groups, cpus, limits, descriptors, cloexec, cwd?
        fields = [b"km-request-1", b"3", b"--env-file", str(fifo).encode(), b"/bin/true", b"0",
                  b"18", b"0", b"0", b"/", b"", b"", b"0", b"", b"", b"", b"0"]
        payload = b"\0".join(fields)
        c.sendall(len(payload).to_bytes(8, "little") + payload)
        reply = c.recv(64)
        c.close()
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    assert reply == b"no another user\n", reply


def test_workers_keep_proofs_in_the_servers_directory(server):
    """The rewriter's proofs (kernel/sitecache.py) go to the server's own directory when
    the client names none: a later run of the same program rewrites its sites from them,
    before its warm-up ends."""
    sock, client = server
    env = {k: v for k, v in os.environ.items() if k != "KM_SITE_CACHE"}
    argv = [str(client), "--timings", build("rewrite", "musl", ("-lpthread",)), "calls", "3000"]
    first = run(argv, env=env)
    assert first.returncode == 0 and "proofs from earlier runs" in first.err, first.err
    assert (sock.parent / "sites-v1").is_dir()
    late = run(argv[:2] + ["--rewrite-after", "1000000"] + argv[2:], env=env)
    m = re.search(r"(\d+) syscall sites rewritten.*; (\d+) proofs from earlier runs", late.err)
    assert late.returncode == 0 and m and int(m[1]) > 0 and m[1] == m[2], late.err


def test_an_idle_server_ends(tmp):
    """km --serve --idle N (the user's server has it, server.USER_IDLE): no client for N
    seconds and the server ends by itself, its socket gone; a program it started runs on
    to its end; a client after that starts directly."""
    sock = tmp / "idle.sock"
    client = tmp / "km"
    srv = subprocess.Popen(KM_PYTHON + ["--serve", str(sock), "--idle", "2"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (sock.exists() and client.exists()):
            assert srv.poll() is None and time.monotonic() < deadline, srv.stderr.read().decode()
            time.sleep(0.05)
        p = subprocess.Popen([str(client), "/bin/busybox", "sh", "-c", "echo $PPID; sleep 4; echo done"],
                             stdout=subprocess.PIPE)
        assert srv.wait(timeout=300) == 0
        assert b"no client for 2 s" in srv.stderr.read()
        assert not sock.exists()
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0 and out.decode().split() == [str(srv.pid), "done"], out
    finally:
        srv.kill()
    r = run([str(client), str(build("hello"))])
    assert (r.returncode, r.text) == (0, "hello from a kontain guest\n"), r.err


def test_idle_time_must_be_seconds(tmp):
    r = run(KM_PYTHON + ["--serve", str(tmp / "s.sock"), "--idle", "soon"])
    assert r.returncode == 2 and "whole seconds" in r.text + r.err
