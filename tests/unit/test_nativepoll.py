"""The native poller's library (kernel/nativepoll.py): built by `make bytecode` (km --native)
and loadable, and what happens without a compiler."""

import os

import pytest

from kontain.cbuild import BuildError
from kontain.cli import front
from kontain.kernel import nativepoll


def test_the_native_poller_is_built_and_loads():
    """`make test` runs `make bytecode`, which builds it: without it every polled call
    would quietly go through Python again (docs/performance.md's numbers are with it)."""
    assert os.path.exists(nativepoll.LIBRARY), "no native poller: run `make bytecode` (km-python --native)"
    assert nativepoll.load() is not None, "the native poller is older than nativepoll.c: run `make bytecode`"


def test_no_compiler_is_one_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    with pytest.raises(BuildError) as e:
        front.build_poller(str(tmp_path / "lib.so"))
    assert "\n" not in str(e.value) and not (tmp_path / "lib.so").exists()


def test_the_control_block_layout_fits():
    """Every word the C side indexes lies inside the block Python allocates."""
    top = nativepoll.C_VC + 32 * nativepoll.VC_WORDS
    assert nativepoll.C_WARM < nativepoll.C_VC and nativepoll.V_DECLINED_NR < nativepoll.VC_WORDS
    assert top <= nativepoll.C_NR and nativepoll.C_NR + 64 <= nativepoll.C_SITES < nativepoll.WORDS
    assert nativepoll.C_NLOCKED == nativepoll.C_SITES + 2 * (1 << nativepoll.SITES_BITS)
    assert nativepoll.C_LOCKED == nativepoll.C_NLOCKED + 1
    assert nativepoll.C_SOLO == nativepoll.C_LOCKED + 2 * nativepoll.LOCKED_MAX
    assert nativepoll.C_KNOWN_KIND == nativepoll.C_KNOWN_EPOCH + 1
    assert nativepoll.C_POSTING == nativepoll.C_READ_WAIT_NS + 1
    assert nativepoll.WORDS == nativepoll.C_SIG_TAKEN + 1


def test_sites_go_to_python_only_past_the_warm_up():
    """With rewriting on, a call from a site the rewriter has not settled is made natively
    and left to Python to answer (which counts the site) only once the program is past
    its warm-up (C_WARM): before, no site is examined, and the trip through Python for
    every call cost ~10% of a file-heavy run.  The slot and the block are plain memory;
    the call is a getppid."""
    import struct
    import types

    from kontain import native
    from kontain.arch.x86_64 import layout as L

    poll = nativepoll.load()
    assert poll is not None, "the native poller is not built: run `make bytecode`"
    pollable = [False] * 512
    pollable[110] = True
    ctl = nativepoll.Control(types.SimpleNamespace(base=0, size=0), 1 << 20, pollable, False, bytearray(8))
    slot, kick = bytearray(L.SLOT_SIZE), bytearray(1)
    ctl.attach(0, native.address_of(slot), types.SimpleNamespace(kick_flag=kick, kick_addr=native.address_of(kick)))
    ctl.native(0, True)
    w = ctl.w
    w[nativepoll.C_REWRITING] = 1
    w[nativepoll.C_WARM] = w[nativepoll.C_SERVED] + 1  # one call more before any site is examined

    def post() -> int:
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, 110)
        struct.pack_into("<q", slot, L.SLOT_RCX, 0x401234)  # a site not settled
        return poll(ctl.addr, 4)

    assert post() == nativepoll.TICK  # made and answered natively, then idle
    assert struct.unpack_from("<I", slot, L.SLOT_STATE)[0] == L.SLOT_DONE
    assert struct.unpack_from("<q", slot, L.SLOT_RESULT)[0] == os.getppid() and w[nativepoll.C_SERVED] == 1
    assert post() == 0 << 2 | nativepoll.ANSWER  # past the warm-up: made, and Python answers
    assert struct.unpack_from("<I", slot, L.SLOT_STATE)[0] == L.SLOT_TAKEN and w[nativepoll.C_SERVING] == 1
    assert struct.unpack_from("<q", slot, L.SLOT_RESULT)[0] == os.getppid()


def test_no_duplicate_of_a_file_the_program_locked(tmp_path):
    """A read of a regular file is made natively on a duplicate of the descriptor, which
    is then closed: for a file the program holds POSIX locks on (C_LOCKED) that close
    would drop them, so such a read goes to Python (RUN), not taken; another file's is
    made natively; and with more locked files than the block lists, none is."""
    import struct
    import types

    from kontain import native
    from kontain.arch.x86_64 import layout as L

    poll = nativepoll.load()
    assert poll is not None, "the native poller is not built: run `make bytecode`"
    pollable = [False] * 512
    pollable[0] = True
    mem = bytearray(1 << 16)
    floor = 512  # (the duplicate goes at or above it: within RLIMIT_NOFILE)
    ctl = nativepoll.Control(types.SimpleNamespace(base=native.address_of(mem), size=len(mem)), floor, pollable,
                             False, bytearray(8))
    slot, kick = bytearray(L.SLOT_SIZE), bytearray(1)
    ctl.attach(0, native.address_of(slot), types.SimpleNamespace(kick_flag=kick, kick_addr=native.address_of(kick)))
    ctl.native(0, True)
    locked, other = tmp_path / "locked", tmp_path / "other"
    locked.write_bytes(b"L" * 64)
    other.write_bytes(b"O" * 64)
    fds = [os.open(p, os.O_RDONLY) for p in (locked, other)]
    try:
        st = os.fstat(fds[0])
        ctl.locked([(st.st_dev, st.st_ino)])

        def read(fd: int) -> int:
            struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, 0)
            struct.pack_into("<qqq", slot, L.SLOT_ARGS, fd, 0, 8)
            return poll(ctl.addr, 4)

        assert read(fds[0]) == 0 << 2 | nativepoll.RUN  # left to Python, still posted
        assert struct.unpack_from("<I", slot, L.SLOT_STATE)[0] == L.SLOT_POSTED
        assert read(fds[1]) == nativepoll.TICK and mem[:8] == b"O" * 8  # made natively
        ctl.locked([(0, i) for i in range(nativepoll.LOCKED_MAX + 1)])  # too many to list
        assert read(fds[1]) == 0 << 2 | nativepoll.RUN
    finally:
        for fd in fds:
            os.close(fd)


def test_a_single_threaded_programs_own_descriptor(tmp_path):
    """With one thread (C_SOLO) a read of a regular file is made on the program's own
    descriptor: no duplicate, so none whose close could drop a POSIX lock (a locked file's
    read is made natively).  The file's kind is known until the epoch moves (every call
    km's handlers serve bumps it): then it is looked at again, and a pipe's read is made
    as a pipe's (without waiting).  With more than one thread the duplicate rules again."""
    import struct
    import types

    from kontain import native
    from kontain.arch.x86_64 import layout as L

    poll = nativepoll.load()
    assert poll is not None, "the native poller is not built: run `make bytecode`"
    pollable = [False] * 512
    pollable[0] = True
    mem, epoch = bytearray(1 << 16), bytearray(8)
    ctl = nativepoll.Control(types.SimpleNamespace(base=native.address_of(mem), size=len(mem)), 512, pollable,
                             False, epoch)
    slot, kick = bytearray(L.SLOT_SIZE), bytearray(1)
    ctl.attach(0, native.address_of(slot), types.SimpleNamespace(kick_flag=kick, kick_addr=native.address_of(kick)))
    ctl.native(0, True)
    locked = tmp_path / "locked"
    locked.write_bytes(b"L" * 64)
    fd = os.open(locked, os.O_RDONLY)
    r, w = os.pipe()
    try:
        st = os.fstat(fd)
        ctl.locked([(st.st_dev, st.st_ino)])
        ctl.w[nativepoll.C_SOLO] = 1

        def read() -> int:
            struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, 0)
            struct.pack_into("<qqq", slot, L.SLOT_ARGS, fd, 0, 8)
            return poll(ctl.addr, 4)

        assert read() == nativepoll.TICK and mem[:8] == b"L" * 8  # made natively, on fd itself
        assert ctl.w[nativepoll.C_KNOWN_FD] == fd + 1
        os.write(w, b"P" * 8)
        os.dup2(r, fd)  # the number names a pipe now, and the program's call that did it ...
        struct.pack_into("<Q", epoch, 0, 1)  # ... moved the epoch
        assert read() == nativepoll.TICK and mem[:8] == b"P" * 8  # looked at again: a pipe's read, made
        assert ctl.w[nativepoll.C_KNOWN_KIND] == 3
        os.dup2(os.open(locked, os.O_RDONLY), fd)
        struct.pack_into("<Q", epoch, 0, 2)
        ctl.w[nativepoll.C_SOLO] = 0  # another thread: a duplicate, never of a locked file
        assert read() == 0 << 2 | nativepoll.RUN
    finally:
        for d in (fd, r, w):
            os.close(d)


def test_exec_forgets_the_sites_not_the_locked_files():
    """exec's forget_sites clears the rewriter's settled sites (the old program's) but not
    the files the program holds POSIX locks on, which outlive exec: the native poller would
    otherwise make (and close, dropping the locks) duplicates of their descriptors again."""
    import types

    ctl = nativepoll.Control(types.SimpleNamespace(base=0, size=0), 1 << 20, [False] * 512, False, bytearray(8))
    ctl.locked([(7, 42)])
    ctl.settle(0x401234, True)
    ctl.forget_sites()
    w = ctl.w
    assert not any(w[nativepoll.C_SITES:nativepoll.C_NLOCKED])
    assert (w[nativepoll.C_NLOCKED], w[nativepoll.C_LOCKED], w[nativepoll.C_LOCKED + 1]) == (1, 7, 42)


def _reads_and_writes(size: int):
    """km_poll, a control block making reads and writes natively over ``size`` bytes of
    memory at address 0, a slot of vCPU 0's, and its kick flag: (poll, ctl, slot, kick, mem)."""
    import types

    from kontain import native
    from kontain.arch.x86_64 import layout as L

    poll = nativepoll.load()
    assert poll is not None, "the native poller is not built: run `make bytecode`"
    pollable = [False] * 512
    for nr in (0, 1, 19, 20, 44, 45):  # read, write, readv, writev, sendto, recvfrom
        pollable[nr] = True
    mem = bytearray(size)
    ctl = nativepoll.Control(types.SimpleNamespace(base=native.address_of(mem), size=len(mem)), 512, pollable,
                             False, bytearray(8))
    slot, kick = bytearray(L.SLOT_SIZE), bytearray(1)
    ctl.attach(0, native.address_of(slot), types.SimpleNamespace(kick_flag=kick, kick_addr=native.address_of(kick)))
    ctl.native(0, True)
    return poll, ctl, slot, kick, mem


def test_sockets_and_pipes_are_read_and_written_without_waiting(tmp_path):
    """A socket's or a pipe's read or write is made natively only when it need not wait: data to
    read, room to write; a non-blocking socket's EAGAIN is the answer.  Otherwise the
    call is declined natively (DECLINED, the slot SLOT_DECLINED, the block saying so once)
    for the vCPU's thread to make, having changed nothing: a blocking socket with nothing
    to read, a read under SO_RCVLOWAT 8 with 4 bytes there (a read that does not wait
    would return them), a listening socket's read (perhaps a signalfd's: EINVAL).  A
    blocking write the socket took part of is declined with the part (the carry), which
    the thread's write finishes.  EPIPE is answered with an exit, for SIGPIPE.  With
    C_OWN_SIGNALS (the program wants the signals its calls cause), or without C_STREAMS,
    a socket's call is Python's."""
    import socket
    import struct

    from kontain.abi.errno import EAGAIN, EPIPE
    from kontain.arch.x86_64 import layout as L

    poll, ctl, slot, kick, mem = _reads_and_writes(4 << 20)
    a, b = socket.socketpair()
    nb, nb_peer = socket.socketpair()
    nb.setblocking(False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(b"\0kt-nativepoll-%d" % os.getpid())
    listener.listen(1)

    def call(nr: int, fd: int, count: int) -> int:
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, nr)
        struct.pack_into("<qqq", slot, L.SLOT_ARGS, fd, 0, count)
        return poll(ctl.addr, 4)

    def state() -> int:
        return struct.unpack_from("<I", slot, L.SLOT_STATE)[0]

    def result() -> int:
        return struct.unpack_from("<q", slot, L.SLOT_RESULT)[0]

    try:
        mem[:8] = b"12345678"
        assert call(1, a.fileno(), 8) == nativepoll.TICK and state() == L.SLOT_DONE and result() == 8
        assert b.recv(8) == b"12345678"
        b.send(b"abcd")
        assert call(0, a.fileno(), 8) == nativepoll.TICK and result() == 4 and mem[:4] == b"abcd"
        # nothing to read: declined, once
        assert call(0, a.fileno(), 8) == 0 << 2 | nativepoll.DECLINED and state() == L.SLOT_DECLINED
        assert ctl.declined_nr(0) == 0 and ctl.declined(0) == (True, 0) and ctl.declined(0) == (False, 0)
        assert call(0, nb.fileno(), 8) == nativepoll.TICK and result() == -EAGAIN  # non-blocking: the answer
        # SO_RCVLOWAT: left to the thread, the 4 bytes unread
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 8)
        b.send(b"wxyz")
        assert call(0, a.fileno(), 8) == 0 << 2 | nativepoll.DECLINED and ctl.declined(0) == (True, 0)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        assert a.recv(8) == b"wxyz"
        assert call(0, listener.fileno(), 8) == 0 << 2 | nativepoll.DECLINED  # EINVAL: perhaps a signalfd
        ctl.declined(0)
        # more than the socket takes at once: the part it took is carried
        assert call(1, a.fileno(), len(mem)) == 0 << 2 | nativepoll.DECLINED
        declined, carry = ctl.declined(0)
        assert declined and 0 < carry < len(mem)
        got = 0
        b.setblocking(False)
        try:
            while True:
                got += len(b.recv(1 << 20))
        except BlockingIOError:
            pass
        assert got == carry
        b.close()
        assert call(1, a.fileno(), 8) == nativepoll.TICK and result() == -EPIPE and state() == L.SLOT_DONE_EXIT
        # a pipe: the same, with RWF_NOWAIT
        r, w = os.pipe()
        try:
            mem[:3] = b"abc"
            assert call(1, w, 3) == nativepoll.TICK and result() == 3
            assert call(0, r, 8) == nativepoll.TICK and result() == 3 and mem[:3] == b"abc"
            assert call(0, r, 8) == 0 << 2 | nativepoll.DECLINED and ctl.declined(0) == (True, 0)
            assert call(1, w, len(mem)) == 0 << 2 | nativepoll.DECLINED  # (a pipe holds 64 KiB)
            declined, carry = ctl.declined(0)
            assert declined and carry == 65536 and len(os.read(r, 1 << 20)) == carry
            os.close(r)
            r = -1
            assert call(1, w, 8) == nativepoll.TICK and result() == -EPIPE and state() == L.SLOT_DONE_EXIT
        finally:
            os.close(w)
            if r >= 0:
                os.close(r)
        ctl.w[nativepoll.C_OWN_SIGNALS] = 1  # (signals the call causes wanted: a handler's)
        assert call(0, nb.fileno(), 8) == 0 << 2 | nativepoll.RUN and state() == L.SLOT_POSTED
        ctl.w[nativepoll.C_OWN_SIGNALS] = 0
        ctl.w[nativepoll.C_STREAMS] = 0
        assert call(0, nb.fileno(), 8) == 0 << 2 | nativepoll.RUN and state() == L.SLOT_POSTED
    finally:
        for s in (a, b, nb, nb_peer, listener):
            s.close()


def test_a_sockets_send_and_recv_are_made_with_their_flags():
    """sendto and recvfrom with no address (a connected socket's send and recv) are made
    natively as a read or write is, with the flags that change only whether they wait
    (MSG_DONTWAIT: EAGAIN, or the part a socket takes, is the answer, never carried;
    MSG_NOSIGNAL: EPIPE without the exit that raises SIGPIPE; MSG_PEEK; MSG_MORE).  An
    address, another flag (MSG_WAITALL...) or a descriptor that is no socket: Python's."""
    import socket
    import struct

    from kontain.abi.errno import EAGAIN, EPIPE
    from kontain.arch.x86_64 import layout as L

    poll, ctl, slot, kick, mem = _reads_and_writes(4 << 20)
    a, b = socket.socketpair()
    SENDTO, RECVFROM = 44, 45

    def call(nr: int, fd: int, count: int, flags: int = 0, addr: int = 0) -> int:
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, nr)
        struct.pack_into("<qqqqqq", slot, L.SLOT_ARGS, fd, 0, count, flags, addr, 16)
        return poll(ctl.addr, 4)

    def state() -> int:
        return struct.unpack_from("<I", slot, L.SLOT_STATE)[0]

    def result() -> int:
        return struct.unpack_from("<q", slot, L.SLOT_RESULT)[0]

    posted_again = 0 << 2 | nativepoll.RUN
    try:
        mem[:8] = b"12345678"
        assert call(SENDTO, a.fileno(), 8) == nativepoll.TICK and state() == L.SLOT_DONE and result() == 8
        assert call(SENDTO, a.fileno(), 4, socket.MSG_MORE | socket.MSG_NOSIGNAL) == nativepoll.TICK
        assert b.recv(16) == b"123456781234"
        b.send(b"abcd")
        mem[:8] = bytes(8)
        assert call(RECVFROM, a.fileno(), 8, socket.MSG_PEEK) == nativepoll.TICK and result() == 4
        assert call(RECVFROM, a.fileno(), 8) == nativepoll.TICK and result() == 4 and mem[:4] == b"abcd"
        # nothing there: declined for the thread's blocking recv; with MSG_DONTWAIT, EAGAIN
        assert call(RECVFROM, a.fileno(), 8) == 0 << 2 | nativepoll.DECLINED and ctl.declined(0) == (True, 0)
        assert ctl.declined_nr(0) == RECVFROM
        assert call(RECVFROM, a.fileno(), 8, socket.MSG_DONTWAIT) == nativepoll.TICK and result() == -EAGAIN
        # the handler's: an address, MSG_WAITALL, a pipe
        for nr, fd, flags, addr in ((SENDTO, a.fileno(), 0, 64), (RECVFROM, a.fileno(), 0, 64),
                                    (RECVFROM, a.fileno(), socket.MSG_WAITALL, 0),
                                    (RECVFROM, a.fileno(), socket.MSG_DONTWAIT | socket.MSG_TRUNC, 0)):
            assert call(nr, fd, 8, flags, addr) == posted_again and state() == L.SLOT_POSTED
        r, w = os.pipe()
        try:
            assert call(SENDTO, w, 8) == posted_again and call(RECVFROM, r, 8) == posted_again
        finally:
            os.close(r)
            os.close(w)
        # more than the socket takes: MSG_DONTWAIT answers with the part, a blocking send carries it
        assert call(SENDTO, a.fileno(), len(mem), socket.MSG_DONTWAIT) == nativepoll.TICK
        assert 0 < result() < len(mem) and not ctl.declined(0)[0]
        b.setblocking(False)
        while True:
            try:
                b.recv(1 << 20)
            except BlockingIOError:
                break
        assert call(SENDTO, a.fileno(), len(mem)) == 0 << 2 | nativepoll.DECLINED
        declined, carry = ctl.declined(0)
        assert declined and 0 < carry < len(mem)
        b.close()
        # EPIPE: an exit for SIGPIPE, unless MSG_NOSIGNAL
        assert call(SENDTO, a.fileno(), 8) == nativepoll.TICK and result() == -EPIPE
        assert state() == L.SLOT_DONE_EXIT
        assert call(SENDTO, a.fileno(), 8, socket.MSG_NOSIGNAL) == nativepoll.TICK and result() == -EPIPE
        assert state() == L.SLOT_DONE
    finally:
        a.close()
        b.close()


def test_readv_and_writev_are_made_with_the_iovecs_translated(tmp_path):
    """readv and writev: the program's iovec array read once, each buffer translated as a
    read's (a range that is no user memory, an empty one's address too, fails with the
    host's EFAULT), made on a regular file at once and on a socket or pipe without
    waiting (a blocking writev the socket took part of is carried, whichever iovec the
    part ended in).  No iovec, more than 16, an array that cannot be read, a length of
    2^63 or more: the handler's (it answers in Linux's order, the descriptor first)."""
    import socket
    import struct

    from kontain.abi.errno import EFAULT
    from kontain.arch.x86_64 import layout as L

    poll, ctl, slot, kick, mem = _reads_and_writes(4 << 20)
    READV, WRITEV, VEC = 19, 20, 1 << 20  # (the iovec array's guest address)

    def call(nr: int, fd: int, *vecs: tuple[int, int], count: int | None = None, at: int = VEC) -> int:
        for i, (base, length) in enumerate(vecs):
            struct.pack_into("<QQ", mem, at + 16 * i, base, length)
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, nr)
        struct.pack_into("<qQq", slot, L.SLOT_ARGS, fd, at, len(vecs) if count is None else count)
        return poll(ctl.addr, 4)

    def result() -> int:
        return struct.unpack_from("<q", slot, L.SLOT_RESULT)[0]

    posted_again = 0 << 2 | nativepoll.RUN
    f = os.open(tmp_path / "vec", os.O_RDWR | os.O_CREAT)
    a, b = socket.socketpair()
    try:
        mem[:10] = b"0123456789"
        assert call(WRITEV, f, (0, 3), (100, 0), (5, 5)) == nativepoll.TICK and result() == 8
        assert os.pread(f, 16, 0) == b"01256789"
        os.lseek(f, 0, os.SEEK_SET)
        assert call(READV, f, (200, 2), (300, 6)) == nativepoll.TICK and result() == 8
        assert mem[200:202] == b"01" and mem[300:306] == b"256789"
        assert call(WRITEV, f, (0xFFFF800000001000, 0), (0, 4)) == nativepoll.TICK and result() == -EFAULT
        for vecs, count in (([(0, 1)] * 17, None), ([(0, 1)], 0), ([(0, 1 << 63)], None)):
            assert call(WRITEV, f, *vecs, count=count) == posted_again
        assert call(WRITEV, f, count=1, at=0xFFFF800000000000) == posted_again  # an array that cannot be read
        assert call(READV, a.fileno(), (0, 4)) == 0 << 2 | nativepoll.DECLINED and ctl.declined(0) == (True, 0)
        b.send(b"abcdefgh")
        assert call(READV, a.fileno(), (400, 3), (500, 8)) == nativepoll.TICK and result() == 8
        assert mem[400:403] + mem[500:505] == b"abcdefgh"
        # more than the socket takes, in three parts: the part it took is carried
        third = len(mem) // 3
        assert call(WRITEV, a.fileno(), (0, 1000), (1000, third), (1000 + third, third)) == \
            0 << 2 | nativepoll.DECLINED
        declined, carry = ctl.declined(0)
        assert declined and 0 < carry < 1000 + 2 * third
        r, w = os.pipe()
        try:
            assert call(WRITEV, w, (0, 2), (5, 3)) == nativepoll.TICK and result() == 5
            assert os.read(r, 8) == b"01567"
        finally:
            os.close(r)
            os.close(w)
    finally:
        os.close(f)
        a.close()
        b.close()


def test_a_socket_read_waits_a_moment_for_its_data():
    """With C_READ_WAIT_NS (one slot on), a blocking socket's read with nothing there
    yet waits that long for data before it is declined: data written 20 ms later is read
    by the same call.  It is declined at once when its vCPU is kicked (a signal to
    deliver: the thread waits for the call) or the socket has a receive timeout (the
    thread's read keeps it); at the end of the wait, declined."""
    import socket
    import struct
    import threading
    import time

    from kontain.arch.x86_64 import layout as L

    poll, ctl, slot, kick, mem = _reads_and_writes(1 << 16)
    ctl.w[nativepoll.C_READ_WAIT_NS] = 10 * 1000_000_000  # (long: the test's own events end it)
    a, b = socket.socketpair()

    def read() -> tuple[int, float]:
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, 0)
        struct.pack_into("<qqq", slot, L.SLOT_ARGS, a.fileno(), 0, 8)
        t = time.monotonic()
        return poll(ctl.addr, 4), time.monotonic() - t

    def later(what) -> threading.Timer:
        t = threading.Timer(0.02, what)
        t.start()
        return t

    try:
        t = later(lambda: b.send(b"late"))
        r, took = read()
        t.join()
        assert r == nativepoll.TICK and struct.unpack_from("<q", slot, L.SLOT_RESULT)[0] == 4 and mem[:4] == b"late"
        t = later(lambda: kick.__setitem__(0, 1))
        r, took = read()
        t.join()
        assert r == 0 << 2 | nativepoll.DECLINED and took < 5 and ctl.declined(0) == (True, 0)
        kick[0] = 0
        a.settimeout(None)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("<qq", 5, 0))
        r, took = read()
        assert r == 0 << 2 | nativepoll.DECLINED and took < 1  # (not the 10 s wait)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("<qq", 0, 0))
        ctl.w[nativepoll.C_READ_WAIT_NS] = 30_000_000
        r, took = read()
        assert r == 0 << 2 | nativepoll.DECLINED and 0.025 <= took < 5
    finally:
        a.close()
        b.close()


def test_a_signal_on_its_way_makes_a_streams_answer_an_exit():
    """A socket's or pipe's call made natively while a host signal may be on its way to the
    program (km's signal thread holds its posting lock: taken, not posted yet; or one is
    pending on the host) is answered with an exit (SLOT_DONE_EXIT), whose handling collects
    the signal first: a signal sent before the write that ended a read is handled by the
    time the read returns, as on Linux.  With nothing in flight, a plain answer."""
    import struct

    from kontain.arch.x86_64 import layout as L

    poll, ctl, slot, kick, mem = _reads_and_writes(1 << 16)
    posting, taken = bytearray(8), bytearray(8)  # (no signal taken by others: only the flag counts)
    ctl.signals(posting, taken)
    r, w = os.pipe()

    def write() -> int:
        struct.pack_into("<IIq", slot, L.SLOT_STATE, L.SLOT_POSTED, 0, 1)
        struct.pack_into("<qqq", slot, L.SLOT_ARGS, w, 0, 1)
        assert poll(ctl.addr, 4) == nativepoll.TICK
        return struct.unpack_from("<I", slot, L.SLOT_STATE)[0]

    try:
        assert write() == L.SLOT_DONE
        posting[0] = 1
        assert write() == L.SLOT_DONE_EXIT
        posting[0] = 0
        assert write() == L.SLOT_DONE
    finally:
        os.close(r)
        os.close(w)
