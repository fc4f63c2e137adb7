"""Syscall sites proven rewritable, remembered across runs (kernel/rewrite.py).

Proving a site costs its first run the decoder's load (~2.5 ms), a decode (~0.5-2 ms)
and, above all, the warm-up: no site is examined before the program has made
``--rewrite-after`` calls, each of which traps (file I/O 64 MiB: ~200 calls at ~20 us
more than a rewritten one, and the proof's stall).  The proof depends only on the
file's bytes: so km can keep it, per file, in a directory of its own, and a later run of the same
file rewrites a proven site at its fourth call (rewrite.py HOT_PROVEN), with neither the
decoder nor the wait.

A file is named by what changes whenever its bytes can have: device, inode, size,
modification and change time (the last one no user can set back).  An entry is a
`syscall`'s offset in the file and the instruction the jump replaces; before a byte
changes the rewriter checks the program's memory against it exactly as after a proof
(``Rewriter._rewrite``), so an entry that no longer holds is refused, never applied.

Where: ``DIR/sites-vN`` for ``--site-cache DIR`` or ``KM_SITE_CACHE=DIR``; a km server's
workers use the server's own directory (the socket's, 0700: cli/server.py); a direct start
has none by default, since km keeps nothing of its own where the program sees it (its
$HOME: tests/guest/test_linux_answers.py).  Kept only in a directory the user owns and no
one else may write; a program under km acts as the user anyway.  The directory is looked
up by name each time, with the
credentials km acts with then (a program that gave up root cannot write root's); a
program that changes its root (chroot) stops using it, and krun never gives one (the
container's files are the program's, not km's).  Errors are never the program's: a
cache that cannot be read or written is no cache.
"""

from __future__ import annotations

import os

VERSION = 1  # of the proof (kernel/rewrite.py ``_examine``) and this format: a new one starts afresh
MAX_FILES = 256  # files whose entries one process keeps in memory
MAX_LINES = 4096  # entries read from one file at most
MAX_INSN = 17  # the longest instruction a trampoline runs (arch/x86_64/trampoline.py MOST)


def default_directory(environ, server: str = "") -> str:
    """Where a km started with ``environ`` (bytes keys, as given) keeps proofs:
    ``KM_SITE_CACHE`` if set (empty or ``off``: none), else ``server`` (a km server's
    own directory, for its workers), else none."""
    given = environ.get(b"KM_SITE_CACHE")
    if given is None:
        return server
    d = os.fsdecode(given)
    return "" if d in ("", "off") else d


class SiteCache:
    """The proofs of one process tree's runs (a forked child shares the object)."""

    def __init__(self, directory: str) -> None:
        self.dir = os.path.join(directory, f"sites-v{VERSION}")
        self.files: dict[tuple, dict[int, bytes]] = {}  # file key -> {`syscall` offset: instruction}
        self.hits = 0  # sites rewritten from here (km --timings)
        self.kept = 0  # proofs written here

    @staticmethod
    def _name(key: tuple) -> str:
        return "-".join(f"{int(x):x}" for x in key)

    def _ours(self, fd: int) -> bool:
        """Is ``fd`` (the directory or an entry) the acting user's own, writable by no
        one else?  Anything else may have been put there by another user."""
        st = os.fstat(fd)
        return st.st_uid == os.geteuid() and not st.st_mode & 0o022

    def _open_dir(self, create: bool) -> int:
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.dir, flags)
        except FileNotFoundError:
            if not create:
                return -1
            os.makedirs(self.dir, 0o700, exist_ok=True)
            fd = os.open(self.dir, flags)
        if not self._ours(fd):
            os.close(fd)
            return -1
        return fd

    def proof(self, key: tuple, offset: int) -> bytes | None:
        """The instruction before the `syscall` at ``offset`` of the file ``key`` that an
        earlier run proved a jump may replace, if one did."""
        entries = self.files.get(key)
        if entries is None:
            entries = self._read(key)
        return entries.get(offset)

    def _read(self, key: tuple) -> dict[int, bytes]:
        entries: dict[int, bytes] = {}
        if len(self.files) >= MAX_FILES:
            self.files.clear()
        self.files[key] = entries
        try:
            d = self._open_dir(False)
            if d < 0:
                return entries
            try:
                fd = os.open(self._name(key), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=d)
            finally:
                os.close(d)
            try:
                data = os.read(fd, MAX_LINES * 48) if self._ours(fd) else b""
            finally:
                os.close(fd)
        except (OSError, ValueError):
            return entries
        for line in data.split(b"\n")[:MAX_LINES]:
            parts = line.split()
            if len(parts) != 2:
                continue
            try:
                offset, insn = int(parts[0], 16), bytes.fromhex(parts[1].decode("ascii"))
            except ValueError:
                continue
            if 0 <= offset and 1 <= len(insn) <= MAX_INSN:
                entries[offset] = insn
        return entries

    def keep(self, key: tuple, offset: int, insn: bytes) -> None:
        """Remember a proof: one line appended (lines of concurrent runs do not mix)."""
        entries = self.files.get(key)
        if entries is None:
            entries = self._read(key)
        if entries.get(offset) == insn:
            return
        entries[offset] = insn
        try:
            d = self._open_dir(True)
            if d < 0:
                return
            try:
                fd = os.open(self._name(key), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC |
                             os.O_NONBLOCK, 0o600, dir_fd=d)
            finally:
                os.close(d)
            try:
                if self._ours(fd):
                    os.write(fd, b"%x %s\n" % (offset, insn.hex().encode()))
                    self.kept += 1
            finally:
                os.close(fd)
        except (OSError, ValueError):
            pass
