"""A process's Linux AIO contexts (syscalls/aio.py serves the calls): what km keeps of
each io_setup, and what a fork does to them."""

from __future__ import annotations

import _thread

from kontain.abi.structs import aio_ring
from kontain.errors import GuestError


class Context:
    """One io_setup: its ring in the program's memory and what km keeps of it."""

    __slots__ = ("ring", "size", "nr", "tail", "max_reqs", "waiters", "lock", "reserved")

    def __init__(self, ring: int, size: int, nr: int, max_reqs: int) -> None:
        self.ring = ring  # the ring's address: the context's id
        self.size = size  # its mapping's length
        self.nr = nr  # events the ring holds (km's trusted copy; the program may change the header's)
        self.tail = 0  # km's own: where the next completion goes
        self.max_reqs = max_reqs  # what io_setup asked for (counted against fs.aio-max-nr)
        self.waiters: set = set()  # threads in io_getevents on it
        self.lock = _thread.allocate_lock()  # the ring's tail and head, between the program's threads
        self.reserved = 0  # requests being made (their completions have a place in the ring)

    def head(self, t) -> int:
        """The program's head (it consumes completions itself too), taken modulo the ring."""
        return aio_ring.unpack(t.mem.read(self.ring, aio_ring.size))[2] % self.nr

    def queued(self, t) -> int:
        return (self.tail - self.head(t)) % self.nr


def forget_in_child(p) -> None:
    """A forked child has none of its parent's contexts, nor their rings (Linux does not
    copy them: VM_DONTCOPY)."""
    contexts, p.aio = p.aio, None
    for ctx in (contexts or {}).values():
        try:
            p.mm.munmap(ctx.ring, ctx.size)
        except GuestError:
            pass
