"""CPU faults and signals end the program the way they end it natively: same signal,
and km says what happened on its last line."""

import subprocess

import pytest

from kt import KM, STATIC, build, compare, run

SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGUSR1, SIGSEGV, SIGTERM = 4, 5, 6, 7, 8, 10, 11, 15

CASES = {
    "null-write": (SIGSEGV, "SIGSEGV at 0x0 (address not mapped)"),
    "null-read": (SIGSEGV, "SIGSEGV at 0x10 (address not mapped)"),
    "wild-read": (SIGSEGV, "SIGSEGV at 0x123456789000 (address not mapped)"),
    "kernel-address": (SIGSEGV, "SIGSEGV at 0xffffffff81000000 (address not mapped)"),
    "noncanonical": (SIGSEGV, "(general protection fault)"),
    "exec-null": (SIGSEGV, "SIGSEGV at 0x0 (address not mapped)"),
    "ud2": (SIGILL, "SIGILL at 0x"),
    "hlt": (SIGSEGV, "general protection fault"),
    "int3": (SIGTRAP, "SIGTRAP at 0x"),
    "divide": (SIGFPE, "(integer divide by zero)"),
    "abort": (SIGABRT, "killed by SIGABRT"),
    "raise-term": (SIGTERM, "killed by SIGTERM"),
    "kill-usr1": (SIGUSR1, "killed by SIGUSR1"),
    "write-readonly": (SIGSEGV, "(invalid permissions)"),
    "unmapped": (SIGSEGV, "(address not mapped)"),
    "prot-none": (SIGSEGV, "(invalid permissions)"),
    "stack-overflow": (SIGSEGV, "(address not mapped)"),
}


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("how", sorted(CASES))
def test_fault(how, variant):
    sig, message = CASES[how]
    native, guest = compare([build("faults", variant), how])
    assert native.returncode == -sig
    assert message in guest.err, guest.err


@pytest.mark.parametrize("variant", STATIC)
def test_sigbus_past_end_of_file(variant, tmp):
    native, guest = compare([build("faults", variant), "sigbus", str(tmp / "f")])
    assert native.returncode == -SIGBUS
    assert "killed by SIGBUS" in guest.err


def test_ignored_signal_survives():
    native, guest = compare([build("faults"), "ignored-usr1"])
    assert guest.returncode == 3


def _gdb(program, core, *commands):
    argv = ["gdb", "-batch", "-nx"] + [a for c in commands for a in ("-ex", c)] + [str(program), str(core)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.parametrize("variant", STATIC)
def test_core_file_opens_in_gdb(variant, tmp_path):
    """km --core writes the program's core file: gdb shows the backtrace, the faulting
    instruction, and memory (a global, a 1 MiB buffer)."""
    prog = build("crash", variant, ("-g", "-O1"))
    r = run(KM + ["--core", str(prog)], cwd=tmp_path)
    assert r.returncode == -SIGSEGV
    cores = list(tmp_path.glob("core.*"))
    assert len(cores) == 1 and f"(core dumped to {cores[0].name})" in r.err, r.err
    out = _gdb(prog, cores[0], "bt", "p/x marker", "p big[100]", "p $_siginfo.si_signo")
    assert "crash_here (depth=depth@entry=0, p=0x10)" in out, out
    assert "depth=depth@entry=3" in out and "in main" in out, out
    assert "= 0x1234abcd" in out and "= 7 '\\a'" in out and "= 11" in out, out


def test_core_file_of_abort(tmp_path):
    """A signal's default action (abort's SIGABRT), not a CPU fault: the core shows where."""
    prog = build("faults", "glibc")
    r = run(KM + ["--core", str(prog), "abort"], cwd=tmp_path)
    assert r.returncode == -SIGABRT
    cores = list(tmp_path.glob("core.*"))
    assert len(cores) == 1, r.err
    out = _gdb(prog, cores[0], "bt")
    assert "abort" in out and "main" in out, out


def test_core_file_leaves_out_dontdump_memory(tmp_path):
    """Memory the program marked MADV_DONTDUMP is not in its core file (LTP's madvise08:
    km's core writer copied it)."""
    prog = build("faults", "musl")
    r = run(KM + ["--core", str(prog), "dontdump"], cwd=tmp_path)
    assert r.returncode == -SIGABRT
    cores = list(tmp_path.glob("core.*"))
    assert len(cores) == 1, r.err
    data = cores[0].read_bytes()
    assert b"DODUMPEDME" * 4 in data and b"DONTDUMPME" * 4 not in data


def _core_limit(limit):
    def set_limit():
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (limit, limit))
    return set_limit


def test_no_core_file_when_rlimit_core_is_zero(tmp_path):
    import subprocess

    r = subprocess.run(KM + [str(build("faults")), "null-read"], cwd=tmp_path, capture_output=True,
                       preexec_fn=_core_limit(0))
    assert r.returncode == -SIGSEGV and not list(tmp_path.glob("core*"))


def test_a_core_file_where_linux_writes_one(tmp_path):
    """With RLIMIT_CORE unlimited, abort() leaves a core file where core_pattern says
    (a file of the same name natively and under km; none natively when cores go to a
    program, and then none under km either), and gdb opens km's."""
    import resource
    import subprocess

    prog = build("faults", "glibc")
    dirs = {}
    for who, argv in (("native", [str(prog), "abort"]), ("km", KM + [str(prog), "abort"])):
        d = tmp_path / who
        d.mkdir()
        r = subprocess.run(argv, cwd=d, capture_output=True, preexec_fn=_core_limit(resource.RLIM_INFINITY))
        assert r.returncode == -SIGABRT, r.stderr
        dirs[who] = sorted(p.name.replace(str(r.returncode), "") for p in d.iterdir())
    native_cores = [n for n in dirs["native"] if n.startswith("core")]
    km_cores = [n for n in dirs["km"] if n.startswith("core")]
    assert len(native_cores) == len(km_cores), dirs
    if km_cores:
        out = _gdb(prog, tmp_path / "km" / next(p.name for p in (tmp_path / "km").iterdir()), "bt")
        assert "abort" in out and "main" in out, out


@pytest.mark.parametrize("variant", STATIC)
def test_sigbus_cases_and_their_addresses(variant, tmp):
    """SIGBUS past the end of a mapped file, with si_addr (which KVM does not report: km
    decodes the instruction), and madvise/mprotect on such pages; guard pages
    (MADV_GUARD_INSTALL) in anonymous memory are SIGSEGV (LTP's madvise12: km said SIGBUS)."""
    native, _ = compare([build("sigbus", variant), str(tmp / "f")])
    assert "sig=7 si_addr=+4096" in native.text


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("limit", ["infinity", "0"])
def test_parent_sees_the_core_bit(variant, limit, tmp_path):
    """A child that dumped core is seen so by its parent: WCOREDUMP in wait4's status,
    CLD_DUMPED in waitid's and in SIGCHLD's si_code (abort, SIGQUIT, SIGSEGV), and not
    for a signal without a core or under RLIMIT_CORE 0.  km writes the core itself and
    its own process dies without one, so the mark travels in the page km shares with
    its parent (kernel/fork.py)."""
    prog = build("coreparent", variant)
    with open("/proc/sys/kernel/core_pattern", "rb") as f:
        piped = f.read().startswith(b"|")
    outs = {}
    for who in ("native", "km"):
        (tmp_path / who).mkdir()
        argv = ([] if who == "native" else KM) + [str(prog), "aqstzx", limit]
        r = run(argv, cwd=tmp_path / who)
        assert r.returncode == 0, r.err
        outs[who] = r.text
    if piped:  # cores go to a program, which km does not run (docs/known-issues.md)
        assert "core=1" not in outs["km"], outs["km"]
    else:
        assert outs["km"] == outs["native"], outs
        assert ("core=1" in outs["km"]) == (limit != "0"), outs["km"]


LOOSE = ["relro", "hole", "new-ro", "file", "fork", "flip 300", "threads 3000", "touch"]


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("case", LOOSE)
def test_access_taken_away_faults_where_linux_does(case, variant):
    """mprotect and mmap that take access away leave km's memslots allowing more (loose
    slots, memory/slots.py): each forbidden access still faults with its own address
    and code, a handler that gives the access back makes it succeed, a forked child
    faults the same, a thread writing next to a page another thread flips is never
    stopped, and the text sharing a slot with the data runs on while that slot is split;
    and a forked child's first touches of its parent's memory (km registers each slot
    then: memory/slots.py ``rebind``) by instructions KVM emulates or cannot."""
    native, _guest = compare([build("loose", variant, ("-lpthread",)), *case.split()])
    assert "fault at" in native.text or "rounds" in native.text or "threads" in native.text
