"""Snapshots (kernel/snapshot.py, kernel/snapfile.py): programs snapshot themselves
mid-work through km's own call (kontain.h), and each run resumed from the file
finishes the work with the same output as an uninterrupted native run; several resumes
of one file at once; what cannot be taken along is refused with one line; damaged
files get one line and status 126; gdb opens a snapshot."""

import os
import re
import struct
import subprocess

import pytest

from kt import KM, STATIC, build, ended, free_port, km, kvm_platform, run

INCLUDE = ("-I", str(os.path.join(os.path.dirname(__file__), "..", "..", "src", "kontain", "guest")))


def program(name: str, variant: str = "musl"):
    extra = INCLUDE + (("-lpthread",) if name == "snapthreads" else ())
    return build(name, variant, extra)


def snapshot_and_exit(prog, path, *args):
    """Run ``prog`` under km until it snapshots itself to ``path`` and ends."""
    r = km(prog, path, "exit", *args)
    assert r.returncode == 0 and os.path.exists(path), r.err
    assert "snapshot call" not in r.err  # (the call does not return in the run that ended there)
    return r


@pytest.mark.parametrize("variant", STATIC)
def test_a_program_snapshotted_mid_work_finishes_as_if_never_stopped(tmp_path, variant):
    prog = program("snapshot", variant)
    native = run([prog])
    snap = tmp_path / "snap"
    first = snapshot_and_exit(prog, snap)
    resumed = km(snap)  # km FILE: recognised as a snapshot
    assert resumed.returncode == 0, resumed.err
    assert first.stdout + resumed.stdout == native.stdout
    assert "snapshot call: 1" in resumed.err  # the call answers 1 in a resumed run
    again = km("resume", snap)
    assert (again.returncode, first.stdout + again.stdout) == (0, native.stdout), again.err


def test_the_original_run_goes_on_and_so_do_its_resumes(tmp_path):
    prog = program("snapshot")
    native = run([prog])
    snap = tmp_path / "snap"
    first = km(prog, snap, "stay")
    assert (first.returncode, first.stdout) == (native.returncode, native.stdout), first.err
    assert "snapshot call: 0" in first.err
    resumed = km("resume", snap)  # (its unflushed output was in memory: all of it again)
    assert (resumed.returncode, resumed.stdout) == (0, native.stdout), resumed.err


@pytest.mark.parametrize("variant", STATIC)
def test_threads_snapshotted_mid_work_finish_as_if_never_stopped(tmp_path, variant):
    """Workers computing, a thread in a futex wait, one blocked in read, one asleep."""
    prog = program("snapthreads", variant)
    native = run([prog])
    for i in range(3):
        snap = tmp_path / f"snap{i}"
        first = snapshot_and_exit(prog, snap)
        resumed = km(snap)
        assert resumed.returncode == 0, resumed.err
        assert first.stdout + resumed.stdout == native.stdout


def test_several_resumes_of_one_file_at_once(tmp_path):
    prog = program("snapthreads")
    native = run([prog])
    snap = tmp_path / "snap"
    snapshot_and_exit(prog, snap)
    procs = [subprocess.Popen(KM + [str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(5)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert (p.returncode, out) == (0, native.stdout), err.decode()


def test_what_cannot_be_taken_along_is_refused_and_the_program_goes_on(tmp_path):
    prog = program("snapshot")
    native = run([prog, tmp_path / "x", "stay", "socket"])
    r = km(prog, tmp_path / "snap", "stay", "socket")
    assert (r.returncode, r.stdout) == (native.returncode, native.stdout), r.err
    lines = [line for line in r.err.splitlines() if line.startswith("km:")]
    assert len(lines) == 1 and "descriptor" in lines[0] and "socket" in lines[0], r.err
    assert "snapshot call: -95" in r.err  # EOPNOTSUPP
    assert not (tmp_path / "snap").exists()
    rd, wr = os.pipe()  # a pipe whose other end is km's caller's
    try:
        p = subprocess.run(KM + [str(prog), str(tmp_path / "snap"), "stay"], pass_fds=[wr], capture_output=True,
                           timeout=120)
    finally:
        os.close(rd)
        os.close(wr)
    assert (p.returncode, p.stdout) == (native.returncode, native.stdout), p.stderr
    assert f"descriptor {wr} is a pipe whose other end is outside the program" in p.stderr.decode()
    assert not (tmp_path / "snap").exists()


def _first_run(name: str, variant: str, tmp_path, mode: str):
    """Program ``name`` natively, then under km snapshotting itself (``mode``: exit at the
    snapshot, or stay and finish as natively): (native, first km run, the snapshot)."""
    prog = program(name, variant)
    native = run([prog])
    snap = tmp_path / "snap"
    first = km(prog, snap, mode)
    assert first.returncode == 0 and snap.exists(), first.err
    if mode == "stay":
        assert first.stdout == native.stdout
    return native, first, snap


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("mode", ["exit", "stay"])
def test_socketpairs_come_back_with_their_queued_messages_and_shutdowns(tmp_path, variant, mode):
    """Stream, datagram (an empty one too) and seqpacket socketpairs with messages queued
    both ways, ends shut down, one whose peer was closed, a dup and an epoll set watching
    one: the original run (the messages are peeked, never taken out) and the resumed one
    print what an uninterrupted native run prints."""
    native, first, snap = _first_run("snapsock", variant, tmp_path, mode)
    for _ in range(2):
        resumed = km(snap)
        assert resumed.returncode == 0 and "snapshot call: 1" in resumed.err, resumed.err
        assert (first.stdout if mode == "exit" else b"") + resumed.stdout == native.stdout
    info = km("snapshot", "--info", snap)
    assert "a seqpacket socketpair's end 1 (16 bytes queued)" in info.text, info.text


def test_a_posix_message_queue_is_refused(tmp_path):
    """A queue's descriptor looks like a regular file with a path ("/NAME" on the mqueue
    file system), which a resume would open as a file of the root directory."""
    prog = program("snapshot")
    native = run([prog, tmp_path / "x", "stay", "mqueue"])
    r = km(prog, tmp_path / "snap", "stay", "mqueue")
    assert (r.returncode, r.stdout) == (native.returncode, native.stdout), r.err
    lines = [line for line in r.err.splitlines() if line.startswith("km:")]
    assert len(lines) == 1 and "message queue" in lines[0], r.err
    assert not (tmp_path / "snap").exists()


def test_a_socket_connected_outside_the_program_is_refused(tmp_path):
    """One end of a socketpair whose other end is km's caller's."""
    import socket

    prog = program("snapshot")
    native = run([prog])
    mine, theirs = socket.socketpair()
    try:
        p = subprocess.run(KM + [str(prog), str(tmp_path / "snap"), "stay"], pass_fds=[theirs.fileno()],
                           capture_output=True, timeout=120)
    finally:
        mine.close()
        theirs.close()
    assert (p.returncode, p.stdout) == (native.returncode, native.stdout), p.stderr
    assert b"is a Unix socket connected outside the program" in p.stderr
    assert not (tmp_path / "snap").exists()


ASYNC_SERVER = """import asyncio, json, sys
async def answer(reader, writer):
    request = await reader.readuntil(b"\\r\\n\\r\\n")
    body = json.dumps({"async": request.split()[1].decode()}).encode()
    writer.write(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body) + body)
    await writer.drain()
    writer.close()
async def main():
    await asyncio.sleep(0)  # a warm loop: its self-pipe (a socketpair) and epoll set in use
    asyncio.get_running_loop().call_soon_threadsafe(sys.stderr.write, "warm\\n")
    server = await asyncio.start_server(answer, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def test_an_asyncio_server_snapshotted_on_listen_serves_from_several_resumes(tmp_path):
    """asyncio's event loop holds a socketpair (its self-pipe) and an epoll set."""
    snap, port = _python_server_snapshot(tmp_path, "aserver", ASYNC_SERVER)
    info = km("snapshot", "--info", snap)
    assert "a stream socketpair's end" in info.text, info.text
    _three_resumes_answer(snap, port, lambda i: (f"/a{i}", b'{"async": "/a%d"}' % i))


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("mode", ["exit", "stay"])
def test_timers_and_signalfds_come_back(tmp_path, variant, mode):
    """setitimer's three timers, POSIX timers (signalling, aimed at a thread, silent,
    disarmed: their ids still work, their sigevents and intervals are kept, they fire), a
    signalfd with its signal pending; the resumed runs print what a native run prints."""
    native, first, snap = _first_run("snaptimers", variant, tmp_path, mode)
    procs = [subprocess.Popen(KM + [str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and b"snapshot call: 1" in err, err.decode()
        assert (first.stdout if mode == "exit" else b"") + out == native.stdout
    info = km("snapshot", "--info", snap)
    assert "a signalfd" in info.text and "timers: 4 POSIX timers; armed: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF" \
        in info.text, info.text


@pytest.mark.parametrize("mode", ["exit", "stay"])
def test_an_aio_context_comes_back(tmp_path, mode):
    """A Linux AIO context (kernel/aio.py) with a completion queued: the resumed runs take
    it, and the context serves new requests, as a native run does."""
    native, first, snap = _first_run("snapaio", "musl", tmp_path, mode)
    cut = native.stdout.index(b"\n", native.stdout.index(b"submit before")) + 1  # (what comes before the call)
    if mode == "exit":
        assert first.stdout == native.stdout[:cut]
    for _ in range(2):
        resumed = km(snap)
        assert resumed.returncode == 0 and "snapshot call: 1" in resumed.err, resumed.err
        assert native.stdout[:cut] + resumed.stdout == native.stdout
    info = km("snapshot", "--info", snap)
    assert "AIO contexts: 1 (rings at 0x" in info.text, info.text


def test_a_pending_timer_signal_keeps_its_overruns(tmp_path):
    """A 2 ms timer's signal pending (blocked) across a snapshot: the expirations before
    it, which km left the host to count, are the resumed signal's overruns (they were
    lost: the saved signal had only km's own count)."""
    native, first, snap = _first_run("snapoverrun", "musl", tmp_path, "exit")
    assert b"snapshot: yes" in native.stdout, native.stdout
    for _ in range(2):
        resumed = km(snap)
        assert resumed.returncode == 0 and "snapshot call: 1" in resumed.err, resumed.err
        assert resumed.stdout == native.stdout, resumed.err


def test_a_timer_on_a_thread_clock_is_refused_and_the_program_goes_on(tmp_path):
    prog = program("snaptimers")
    native = run([prog, tmp_path / "x", "stay", "threadclock"])
    r = km(prog, tmp_path / "snap", "stay", "threadclock")
    assert (r.returncode, r.stdout) == (native.returncode, native.stdout), r.err
    lines = [line for line in r.err.splitlines() if line.startswith("km:")]
    assert len(lines) == 1 and "POSIX timer" in lines[0] and "thread's CPU time" in lines[0], r.err
    assert "snapshot call: -95" in r.err
    assert not (tmp_path / "snap").exists()


def _one_line_126(r):
    lines = r.err.strip().splitlines()
    assert r.returncode == 126 and len(lines) == 1 and lines[0].startswith("km: "), r.err
    assert "Traceback" not in r.err


def test_damaged_and_truncated_files_get_one_line_and_126(tmp_path):
    prog = program("snapshot")
    snap = tmp_path / "snap"
    snapshot_and_exit(prog, snap)
    data = snap.read_bytes()
    bad = tmp_path / "bad"
    # truncated: inside the headers, inside the notes, inside the memory
    phoff = struct.unpack_from("<Q", data, 32)[0]
    note_off, note_size = struct.unpack_from("<QQ", data, phoff + 8)[0], struct.unpack_from("<Q", data, phoff + 32)[0]
    for size in (20, 64, phoff + 30, note_off + note_size // 2, len(data) // 2):
        bad.write_bytes(data[:size])
        _one_line_126(km("resume", bad))
    # km's note damaged here and there
    km_note = data.find(b"KMSNAP")
    for where in (km_note, km_note + 6, km_note + 9, km_note + 40, km_note + 300, note_off + note_size - 20):
        damaged = bytearray(data[:note_off + note_size])
        for i in range(where, min(where + 8, len(damaged))):
            damaged[i] ^= 0xA5
        bad.write_bytes(bytes(damaged) + data[note_off + note_size:])
        r = km("resume", bad)
        assert r.returncode != 0
        if r.returncode == 126:
            _one_line_126(r)
        else:  # (a change km cannot tell from a real state: the program ran, from changed registers)
            assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    # an ELF core file that is not a snapshot
    bad.write_bytes(data[:64] + bytes(64))
    _one_line_126(km("resume", bad))


def rewrite(src, dst, change) -> None:
    """A copy of snapshot ``src`` at ``dst`` whose km state ``change(state)`` changed (the
    file rebuilt around it: notes, then the same memory)."""
    from kontain.kernel import snapfile

    s = snapfile.read(str(src))
    try:
        change(s.state)
        notes = b"".join(snapfile.note(kind, desc, name) for name, kind, desc in s.notes
                         if kind != snapfile.NT_KM_STATE)
        notes += snapfile.state_note(s.state)
        segments = []
        for start, end, off, filesz, flags in s.loads:
            read = (lambda a, n, start=start, off=off: os.pread(s.fd, n, off + a - start)) if filesz else None
            segments.append(snapfile.Segment(start, end, flags, read))
        snapfile.write(str(dst), notes, segments)
    finally:
        os.close(s.fd)


def _set(path: tuple, value):
    def change(state):
        d = state
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value(d[path[-1]]) if callable(value) else value
    return change


HOSTILE_STATES = {
    "registers of the wrong size": (("process", "tasks", 0, "vcpu", "regs"), b"x"),
    "no threads": (("process", "tasks"), []),
    "a vCPU number past KVM's": (("process", "tasks", 0, "vcpu_id"), 60000),
    "a thread id that is no number": (("process", "tasks", 0, "tid"), "1"),
    "arguments that are no strings": (("process", "program", "argv"), [1, 2]),
    "a mapping moved": (("process", "mm", "vmas", 0), lambda v: (v[0], (v[1][0] + 1,) + v[1][1:])),
    "a mapping of another kind": (("process", "mm", "vmas", 0), lambda v: ("ShmVma", v[1])),
    "a descriptor of an unknown kind": (("process", "fds", 3), {"kind": "bogus"}),
    "a descriptor of a file that is gone": (("process", "fds", 3, "path"), b"/nonexistent/file"),
    "a descriptor number out of range": (("process", "fds"), lambda d: {**d, -5: d[3]}),
    "a signal table too short": (("process", "actions"), lambda a: a[:10]),
    "a siginfo of the wrong size": (("process", "shared_pending", "infos"), {10: [(b"x", False)]}),
    "another poll mode": (("head", "poll"), "bogus"),
    "a window of no size": (("head", "window"), 0),
    "a working directory that is gone": (("extra", "cwd"), b"/nonexistent/dir"),
    "credentials": (("process", "tasks", 0, "creds"), (0, 0, 0)),
    "random system registers": (("process", "tasks", 0, "vcpu", "sregs"), lambda b: bytes(len(b))),
    "a kernel-mode thread anywhere": (("process", "tasks", 0, "vcpu", "sregs"),
                                      lambda b: b[:16] + b"\0" + b[17:]),  # (CS.dpl 0)
    "a huge limit": (("extra", "host_rlimits", 0), (1 << 70, 1 << 70)),
    "a negative file offset": (("process", "fds", 3, "offset"), -4096),
    "a descriptor's flags that are no number": (("process", "fds", 3, "flags"), "x"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_STATES))
def test_a_hostile_state_gets_one_line_or_runs_as_the_guest_it_is(tmp_path, name):
    """A file whose km state was written by someone else: one line and 126 for what km
    cannot take, or the program runs (a guest may do what it wants with itself); never
    a traceback, never km's internal error."""
    prog = program("snapshot")
    snap = tmp_path / "snap"
    snapshot_and_exit(prog, snap)
    where, value = HOSTILE_STATES[name]
    bad = tmp_path / "bad"
    rewrite(snap, bad, _set(where, value))
    r = km("resume", bad)
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    if r.returncode == 126:
        _one_line_126(r)
    assert r.returncode != 0 or name in ("random system registers",), r.err


def test_a_snapshot_from_another_cpu_is_refused(tmp_path):
    """The CPUID is part of the state: a changed one (another CPU model) is refused."""
    prog = program("snapshot")
    snap = tmp_path / "snap"
    snapshot_and_exit(prog, snap)
    data = bytearray(snap.read_bytes())
    from kontain.kernel import snapfile  # (rewrite the state with another CPUID)

    s = snapfile.read(str(snap))
    os.close(s.fd)
    state = s.state
    e = list(state["head"]["cpuid"][0])
    e[3] ^= 1
    state["head"]["cpuid"][0] = tuple(e)
    phoff = struct.unpack_from("<Q", data, 32)[0]
    note_off, note_size = struct.unpack_from("<Q", data, phoff + 8)[0], struct.unpack_from("<Q", data, phoff + 32)[0]
    notes = snapfile.parse_notes(bytes(data[note_off:note_off + note_size]))
    rebuilt = b"".join(snapfile.note(kind, desc, name) for name, kind, desc in notes if kind != snapfile.NT_KM_STATE)
    rebuilt += snapfile.state_note(state)
    assert note_off + len(rebuilt) <= struct.unpack_from("<Q", data, phoff + 56 + 8)[0]  # (room before memory)
    data[note_off:note_off + len(rebuilt)] = rebuilt
    struct.pack_into("<QQ", data, phoff + 32, len(rebuilt), len(rebuilt))
    snap.write_bytes(bytes(data))
    r = km(snap)
    _one_line_126(r)
    assert "CPU" in r.err


def test_gdb_opens_a_snapshot(tmp_path):
    prog = program("snapthreads", "glibc")
    snap = tmp_path / "snap"
    snapshot_and_exit(prog, snap)
    r = run(["gdb", "-batch", "-nx", prog, snap, "-ex", "bt", "-ex", "info threads"], timeout=120)
    assert r.returncode == 0, r.err
    assert "main" in r.text, r.text + r.err
    assert r.text.count("Thread") + r.text.count("LWP") >= 8, r.text  # every thread is in it


PYTHON = "/usr/bin/python3"
SRC = str(os.path.join(os.path.dirname(__file__), "..", "..", "src"))
HEAVY = ("import asyncio, email.mime.multipart, http.server, json, decimal, sqlite3, ssl, xml.etree.ElementTree, "
         "urllib.request, argparse, logging, unittest\n")


def test_python_snapshots_itself_after_heavy_imports(tmp_path):
    """CPython (Debian's dynamic python3) imports a heavy set of modules and snapshots
    itself with kontain.guest.snapshot(); every resume (three at once) goes on from there."""
    script = tmp_path / "warm.py"
    script.write_text(HEAVY + f"import sys\nsys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                      "resumed = snapshot(sys.argv[1], exit=True)\n"
                      "print('resumed' if resumed else 'original', json.dumps({'d': str(decimal.Decimal(1) / 7)}),"
                      " sqlite3.connect(':memory:').execute('select 6*7').fetchone()[0])\n")
    snap = tmp_path / "py.snap"
    first = km(PYTHON, script, snap)
    assert first.returncode == 0 and first.stdout == b"", first.err
    procs = [subprocess.Popen(KM + [str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert (p.returncode, out) == (0, b'resumed {"d": "0.1428571428571428571428571429"} 42\n'), err.decode()
    natively = run([PYTHON, "-c", f"import sys; sys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                    "try:\n    snapshot()\nexcept OSError as e:\n    print(e.errno)"])
    assert natively.stdout == b"38\n"  # ENOSYS outside km


SERVER = """import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _get(port: int, path: str, procs=()) -> bytes:
    """GET, waiting for the server to listen (a resumed one listens before it runs): until
    it answers, or every process in ``procs`` (the servers) has ended (their errors then
    say why), or a generous deadline for a loaded machine."""
    import http.client
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", path)
            return c.getresponse().read()
        except ConnectionRefusedError:
            if procs and all(p.poll() is not None for p in procs):
                errors = [p.stderr.read().decode(errors="replace") for p in procs]
                raise AssertionError(f"the servers ended before port {port} answered: {errors}") from None
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port}")


def _python_server_snapshot(tmp_path, name: str, source: str):
    """A Python server (``source``, given its port) snapshotted by --snapshot-on-listen:
    (the snapshot, the port)."""
    script = tmp_path / f"{name}.py"
    script.write_text(source)
    port = free_port()
    snap = tmp_path / f"{name}.snap"
    first = km("--snapshot-on-listen", snap, PYTHON, script, port)
    assert first.returncode == 0 and snap.exists(), first.err
    return snap, port


def test_a_python_http_server_snapshotted_on_listen_serves_from_several_resumes(tmp_path):
    snap, port = _python_server_snapshot(tmp_path, "server", SERVER)
    _three_resumes_answer(snap, port, lambda i: (f"/{i}", b'{"path": "/%d"}' % i))


def test_scale_to_zero_listens_first_and_resumes_at_the_first_connection(tmp_path):
    """km resume --scale-to-zero: the server's listening socket comes back alone (no VM,
    no guest memory: km holds no KVM descriptor), and the program is resumed when a
    connection comes, which it then answers, as it does the next ones."""
    import time

    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    snap = tmp_path / "server.snap"
    assert km("--snapshot-on-listen", snap, PYTHON, script, port).returncode == 0
    p = subprocess.Popen(KM + ["resume", "--scale-to-zero", str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:  # its listening socket, and nothing of KVM
            if any(link.startswith("socket:") for link in _fd_links(p.pid)):
                break
            assert p.poll() is None and time.monotonic() < deadline, p.stderr.read().decode()
            time.sleep(0.05)
        time.sleep(0.3)
        links = _fd_links(p.pid)
        assert not any("kvm" in link for link in links), links
        assert _get(port, "/first") == b'{"path": "/first"}'
        assert any("kvm" in link for link in _fd_links(p.pid))
        assert _get(port, "/second") == b'{"path": "/second"}'
    finally:
        ended(p)
    usage = km("resume", "--scale-to-zero")
    assert usage.returncode == 2 and "km resume [--scale-to-zero] FILE" in usage.err


def _three_resumes_answer(snap, port: int, request) -> None:
    """Three resumes of a server's snapshot at once answer six requests (``request(i)``:
    the path and the answer), shared among them by the host (SO_REUSEPORT)."""
    procs = [subprocess.Popen(KM + [str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        for i in range(6):
            path, answer = request(i)
            assert _get(port, path, procs) == answer
    finally:
        for p in procs:
            ended(p)


def test_km_snapshot_pid_from_outside(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    port = free_port()
    server = subprocess.Popen(KM + [PYTHON, str(script), str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _get(port, "/before") == b'{"path": "/before"}'
        kept = tmp_path / "kept.snap"
        r = km("snapshot", server.pid, "-o", kept, "--leave-running")
        assert r.returncode == 0 and kept.exists(), r.err
        assert _get(port, "/still") == b'{"path": "/still"}'  # it goes on
        last = tmp_path / "last.snap"
        r = km("snapshot", server.pid, "-o", last)
        assert r.returncode == 0 and last.exists(), r.err
        assert server.wait(timeout=60) == 0  # and then it ended
        info = km("snapshot", "--info", last)
        assert info.returncode == 0 and "server.py" in info.text and "threads: 1" in info.text, info.err
    finally:
        server.kill()
        server.communicate()
    resumed = subprocess.Popen(KM + [str(last)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _get(port, "/resumed") == b'{"path": "/resumed"}'
    finally:
        ended(resumed)
    native = subprocess.Popen(["sleep", "30"])
    try:
        r = km("snapshot", native.pid)  # not a km: it ignores the request (SIGURG)
        assert r.returncode == 1 and "did not answer" in r.err and native.poll() is None
    finally:
        native.kill()
        native.wait()


def test_resume_through_a_km_server(tmp_path):
    """km FILE through a km server's client (native, and km with KM_SERVER): the resume
    runs in a warm worker (the program's parent is the server)."""
    import time

    script = tmp_path / "warm.py"
    script.write_text(f"import sys, os, json\nsys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                      "snapshot(sys.argv[1], exit=True)\nprint(json.dumps({'parent': os.getppid()}))\n")
    snap = tmp_path / "py.snap"
    assert km(PYTHON, script, snap).returncode == 0
    prog = program("snapshot")
    native = run([prog])
    csnap = tmp_path / "c.snap"
    first = snapshot_and_exit(prog, csnap)
    sock, client = tmp_path / "km.sock", tmp_path / "km"
    server = subprocess.Popen(KM + ["--serve", str(sock)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not (sock.exists() and client.exists()):
            assert server.poll() is None and time.monotonic() < deadline, "km --serve did not start"
            time.sleep(0.05)
        for runner in ([str(client)], ["env", f"KM_SERVER={sock}"] + KM):
            r = run(runner + [snap])
            assert (r.returncode, r.stdout) == (0, b'{"parent": %d}\n' % server.pid), r.err
            r = run(runner + [csnap])
            assert (r.returncode, first.stdout + r.stdout) == (0, native.stdout), r.err
    finally:
        server.terminate()
        server.wait(timeout=30)


def _serve(tmp_path, *extra):
    """A km server on tmp_path/km.sock; (its process, its native client)."""
    import time

    sock, client = tmp_path / "km.sock", tmp_path / "km"
    server = subprocess.Popen(KM + ["--serve", str(sock), *map(str, extra)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (sock.exists() and client.exists()):
        assert server.poll() is None and time.monotonic() < deadline, "km --serve did not start"
        time.sleep(0.05)
    return server, client


def test_a_server_warm_for_a_snapshot_resumes_it_and_starts_others_directly(tmp_path):
    """km --serve PATH --warm FILE: workers with FILE's memory mapped before a client
    comes; km FILE resumes in one (its parent is the server), several at once; another
    program, or FILE changed since, starts directly; a file that is not a snapshot is
    refused at once with one line."""
    script = tmp_path / "warm.py"
    script.write_text(f"import sys, os, json\nsys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                      "snapshot(sys.argv[1], exit=True)\nprint(json.dumps({'parent': os.getppid()}))\n")
    snap = tmp_path / "py.snap"
    assert km(PYTHON, script, snap).returncode == 0
    server, client = _serve(tmp_path, "--warm", snap)
    try:
        expected = b'{"parent": %d}\n' % server.pid
        for runner in ([str(client)], ["env", f"KM_SERVER={tmp_path / 'km.sock'}"] + KM):
            r = run(runner + [snap])
            assert (r.returncode, r.stdout) == (0, expected), r.err
        procs = [subprocess.Popen([str(client), str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(3)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert (p.returncode, out) == (0, expected), err.decode()
        r = run([str(client), "--timings", snap])  # the phases of a warm resume: no memory mapped then
        assert r.returncode == 0 and "km: timings: fds" in r.err and "km: timings: memory" not in r.err, r.err
        other = run([str(client), "/bin/echo", "direct"])  # (not the warm snapshot: km starts directly)
        assert (other.returncode, other.stdout) == (0, b"direct\n"), other.err
        copy = tmp_path / "copy.snap"
        copy.write_bytes(snap.read_bytes())
        r = run([str(client), copy])  # another file: resumed by a direct km (its parent is the client)
        assert r.returncode == 0 and r.stdout != expected and b"parent" in r.stdout, r.err
    finally:
        server.terminate()
        server.wait(timeout=30)
    bad = subprocess.run(KM + ["--serve", str(tmp_path / "b.sock"), "--warm", str(script)], capture_output=True,
                         timeout=60)
    lines = bad.stderr.decode().strip().splitlines()
    assert bad.returncode == 1 and len(lines) == 1 and lines[0].startswith("km: --serve --warm"), bad.stderr


def test_a_go_http_server_snapshotted_on_listen_serves_from_several_resumes(tmp_path):
    """Go's runtime: many threads, an epoll set and an eventfd (taken along through
    /proc/self/fdinfo), a listening socket."""
    from kt import build_go

    prog = build_go()
    port = free_port()
    snap = tmp_path / "go.snap"
    first = km("--snapshot-on-listen", snap, prog, "serve-on", port)
    assert first.returncode == 0 and snap.exists(), first.err
    _three_resumes_answer(snap, port, lambda i: (f"/x{i}", b"hello x%d from go" % i))


def test_snapshot_of_rewritten_code(tmp_path):
    """A program whose hot syscall sites km rewrote (kernel/rewrite.py; PVM) is saved as
    it had its code: the snapshot's memory holds the original bytes and no trampoline
    page, and a resume runs on (and may rewrite its sites anew)."""
    script = tmp_path / "hot.py"
    script.write_text(f"import os, sys\nsys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                      "for i in range(3000): os.getppid()\n"
                      "resumed = snapshot(sys.argv[1], exit=True)\n"
                      "for i in range(3000): os.getppid()\n"
                      "print('resumed' if resumed else 'original', os.getppid() == os.getppid())\n")
    snap = tmp_path / "hot.snap"
    first = km("--timings", "--rewrite-after", "0", PYTHON, script, snap)
    assert first.returncode == 0 and first.stdout == b"", first.err
    if kvm_platform() == "pvm":
        assert re.search(r"[1-9]\d* syscall sites rewritten", first.err), first.err
    info = km("snapshot", "--info", snap)
    assert b"[km-syscalls]" not in info.stdout + info.stderr, info.text
    again = km(snap)
    assert (again.returncode, again.stdout) == (0, b"resumed True\n"), again.err


DUMPED = """import socket, sys, threading, time
s = socket.socket()  # (which a snapshot refuses to take along, a core file does not)
for _ in range(2):
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
print("ready", flush=True)
print("after", sys.stdin.readline().strip(), flush=True)
"""


def test_km_dump_pid_writes_a_core_of_a_running_program(tmp_path):
    """km dump PID: the core file of a running program, every thread in it, while the
    program goes on (issue 14); gdb opens it; a process that is not a km does not answer."""
    script = tmp_path / "dumped.py"
    script.write_text(DUMPED)
    prog = subprocess.Popen(KM + [PYTHON, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert prog.stdout.readline() == b"ready\n"
        core = tmp_path / "core.dumped"
        r = km("dump", prog.pid, "-o", core)
        assert r.returncode == 0 and core.exists(), r.err
        out, err = prog.communicate(b"the dump\n", timeout=60)
        assert (prog.returncode, out) == (0, b"after the dump\n"), err
    finally:
        prog.kill()
    g = run(["gdb", "-batch", "-nx", "-ex", "info threads", PYTHON, str(core)])
    assert len(re.findall(r"^\*?\s*\d+\s+Thread ", g.text, re.M)) == 3, g.text + g.err
    assert "read" in g.text and "clock_nanosleep" in g.text, g.text
    native = subprocess.Popen(["sleep", "30"])
    try:
        r = km("dump", native.pid, "-o", tmp_path / "never")
        assert r.returncode == 1 and "did not answer" in r.err and native.poll() is None
    finally:
        native.kill()
        native.wait()
    assert km("dump").returncode == 2 and km("dump", "x").returncode == 2


def test_sigterm_at_any_moment_of_a_resume_ends_it(tmp_path):
    """SIGTERM to `km SNAPSHOT` at moments spread over its start-up, from before km blocks
    the host's signals to after the program runs: km ends every time, by SIGTERM.  (A
    signal km took for the program before the snapshot's pending signals were restored
    was discarded with the set it was in, and that km never ended: a test's resume that
    was terminated while it still started hung for good.)"""
    import signal
    import time

    port = free_port()
    snap = tmp_path / "nc.snap"
    first = km("--snapshot-on-listen", snap, "/bin/busybox", "nc", "-l", "-p", port)
    assert first.returncode == 0 and snap.exists(), first.err
    for delay in (0, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.07, 0.1, 0.2, 0.5):
        p = subprocess.Popen(KM + [str(snap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        ended(p)
        assert p.returncode == -signal.SIGTERM, (delay, p.returncode, p.stderr.read().decode())


def _fd_links(pid: int) -> list[str]:
    """What process ``pid``'s descriptors name, leaving out one it closed between the
    listing and the readlink (km opens and closes its own while it resumes)."""
    links = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            links.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except FileNotFoundError:
            pass
    return links
