"""Compiling the small native pieces kontain ships as C source (cli/kmc.c, the km front
end and server client; oci/launcher.c, krun-native) with the host's C compiler: pip
installs no compiler output, so each is built on the machine, by an explicit step."""

from __future__ import annotations

import os


class BuildError(Exception):
    """A piece that cannot be built: one line for the user, and the exit status."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def c_string(text: str) -> str:
    """``text`` as a C string literal (for a -D definition)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def compile_c(source: str, output: str, defines: list[str], *, static: bool, missing: str, hint: str) -> None:
    """Compile ``source`` into ``output``, atomically (the old one may be running); with
    ``static``, a static program when the C library allows it (it starts faster).
    BuildError when there is no compiler (``missing`` says so) or it fails (``hint``: what
    to do when it cannot be run)."""
    import shutil
    import subprocess

    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BuildError(missing, 2)
    tmp = f"{output}.{os.getpid()}.tmp"
    try:
        errors = ""
        for flags in (["-static"], []) if static else ([],):
            try:
                r = subprocess.run([cc, "-O2", "-Wall", *flags, *defines, "-o", tmp, source], capture_output=True,
                                   text=True)
            except OSError as e:
                raise BuildError(f"cannot run the C compiler {cc}: {e.strerror} ({hint})", 2) from None
            if r.returncode == 0:
                os.chmod(tmp, 0o755)
                os.rename(tmp, output)
                return
            errors = r.stderr.strip()
        raise BuildError(f"{cc} failed on {source}: {errors.splitlines()[-1:] or r.returncode}")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
