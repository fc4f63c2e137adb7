"""km: run a Linux program in its own KVM virtual machine.

Every failure the user can hit ends in one line on stderr, ``km: <what>: <why> (<what
to do>)``, and an exit status that follows the shell's conventions: 127 when the
program is not found, 126 when it cannot be executed, 2 for a usage error, the
program's own status otherwise, and the program's signal when it dies of one.
"""

from __future__ import annotations

import os
import sys

from kontain.cli import options


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
        o = options.parse(args)
    except options.UsageError as e:
        _say(str(e))
        return e.status
    if isinstance(o, int):
        return o
    from kontain import lifecycle

    return lifecycle.run_program(options.spec(o), started=started)


def entry() -> None:
    """The console entry point."""
    sys.exit(main())
