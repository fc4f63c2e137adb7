"""The km runtime: km made whole, to be mounted read-only into every container.

A container's root file system may hold no Python, no libc, or a libc other than the
host's (a scratch image with one static binary, Alpine, Debian slim), so km cannot use
anything of it.  krun therefore assembles, once, a directory with everything km needs,
taken from the Python that runs krun itself (DESIGN.md 2.9):

    lib/ld-linux-x86-64.so.2     the interpreter's own dynamic loader (whatever its name)
    lib/*.so*                    the shared libraries of the interpreter and its extension modules
    bin/python3                  the interpreter
    lib/pythonX.Y/               the standard library modules km's code can import (the
                                 closure of its imports, found statically, so that nothing
                                 km imports late is missing), lib-dynload/, kontain/, and
                                 the dependencies km imports (iced_x86/, when installed)
    km                           the launcher (kontain/oci/entry.py)
    LOADER                       the loader's file name in lib/

and the container's process becomes ``LOADER --library-path LIB PYTHON -I -S KM ...``:
the loader is named explicitly, so the interpreter's PT_INTERP need not exist in the
container, and ``--library-path`` makes the loader ignore the container's
LD_LIBRARY_PATH and libraries.  ``-I -S``: no PYTHON* variable of the container's
environment, no site-packages, no current directory on the path.

The directory is keyed by what it is made of (the interpreter, and every file of the
kontain package by size and modification time), so upgrading km makes a new one, and
containers running keep the one they were started with.  It is built in a temporary
directory and renamed into place, so two krun starting at once never see half of one.
"""

from __future__ import annotations

import os
import sys
import time

from kontain.oci import KrunError

# a runtime's USED file is touched when a krun uses it and it is older than TOUCH
# (seconds): oci/prune.py removes runtimes unused for a day, and never the one it runs
USED = "USED"
TOUCH = 3600
FORMAT = 3  # (2: no cache/ directory, km keeps no host cache; 3: the LOADER file)
# standard library packages km's code never reaches at run time, which the static
# search would otherwise pull in through modules that mention them
_EXCLUDE = ["tkinter", "test", "unittest", "pydoc", "doctest", "idlelib", "ensurepip", "lib2to3", "distutils",
            "pydoc_data", "turtledemo", "venv"]
# packages of km's own dependencies (pyproject.toml) it imports at run time, copied beside
# the standard library when installed: iced-x86 gives a SIGBUS its address (arch/x86_64/decode.py)
_DEPENDENCIES = ["iced_x86"]


class Runtime:
    """An assembled km runtime at ``root`` (a host directory)."""

    def __init__(self, root: str, loader: str):
        self.root = root
        self.loader = loader  # the loader's file name in lib/

    def command(self, dest: str) -> list[str]:
        """The argument list that starts km in a container where this runtime is mounted
        at ``dest`` (km's own options and the program follow)."""
        return [f"{dest}/lib/{self.loader}", "--library-path", f"{dest}/lib", f"{dest}/bin/python3", "-I", "-S",
                f"{dest}/km"]


def default_directory() -> str:
    """Where runtimes are kept: /var/cache/kontain for root, the user's cache otherwise."""
    if os.environ.get("KONTAIN_CACHE"):
        return os.environ["KONTAIN_CACHE"]
    if os.geteuid() == 0:
        return "/var/cache/kontain"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kontain")


def _package() -> str:
    import kontain

    return os.path.dirname(os.path.abspath(kontain.__file__))


def _interpreter() -> str:
    return os.path.realpath(sys.executable)


def key() -> str:
    """What the runtime is made of: the interpreter and the kontain package's files."""
    h = _sha256(f"{FORMAT}\0{_interpreter()}\0".encode())
    st = os.stat(_interpreter())
    h.update(f"{st.st_size}\0{st.st_mtime_ns}\0".encode())
    pkg = _package()
    skip = len(pkg) + 1  # (each file's path relative to pkg; os.path.relpath cost ~2 ms of every create)
    parts = []
    for d, dirs, files in os.walk(pkg):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for f in sorted(files):
            if f.endswith(".py"):
                p = f"{d}/{f}"
                st = os.stat(p)
                parts.append(f"{p[skip:]}\0{st.st_size}\0{st.st_mtime_ns}\0")
    h.update("".join(parts).encode())
    for name, where in _dependencies().items():
        for f in sorted(os.listdir(where)):
            st = os.stat(os.path.join(where, f))
            h.update(f"{name}/{f}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def _sha256(data: bytes):
    """hashlib.sha256, from the built-in module when there is one: hashlib loads
    OpenSSL, ~3 ms of every ``krun create``."""
    for name in ("_sha2", "_sha256"):  # (3.12 and later, 3.11)
        try:
            return __import__(name).sha256(data)
        except (ImportError, AttributeError):
            pass
    import hashlib

    return hashlib.sha256(data)


def _dependencies() -> dict[str, str]:
    """{package: its directory} of the dependencies installed with this km (a missing one
    is left out: km runs without it, as decode.py says)."""
    from kontain.lazy import package_dir

    found = {name: package_dir(name) for name in _DEPENDENCIES}
    return {name: where for name, where in found.items() if where is not None}


def ensure(directory: str | None = None) -> Runtime:
    """The runtime for this km, assembled if it is not there yet."""
    directory = directory or default_directory()
    root = os.path.join(directory, f"runtime-{key()}")
    try:
        with open(os.path.join(root, "LOADER")) as f:  # (there already: krun runs on every container start)
            runtime = Runtime(root, f.read().strip())
        if _recent(root) or _touch(directory, root):
            return runtime
    except OSError:
        pass
    from kontain.oci import elfdeps

    try:
        loader = elfdeps.interpreter(_interpreter())
    except elfdeps.DepsError as e:
        raise KrunError(f"the Python that runs krun: {e}") from None
    if loader is None:
        raise KrunError(f"{_interpreter()} is a static program: krun needs a dynamically linked Python")
    runtime = Runtime(root, os.path.basename(loader))
    if not os.path.isdir(root):
        _assemble(runtime, loader, directory)
    return runtime


def _recent(root: str) -> bool:
    """Whether the runtime's USED file was touched within TOUCH: one stat, no write, on
    every create."""
    try:
        return time.time() - os.stat(os.path.join(root, USED)).st_mtime < TOUCH
    except OSError:
        return False


def _touch(directory: str, root: str) -> bool:
    """Mark the runtime at ``root`` used now (oci/prune.py), under the cache's shared lock
    so that a prune cannot take it between this check and the touch; False when it is
    gone (a prune renamed it away: the caller assembles it again)."""
    from kontain.oci import prune

    try:
        fd = prune.lock(directory, exclusive=False)
    except OSError:
        fd = None  # (a cache not ours to write: whoever owns it prunes it)
    try:
        if not os.path.isfile(os.path.join(root, "LOADER")):
            return False
        try:
            os.close(os.open(os.path.join(root, USED), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            os.utime(os.path.join(root, USED))
        except OSError:
            pass
        return True
    finally:
        if fd is not None:
            os.close(fd)


def _assemble(runtime: Runtime, loader: str, directory: str) -> None:
    import shutil
    import tempfile

    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".runtime-", dir=directory)
    except OSError as e:
        raise KrunError(f"cannot create the km runtime in {directory}: {e.strerror} "
                            "(set KONTAIN_CACHE to a writable directory)") from None
    try:
        _build(tmp, loader)
        _check(Runtime(tmp, runtime.loader))
        for d, _dirs, files in os.walk(tmp):
            os.chmod(d, 0o755)
            for f in files:
                p = os.path.join(d, f)
                os.chmod(p, 0o755 if os.access(p, os.X_OK) else 0o644)
        with open(os.path.join(tmp, USED), "w"):
            pass
        try:
            os.rename(tmp, runtime.root)
        except OSError:
            if not os.path.isdir(runtime.root):  # (else another krun was first)
                raise
        else:
            from kontain.oci import prune

            prune.in_background(directory)  # (a new runtime: km was upgraded, the old ones may go)
    except OSError as e:
        raise KrunError(f"cannot assemble the km runtime in {directory}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build(root: str, loader: str) -> None:
    """Copy the interpreter, its loader and libraries, the modules km can import, and
    the kontain package into ``root``; compile them."""
    import compileall
    import shutil
    import sysconfig

    from kontain.oci import elfdeps

    stdlib = sysconfig.get_paths()["stdlib"]
    pylib = os.path.join(root, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(pylib, "lib-dynload"))
    shutil.copy2(_interpreter(), os.path.join(root, "bin", "python3"))
    extensions = []
    for file in _stdlib_modules().values():
        if os.path.commonpath([file, stdlib]) != stdlib:
            continue  # (modulefinder found it elsewhere: not the standard library's)
        rel = os.path.relpath(file, stdlib)
        if rel.startswith(("site-packages", "dist-packages")):
            continue
        if rel.endswith(".so"):
            extensions.append(file)
            rel = os.path.join("lib-dynload", os.path.basename(file))
        os.makedirs(os.path.dirname(os.path.join(pylib, rel)), exist_ok=True)
        shutil.copy2(file, os.path.join(pylib, rel))
    encodings = os.path.join(stdlib, "encodings")  # (the codec of any locale the container sets)
    for f in os.listdir(encodings):
        if f.endswith(".py"):
            shutil.copy2(os.path.join(encodings, f), os.path.join(pylib, "encodings", f))
    shutil.copytree(_package(), os.path.join(pylib, "kontain"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.c", "*.S", "*.egg-info"))
    for name, where in _dependencies().items():
        shutil.copytree(where, os.path.join(pylib, name), ignore=shutil.ignore_patterns("__pycache__", "*.pyi"))
        extensions += [os.path.join(where, f) for f in os.listdir(where) if f.endswith(".so")]
    libs = os.path.join(root, "lib")
    shutil.copyfile(loader, os.path.join(libs, os.path.basename(loader)))
    os.chmod(os.path.join(libs, os.path.basename(loader)), 0o755)
    try:
        for name, path in elfdeps.closure([_interpreter(), *extensions], loader).items():
            shutil.copyfile(path, os.path.join(libs, name))
    except elfdeps.DepsError as e:
        raise OSError(str(e)) from None
    with open(os.path.join(root, "LOADER"), "w") as f:
        f.write(os.path.basename(loader) + "\n")
    with open(os.path.join(root, "km"), "w") as f:
        f.write("# km in a container (kontain/oci/runtime.py; krun mounts this directory)\n"
                "from kontain.oci import entry\n\nentry.main()\n")
    if not compileall.compile_dir(pylib, quiet=2, workers=1):
        raise OSError("compiling the runtime's modules failed")


def _stdlib_modules() -> dict[str, str]:
    """{module: file} of every module the kontain package can import, transitively
    (imports inside functions included: km imports some at first use)."""
    import modulefinder
    import pkgutil

    import kontain

    finder = modulefinder.ModuleFinder(excludes=_EXCLUDE)
    for m in pkgutil.walk_packages(kontain.__path__, "kontain."):
        finder.import_hook(m.name)
    finder.import_hook("encodings")
    for name in _dependencies():
        finder.import_hook(name)
    return {name: m.__file__ for name, m in finder.modules.items()
            if m.__file__ and not name.startswith("kontain")}


def _check(runtime: Runtime) -> None:
    """Run the runtime's own interpreter on it, as a container will (every lazily
    imported module of km included), and write km's start-up bundle (kontain/bundle.py)."""
    import subprocess

    code = ("import kontain.lazy, kontain.bundle as b; kontain.lazy.preload(); import kontain.oci.entry; "
            + "".join(f"import {name}; " for name in _dependencies()) + "b.write(b.start_up_modules())")
    argv = runtime.command(runtime.root)[:-1] + ["-c", code]
    r = subprocess.run(argv, capture_output=True, text=True, env={}, timeout=300)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise OSError(f"the assembled interpreter does not run km: {last}")
