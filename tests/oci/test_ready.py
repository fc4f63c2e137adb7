"""`krun start` returns once the program runs (oci/ready.py): a signal sent as soon as
start returned reaches the program's handler, as under crun; the program sees exactly
the descriptors it would under crun."""

import os
import subprocess
import sys
import time
from pathlib import Path

import kit
import pytest
from test_krun import each, program_rootfs, same

HERE = Path(__file__).resolve().parent
ROUNDS = 6
PYTHON_KRUN = [sys.executable, "-c", "import sys; from kontain.oci.cli import main; sys.exit(main())"]
LOST = 60  # seconds: a program still waiting then never got its SIGTERM (a failure, not a test's pace)


def _reaped(rt, bundle: Path, cid: str, start: str) -> subprocess.Popen:
    """reaper.py creating container ``cid`` of ``bundle`` with ``rt``, then told ``start``
    (a line: "start", or "start SIGNAL" to have it signalled as soon as start returned)."""
    p = subprocess.Popen([sys.executable, HERE / "reaper.py", bundle, cid, *rt.command], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().split()[0] == "created"
    p.stdin.write(f"{start}\n")
    p.stdin.flush()
    return p


@pytest.mark.parametrize("launcher", ["native", "python"])
def test_sigterm_right_after_start_reaches_the_handler(runtimes, tmp, launcher):
    """start, then kill TERM at once, as runtime-tools' killsig does: the handler runs
    and the program exits 0, every time (before, km could still be starting and the
    program's handler not installed yet: the signal was lost, most often under load).
    krun-native's start (launcher.c) and the Python krun's (cli.py) both wait, and km
    says the program runs only once it waits (kernel/readyfd.py), its handler set.  Not
    compared with crun, whose start returns before the program's first instruction: the
    program's way to its sigaction against the time a `kill` takes to start is a race
    there, which this loaded machine's crun lost (PID 1 ignores an unhandled SIGTERM:
    the program then waits for ever)."""
    root = program_rootfs(tmp, "trapterm")
    if launcher == "python":
        krun = runtimes[1]
        krun.command = [*PYTHON_KRUN, f"--root={krun.root}"]

    def case(rt, n):
        b = kit.bundle(tmp / f"t-{rt.name}-{n}", ["/trapterm"], root)
        p = _reaped(rt, b, "t", "start TERM")
        try:
            out, _ = p.communicate(timeout=LOST)
        except subprocess.TimeoutExpired:  # (the signal was lost: the program waits for ever)
            rt("kill", "t", "KILL")
            out, _ = p.communicate(timeout=kit.TIMEOUT)
        rt("delete", "--force", "t")
        return out, (b / "t.out").read_text()
    for n in range(ROUNDS):
        assert case(runtimes[1], n) == ("started\nexited 0\n", "got SIGTERM\n"), f"round {n}"


@pytest.mark.parametrize("sig", ["TERM", "USR1"])
def test_a_shells_trap_catches_a_signal_sent_right_after_start(runtimes, tmp, rootfs, sig):
    """runtime-tools' killsig, as it runs: busybox's shell sets a trap, starts a child and
    waits for it, and the signal comes as soon as start returned.  Under crun the shell
    is usually at its `trap` long before the engine's `kill` runs (not always: on this
    loaded machine crun's shell once got SIGTERM first, which PID 1 ignores, and ended
    10 s later without its line); under km its way there takes ~7 ms of exits (more under
    load), and when start returned at the program's first instruction the signal most
    often came first.  start now returns once the program first waits
    (kernel/readyfd.py): here, in `wait`, with the trap set, every time."""
    script = f"trap 'echo got {sig}; exit 0' {sig}; sleep 10 & wait $!"

    def case(rt, n):
        b = kit.bundle(tmp / f"k-{rt.name}-{sig}-{n}", ["/bin/sh", "-c", script], rootfs)
        p = _reaped(rt, b, "k", f"start {sig}")
        out, _ = p.communicate(timeout=LOST)
        rt("delete", "--force", "k")
        return out, (b / "k.out").read_text()
    for n in range(ROUNDS):
        assert case(runtimes[1], n) == ("started\nexited 0\n", f"got {sig}\n"), f"round {n}"


def test_start_returns_once_the_program_waits(runtimes, tmp, rootfs):
    """What start guarantees, without a race: when it returns, a program that runs into
    a wait is in it, what it did before done.  tests/programs/latewait.c first makes calls
    that may wait but return at once (waitpid WNOHANG, poll with no timeout), works ~5 ms,
    writes its line, then sets its handler and waits: its line is there when start
    returns, and the SIGTERM sent then reaches its handler.  A program that never waits
    counts as running after a while, and one that ends, at its end (kernel/readyfd.py):
    start never waits for ever."""
    krun = runtimes[1]
    root = program_rootfs(tmp, "latewait")
    for n in range(ROUNDS):
        b = kit.bundle(tmp / f"w-{n}", ["/latewait"], root)
        p = _reaped(krun, b, "w", "start")
        assert p.stdout.readline() == "started\n"
        seen = (b / "w.out").read_text()
        krun("kill", "w", "TERM" if seen == "started up\n" else "KILL")  # (a TERM too early would be lost)
        out, _ = p.communicate(timeout=LOST)
        krun("delete", "--force", "w")
        assert seen == "started up\n", f"round {n}: the program had not reached its wait when start returned"
        assert (out, (b / "w.out").read_text()) == ("exited 0\n", "started up\ngot SIGTERM\n"), f"round {n}"
    for name, script, status in (("b", "while :; do :; done", "running"), ("e", "exit 3", "stopped")):
        b = kit.bundle(tmp / f"r-{name}", ["/bin/sh", "-c", script], rootfs)
        assert krun("create", "--bundle", b, name).returncode == 0
        assert krun("start", name).returncode == 0
        assert krun.wait_status(name, status) == status
        krun("kill", name, "KILL")
        krun.wait_status(name, "stopped")
        krun("delete", "--force", name)


@pytest.mark.parametrize("launcher", ["native", "python"])
def test_start_returns_with_the_program_loaded(runtimes, tmp, launcher):
    """What start guarantees, without a race: when it returns, km has loaded the program
    (it names its process after it, /proc/PID/comm, as it loads it, before it closes the
    FIFO).  Before, km was still the loader or the interpreter then, for ~20-30 ms."""
    root = program_rootfs(tmp, "trapterm")
    krun = runtimes[1]
    if launcher == "python":
        krun.command = [*PYTHON_KRUN, f"--root={krun.root}"]
    for n in range(ROUNDS):
        b = kit.bundle(tmp / f"c-{n}", ["/trapterm"], root)
        assert krun("create", "--bundle", b, "c").returncode == 0
        pid = krun.state("c")["pid"]
        assert krun("start", "c").returncode == 0
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        krun("delete", "--force", "c")
        assert comm == "trapterm", f"round {n}: the container's process is {comm!r} once start returned"


def test_running_once_start_returned(runtimes, tmp):
    root = program_rootfs(tmp, "trapterm")

    def case(rt):
        b = kit.bundle(tmp / f"s-{rt.name}", ["/trapterm"], root)
        assert rt("create", "--bundle", b, "s").returncode == 0
        r = rt("start", "s")
        state = rt.status("s")
        rt("kill", "s", "TERM")
        final = rt.wait_status("s", "stopped")
        rt("delete", "s")
        return r.returncode, r.stdout, r.stderr, state, final, sorted(os.listdir(rt.root))
    assert same(each(runtimes, case), "start") == (0, "", "", "running", "stopped", [])


def test_a_program_gone_before_start(runtimes, tmp):
    """The entry point existed at create and is gone at start: start succeeds (km ends at
    once and closes its end) and the container is stopped, as under crun."""
    def case(rt):
        root = kit.busybox_rootfs(tmp / f"root-{rt.name}")
        (root / "bin" / "gone").symlink_to("busybox")
        b = kit.bundle(tmp / f"g-{rt.name}", ["/bin/gone"], root)
        assert rt("create", "--bundle", b, "g").returncode == 0
        (root / "bin" / "gone").unlink()
        r = rt("start", "g")
        final = rt.wait_status("g", "stopped")
        rt("delete", "g")
        return r.returncode, final, sorted(os.listdir(rt.root))
    same(each(runtimes, case), "a program gone before start")


def test_create_then_delete_leaves_nothing(runtimes, tmp, rootfs):
    def case(rt):
        assert rt("create", "--bundle", kit.bundle(tmp / f"d-{rt.name}", ["/bin/true"], rootfs), "d").returncode == 0
        r = rt("delete", "--force", "d")
        return r.returncode, sorted(os.listdir(rt.root))
    assert same(each(runtimes, case), "create, delete") == (0, [])


def test_failed_creates_leave_nothing_for_good(runtimes, tmp, rootfs):
    """A create crun refuses leaves nothing behind for long: krun's FIFO for it goes at a
    later create once it is ten minutes old (runtime-tools' validation, which never
    deletes what it could not create, left two in /run/krun in each run, for good).  A
    created container's FIFO stays, however old, and so does a young one (a create in
    progress)."""
    def case(rt):
        bad = kit.bundle(tmp / f"r-{rt.name}", ["true"], rootfs,
                         process__rlimits=[{"type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1}])
        good = kit.bundle(tmp / f"ok-{rt.name}", ["sleep", "100"], rootfs)
        codes = [rt("create", "--bundle", bad, "failed-old").returncode,
                 rt("create", "--bundle", good, "created-old").returncode,
                 rt("create", "--bundle", bad, "failed-young").returncode]
        old = time.time() - 11 * 60  # (ready.STALE is ten minutes)
        for name in os.listdir(rt.root):
            if name.endswith("-old"):
                os.utime(rt.root / name, (old, old))
        codes.append(rt("create", "--bundle", good, "next").returncode)
        left = sorted(n.replace(".krun-ready-", "FIFO:") for n in os.listdir(rt.root))
        for cid in ("created-old", "next", "failed-young", "failed-old"):
            rt("delete", "--force", cid)
        return codes, left
    r = each(runtimes, case)
    assert r["crun"][0] == r["krun"][0] == [1, 0, 1, 0]
    assert r["crun"][1] == ["created-old", "next"]
    assert r["krun"][1] == ["FIFO:created-old", "FIFO:failed-young", "FIFO:next", "created-old", "next"]


@pytest.mark.parametrize("preserve", [0, 2])
def test_the_program_sees_crun_descriptors(runtimes, tmp, rootfs, preserve):
    """The descriptor km closes is one the program could have had: it never sees it,
    with and without --preserve-fds (and LISTEN_FDS, as socket activation sets it)."""
    (tmp / "three").write_text("3\n")

    def case(rt, listen):
        b = kit.bundle(tmp / f"f-{rt.name}-{listen}", ["sh", "-c", "ls /proc/self/fd; echo $LISTEN_FDS"], rootfs)
        env = {**os.environ, "D": str(tmp)}
        if listen:
            env["LISTEN_FDS"] = "1"
        with open(tmp / f"f-{rt.name}-{listen}.out", "w+") as out:
            r = subprocess.run(["sh", "-c", 'exec "$@" 3<"$D/three" 4<"$D/three" 5<"$D/three" 6</dev/null', "sh",
                                *rt.command, "create", f"--preserve-fds={preserve}", "--bundle", str(b), "f"],
                               stdout=out, stderr=out, env=env, timeout=kit.TIMEOUT)
            assert r.returncode == 0
            assert rt("start", "f").returncode == 0
            rt.wait_status("f", "stopped")
            rt("delete", "f")
            out.seek(0)
            return out.read()
    for listen in (0, 1):
        got = same(each(runtimes, lambda rt, listen=listen: case(rt, listen)), "descriptors")
        assert got.split("\n")[:-2] == [str(n) for n in range(4 + preserve + listen)], got
