"""Dynamically linked programs straight from Debian, CPython, and an Alpine-style musl
program: the same results under km as natively."""

import socket
import subprocess

import pytest

from kt import KM, ROOT, compare, km, run

PY = "/usr/bin/python3"


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "b.txt").write_text("banana\ncherry\napple\n" * 50)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.c").write_text("int x;\n")
    (tmp_path / "sub" / "link").symlink_to("../b.txt")
    return tmp_path


@pytest.mark.parametrize("args", [
    ["/bin/ls", "-la", "--time-style=+%s", "."],
    ["/bin/ls", "-lR", "--time-style=+%s", "sub"],
    ["/usr/bin/sort", "-r", "b.txt"],
    ["/usr/bin/sha256sum", "b.txt", "sub/deep.c"],
    ["/usr/bin/stat", "-c", "%n %s %F %a %h", "b.txt", "sub", "sub/link"],
    ["/usr/bin/du", "-a", "-b", "."],
    ["/usr/bin/find", ".", "-name", "*.c", "-o", "-type", "l"],
    ["/usr/bin/wc", "b.txt"],
    ["/usr/bin/head", "-c", "100", "b.txt"],
    ["/bin/cat", "nonexistent"],
], ids=lambda a: " ".join(a)[:40])
def test_coreutils(args, tree):
    compare(args, cwd=tree)


def test_gzip_round_trip(tree):
    data = (tree / "b.txt").read_bytes()
    z = km("/usr/bin/gzip", "-9", "-c", "b.txt", cwd=tree)
    assert z.returncode == 0, z.err
    back = km("/usr/bin/gzip", "-d", "-c", stdin=z.stdout)
    assert back.returncode == 0 and back.stdout == data
    assert run(["/usr/bin/gzip", "-d", "-c"], stdin=z.stdout).stdout == data


def test_sqlite3(tmp_path):
    db = tmp_path / "t.db"
    sql = "create table t(a integer primary key, b text); insert into t(b) values ('x'),('y'),('z'); " \
          "select a, upper(b) from t order by a desc; select count(*) from t;"
    r = km("/usr/bin/sqlite3", db, sql)
    assert r.returncode == 0 and r.text == "3|Z\n2|Y\n1|X\n3\n", r.err
    native = run(["/usr/bin/sqlite3", db, "select group_concat(b) from t;"])
    assert native.text == "x,y,z\n"


SQLITE_WRITERS = """
import os, sqlite3, sys
db = sys.argv[1]
sqlite3.connect(db).execute("create table t(x integer)").connection.commit()
kids = []
for k in range(3):
    pid = os.fork()
    if pid == 0:
        c = sqlite3.connect(db, timeout=120, isolation_level=None)
        try:
            for i in range(150):
                c.execute("begin immediate")
                c.execute("insert into t select count(*) from t")
                c.execute("commit")
        except sqlite3.Error as e:
            print("writer", k, "transaction", i, e.sqlite_errorname, e)
            os._exit(1)
        os._exit(0)
    kids.append(pid)
print("writers:", [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in kids])
c = sqlite3.connect(db)
print(*c.execute("select count(*), count(distinct x), max(x) from t").fetchone(),
      c.execute("pragma integrity_check").fetchone()[0])
"""


def test_sqlite_writers_in_three_processes(tmp_path):
    """Three processes write one database, each transaction under sqlite's own POSIX
    record locks (BEGIN IMMEDIATE: each insert sees every earlier one, so the values are
    0..449, once each).  km's polled reads and writes dropped those locks (closing its
    duplicate of the descriptor): writers failed with SQLITE_IOERR_RDLOCK,
    SQLITE_IOERR_DELETE_NOENT or SQLITE_BUSY, or values came twice."""
    (tmp_path / "w.py").write_text(SQLITE_WRITERS)
    for where in ("native", "km"):
        (tmp_path / "w.db").unlink(missing_ok=True)
        argv = [PY, str(tmp_path / "w.py"), str(tmp_path / "w.db")]
        r = run(argv, timeout=600) if where == "native" else km(*argv, timeout=600)
        assert r.returncode == 0 and r.text == "writers: [0, 0, 0]\n450 450 449 ok\n", (where, r.text, r.err)


IMPORTS = "import json, hashlib, ssl, sqlite3, socket, ctypes, zlib, os; " \
          "print(json.dumps({'sha': hashlib.sha256(b'kontain').hexdigest(), 'ssl': ssl.OPENSSL_VERSION.split()[0], " \
          "'sqlite': sqlite3.connect(':memory:').execute('select 6*7').fetchone()[0], " \
          "'ctypes': ctypes.sizeof(ctypes.c_long), 'zlib': len(zlib.compress(b'a' * 1000)), " \
          "'pid': os.getpid() > 0, 'cwd': os.getcwd()}, sort_keys=True))"


def test_python_imports(tmp_path):
    native, guest = compare([PY, "-c", IMPORTS], cwd=tmp_path)
    assert '"sqlite": 42' in guest.text


def test_python_script_and_exit_status(tmp_path):
    s = tmp_path / "s.py"
    s.write_text("import sys\nprint('args', sys.argv[1:])\nsys.exit(7)\n")
    compare([PY, s, "a", "b"])


def test_python_exception_exit(tmp_path):
    native, guest = compare([PY, "-c", "raise SystemExit('bye')"], stderr=True)
    assert guest.returncode == 1


SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _addr = s.accept()
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    c.sendall(b"echo:" + data.upper())
    c.close()
print("served", flush=True)
"""


def test_python_tcp_server_serves_the_host(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    p = subprocess.Popen(KM + [PY, str(script), "3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(p.stdout.readline())
        for i in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
                c.sendall(f"hello {i}\n".encode())
                reply = b""
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    reply += chunk
            assert reply == f"echo:HELLO {i}\n".encode()
        assert p.stdout.readline() == b"served\n"
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()
        p.wait()
    assert p.stderr.read() == b""


def test_musl_dynamic_program(tmp_path):
    exe = tmp_path / "hello-musl-dynamic"
    r = subprocess.run(["musl-gcc", "-O2", "-o", exe, "tests/programs/hello.c"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert b"ld-musl" in exe.read_bytes()
    compare([exe])


def test_interpreter_run_directly(tree):
    compare(["/lib64/ld-linux-x86-64.so.2", "/bin/ls", "-1", "."], cwd=tree)


THREADS = r"""
import threading, queue, signal, os, time
q = queue.Queue()
def worker(n):
    q.put(sum(i * n for i in range(20000)))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print("results", sorted(q.get() for _ in range(8)))
ev = threading.Event()
threading.Timer(0.05, ev.set).start()
print("timer fired", ev.wait(5))
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
time.sleep(0.01)
print("handler ran", got == [signal.SIGUSR1])
lock = threading.Lock(); n = [0]
def inc():
    for _ in range(10000):
        with lock: n[0] += 1
ts = [threading.Thread(target=inc) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("counter", n[0])
"""


def test_python_threading_and_signals():
    native, guest = compare([PY, "-c", THREADS])
    assert "counter 40000" in guest.text


def _default_signals():
    """A child with every signal at its default action, whatever the test runner was
    started with (a shell's background job ignores SIGINT and SIGQUIT)."""
    import signal

    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass


def test_python_sigint_raises_keyboardinterrupt(tmp_path):
    # (short sleeps in a loop: CPython itself misses a SIGINT that lands between its
    # last signal check and a long sleep's syscall, natively or not)
    # (and 'ready' inside the try: the SIGINT may land while print returns)
    script = "import time, sys\ntry:\n    print('ready', flush=True)\n    for _ in range(600): time.sleep(0.05)\n" \
             "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    sys.exit(5)\n"
    p = subprocess.Popen(KM + [PY, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_default_signals)
    try:
        assert p.stdout.readline() == b"ready\n"
        p.send_signal(2)
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert out == b"interrupted\n" and p.returncode == 5, err


def test_python_processes():
    """subprocess, os.fork, os.execv, os.posix_spawn and multiprocessing with the fork start
    method: every child is its own km process and VM."""
    native, guest = compare([PY, str(ROOT / "tests/programs/pyprocs.py")])
    assert "multiprocessing: [0, 1, 4, 9, 16, 25, 36, 49]" in guest.text
    assert "posix_spawn: 5" in guest.text
