"""``krun launcher``: builds krun-native, the launcher that skips Python for crun's verbs.

An engine runs its runtime several times per container (podman: create, start, delete),
and most of those runs only pass the verb on to crun; each one still paid a Python start
(docs/performance.md).  launcher.c does them natively and runs this krun for the rest.
It is optional: pip installs no compiler output, so ``krun launcher`` (``make`` runs it,
and so does deploy/kubernetes/install.sh) compiles it with the host's C compiler, baking
in this Python and this krun script; without a compiler the Python krun is registered
instead and does everything itself, only slower to start.
"""

from __future__ import annotations

import os
import sys

from kontain.oci import KrunError

NAME = "krun-native"


def default_output() -> str:
    """Beside the krun script that runs this (a venv's bin/, or where pip put it)."""
    return os.path.join(os.path.dirname(_script()), NAME)


def _script() -> str:
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not script or not os.path.isfile(script):
        raise KrunError("cannot tell where the krun script is (run `krun launcher` as installed)")
    return script


def boot(script: str) -> str:
    """The Python code krun-native runs krun with (``python -I -S -c CODE ARGS``): this
    interpreter's module path as it is now, without the script's own directory (site and
    the environment's .pth files are not run again at each start), and the krun script's
    name as argv[0] (``krun launcher`` finds its place from it); the garbage collector
    off, as bin/krun has it (a krun lives for one verb: the collections its imports set
    off cost ~0.7 ms of a create, and find nothing to free)."""
    path = [p for p in sys.path if p and os.path.abspath(p) != os.path.dirname(script)]
    return (f"import gc, sys; gc.disable(); sys.path[:] = {path!r}; sys.argv[0] = {script!r}; "
            "from kontain.oci.cli import main; sys.exit(main())")


def build(output: str | None = None) -> str:
    """Compile launcher.c into ``output`` (atomically: an engine may be running the old
    one); its path."""
    from kontain.cbuild import BuildError, c_string, compile_c

    output = os.path.abspath(output or default_output())
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")
    defines = [f"-DKRUN_PYTHON={c_string(sys.executable)}", f"-DKRUN_SCRIPT={c_string(_script())}",
               f"-DKRUN_BOOT={c_string(boot(_script()))}"]
    try:
        compile_c(source, output, defines, static=False,
                  missing="no C compiler (apt-get install gcc), so no krun-native: register krun itself",
                  hint="set CC, or register krun itself")
    except BuildError as e:
        raise KrunError(str(e), e.status) from None
    return output


def main(args: list[str]) -> int:
    """krun launcher [-o PATH]"""
    output = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--output") and i + 1 < len(args):
            output = args[i + 1]
            i += 2
        elif a.startswith("--output="):
            output = a.partition("=")[2]
            i += 1
        else:
            raise KrunError(f"launcher: unexpected argument {a} (usage: krun launcher [-o PATH])", 1)
    sys.stdout.write(build(output) + "\n")
    return 0
