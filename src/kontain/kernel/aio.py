"""A process's Linux AIO contexts (syscalls/aio.py serves the calls): what km keeps of
each io_setup, and what a fork, an mremap of a ring and a snapshot do to them."""

from __future__ import annotations

import _thread

from kontain.abi.structs import aio_ring, io_event
from kontain.errors import GuestError

PAGE = 4096


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


def moved(p, old: int, new: int, old_len: int, new_len: int) -> None:
    """mremap moved [old, old+old_len) to ``new``: a ring moved whole takes its context
    along (Linux's aio_ring_mremap: the context's id is the ring's new address)."""
    ctx = (p.aio or {}).get(old)
    if ctx is not None and new != old and old_len == new_len == ctx.size:
        del p.aio[old]
        ctx.ring = new
        p.aio[new] = ctx


def describe(p) -> list | None:
    """What a snapshot keeps of the contexts: their rings are the program's memory, and
    no request is ever in flight (syscalls/aio.py)."""
    if not p.aio:
        return None
    return [(c.ring, c.size, c.nr, c.tail, c.max_reqs) for c in p.aio.values()]


def restore(p, saved) -> str:
    """The contexts ``describe`` kept (their shape checked: kernel/resume.py), each over
    its ring in the resumed memory; a problem (as one line) or ""."""
    contexts = {}
    for ring, size, nr, tail, max_reqs in saved or ():
        v = p.mm.find(ring)
        if v is None or v.start != ring or v.end - ring < size or size % PAGE or \
                not tail < nr <= (size - aio_ring.size) // io_event.size:
            return f"an AIO context ({ring:#x}) without its ring"
        ctx = Context(ring, size, nr, max_reqs)
        ctx.tail = tail
        contexts[ring] = ctx
    p.aio = contexts
    return ""
