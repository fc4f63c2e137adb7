"""Linux AIO: io_setup, io_submit, io_getevents, io_pgetevents, io_cancel, io_destroy.

km serves each request when it is submitted, as Linux itself does for a file not opened
with O_DIRECT (its read or write runs inside io_submit, which waits for a pipe's data):
io_submit makes the read, write or fsync on the host and queues the completion; nothing
is ever in flight.  So io_getevents only takes completions, or waits for the timeout or
a signal (or for another thread's io_submit, which wakes the threads waiting on that
context), and io_cancel finds nothing to cancel (EINVAL, as Linux for a request that has
completed).  Not served: IOCB_CMD_POLL (EINVAL: it would complete only later).

A context is what Linux makes of it: a ring in the program's memory (an "[aio]" mapping
whose address is the context's id), whose header and events are Linux's, so that libaio
reads completions from user space as it does on Linux.  The program may write the ring
(it advances ``head`` as it consumes); km keeps its own tail and count and takes ``head``
modulo the ring's size, as Linux does.  A forked child has none of its parent's contexts
(their rings are not in its memory), exec ends them; snapshots do not keep them
(docs/known-issues.md).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi.errno import EAGAIN, EBADF, EFAULT, EINTR, EINVAL, EISDIR, EOPNOTSUPP, ESPIPE
from kontain.abi.structs import aio_ring, aio_sigset, io_event, iocb
from kontain.errors import GuestError
from kontain.kernel.aio import Context
from kontain.memory.window import USER_LIMIT
from kontain.syscalls.common import POLLIN, POLLOUT, io_call, s32, u32, u64
from kontain.syscalls.prio import check_ioprio
from kontain.syscalls.rw import UIO_MAXIOV, host_iovec, rw_buffer

PAGE = 4096
EVENTS_MAX = 0x10000000 // io_event.size  # a ring of more events is EINVAL (fs/aio.c ioctx_alloc)
SYS_preadv2, SYS_pwritev2, SYS_fsync, SYS_fdatasync, SYS_fcntl, SYS_fstat, SYS_write = 327, 328, 74, 75, 72, 5, 1
_RW = {F.IOCB_CMD_PREAD: (False, False), F.IOCB_CMD_PWRITE: (True, False),
       F.IOCB_CMD_PREADV: (False, True), F.IOCB_CMD_PWRITEV: (True, True)}


def _contexts(t) -> dict[int, Context]:
    p = t.process
    if p.aio is None:
        with p.lock:  # (two threads' first io_setup at once: one table)
            if p.aio is None:
                p.aio = {}
    return p.aio


def _lookup(t, ctx_id: int) -> Context:
    """The context whose ring is at ``ctx_id`` (EINVAL, as Linux, when there is none or
    the program unmapped its ring: Linux looks the context up by the ring's header)."""
    ctx = (t.process.aio or {}).get(u64(ctx_id))
    if ctx is None:
        raise GuestError(EINVAL)
    try:
        ctx.head(t)
    except GuestError:
        raise GuestError(EINVAL) from None
    return ctx


def _possible_cpus() -> int:
    """num_possible_cpus() of the host: /sys/devices/system/cpu/possible ("0-3,8")."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            n = 0
            for part in f.read().strip().split(","):
                first, _, last = part.partition("-")
                n += int(last or first) - int(first) + 1
            return n
    except (OSError, ValueError):
        return os.cpu_count() or 1


def _sysctl(name: str) -> int:
    try:
        with open(f"/proc/sys/fs/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 65536 if name == "aio-max-nr" else 0


def io_setup(t, nr_events, ctxp, *_):
    """The context (fs/aio.c ioctx_alloc): the ring sized for max(nr, 4 per possible CPU)
    times two events, rounded up to pages; the context's id written to ``*ctxp``."""
    nr_events = u32(nr_events)
    if struct.unpack("<Q", t.mem.read(ctxp, 8))[0] or nr_events == 0:
        raise GuestError(EINVAL)
    max_reqs = nr_events
    events = (max(nr_events, _possible_cpus() * 4) * 2) & 0xFFFFFFFF
    if events > EVENTS_MAX:
        raise GuestError(EINVAL)
    contexts = _contexts(t)
    limit = _sysctl("aio-max-nr")  # (the contexts listed at once: another thread's io_setup may add one)
    if not events or max_reqs > limit or \
            _sysctl("aio-nr") + sum(c.max_reqs for c in list(contexts.values())) + max_reqs > limit:
        raise GuestError(EAGAIN)
    size = (aio_ring.size + events * io_event.size + PAGE - 1) & ~(PAGE - 1)
    ring = t.mm.mmap(0, size, F.PROT_READ | F.PROT_WRITE, F.MAP_PRIVATE | F.MAP_ANONYMOUS, -1, 0, name="[aio]")
    nr = (size - aio_ring.size) // io_event.size
    t.mem.write(ring, aio_ring.pack(len(contexts), nr, 0, 0, F.AIO_RING_MAGIC, F.AIO_RING_COMPAT_FEATURES,
                                    F.AIO_RING_INCOMPAT_FEATURES, aio_ring.size))
    try:
        t.mem.write(ctxp, struct.pack("<Q", ring))
    except GuestError:
        t.mm.munmap(ring, size)
        raise
    contexts[ring] = Context(ring, size, nr, max_reqs)
    return 0


def io_destroy(t, ctx_id, *_):
    ctx = _lookup(t, ctx_id)
    del t.process.aio[ctx.ring]
    t.mm.munmap(ctx.ring, ctx.size)
    _wake(t, ctx)  # (their io_getevents fails: EINVAL)
    return 0


def io_submit(t, ctx_id, nr, iocbpp, *_):
    """Each request in turn, made now; the count of those taken, or the first one's
    error (Linux's order of checks, fs/aio.c io_submit_one)."""
    nr = u64(nr)
    if nr >> 63:
        raise GuestError(EINVAL)
    ctx = _lookup(t, ctx_id)
    nr = min(nr, ctx.nr)
    done = 0
    try:
        for i in range(nr):
            user_iocb = struct.unpack("<Q", t.mem.read(u64(iocbpp) + 8 * i, 8))[0]
            _submit_one(t, ctx, user_iocb)
            done += 1
    except GuestError:
        if not done:
            raise
    finally:
        if done:
            _wake(t, ctx)
    return done


def _submit_one(t, ctx: Context, user_iocb: int) -> None:
    cb = iocb.unpack(t.mem.read(user_iocb, iocb.size))
    data, nbytes, reserved2, aio_flags, resfd = cb[0], cb[7], cb[9], cb[10], cb[11]
    if reserved2 or nbytes >> 63:
        raise GuestError(EINVAL)
    with ctx.lock:  # (a request, or EAGAIN: Linux's reqs_available, given back as events are taken)
        if ctx.queued(t) + ctx.reserved >= ctx.nr - 1:
            raise GuestError(EAGAIN)
        ctx.reserved += 1
    try:
        res = _make(t, cb, user_iocb)
    except BaseException:
        with ctx.lock:
            ctx.reserved -= 1
        raise
    with ctx.lock:
        ctx.reserved -= 1
        if t.process.aio is None or t.process.aio.get(ctx.ring) is not ctx:
            return  # (destroyed meanwhile: its ring is gone)
        _complete(t, ctx, io_event.pack(data, user_iocb, res, 0))
    if aio_flags & F.IOCB_FLAG_RESFD:
        one = bytearray(struct.pack("<Q", 1))
        native.syscall(SYS_write, t.fds.host(resfd), native.address_of(one), 8)


def _make(t, cb: tuple, user_iocb: int) -> int:
    """The request made: its result for the event, or GuestError for what Linux refuses
    before it makes it (fs/aio.c __io_submit_one, in its order)."""
    _data, _key, rw_flags, opcode, reqprio, fildes, buf, nbytes, offset, _reserved2, aio_flags, resfd = cb
    fd = t.fds.check(fildes)
    mode = native.syscall(SYS_fcntl, fd, F.F_GETFL, 0)
    if mode < 0:
        raise GuestError(EBADF)
    if aio_flags & F.IOCB_FLAG_RESFD:
        _eventfd(t, resfd)
    t.mem.write(user_iocb + iocb.offsets["aio_key"], struct.pack("<I", F.KIOCB_KEY))
    if opcode in _RW:
        write, vectored = _RW[opcode]
        if aio_flags & F.IOCB_FLAG_IOPRIO:
            r = check_ioprio(s32(reqprio))
            if r:
                raise GuestError(-r)
        return _rw(t, fd, mode, write, vectored, buf, nbytes, offset, rw_flags)
    if opcode in (F.IOCB_CMD_FSYNC, F.IOCB_CMD_FDSYNC):
        if buf or offset or nbytes or rw_flags:
            raise GuestError(EINVAL)
        r = native.syscall(SYS_fsync if opcode == F.IOCB_CMD_FSYNC else SYS_fdatasync, fd)
        if r == -EINVAL:  # (no fsync for this kind of file: Linux says so at the submit)
            raise GuestError(EINVAL)
        return r
    raise GuestError(EINVAL)  # IOCB_CMD_POLL (not served here) and unknown ones


def _eventfd(t, fd: int) -> None:
    """IOCB_FLAG_RESFD's descriptor must be an eventfd (EBADF, else EINVAL)."""
    try:
        what = os.readlink(f"/proc/self/fd/{t.fds.check(fd)}")
    except OSError:
        raise GuestError(EBADF) from None
    if what != "anon_inode:[eventfd]":
        raise GuestError(EINVAL)


def _rw(t, fd: int, mode: int, write: bool, vectored: bool, buf: int, nbytes: int, offset: int,
        rw_flags: int) -> int:
    """A read or write at ``offset`` (where the file has positions): GuestError for what
    Linux refuses at the submit (the descriptor's mode, a directory, the buffer's range,
    a negative offset, RWF_* flags the file cannot honour), else the event's result."""
    if mode & F.O_PATH or (mode & F.O_ACCMODE) == (F.O_RDONLY if write else F.O_WRONLY):
        raise GuestError(EBADF)
    st = bytearray(144)
    if native.syscall(SYS_fstat, fd, native.address_of(st)) == 0 and \
            struct.unpack_from("<I", st, 24)[0] & F.S_IFMT == F.S_IFDIR:
        raise GuestError(EINVAL)  # (no read_iter)
    if vectored:  # (Linux's import_iovec: every segment within the user half, EFAULT otherwise)
        if nbytes <= UIO_MAXIOV:
            for base, length in struct.iter_unpack("<QQ", t.mem.read(buf, 16 * nbytes)):
                _user_range(base, length)
        vec, count = host_iovec(t, buf, nbytes)
    else:
        _user_range(buf, nbytes)
        host, n = rw_buffer(t, buf, nbytes)
        vec, count = bytearray(struct.pack("<QQ", host, n)), 1
    if offset < 0 and _seekable(fd):
        raise GuestError(EINVAL)
    nr = SYS_pwritev2 if write else SYS_preadv2
    events = POLLOUT if write else POLLIN
    res = io_call(t, fd, events, nr, native.address_of(vec), count, offset & 0xFFFFFFFFFFFFFFFF, 0, rw_flags)
    if res == -ESPIPE:  # (a pipe, a socket: no positions, the read or write as such)
        res = io_call(t, fd, events, nr, native.address_of(vec), count, 0xFFFFFFFFFFFFFFFF, 0, rw_flags)
    if res == -EOPNOTSUPP:  # (flags the file cannot honour: refused at the submit)
        raise GuestError(EOPNOTSUPP)
    return -EINVAL if res == -EISDIR else res


def _user_range(addr: int, length: int) -> None:
    """access_ok: [addr, addr+length) within the user half of the address space (the
    read or write itself faults on what is not mapped there: the event says EFAULT)."""
    if length and (addr + length > USER_LIMIT or length >> 63):
        raise GuestError(EFAULT)


def _seekable(fd: int) -> bool:
    return native.syscall(8, fd, 0, 1) >= 0  # lseek(fd, 0, SEEK_CUR)


def _complete(t, ctx: Context, event: bytes) -> None:
    t.mem.write(ctx.ring + aio_ring.size + ctx.tail * io_event.size, event)
    ctx.tail = (ctx.tail + 1) % ctx.nr
    t.mem.write(ctx.ring + aio_ring.offsets["tail"], struct.pack("<I", ctx.tail))


def _wake(t, ctx: Context) -> None:
    for waiter in list(ctx.waiters):
        if waiter is not t:
            t.process.kick(waiter)


def _take(t, ctx: Context, nr: int, events: int) -> int:
    """Up to ``nr`` completions from the ring to ``events``, head advanced past them."""
    with ctx.lock:
        return _take_locked(t, ctx, nr, events)


def _take_locked(t, ctx: Context, nr: int, events: int) -> int:
    head = ctx.head(t)
    n = min((ctx.tail - head) % ctx.nr, nr)
    for i in range(n):
        at = ctx.ring + aio_ring.size + (head + i) % ctx.nr * io_event.size
        try:
            t.mem.write(events + i * io_event.size, t.mem.read(at, io_event.size))
        except GuestError:
            n = i
            if not n:
                raise
            break
    t.mem.write(ctx.ring + aio_ring.offsets["head"], struct.pack("<I", (head + n) % ctx.nr))
    return n


def _getevents(t, ctx_id, min_nr, nr, events, timeout_ns: int | None) -> int:
    min_nr, nr = u64(min_nr), u64(nr)
    ctx = _lookup(t, ctx_id)
    if min_nr >> 63 or nr >> 63 or min_nr > nr:
        raise GuestError(EINVAL)
    got = _take(t, ctx, nr, events)
    if got >= min_nr or timeout_ns == 0:
        return got
    ctx.waiters.add(t)
    try:
        def ready() -> bool:
            return t.has_signals() or ctx.ring not in (t.process.aio or {}) or ctx.queued(t) > 0

        deadline_left = timeout_ns
        while got < min_nr:
            if not t.process.wait_for(t, ready, deadline_left):
                break
            if ctx.ring not in (t.process.aio or {}):
                raise GuestError(EINVAL)  # (destroyed meanwhile)
            got += _take(t, ctx, nr - got, events + got * io_event.size)
            if t.has_signals():
                break
    finally:
        ctx.waiters.discard(t)
    return got


def _timeout(t, addr: int) -> int | None:
    """The wait (ns) of a struct timespec the kernel reads unchecked; None for NULL."""
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", t.mem.read(addr, 16))
    return max(sec * 1_000_000_000 + nsec, 0)


def _interrupted(t, r: int) -> int:
    """Linux: a wait that a signal ended with no event taken is EINTR."""
    return -EINTR if r == 0 and t.has_signals() else r


def io_getevents(t, ctx_id, min_nr, nr, events, timeout, *_):
    ns = _timeout(t, timeout)
    return _interrupted(t, _getevents(t, ctx_id, min_nr, nr, events, ns))


def io_pgetevents(t, ctx_id, min_nr, nr, events, timeout, usig):
    """io_getevents with a signal mask for the wait (struct __aio_sigset), as ppoll's."""
    from kontain.syscalls.signal import with_sigmask

    ns = _timeout(t, timeout)
    mask = None
    if usig:
        sigmask, size = aio_sigset.unpack(t.mem.read(usig, aio_sigset.size))
        if sigmask:
            if size != 8:
                raise GuestError(EINVAL)
            mask = t.mem.read(sigmask, 8)
    return with_sigmask(t, mask, lambda: _interrupted(t, _getevents(t, ctx_id, min_nr, nr, events, ns)),
                        lambda: _getevents(t, ctx_id, min_nr, nr, events, 0))


def io_cancel(t, ctx_id, user_iocb, result, *_):
    """Nothing is ever in flight (module doc): EINVAL, once Linux's checks are made."""
    key = struct.unpack("<I", t.mem.read(u64(user_iocb) + iocb.offsets["aio_key"], 4))[0]
    if key != F.KIOCB_KEY:
        raise GuestError(EINVAL)
    _lookup(t, ctx_id)
    raise GuestError(EINVAL)
