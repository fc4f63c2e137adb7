"""What to run: find a program the way execvp does, and follow `#!` lines.

``resolve`` gives the ELF file to load and the argv the program will see: for a script
``#!/bin/sh -e`` run as ``km ./s.sh a``, the ELF is /bin/sh and argv is
``["/bin/sh", "-e", "./s.sh", "a"]``, as Linux's binfmt_script builds it.
"""

from __future__ import annotations

import os

from kontain.loader.load import ExecError, open_program

MAX_SCRIPT_DEPTH = 4  # Linux's BINPRM_MAX_RECURSION
SHEBANG_MAX = 256  # Linux reads this much of the #! line


class Program:
    """The ELF file to load (open, first bytes read) and the argv it gets."""

    __slots__ = ("path", "argv", "fd", "head", "size")

    def __init__(self, path: str, argv: list[bytes], fd: int, head: bytes, size: int):
        self.path, self.argv, self.fd, self.head, self.size = path, argv, fd, head, size


def search_path(name: str) -> str:
    """PATH lookup of a name without a slash (execvp's rules, PATH default as glibc's)."""
    if "/" in name:
        return name
    if not name:
        raise ExecError("no such file or directory", 2, 127)
    denied = False
    for d in os.environ.get("PATH", "/usr/local/bin:/bin:/usr/bin").split(":"):
        candidate = os.path.join(d or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = True
    if denied:
        raise ExecError("permission denied", 13, 126)
    raise ExecError("command not found", 2, 127)


def _parse_shebang(head: bytes) -> tuple[str, bytes | None]:
    line = head[2:SHEBANG_MAX].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise ExecError("empty #! line", 8)
    parts = line.split(None, 1)
    interp = parts[0]
    arg = parts[1].strip(b" \t") if len(parts) > 1 else None
    return os.fsdecode(interp), arg


def resolve(program: str, argv: list[bytes]) -> Program:
    path = search_path(program)
    argv = list(argv)
    for _ in range(MAX_SCRIPT_DEPTH + 1):
        fd, head, size = open_program(path)
        if not head.startswith(b"#!"):
            return Program(path, argv, fd, head, size)
        os.close(fd)
        interp, arg = _parse_shebang(head)
        # argv[0] is replaced by the interpreter, then its argument, then the script path
        argv = [os.fsencode(interp)] + ([arg] if arg else []) + [os.fsencode(path)] + argv[1:]
        path = interp
    raise ExecError("too many levels of #! interpreters", 40)


def resolve_exec(path: str, argv: list[bytes], window: int, opener=None, first_opener=None) -> Program:
    """execve's view of ``path`` (no PATH search; errors are errno values, as execve
    returns them): the ELF to load, its headers validated, and argv after any `#!`.
    ``first_opener``: how the file itself is opened, if not as the rest
    (execveat's AT_SYMLINK_NOFOLLOW)."""
    from kontain.loader import elf

    if not path:
        raise ExecError("no such file or directory", 2)
    argv = list(argv)
    for depth in range(MAX_SCRIPT_DEPTH + 1):
        fd, head, size = open_program(path, first_opener if depth == 0 and first_opener else opener)
        if head.startswith(b"#!"):
            os.close(fd)
            interp, arg = _parse_shebang(head)
            argv = [os.fsencode(interp)] + ([arg] if arg else []) + [os.fsencode(path)] + argv[1:]
            path = interp
            continue
        try:
            image = elf.parse(head, size, window=window)
            if image.interp is not None:
                ifd, _ihead, _isize = open_program(image.interp, opener)
                os.close(ifd)
        except elf.ElfError as e:
            os.close(fd)
            raise ExecError(str(e), 8) from None  # ENOEXEC
        except ExecError:
            os.close(fd)
            raise
        return Program(path, argv, fd, head, size)
    raise ExecError("too many levels of #! interpreters", 40)
