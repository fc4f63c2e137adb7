"""The start-up modules of km as one file of byte code, for a faster direct start.

A direct km start spends ~9 ms importing km, and a good part of that is the import
system itself: for each of ~50 modules, finding it on sys.path, opening and reading its
.pyc, checking it against the source.  ``python -m kontain.bundle`` (``make bytecode``
runs it) writes the code of the modules a start imports into one file next to the
package's byte code; ``bin/km`` calls ``install()``, which reads that file in one go,
checks every module's source is unchanged (size and mtime, as a .pyc does), and serves
those modules from it.  Each module's code is unmarshalled only when it is imported: the
km runtime's bundle (oci/runtime.py) holds every module km can import, 1.3 MB, and
unmarshalling all of it took ~5 ms of each container's start, most of it for modules a
program never reaches.  A stale or missing bundle is ignored: km imports as usual.  km
never writes the bundle itself while it runs programs: like the .pyc files beside it, it
is code, and only an explicit step writes it.
"""

from __future__ import annotations

import marshal
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FORMAT = 2  # (2: each module's code marshalled on its own, unmarshalled when it is imported)


def path() -> str:
    return os.path.join(HERE, "__pycache__", f"km-bundle.{sys.implementation.cache_tag}.bin")


def _magic() -> bytes:
    return sys.modules["_frozen_importlib_external"].MAGIC_NUMBER


class _Loader:
    """Serves the bundle's modules (a meta path finder and loader in one)."""

    def __init__(self, code: dict[str, tuple]):
        self.code = code  # module -> (file, is package, its code, marshalled)

    def find_spec(self, name: str, _path=None, _target=None):
        entry = self.code.get(name)
        if entry is None:
            return None
        spec = type(sys.__spec__)(name, self, origin=entry[0], is_package=entry[1])
        spec.has_location = True
        if entry[1]:  # modules of the package that are not bundled come from its directory
            spec.submodule_search_locations = [os.path.dirname(entry[0])]
        return spec

    def create_module(self, _spec):
        return None

    def exec_module(self, module) -> None:
        exec(marshal.loads(self.code.pop(module.__spec__.name)[2]), module.__dict__)


def install() -> bool:
    """Serve km's start-up modules from the bundle if it is there and current."""
    try:
        with open(path(), "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return False
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("magic") != _magic():
        return False
    code = {}
    for name, (rel, size, mtime, is_package, obj) in data["modules"].items():
        file = os.path.join(HERE, rel)
        try:
            st = os.stat(file)
        except OSError:
            return False
        if st.st_size != size or st.st_mtime_ns != mtime:
            return False  # edited since: import as usual
        code[name] = (file, is_package, obj)
    sys.meta_path.insert(0, _Loader(code))
    return True


def start_up_modules() -> list[str]:
    """The kontain modules a direct start of a typical program imports."""
    import kontain.cli.main  # noqa: F401
    import kontain.kernel.poll  # noqa: F401
    import kontain.kernel.process  # noqa: F401
    import kontain.kernel.sitecache  # noqa: F401  (options.spec names the rewriter's cache)
    import kontain.lifecycle  # noqa: F401
    import kontain.loader.exec  # noqa: F401
    from kontain.syscalls import fs, ioctl, mm, process, rw  # noqa: F401  (nearly every program's)

    return sorted(m for m in sys.modules if m.startswith("kontain.") and m != __name__ and m != "kontain.bundle")


def write(names: list[str]) -> str:
    """Write the bundle of ``names``; returns its path."""
    modules = {}
    for name in names:
        module = sys.modules[name]
        file = os.path.abspath(module.__file__)
        with open(file, "rb") as f:
            source = f.read()
        st = os.stat(file)
        modules[name] = (os.path.relpath(file, HERE), st.st_size, st.st_mtime_ns, hasattr(module, "__path__"),
                         marshal.dumps(compile(source, file, "exec", dont_inherit=True)))
    out = path()
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(marshal.dumps({"format": FORMAT, "magic": _magic(), "modules": modules}))
    os.replace(tmp, out)
    return out


if __name__ == "__main__":
    names = start_up_modules()
    print(f"{write(names)}: {len(names)} modules")
