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
    """The interpreter and its one optional argument, as Linux's binfmt_script reads the
    line: from the first SHEBANG_MAX bytes (NUL-padded past the file's end), separated by
    spaces and tabs only (a CR stays in); a NUL ends the name and the argument; a line
    the buffer does not end is cut before its last byte, and an interpreter name it may
    have cut is ENOEXEC."""
    buf = head[:SHEBANG_MAX].ljust(SHEBANG_MAX, b"\0")
    end = buf.find(b"\n")
    if end < 0:
        last = SHEBANG_MAX - 1
        first = _non_blank(buf, 2, last)
        if first is None or _terminator(buf, first, last) is None:
            raise ExecError("the #! line has no interpreter, or one too long", 8)
        end = last
    while buf[end - 1] in b" \t":
        end -= 1
    name = _non_blank(buf, 2, end)
    if name is None or name == end:
        raise ExecError("empty #! line", 8)
    sep = _terminator(buf, name, end)
    if sep == name:  # a NUL first: an empty name, which Linux's open of it refuses so
        raise ExecError("the #! line names no interpreter", 13)
    arg = None
    if sep is not None and buf[sep] != 0:
        start = _non_blank(buf, sep, end)
        arg = buf[start:end].split(b"\0", 1)[0]
    return os.fsdecode(buf[name:end if sep is None else sep]), arg


def _non_blank(buf: bytes, i: int, end: int) -> int | None:
    """The first byte in [i, end) that is neither a space nor a tab."""
    while i < end:
        if buf[i] not in b" \t":
            return i
        i += 1
    return None


def _terminator(buf: bytes, i: int, end: int) -> int | None:
    """The first space, tab or NUL in [i, end)."""
    while i < end:
        if buf[i] in b" \t\0":
            return i
        i += 1
    return None


def _script_argv(interp: str, arg: bytes | None, path: str, argv: list[bytes]) -> list[bytes]:
    """argv[0] is replaced by the interpreter, then its argument (an empty one too), then
    the script's path."""
    return [os.fsencode(interp)] + ([arg] if arg is not None else []) + [os.fsencode(path)] + argv[1:]


def resolve(program: str, argv: list[bytes]) -> Program:
    path = search_path(program)
    argv = list(argv)
    for _ in range(MAX_SCRIPT_DEPTH + 1):
        fd, head, size = open_program(path)
        if not head.startswith(b"#!"):
            return Program(path, argv, fd, head, size)
        os.close(fd)
        interp, arg = _parse_shebang(head)
        argv = _script_argv(interp, arg, path, argv)
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
            argv = _script_argv(interp, arg, path, argv)
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
