"""``km --native``: builds the native km front end (cli/kmc.c with KM_FRONT) over ``km``,
and (unless -o puts the front end elsewhere) the native poller (kernel/nativepoll.c)
beside its module.

A km start as the user types it pays a Python start before anything else, ~20 ms of a
hello world's ~38 ms.  The front end is the ``km`` on PATH: a small C program that sends
the program to the user's own km server when one runs (cli/userserver.py), starts that
server first when the user opted in (``km --server on``), and otherwise execs the Python
km at once (one execve more than a direct km).  pip installs no compiler output, so, as
``krun launcher`` does for krun-native, this compiles it with the host's C compiler, with
this Python and the ``km-python`` script beside ``km`` baked in, and puts it in place of
the ``km`` script (atomically: a km may be starting).  Without a compiler ``km`` stays
the Python script and works as before, only without the server.
"""

from __future__ import annotations

import os
import sys

from kontain.cbuild import BuildError, c_string, compile_c  # noqa: F401  (front.BuildError, front.c_string)
from kontain.kernel import nativepoll

SCRIPT = "km-python"  # the Python km, installed beside km (pyproject.toml's script-files)


def compile_kmc(output: str, defines: list[str]) -> None:
    """Compile kmc.c into ``output`` (static when the C library allows it), atomically;
    BuildError when there is no compiler or it fails."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kmc.c")
    compile_c(source, output, defines, static=True,
              missing="no C compiler (apt-get install gcc), so no native km: km stays the Python one", hint="set CC")


def build_poller(output: str = nativepoll.LIBRARY) -> str:
    """Compile the native poller (kernel/nativepoll.c) into ``output``, atomically (a km
    may be loading it); its path.  BuildError without a compiler."""
    compile_c(nativepoll.SOURCE, output, nativepoll.defines(), static=False,
              missing="no C compiler (apt-get install gcc), so no native poller: polled calls are answered in Python",
              hint="set CC")
    return output


def build(output: str | None = None) -> str:
    """Build the front end (beside this km, as ``km``, unless ``output``); its path."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not script or not os.path.isfile(script):
        raise BuildError("cannot tell where the km script is (run km --native as installed)")
    python_km = os.path.join(os.path.dirname(script), SCRIPT)
    if not os.path.isfile(python_km):  # (the front end execs it: never itself)
        raise BuildError(f"no {python_km} beside km (reinstall kontain: pip install kontain)")
    output = os.path.abspath(output or os.path.join(os.path.dirname(script), "km"))
    compile_kmc(output, ["-DKM_FRONT=1", f"-DKM_PYTHON={c_string(sys.executable)}",
                         f"-DKM_SCRIPT={c_string(python_km)}"])
    return output


def main(args: list[str]) -> int:
    """km --native [-o PATH]"""
    output = None
    if args[:1] in (["-o"], ["--output"]) and len(args) == 2:
        output = args[1]
    elif args:
        os.write(2, b"km: --native takes no arguments but -o PATH (km --native [-o PATH])\n")
        return 2
    try:
        path = build(output)
    except BuildError as e:
        os.write(2, f"km: --native: {e}\n".encode())
        return e.status
    sys.stdout.write(path + "\n")
    if output is None:  # (installing, not a front end built elsewhere) the native poller too
        try:  # without it km works, only slower: said, not fatal
            sys.stdout.write(build_poller() + "\n")
        except (BuildError, OSError) as e:
            os.write(2, f"km: --native: the native poller: {e} (polled calls are answered in Python)\n".encode())
    return 0
