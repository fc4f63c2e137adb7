"""Static Go programs (Debian's golang-go, CGO_ENABLED=0, built at test time): the Go
runtime's threads, futexes, timers, GC, asynchronous preemption (SIGURG), os/signal, and
net/http both ways."""

import signal
import subprocess
import time
import urllib.request

import pytest

from kt import KM, build_go, compare


@pytest.fixture(scope="module")
def gotest():
    return build_go()


@pytest.mark.parametrize("mode", ["hello", "goroutines", "timers", "gc", "preempt", "self-signal", "panic", "nil", "exit", "exec",
                                  "self-exec", "notify-stop", "pdeathsig-credential"])
def test_go(gotest, mode):
    compare([gotest, mode])


def test_go_signals_from_the_host(gotest):
    p = subprocess.Popen(KM + [str(gotest), "signals"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ready\n"
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            p.send_signal(sig)
            time.sleep(0.1)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert out == b"signals: interrupt,terminated,user defined signal 1\n", err
    assert p.returncode == 0


def test_go_http_server_answers_the_host(gotest):
    p = subprocess.Popen(KM + [str(gotest), "server"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(p.stdout.readline())
        for name in ("a", "b", "c"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{name}", timeout=30) as r:
                assert r.read() == f"hello {name} from go".encode()
        assert p.stdout.readline() == b"served 3\n"
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()


def test_go_http_client_fetches_from_the_host(gotest, tmp_path):
    (tmp_path / "index.html").write_text("served by the host")
    server = subprocess.Popen(["python3", "-m", "http.server", "0", "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        line = server.stdout.readline().decode()
        port = int(line.split("port ")[1].split()[0])
        r = subprocess.run(KM + [str(gotest), "client", f"http://127.0.0.1:{port}/index.html"], capture_output=True,
                           timeout=60)
        assert r.stdout == b"status 200 body served by the host\n", r.stderr
    finally:
        server.kill()
