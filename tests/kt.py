"""Test support: build the C programs under tests/programs, run things natively and
under km, compare.

Programs are built at test time, once per source change, into tests/programs/build/
with each toolchain the guest must support:

    musl        musl-gcc -static            (static, non-PIE)
    glibc       gcc -static                 (static, non-PIE)
    glibc-pie   gcc -static-pie             (static PIE: an ET_DYN with no interpreter)
    musl-pie    musl-gcc -static-pie
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "programs"
BUILD = PROGRAMS / "build"
TIMEOUT = 120

VARIANTS = {
    "musl": ["musl-gcc", "-static", "-O2"],
    "glibc": ["gcc", "-static", "-O2"],
    "glibc-pie": ["gcc", "-static-pie", "-fPIE", "-O2"],
    "musl-pie": ["musl-gcc", "-static-pie", "-fPIE", "-O2"],
}
STATIC = ("musl", "glibc")
ALL = tuple(VARIANTS)


def build_go() -> Path:
    """Build the Go test program (tests/programs/go, CGO_ENABLED=0: static) with
    Debian's golang-go, offline."""
    go = shutil.which("go")
    if not go:
        raise RuntimeError("golang-go is needed (make deps installs it)")
    out = BUILD / "go" / "gotest"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOPROXY": "off",
           "GOCACHE": str(BUILD / "go" / "cache"), "GOPATH": str(BUILD / "go" / "path")}
    r = subprocess.run([go, "build", "-o", str(out), "."], cwd=PROGRAMS / "go", env=env, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building the Go test program failed:\n{r.stderr}")
    return out


def kvm_platform() -> str:
    """"pvm" where KVM is kvm_pvm (the polling tier is on there), else "hardware"."""
    return "pvm" if os.path.exists("/sys/module/kvm_pvm") else "hardware"


def installed(name: str) -> list[str] | None:
    """A command of this package (km, krun) as the user has it: the script beside this
    Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else None


def km_command() -> list[str]:
    """km as the user has it, else ``python -m kontain`` from the source tree."""
    return installed("km") or [sys.executable, "-m", "kontain"]


KM = km_command()  # the native km front end where `make bytecode` built it (cli/front.py)
KM_PYTHON = installed("km-python") or KM  # the Python km itself


def build(name: str, variant: str = "musl", extra: tuple[str, ...] = ()) -> Path:
    """Compile tests/programs/<name>.c with ``variant``'s toolchain (cached by mtime)."""
    src = PROGRAMS / f"{name}.c"
    out = BUILD / variant / name
    if extra:  # (its own place: a build with other flags is another program, test_faults' -g crash)
        import hashlib

        out = BUILD / variant / hashlib.sha1("\0".join(extra).encode()).hexdigest()[:8] / name
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = VARIANTS[variant] + ["-Wall", "-Wno-array-bounds", "-o", str(out), str(src), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"building {name} ({variant}) failed:\n{' '.join(cmd)}\n{r.stderr}")
    return out


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


def run(argv: list[str], *, stdin: bytes | None = None, env: dict[str, str] | None = None,
        cwd: str | os.PathLike | None = None, timeout: float = TIMEOUT) -> Result:
    r = subprocess.run([str(a) for a in argv], input=stdin if stdin is not None else b"", capture_output=True,
                       env=env, cwd=cwd, timeout=timeout)
    return Result([str(a) for a in argv], r.returncode, r.stdout, r.stderr)


def km(*args, **kw) -> Result:
    return run(KM + [str(a) for a in args], **kw)


def compare(argv: list, *, km_options: tuple[str, ...] = (), stderr: bool = False, runner: list[str] | None = None,
            **kw) -> tuple[Result, Result]:
    """Run ``argv`` natively and under km (``runner``: another way to start km, such as
    the km server's client); assert the same exit status and stdout (and stderr if
    asked).  Returns both results."""
    native = run(argv, **kw)
    guest = run((runner or KM) + list(km_options) + [str(a) for a in argv], **kw)
    _same(argv, native, guest, stderr)
    return native, guest


def compare_as_user(argv: list, **kw) -> tuple[Result, Result]:
    """``compare`` for user nobody (``as_user``): the program natively, and km running
    it, each started as that user."""
    native = run(as_user(argv), **kw)
    guest = run(as_user(KM + [str(a) for a in argv]), **kw)
    _same(as_user(argv), native, guest, False)
    return native, guest


def _same(argv: list, native: Result, guest: Result, stderr: bool) -> None:
    where = " ".join(str(a) for a in argv)
    if guest.returncode != native.returncode or guest.stdout != native.stdout:
        raise AssertionError(
            f"km differs from native for: {where}\n"
            f"exit status: native {native.returncode}, km {guest.returncode}\n"
            f"{_diff(native.text, guest.text)}\nkm stderr:\n{guest.err[-3000:]}")
    if stderr and guest.stderr != native.stderr:
        raise AssertionError(f"stderr differs for: {where}\n{_diff(native.err, guest.err)}")


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick), for a test's server: a fixed
    number may be held by another test run on the same machine."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = TIMEOUT, what: str = "a condition") -> None:
    """Wait until ``predicate()`` is true: tests wait for conditions, never for a time."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def threads_of(pid: int) -> str:
    """What each thread of process ``pid`` is doing, from /proc (its name, state, where
    it waits in the kernel, its kernel stack where readable): for a failure's message
    when a km did not end."""
    lines = []
    try:
        tids = sorted(os.listdir(f"/proc/{pid}/task"), key=int)
    except OSError as e:
        return f"(no /proc/{pid}/task: {e})"
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        info = []
        for name in ("comm", "wchan", "stat", "stack"):
            try:
                with open(f"{base}/{name}") as f:
                    text = f.read().strip()
            except OSError:
                continue
            if name == "stat":
                text = "state " + text.rpartition(")")[2].split()[0]
            info.append(text.replace("\n", " | "))
        lines.append(f"  {tid}: " + "; ".join(info))
    return "\n".join(lines)


def ended(p: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM to ``p`` (a km), and wait for its end; if it does not end within
    ``timeout``, kill it and fail with what each of its threads was doing and what it
    wrote on stderr (km must end on SIGTERM, whatever the program was doing)."""
    p.terminate()
    try:
        p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        where = threads_of(p.pid)
        p.kill()
        _out, err = p.communicate()
        err = err.decode(errors="replace") if isinstance(err, bytes) else err or ""
        raise AssertionError(f"km {p.pid} ({' '.join(map(str, p.args))}) did not end within {timeout} s of "
                             f"SIGTERM; its threads:\n{where}\nits stderr:\n{err[-3000:]}") from None


def _diff(a: str, b: str) -> str:
    import difflib

    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "native", "km", lineterm="", n=1))
    return "\n".join(lines[:80]) if lines else "(stdout identical)"


# -- running as an unprivileged user ---------------------------------------------------
#
# The guest is hostile, and most attacks matter for a program run by an ordinary user
# (root could do everything they aim at anyway).  Tests that must run as one use
# ``as_user()``: user nobody, with group kvm for /dev/kvm, as on a Debian machine where
# udev gives /dev/kvm to group kvm.  The first call sets that up where the tests run
# as root (creating group kvm and giving /dev/kvm to it, mode 0660); elsewhere the
# tests fail with a message saying what is missing.

UNPRIVILEGED_UID = 65534  # nobody


def _kvm_group() -> int:
    import grp

    try:
        return grp.getgrnam("kvm").gr_gid
    except KeyError:
        if os.geteuid() != 0:
            raise RuntimeError("tests that run as an unprivileged user need group kvm (or root to create it)") from None
        subprocess.run(["groupadd", "--system", "kvm"], check=True, capture_output=True)
        return grp.getgrnam("kvm").gr_gid


def as_user(argv: list) -> list[str]:
    """``argv`` run as user nobody (group nobody, supplementary group kvm), with no
    capabilities.  Sets up /dev/kvm for group kvm the first time, when run as root."""
    import stat

    gid = _kvm_group()
    st = os.stat("/dev/kvm")
    if st.st_gid != gid or st.st_mode & 0o060 != 0o060:
        if os.geteuid() != 0:
            raise RuntimeError("/dev/kvm must be read-write for group kvm (chgrp kvm /dev/kvm; chmod g+rw /dev/kvm)")
        os.chown("/dev/kvm", -1, gid)
        os.chmod("/dev/kvm", stat.S_IMODE(st.st_mode) | 0o060)
    if os.geteuid() != 0 and os.geteuid() != UNPRIVILEGED_UID:
        raise RuntimeError("running as user nobody needs the tests to run as root")
    if os.geteuid() == 0:
        _let_nobody_through(ROOT)  # (km and its venv are in the checkout, maybe below a 0700 directory)
        _let_nobody_through(Path(os.path.realpath(sys.executable)).parent)  # (the venv's Python: maybe in /root)
    return ["setpriv", f"--reuid={UNPRIVILEGED_UID}", f"--regid={UNPRIVILEGED_UID}", f"--groups={gid}",
            "--inh-caps=-all", "--"] + [str(a) for a in argv]


def user_dir(tmp: Path) -> Path:
    """A scratch directory user nobody can write in (pytest's are root's, mode 0700)."""
    d = Path(tmp) / "nobody"
    d.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        os.chown(d, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        _let_nobody_through(d.parent)
    return d


def _let_nobody_through(path: Path) -> None:
    """Search permission for others on ``path`` and every directory above it (a clone in
    `mktemp -d`, or under /root, is 0700): user nobody may pass, not list."""
    for d in (path, *path.parents):
        mode = d.stat().st_mode
        if mode & 0o001 == 0:
            os.chmod(d, mode | 0o001)


# -- the system call fuzzer (tests/programs/fuzz.c) -----------------------------------------
#
# ``fuzz SEED NCALLS DIR`` issues random system calls with hostile arguments; its fate
# (exit status or death signal) depends on the seed alone.  ``fuzz_seed`` runs it as user
# nobody natively and under km, each in a scratch directory and a session of its own,
# and says everything km did wrong: an internal error or a traceback, a hang, an end
# other than the native one, processes left behind.  test_fuzz.py runs a few seeds;
# tools/fuzz.py (``make fuzz``) runs many.

FUZZ_NATIVE_TIMEOUT = 120  # the native run of 20k calls takes about a second


@dataclass
class FuzzEnd:
    """How one run of the fuzzer ended."""

    returncode: int | None  # None: it did not end within its timeout (and was killed)
    stderr: bytes
    leaked: list[int]  # processes of its session still running after it ended (killed since)
    seconds: float

    def describe(self) -> str:
        if self.returncode is None:
            return "no end (killed after its timeout)"
        if self.returncode < 0:
            import signal

            try:
                return f"killed by {signal.Signals(-self.returncode).name}"
            except ValueError:
                return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


@dataclass
class FuzzVerdict:
    seed: int
    calls: int
    native: FuzzEnd
    guest: FuzzEnd
    problems: list[str]  # what km did wrong; empty: nothing
    fuzzer_problems: list[str]  # what the fuzzer itself did wrong (its native run)
    reproduce: str


def _session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z" and int(fields[4]) == sid:
            found.append(int(entry))
    return found


def _kill_all(pids: list[int]) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_session(argv: list[str], cwd: str | os.PathLike, timeout: float) -> FuzzEnd:
    """Run ``argv`` as the leader of a new session (stdin /dev/null, stdout and stderr
    pipes); past ``timeout`` kill the whole session.  What is left of the session after
    the leader ended, it is given a few seconds, then killed and reported."""
    import time

    start = time.monotonic()
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
        returncode: int | None = p.returncode
    except subprocess.TimeoutExpired:
        _kill_all(_session_members(p.pid) + [p.pid])
        _, err = p.communicate()
        returncode = None
    seconds = time.monotonic() - start
    leaked: list[int] = []
    deadline = time.monotonic() + 5
    while True:
        left = _session_members(p.pid)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if left:
        leaked = left
        _kill_all(left)
    return FuzzEnd(returncode, err, leaked, seconds)


def _first_line(err: bytes, marker: str) -> str:
    """The first line of ``err`` with ``marker``, from km's "km:" on (the program writes
    to the same stderr, not always whole lines)."""
    for line in err.decode(errors="replace").splitlines():
        at = line.find(marker)
        if at >= 0:
            start = line.rfind("km:", 0, at)
            return line[start if start >= 0 else at:].strip()[:300]
    return ""


def fuzz_seed(seed: int, calls: int, workdir: Path, timeout: float, program: Path | None = None) -> FuzzVerdict:
    """Run the fuzzer (``program``, default: built now) for ``seed`` natively, then under
    km; ``timeout`` bounds the km run."""
    program = program or build("fuzz")
    ends = {}
    for name, runner in (("native", []), ("km", KM)):
        scratch = user_dir(workdir) / f"{name}-{seed}"
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir()
        if os.geteuid() == 0:
            os.chown(scratch, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
        argv = as_user(runner + [program, str(seed), str(calls), scratch])
        ends[name] = run_session(argv, scratch, FUZZ_NATIVE_TIMEOUT if name == "native" else timeout)
    native, guest = ends["native"], ends["km"]
    problems = []
    for marker in ("internal error", "Traceback"):
        line = _first_line(guest.stderr, marker)
        if line and not _first_line(native.stderr, marker):
            problems.append(f"km printed {marker!r}: {line}")
    if guest.returncode is None:
        problems.append(f"km hung: {guest.describe()} after {guest.seconds:.0f} s")
    elif native.returncode is not None and guest.returncode != native.returncode:
        problems.append(f"ends differ: natively {native.describe()}, under km {guest.describe()}")
    if guest.leaked:
        problems.append(f"km left {len(guest.leaked)} process(es) running after the program ended")
    fuzzer_problems = []
    if native.returncode != 0:
        fuzzer_problems.append(f"the native run ended with {native.describe()}: the fuzzer must end with 0")
    if native.leaked:
        fuzzer_problems.append(f"the native run left {len(native.leaked)} process(es) running")
    command = " ".join(as_user(KM + [program, "-t", str(seed), str(calls), "DIR"]))
    reproduce = (f"{command} 2>&1 >/dev/null | cat >trace.km  (DIR: an empty directory user nobody can write "
                 f"in; the same without km, in another one, for the native trace; -t prints every call)")
    return FuzzVerdict(seed, calls, native, guest, problems, fuzzer_problems, reproduce)
