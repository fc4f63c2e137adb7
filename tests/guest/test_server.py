"""Server mode (km --serve, cli/server.py): programs started through a warm km by the
native client (cli/kmc.c) and by km with KM_SERVER, compared with native runs; signals,
descriptors, the working directory and limits carried over; the fallbacks to a direct
start; a worker that loses its client."""

import os
import signal
import subprocess
import time

import pytest

from kt import KM, build, compare, run


class _Server(tuple):
    pid = 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("server")
    sock = d / "km.sock"
    proc = subprocess.Popen(KM + ["--serve", str(sock)], stderr=subprocess.PIPE)
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
    return ["env", f"KM_SERVER={sock}"] + KM


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
    argv = [str(client)] if kind == "native" else KM
    r = run(argv + [str(build("hello"))], env={**os.environ, "KM_SERVER": path})
    t.join(timeout=30)
    listener.close()
    assert (r.returncode, r.text) == (7, ""), r.err
