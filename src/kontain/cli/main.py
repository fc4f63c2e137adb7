"""km: run a Linux program in its own KVM virtual machine.

The options are parsed by hand: argparse costs ~4 ms to import, and km starts on every
container start.  Every failure the user can hit ends in one line on stderr,
``km: <what>: <why> (<what to do>)``, and an exit status that follows the shell's
conventions: 127 when the program is not found, 126 when it cannot be executed, the
program's own status otherwise, and the program's signal when it dies of one.
"""

from __future__ import annotations

import os
import sys

from kontain import __version__

USAGE = """\
usage: km [OPTIONS] PROGRAM [ARGS...]
       km image [-t NAME] -o IMAGE.tar PROGRAM [ARGS...]   (a minimal OCI image: see km image --help)

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
      --serve PATH       be a km server on the Unix socket PATH: with KM_SERVER=PATH in
                         its environment, km hands its program to the server, which
                         starts it without a Python start-up (see the user guide)
  -h, --help             show this help and exit
  -V, --version          show the version and exit

exit status: the program's; 126 if it cannot be executed, 127 if it is not found,
128+n (by dying of signal n, like the program) if the program is killed by signal n.
"""


class UsageError(Exception):
    pass


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
        elif name == "--poll":
            o.poll = value()
            if o.poll not in ("auto", "always", "off"):
                raise UsageError(f"--poll {o.poll}: expected auto, always or off")
        else:
            raise UsageError(f"unknown option {a} (see km --help)")
        i += 1
    if i >= len(argv):
        raise UsageError("no program to run (usage: km [OPTIONS] PROGRAM [ARGS...])")
    o.program = argv[i]
    o.args = argv[i:]
    return o


def _environment(o: Options) -> list[bytes]:
    env: dict[bytes, bytes] = {} if o.clear_env else dict(os.environb)
    if env.get(b"LC_CTYPE") == b"C.UTF-8" and _coerced_locale():
        del env[b"LC_CTYPE"]
    for item in o.env:
        k, v = item.split("=", 1)
        env[os.fsencode(k)] = os.fsencode(v)
    return [k + b"=" + v for k, v in env.items()]


def _coerced_locale() -> bool:
    """Did the interpreter's start-up set LC_CTYPE itself?  Python does (PEP 538) when
    the locale is C or POSIX, which it is wherever LANG is unset, as in most containers;
    the program must get the environment km was given, which /proc/self/environ holds."""
    try:
        with open("/proc/self/environ", "rb") as f:
            return not any(e.startswith(b"LC_CTYPE=") for e in f.read().split(b"\0"))
    except OSError:
        return False


def _say(text: str) -> None:
    os.write(2, f"km: {text}\n".encode("utf-8", "surrogateescape"))


def main(argv: list[str] | None = None, started: tuple[float, float] | None = None) -> int:
    """km's command line.  ``started``: (perf_counter, process_time) at the launcher's
    first line, so that --timings can say what the interpreter and km's imports took."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["image"]:  # (a program named image: km ./image, or km -- image)
        from kontain.oci import image

        return image.main(args[1:])
    if args[:1] == ["--serve"]:
        if len(args) != 2:
            _say("--serve needs the socket's path (km --serve PATH)")
            return 2
        from kontain.cli import server

        return server.serve(args[1])
    try:
        o = parse(args)
    except UsageError as e:
        _say(str(e))
        return 2
    if isinstance(o, int):
        return o
    return run(o, started)


def run(o: Options, started: tuple[float, float] | None = None, prepared=None, report=None) -> int:
    """Run the program ``o`` names to its end; returns km's exit status (when the
    program ends by a signal, km ends the same way instead).  ``prepared``: a Process
    whose VM is built already (a server's worker, cli/server.py).  ``report``: told how
    the program ended, before km ends the same way."""
    from kontain.errors import KmError
    from kontain.kernel.process import Config, Process
    from kontain.kvm.api import KvmError
    from kontain.loader.exec import ExecError, resolve

    try:
        prog = resolve(o.program, [os.fsencode(a) for a in o.args])
        if prepared is None:
            config = Config(memory=o.memory, strace=o.strace, core=o.core, timings=o.timings, vdso=o.vdso,
                            poll=o.poll, kvm_device=os.environ.get("KM_KVM_DEVICE", "/dev/kvm"))
            proc = Process(config, prog.path, prog.argv, _environment(o))
            proc.name = o.program
            proc.start(prog.fd, prog.head, prog.size)
        else:
            proc = prepared
            proc.take(prog.path, prog.argv, _environment(o), memory=o.memory, core=o.core, timings=o.timings,
                      vdso=o.vdso)
            proc.name = o.program
            proc.launch(prog.fd, prog.head, prog.size)
    except ExecError as e:
        _say(f"{o.program}: {e}")
        return e.status
    except KvmError as e:
        _say(str(e))
        return 1
    except KmError as e:
        _say(str(e))
        return e.status
    except MemoryError as e:
        _say(f"out of memory: {e}")
        return 1
    proc.report = report  # before the run: another thread may end the process (Process.finish)
    end = proc.run()
    if proc.config.timings:
        _report_timings(proc, started)
    proc.finish(end)
    return end.status


def fits_prepared(o: Options, environ) -> bool:
    """Can a VM built with the default configuration run ``o`` for a km whose
    environment is ``environ`` (bytes keys)?  (--strace and --no-poll change how the VM
    is built, KM_KVM_DEVICE which device builds it.)"""
    return not o.strace and o.poll == "auto" and b"KM_KVM_DEVICE" not in environ


def _report_timings(proc, started: tuple[float, float] | None) -> None:
    """Where start-up time went, each step's end relative to km's first line (or, run
    as ``python -m kontain``, to the start of Process.start)."""
    import time

    marks = proc.timings + [("exit", time.perf_counter())]
    lines = []
    if started is not None:
        t0 = started[0]
        lines.append(f"km: timings: the interpreter's start-up took {started[1] * 1e3:.2f} ms of CPU before km's "
                     "first line")
        lines.append(f"km: timings: {'imports':<8} +{(marks[0][1] - t0) * 1e3:8.2f} ms")
    else:
        t0 = marks[0][1]
    lines += [f"km: timings: {name:<8} +{(t - t0) * 1e3:8.2f} ms" for name, t in marks[1:]]
    if proc.poller is not None:
        lines.append(f"km: timings: {proc.poller.served} system calls served by polling, without an exit")
    os.write(2, ("\n".join(lines) + "\n").encode())


def entry() -> None:
    """The console entry point."""
    sys.exit(main())
