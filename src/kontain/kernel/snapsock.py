"""Socketpairs in a snapshot (kernel/snapfds.py): Unix sockets whose both ends are the
program's (socketpair(2): asyncio's self-pipe, a worker's channel), taken along with the
messages queued at each end and each end's shutdown state, and made again on resume.

Which socket is whose peer the kernel tells only through sock_diag (NETLINK_SOCK_DIAG,
``unix_diag``): each socket's peer inode, shutdown bits and bound name.  The queued data
is read with MSG_PEEK under SO_PEEK_OFF, so nothing leaves the queues of the program,
which goes on (or ends) untouched; message boundaries are kept (SOCK_DGRAM,
SOCK_SEQPACKET: one entry per message).  A resume makes a new socketpair of the same
type, sends each end's messages to it from the other end, then shuts each end down as
it was.  A socket whose peer was closed (fully shut down, its peer gone) comes back as a
pair whose other end is closed at once, with what was still queued.

Refused (``Refused``): a Unix socket connected to one outside the program (a named
socket, a peer km did not make), one with a bound name, and queued messages that carry
descriptors (SCM_RIGHTS: their files cannot be written to a file).
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.kernel.snapfile import Refused, SnapshotError

_DIAG_REQ = struct.Struct("<BBHIIIII")  # struct unix_diag_req
_NLMSGHDR = struct.Struct("<IHHII")
_MAX_MESSAGES = 1 << 16  # a queue longer than this is refused, not walked for ever
_MAX_QUEUED = 64 << 20  # bytes taken along per socket at most


def describe(files: dict, floor: int) -> None:
    """Fill in each Unix socket of ``files`` (kind "unix": ino, type) with its pair, its
    end, its shutdown bits, its buffer sizes and the messages queued to it; Refused for
    one that cannot come back."""
    socks = {fd: f for fd, f in files.items() if f.get("kind") == "unix"}
    if not socks:
        return
    inos = {f["ino"] for f in socks.values()}
    info = {}
    nl = _diag_socket(floor)
    try:
        for ino in inos:
            info[ino] = _diag(nl, ino)
    finally:
        os.close(nl)
    for fd, f in sorted(socks.items()):
        got = info[f["ino"]]
        if got is None:
            raise Refused(f"snapshot: descriptor {fd} is a Unix socket the kernel does not describe (sock_diag), "
                          "which a snapshot cannot take along")
        peer, shutdown, named = got
        if named:
            raise Refused(f"snapshot: descriptor {fd} is a Unix socket with an address, which a snapshot cannot "
                          "take along (only socketpairs)")
        if peer in inos:
            pair, end = min(f["ino"], peer), int(f["ino"] > peer)
        elif shutdown == 3 and f["type"] != F.SOCK_DGRAM:
            pair, end = f["ino"], 0  # its peer is gone: a pair whose other end closes at once
        else:
            raise Refused(f"snapshot: descriptor {fd} is a Unix socket connected outside the program, which a "
                          "resume cannot connect again")
        f.update(pair=pair, end=end, shutdown=shutdown, lone=peer not in inos)
    for ino in inos:  # the queued messages: once per socket, whichever of its descriptors
        fd = min(fd for fd, f in socks.items() if f["ino"] == ino)
        data, bufs = _peek_all(fd, socks[fd]["type"], socks[fd]["shutdown"], floor)
        for f in socks.values():
            if f["ino"] == ino:
                f.update(data=data if f is socks[fd] else [], bufs=bufs)


def _diag_socket(floor: int) -> int:
    """A sock_diag socket, above the program's descriptors (the monitor's own)."""
    import socket

    from kontain.kernel.snapfds import above

    s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, F.NETLINK_SOCK_DIAG)
    return above(s.detach(), floor)


def _diag(nl: int, ino: int):
    """(peer inode or 0, shutdown bits, has a name) of the Unix socket ``ino``, None when
    the kernel does not know it."""
    req = _DIAG_REQ.pack(1, 0, 0, 0xFFFFFFFF, ino, F.UDIAG_SHOW_NAME | F.UDIAG_SHOW_PEER, 0xFFFFFFFF, 0xFFFFFFFF)
    msg = _NLMSGHDR.pack(_NLMSGHDR.size + len(req), F.SOCK_DIAG_BY_FAMILY, F.NLM_F_REQUEST, 1, 0) + req
    os.write(nl, msg)
    data = os.read(nl, 65536)
    if len(data) < _NLMSGHDR.size + 16:
        return None
    length, typ = _NLMSGHDR.unpack_from(data)[:2]
    if typ != F.SOCK_DIAG_BY_FAMILY or length > len(data):
        return None
    peer, shutdown, named = 0, 0, False
    pos = _NLMSGHDR.size + 16
    while pos + 4 <= length:
        alen, atype = struct.unpack_from("<HH", data, pos)
        if alen < 4:
            break
        body = data[pos + 4:pos + alen]
        if atype == F.UNIX_DIAG_PEER and len(body) >= 4:
            peer = struct.unpack_from("<I", body)[0]
        elif atype == F.UNIX_DIAG_SHUTDOWN and len(body) >= 1:
            shutdown = body[0] & 3
        elif atype == F.UNIX_DIAG_NAME and body:
            named = True
        pos += (alen + 3) & ~3
    return peer, shutdown, named


def _peek_all(fd: int, typ: int, shutdown: int, floor: int) -> tuple[list[bytes], tuple[int, int]]:
    """Every message queued to socket ``fd``, peeked (left in the queue), and its send and
    receive buffer sizes."""
    import socket

    from kontain.kernel.snapfds import above

    s = socket.socket(fileno=above(os.dup(fd), floor))
    try:
        bufs = (s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        old = s.getsockopt(socket.SOL_SOCKET, F.SO_PEEK_OFF)
        s.setsockopt(socket.SOL_SOCKET, F.SO_PEEK_OFF, 0)
        try:
            return _peek(s, fd, typ, shutdown), bufs
        finally:
            s.setsockopt(socket.SOL_SOCKET, F.SO_PEEK_OFF, old)
    finally:
        s.close()


def _peek(s, fd: int, typ: int, shutdown: int) -> list[bytes]:
    import socket

    out: list[bytes] = []
    total = 0
    inq = bytearray(4)
    native.syscall(16, s.fileno(), F.FIONREAD, native.address_of(inq))
    stream_bytes = int.from_bytes(inq, "little")  # (stream and seqpacket: all that is queued)
    space = socket.CMSG_SPACE(4 * 253)
    for _ in range(_MAX_MESSAGES):
        try:
            data, anc, _flags, _addr = s.recvmsg(max(stream_bytes, 1 << 18) if typ == F.SOCK_STREAM else 1 << 18,
                                                 space, socket.MSG_PEEK | socket.MSG_DONTWAIT | F.MSG_CMSG_CLOEXEC)
        except (BlockingIOError, InterruptedError):
            return out
        except OSError as e:
            raise Refused(f"snapshot: descriptor {fd} is a socketpair whose queue cannot be read "
                          f"({e.strerror})") from None
        for level, kind, body in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                for (passed,) in struct.iter_unpack("<i", body[:len(body) // 4 * 4]):
                    os.close(passed)
                raise Refused(f"snapshot: descriptor {fd} is a socketpair with descriptors in flight "
                              "(SCM_RIGHTS), which a snapshot cannot take along")
        if not data and (typ == F.SOCK_STREAM or typ == F.SOCK_SEQPACKET and shutdown & 1 and total >= stream_bytes):
            return out  # (the end of a stream, or of a shut-down seqpacket socket)
        out.append(data)
        total += len(data)
        if total > _MAX_QUEUED:
            break
    raise Refused(f"snapshot: descriptor {fd} is a socketpair with more queued than a snapshot takes along")


def restore(socks: dict, path: str, floor: int) -> dict[int, int]:
    """Each socketpair of ``socks`` (fd -> its entry) made again with its queued messages
    and shutdown state; returns fd -> a new descriptor (above ``floor``) for its end."""
    import socket

    pairs: dict[int, tuple[int, dict]] = {}  # pair -> (type, {end: its entry with the queued data})
    for fd, f in socks.items():
        typ, pair, end = f.get("type"), f.get("pair"), f.get("end")
        data, shutdown, bufs = f.get("data"), f.get("shutdown"), f.get("bufs")
        if typ not in (F.SOCK_STREAM, F.SOCK_DGRAM, F.SOCK_SEQPACKET) or type(pair) is not int or \
                end not in (0, 1) or type(data) is not list or any(type(d) is not bytes for d in data) or \
                sum(map(len, data)) > _MAX_QUEUED or shutdown not in (0, 1, 2, 3) or \
                not (type(bufs) is tuple and len(bufs) == 2 and all(type(b) is int and 0 < b < 1 << 30 for b in bufs)):
            raise SnapshotError(f"{path}: descriptor {fd}: a bad socketpair")
        known, ends = pairs.setdefault(pair, (typ, {}))
        if known != typ:
            raise SnapshotError(f"{path}: descriptor {fd}: a bad socketpair")
        if data or end not in ends:
            ends[end] = f
    made: dict[int, list] = {}
    for pair, (typ, ends) in pairs.items():
        try:
            a, b = socket.socketpair(socket.AF_UNIX, typ | socket.SOCK_CLOEXEC)
        except OSError as e:
            raise SnapshotError(f"{path}: no socketpair ({e.strerror})") from None
        socks_ = [a, b]
        try:
            for end, f in ends.items():  # (the sizes it had: what was queued fits again; the kernel doubles them)
                snd, rcv = f["bufs"]
                socks_[end].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, max(snd // 2, 1))
                socks_[end].setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, max(rcv // 2, 1))
            for end, f in ends.items():  # each end's messages, sent to it by the other end
                for message in f["data"]:
                    if socks_[1 - end].send(message, socket.MSG_DONTWAIT) != len(message):
                        raise BlockingIOError
            for end, f in ends.items():
                how = {1: socket.SHUT_RD, 2: socket.SHUT_WR, 3: socket.SHUT_RDWR}.get(f["shutdown"])
                if how is not None:
                    socks_[end].shutdown(how)
        except OSError as e:
            a.close()
            b.close()
            raise SnapshotError(f"{path}: a socketpair's queued messages cannot be queued again "
                                f"({e.strerror or 'no room'})") from None
        made[pair] = socks_
        if all(f.get("lone") for f in ends.values()):
            socks_[1].close()  # (its peer was gone: the other end of the new pair goes too)
    from kontain.kernel.snapfds import above

    try:
        return {fd: above(os.dup(made[f["pair"]][f["end"]].fileno()), floor) for fd, f in socks.items()}
    finally:
        for pair_socks in made.values():
            for s in pair_socks:
                s.close()
