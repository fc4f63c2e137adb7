"""km's options, parsed by hand: argparse costs ~4 ms to import, and km starts on every
container start.  ``spec`` turns them into what lifecycle.run_program runs (kontain/spec.py)."""

from __future__ import annotations

import os
import sys

from kontain import __version__
from kontain.errors import KmError
from kontain.spec import Spec

USAGE = """\
usage: km [OPTIONS] PROGRAM [ARGS...]
       km image [-t NAME] -o IMAGE.tar PROGRAM [ARGS...]   (a minimal OCI image: see km image --help)
       km FILE | km resume FILE          resume a snapshot
       km snapshot PID [-o FILE] [--leave-running] | km snapshot --info FILE
       km dump PID [-o FILE]              the core file of a running program (every thread)

Run PROGRAM, an unmodified x86-64 Linux executable, in its own KVM virtual machine.
PROGRAM is looked up in PATH when it has no slash.  stdin, stdout, stderr, the working
directory and the environment are km's; km's exit status is the program's.

options:
  -e, --env NAME=VALUE   set NAME in the program's environment (repeatable)
      --env-file FILE    read NAME=VALUE lines from FILE (# starts a comment)
      --clear-env        start the program with an empty environment
      --memory SIZE      cap the memory the program can map (e.g. 512M, 2G)
      --strace           print every system call, decoded, on stderr
      --core             write the program's core file (core.PID) if it dies of SIGSEGV & co.
      --timings          print where start-up time went, on stderr
      --no-vdso          do not share the host's vDSO (every clock_gettime is a syscall)
      --poll MODE        the polling tier (PVM only): auto (the default: on for threads
                         that make many calls it can serve), always (from the first
                         call, never backing off: for tests and measurements), off
      --no-poll          the same as --poll off: every system call exits to the monitor
      --poller KIND      who answers polled calls: native (the default: ids, fstat, and
                         reads, writes and seeks of regular files in C, the rest in
                         Python; built by km --native) or python (all in Python)
      --gdb PORT         debug the program with gdb: km listens on 127.0.0.1:PORT and
                         the program waits before its first instruction for
                         gdb -ex 'target remote :PORT' (see docs/debugging.md)
      --gdb-listen PORT  the same, but the program runs at once and gdb may attach
                         (and detach) whenever it likes
      --gdb-fork-wait    with --gdb or --gdb-listen: a child the program forks waits,
                         before its first instruction, for a gdb of its own on a
                         free port (km prints it)
      --rewrite          (PVM only, the default) rewrite the program's `syscall` sites
                         that can be proven safe into jumps to km's stub, so that their
                         calls no longer trap (see the user guide)
      --no-rewrite       leave the program's code as it is
      --rewrite-after N  rewrite sites only once the program has made N calls that
                         trapped (default 200: short programs do not pay for it); a site
                         an earlier run proved is rewritten at its fourth call
      --site-cache DIR   keep the proofs of rewritable sites in DIR/sites-v1 (default:
                         $KM_SITE_CACHE; a km server's own directory; else none)
      --no-site-cache    neither read nor keep proofs of earlier runs
      --pause-check N    pause the running program N times at arbitrary moments, reading
                         every thread's registers, and resume it (a check of what
                         debuggers and snapshots rely on; says how it went, on stderr)
      --snapshot-on-listen FILE
                         snapshot the program to FILE when it first listens on a
                         socket (a server, warm), then end it (resume: km FILE)
      --leave-running    with --snapshot-on-listen: the program goes on after it
      --image-files      resuming a snapshot: the files it re-opens or maps are copies
                         (a container image's, made by km image), checked by size and
                         modification time rather than inode (krun passes it)
      --ready-fd N       close descriptor N once the program has started up: all
                         its threads wait in system calls, it ended, or ran 100 ms
                         (krun passes it: `krun start` returns then)
      --rlimit AS=SOFT:HARD
                         the program's RLIMIT_AS (or DATA) instead of km's own (bytes, or
                         unlimited): km holds the program to it (krun passes it)
      --deny NAME=ERRNO  the program's NAME system calls fail with ERRNO (a number), or
                         with NAME=kill end it by SIGSYS: a container's seccomp verdict
                         on a call km itself needs from the host (krun passes it)
      --serve PATH       be a km server on the Unix socket PATH: with KM_SERVER=PATH in
                         its environment, km hands its program to the server, which
                         starts it without a Python start-up (see the user guide)
      --serve PATH --warm SNAPSHOT
                         the same, with workers that have SNAPSHOT's memory mapped
                         before a client comes: km SNAPSHOT resumes fastest (other
                         programs start directly)
      --serve PATH --idle SECONDS
                         the same, ending by itself after SECONDS without a client
  km resume [--scale-to-zero] FILE
                         resume a snapshot; --scale-to-zero: its listening sockets
                         first, the program when the first connection comes
  -h, --help             show this help and exit
  -V, --version          show the version and exit

exit status: the program's; 126 if it cannot be executed, 127 if it is not found,
128+n (by dying of signal n, like the program) if the program is killed by signal n.
"""


class UsageError(KmError):
    """A command line km cannot run (status 2)."""

    def __init__(self, message: str):
        super().__init__(message, 2)


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = 1
    if t and t[-1] in units:
        mult = units[t[-1]]
        t = t[:-1]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise UsageError(f"bad size {text!r} (use a number with K, M or G)") from None
    if value <= 0:
        raise UsageError(f"bad size {text!r}")
    return value


def _env_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise UsageError(f"--env-file {path}: {e.strerror}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise UsageError(f"--env-file {path}:{n}: expected NAME=VALUE")
        out.append(line)
    return out


REWRITE_DEFAULT = True  # syscall sites rewritten (kernel/rewrite.py) unless --no-rewrite
REWRITE_AFTER = 200  # calls (trapped or polled) before any site is rewritten (kernel/rewrite.py's WARMUP)


class Options:
    def __init__(self) -> None:
        self.env: list[str] = []
        self.clear_env = False
        self.memory: int | None = None
        self.strace = False
        self.core = False
        self.timings = False
        self.vdso = True
        self.poll = "auto"  # the polling tier: auto, always, off
        self.poller = "native"  # who answers polled calls: native, python
        self.pause_check = 0
        self.gdb = 0
        self.gdb_wait = True
        self.gdb_fork_wait = False
        self.rewrite = REWRITE_DEFAULT
        self.rewrite_after = REWRITE_AFTER
        self.site_cache: str | None = None  # --site-cache DIR, "" for --no-site-cache; None: the default
        self.snapshot_on_listen = ""
        self.leave_running = False
        self.image_files = False
        self.ready_fd = -1  # --ready-fd: closed once the program has started up (krun start waits for it)
        self.deny: list[tuple[int, int]] = []  # --deny: (syscall number, errno; 0: SIGSYS)
        self.rlimits: dict[int, tuple[int, int]] = {}  # --rlimit: the program's limits instead of km's
        self.program = ""
        self.args: list[str] = []


def parse(argv: list[str], out=None) -> Options | int:
    """Options, or an exit status when there is nothing to run (--help, written to
    ``out``, by default stdout)."""
    o = Options()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break

        def value(a: str = a) -> str:
            nonlocal i
            if "=" in a and a.startswith("--"):
                return a.split("=", 1)[1]
            if i + 1 >= len(argv):
                raise UsageError(f"option {a} needs a value")
            i += 1
            return argv[i]

        name = a.split("=", 1)[0] if a.startswith("--") else a
        if name in ("-h", "--help"):
            (out or sys.stdout).write(USAGE)
            return 0
        if name in ("-V", "--version"):
            (out or sys.stdout).write(f"km (kontain) {__version__}\n")
            return 0
        if name in ("-e", "--env"):
            v = value()
            if "=" not in v:
                raise UsageError(f"{a} {v}: expected NAME=VALUE")
            o.env.append(v)
        elif name == "--env-file":
            o.env.extend(_env_file(value()))
        elif name == "--clear-env":
            o.clear_env = True
        elif name == "--memory":
            o.memory = _size(value())
        elif name == "--strace":
            o.strace = True
        elif name == "--core":
            o.core = True
        elif name == "--timings":
            o.timings = True
        elif name == "--no-vdso":
            o.vdso = False
        elif name == "--no-poll":
            o.poll = "off"
        elif name == "--rewrite":
            o.rewrite = True
        elif name == "--no-rewrite":
            o.rewrite = False
        elif name == "--rewrite-after":
            v = value()
            if not v.isdigit() or len(v) > 12:
                raise UsageError(f"--rewrite-after {v}: expected a number of calls")
            o.rewrite_after = int(v)
        elif name == "--site-cache":
            o.site_cache = value()
        elif name == "--no-site-cache":
            o.site_cache = ""
        elif name == "--pause-check":
            v = value()
            if not v.isdigit():
                raise UsageError(f"--pause-check {v}: expected a number of pauses")
            o.pause_check = int(v)
        elif name == "--snapshot-on-listen":
            o.snapshot_on_listen = os.path.abspath(value())
        elif name == "--leave-running":
            o.leave_running = True
        elif name == "--image-files":
            o.image_files = True
        elif name == "--ready-fd":
            v = value()
            if not v.isdigit() or not 2 < int(v) < 1 << 20:
                raise UsageError(f"--ready-fd {v}: expected a descriptor number above 2")
            o.ready_fd = int(v)
        elif name == "--deny":
            o.deny.append(_denial(value()))
        elif name == "--rlimit":
            o.rlimits.update([_rlimit(value())])
        elif name in ("--gdb", "--gdb-listen"):
            v = value()
            if not v.isdigit() or not 0 <= int(v) < 65536:
                raise UsageError(f"{name} {v}: expected a TCP port (1-65535, or 0 for any free one)")
            o.gdb, o.gdb_wait = int(v) or -1, name == "--gdb"  # (-1: any free port)
        elif name == "--gdb-fork-wait":
            o.gdb_fork_wait = True
        elif name == "--poller":
            o.poller = value()
            if o.poller not in ("native", "python"):
                raise UsageError(f"--poller {o.poller}: expected native or python")
        elif name == "--poll":
            o.poll = value()
            if o.poll not in ("auto", "always", "off"):
                raise UsageError(f"--poll {o.poll}: expected auto, always or off")
        else:
            raise UsageError(f"unknown option {a} (see km --help)")
        i += 1
    if o.gdb_fork_wait and not o.gdb:
        raise UsageError("--gdb-fork-wait needs --gdb PORT or --gdb-listen PORT")
    if i >= len(argv):
        raise UsageError("no program to run (usage: km [OPTIONS] PROGRAM [ARGS...])")
    o.program = argv[i]
    o.args = argv[i:]
    return o


def _denial(text: str) -> tuple[int, int]:
    """--deny NAME=ERRNO or NAME=kill: (the call's number, the errno; 0 for kill)."""
    from kontain.abi.syscalls import NAMES

    call, _, verdict = text.partition("=")
    if call not in NAMES or not (verdict == "kill" or verdict.isdigit() and 0 < int(verdict) < 4096):
        raise UsageError(f"--deny {text}: expected NAME=ERRNO or NAME=kill, NAME a system call")
    return NAMES.index(call), 0 if verdict == "kill" else int(verdict)


RLIMITS = {"AS": 9, "DATA": 2}  # the limits km keeps for the program and --rlimit sets (syscalls/sysinfo.py)


def _rlimit(text: str) -> tuple[int, tuple[int, int]]:
    """--rlimit AS=SOFT:HARD (bytes, or unlimited): (resource, (soft, hard))."""
    name, _, values = text.partition("=")
    soft, _, hard = values.partition(":")
    try:
        limits = [(1 << 64) - 1 if v == "unlimited" else int(v) for v in (soft, hard)]
    except ValueError:
        limits = []
    if name not in RLIMITS or len(limits) != 2 or not 0 <= limits[0] <= limits[1] < 1 << 64:
        raise UsageError(f"--rlimit {text}: expected AS=SOFT:HARD or DATA=SOFT:HARD (bytes, or unlimited)")
    return RLIMITS[name], (limits[0], limits[1])


def _environment(o: Options, environ) -> list[bytes]:
    env: dict[bytes, bytes] = {} if o.clear_env else dict(environ)
    for item in o.env:
        k, v = item.split("=", 1)
        env[os.fsencode(k)] = os.fsencode(v)
    return [k + b"=" + v for k, v in env.items()]


def given_environ() -> dict[bytes, bytes]:
    """This process's environment as it was given: os.environb less the LC_CTYPE the
    interpreter's start-up may have added itself (PEP 538 coerces the C and POSIX locales,
    which is what most containers have, LANG unset).  The program must get the environment
    km was given, and /proc/self/environ holds that one."""
    env = dict(os.environb)
    if env.get(b"LC_CTYPE") == b"C.UTF-8" and _coerced_locale():
        del env[b"LC_CTYPE"]
    return env


def _coerced_locale() -> bool:
    try:
        with open("/proc/self/environ", "rb") as f:
            return not any(e.startswith(b"LC_CTYPE=") for e in f.read().split(b"\0"))
    except OSError:
        return False


def spec(o: Options, environ=None, server: str = "") -> Spec:
    """What to run: the options ``o`` in an environment ``environ`` (by default this
    process's, as it was given: ``given_environ``); ``server``: a km server's directory,
    for its workers (the default place of the site cache)."""
    environ = given_environ() if environ is None else environ
    kvm = environ.get(b"KM_KVM_DEVICE")
    return Spec(o.program, [os.fsencode(a) for a in o.args], _environment(o, environ), memory=o.memory, core=o.core,
                timings=o.timings, vdso=o.vdso, poll="off" if o.gdb else o.poll, strace=o.strace,
                pause_check=o.pause_check, gdb=o.gdb, gdb_wait=o.gdb_wait, gdb_fork_wait=o.gdb_fork_wait,
                rewrite=o.rewrite and not o.gdb, rewrite_after=o.rewrite_after,
                snapshot_on_listen=o.snapshot_on_listen, leave_running=o.leave_running, deny=tuple(o.deny),
                rlimits=o.rlimits, poller=o.poller, kvm_device=os.fsdecode(kvm) if kvm else "/dev/kvm",
                site_cache=_site_cache(o, environ, server))


def _site_cache(o: Options, environ, server: str) -> str:
    """Where the rewriter keeps proofs (kernel/sitecache.py): --site-cache, else the default."""
    if o.site_cache is not None:
        return o.site_cache
    from kontain.kernel.sitecache import default_directory

    return default_directory(environ, server)
