"""--strace: each syscall with decoded arguments and its result, strace-style.

Only imported when tracing, so it costs nothing otherwise.  Decoding reads guest memory
through the checked accessors and never fails: a bad pointer prints as its value.
"""

from __future__ import annotations

import os

from kontain.abi import errno as E
from kontain.abi import flags as F
from kontain.abi.signals import name as signal_name
from kontain.abi.syscalls import NAMES
from kontain.errors import GuestError
from kontain.syscalls.table import ARGS

# Each call's argument kinds are its row's ``args`` in the syscall table (syscalls/table.py).
_OPEN_FLAGS = [(F.O_WRONLY, "O_WRONLY"), (F.O_RDWR, "O_RDWR"), (F.O_CREAT, "O_CREAT"), (F.O_EXCL, "O_EXCL"),
               (F.O_NOCTTY, "O_NOCTTY"), (F.O_TRUNC, "O_TRUNC"), (F.O_APPEND, "O_APPEND"),
               (F.O_NONBLOCK, "O_NONBLOCK"), (F.O_DIRECTORY, "O_DIRECTORY"), (F.O_NOFOLLOW, "O_NOFOLLOW"),
               (F.O_CLOEXEC, "O_CLOEXEC"), (F.O_PATH, "O_PATH"), (F.O_LARGEFILE, "O_LARGEFILE")]
_PROT = [(F.PROT_READ, "PROT_READ"), (F.PROT_WRITE, "PROT_WRITE"), (F.PROT_EXEC, "PROT_EXEC")]
_MAP = [(F.MAP_SHARED, "MAP_SHARED"), (F.MAP_PRIVATE, "MAP_PRIVATE"), (F.MAP_FIXED, "MAP_FIXED"),
        (F.MAP_ANONYMOUS, "MAP_ANONYMOUS"), (F.MAP_NORESERVE, "MAP_NORESERVE"), (F.MAP_POPULATE, "MAP_POPULATE"),
        (F.MAP_STACK, "MAP_STACK"), (F.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"), (F.MAP_GROWSDOWN, "MAP_GROWSDOWN"),
        (F.MAP_DROPPABLE, "MAP_DROPPABLE")]
_SHOW = 32  # bytes of a buffer to show
_NAMED = {
    "A": {v: k for k, v in vars(F).items() if k.startswith("ARCH_")},
    "I": {v: k for k, v in vars(F).items() if k.startswith(("TC", "TIOC", "FIO", "BLK")) and k != "TIOCGPGRP_"},
    "F": {v: k for k, v in vars(F).items() if k.startswith("F_") and isinstance(v, int)},
}


def _flags(value: int, table: list[tuple[int, str]], zero: str = "0") -> str:
    names = [n for bit, n in table if value & bit == bit and bit]
    rest = value & ~sum(bit for bit, _ in table)
    if rest:
        names.append(hex(rest))
    return "|".join(names) if names else zero


def _str(t, addr: int, limit: int | None = None) -> str:
    if addr == 0:
        return "NULL"
    try:
        if limit is None:
            data = t.mem.cstr(addr)
        else:
            data = t.mem.read(addr, max(0, min(limit, _SHOW)))
    except GuestError:
        return hex(addr)
    text = '"' + "".join(_char(b) for b in data) + '"'
    if limit is not None and limit > _SHOW:
        text += "..."
    return text


_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def _char(b: int) -> str:
    if b in _ESCAPES:
        return _ESCAPES[b]
    return chr(b) if 0x20 <= b < 0x7F else f"\\{b:o}"


def _arg(t, kind: str, v: int, nr_args: tuple[int, ...], res: int | None) -> str:
    u = v & 0xFFFFFFFFFFFFFFFF
    if kind in ("i", "f"):
        x = v & 0xFFFFFFFF
        return str(x - (1 << 32) if x & 0x80000000 else x)
    if kind == "d":
        return str(u - (1 << 64) if u >> 63 else u)
    if kind == "h":
        return hex(v & 0xFFFFFFFF)
    if kind == "a":
        x = v & 0xFFFFFFFF
        x = x - (1 << 32) if x & 0x80000000 else x
        return "AT_FDCWD" if x == F.AT_FDCWD else str(x)
    if kind == "u":
        return str(u)
    if kind == "s":
        return _str(t, u)
    if kind[0] == "b" and kind[1:].isdigit():
        return _str(t, u, nr_args[int(kind[1:])])
    if kind[0] == "B" and kind[1:].isdigit():
        return _str(t, u, res) if res is not None and res >= 0 else hex(u)
    if kind == "o":
        v &= 0xFFFFFFFF
        text = _flags(v, _OPEN_FLAGS, "")
        return "O_RDONLY" + ("|" + text if text else "") if not v & F.O_ACCMODE else text
    if kind == "m":
        return f"0{u & 0o7777:o}"
    if kind == "P":
        return _flags(v, _PROT, "PROT_NONE")
    if kind == "M":
        return _flags(v & 0xFFFFFFFF, _MAP)
    if kind == "S":
        return signal_name(v & 0xFFFFFFFF)
    if kind[0] == "p":
        return "NULL" if u == 0 else hex(u)
    if kind in _NAMED:
        return _NAMED[kind].get(u & 0xFFFFFFFF, hex(u))
    return hex(u)


def _sig(nr: int) -> tuple[str, list[str]]:
    if 0 <= nr < len(NAMES) and NAMES[nr]:
        return NAMES[nr], (ARGS[nr] or "x x x").split()
    return f"syscall_{nr:#x}", []


def format_call(t, nr: int, args: tuple[int, ...], res: int | None) -> str:
    """``name(arg, ...) = result``; ``res`` None: the call did not return."""
    name, kinds = _sig(nr)
    shown = ", ".join(_arg(t, k, a, args, res) for k, a in zip(kinds, args))
    if res is None:
        return f"{name}({shown}) = ?"
    if -4096 < res < 0:
        return f"{name}({shown}) = -1 {E.name(-res)} ({os.strerror(-res)})"
    value = hex(res & 0xFFFFFFFFFFFFFFFF) if name in ("mmap", "brk", "mremap", "shmat") else str(res)
    return f"{name}({shown}) = {value}"
