"""``km --native``: builds the native km front end (cli/kmc.c with KM_FRONT) over ``km``.

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

SCRIPT = "km-python"  # the Python km, installed beside km (pyproject.toml's script-files)


def compile_kmc(output: str, defines: list[str]) -> None:
    """Compile kmc.c into ``output`` (static when the C library allows it), atomically;
    BuildError when there is no compiler or it fails."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kmc.c")
    compile_c(source, output, defines, static=True,
              missing="no C compiler (apt-get install gcc), so no native km: km stays the Python one", hint="set CC")


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
    return 0
