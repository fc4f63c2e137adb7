"""km: run a Linux program in its own KVM virtual machine.

Every failure the user can hit ends in one line on stderr, ``km: <what>: <why> (<what
to do>)``, and an exit status that follows the shell's conventions: 127 when the
program is not found, 126 when it cannot be executed, 2 for a usage error, the
program's own status otherwise, and the program's signal when it dies of one.
"""

from __future__ import annotations

import os
import sys

from kontain import lazy
from kontain.cli import options


def _say(text: str) -> None:
    os.write(2, f"km: {text}\n".encode("utf-8", "surrogateescape"))


def main(argv: list[str] | None = None, started: tuple[float, float] | None = None) -> int:
    """km's command line.  ``started``: (perf_counter, process_time) at the launcher's
    first line, so that --timings can say what the interpreter and km's imports took."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["image"], ["--serve"], ["--server"], ["--native"], ["snapshot"], ["dump"]):
        lazy.started()  # (no program of its own runs: the garbage collector on again now)
    if args[:1] == ["image"]:  # (a program named image: km ./image, or km -- image)
        from kontain.oci import image

        return image.main(args[1:])
    if args[:1] == ["--serve"]:
        return _serve(args[1:])
    if args[:1] == ["--server"]:  # the user's own server (cli/userserver.py)
        from kontain.cli import userserver

        return userserver.main(args[1:])
    if args[:1] == ["--native"]:  # build the native front end (cli/front.py)
        from kontain.cli import front

        return front.main(args[1:])
    if args[:1] == ["resume"]:
        scale = args[1:2] == ["--scale-to-zero"]
        if len(args) != 2 + scale:
            _say("resume needs the snapshot's path (km resume [--scale-to-zero] FILE)")
            return 2
        return _resume(args[-1], started, scale_to_zero=scale)
    if args[:1] == ["snapshot"]:
        from kontain.cli import snapctl

        return snapctl.main(args[1:])
    if args[:1] == ["dump"]:  # (a program named dump: km ./dump)
        from kontain.cli import snapctl

        return snapctl.take(args[1:], dump=True)
    try:
        o = options.parse(args)
    except options.UsageError as e:
        _say(str(e))
        return e.status
    if isinstance(o, int):
        return o
    if _is_snapshot(o.program):  # km FILE: a snapshot is resumed
        if len(o.args) > 1:
            _say(f"{o.program} is a snapshot: it takes no arguments (km resume FILE)")
            return 2
        return _resume(o.program, started, timings=o.timings, image_files=o.image_files, ready_fd=o.ready_fd)
    from kontain import lifecycle

    return lifecycle.run_program(options.spec(o), started=started, ready_fd=o.ready_fd)


def _serve(args: list[str]) -> int:
    """km --serve PATH [--warm SNAPSHOT] [--idle SECONDS] [--ready FD] (--ready: for the
    front end that starts the user's server, cli/kmc.c; that server ends after
    KM_SERVER_IDLE seconds without a client, server.USER_IDLE by default)."""
    path, rest = (args[0], args[1:]) if args and not args[0].startswith("-") else (None, args)
    named = dict(zip(rest[::2], rest[1::2]))
    if path is None or len(rest) % 2 or not set(named) <= {"--warm", "--ready", "--idle"} or \
            len(named) != len(rest) // 2 or not named.get("--ready", "0").isdigit():
        _say("--serve needs the socket's path (km --serve PATH [--warm SNAPSHOT] [--idle SECONDS])")
        return 2
    from kontain.cli import server

    ready = int(named["--ready"]) if "--ready" in named else None
    idle = named.get("--idle", os.environ.get("KM_SERVER_IDLE", str(server.USER_IDLE)) if ready is not None else "0")
    if not idle.isdigit():
        _say(f"--serve: idle time {idle!r}: expected whole seconds (0: never end)")
        return 2
    return server.serve(path, warm=named.get("--warm"), ready=ready, idle=int(idle))


def _is_snapshot(program: str) -> bool:
    """Is ``program`` (as named, in the working directory or with a path) an ELF core
    file?  Those are km's snapshots or core dumps, never programs."""
    try:
        fd = os.open(program, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        head = os.read(fd, 18)
    except OSError:
        return False
    finally:
        os.close(fd)
    return len(head) >= 18 and head[:4] == b"\x7fELF" and head[16:18] == b"\x04\x00"


def _resume(path: str, started, timings: bool = False, image_files: bool = False,
            scale_to_zero: bool = False, ready_fd: int = -1) -> int:
    from kontain import lifecycle

    kvm = os.environb.get(b"KM_KVM_DEVICE")
    return lifecycle.resume(path, timings=timings, started=started, scale_to_zero=scale_to_zero,
                            kvm_device=os.fsdecode(kvm) if kvm else "/dev/kvm", image_files=image_files,
                            ready_fd=ready_fd)


def entry() -> None:
    """The console entry point."""
    sys.exit(main())
