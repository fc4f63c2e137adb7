"""The km server's request (cli/server.py): what client.situation() writes is read back
whole, over a real socket with its descriptors; a truncated or oversized message is
dropped; and a malformed field either fails the Request with IndexError or ValueError
(the worker then answers "no" and the client starts directly) or is refused by
``refusal``; nothing else may escape, since the worker would die without an answer
(or, after its "ok", leave the client to end as if killed)."""

import os
import resource
import socket
import sys

import pytest

from kontain.abi.flags import RLIM_INFINITY
from kontain.cli import client, server

NAMES = ("umask", "mask", "ignored", "cwd", "ns", "groups", "cpus", "limits", "numbers", "cloexec", "has_cwd")
FLOOR = 1 << 20


@pytest.fixture
def situation():
    fields, fds, cwd_fd = client.situation(-1)
    yield fields, fds + [cwd_fd]
    os.close(cwd_fd)


def change(fields, **new):
    base = len(fields) - len(NAMES)
    out = list(fields)
    for name, value in new.items():
        out[base + NAMES.index(name)] = value
    return out


def answer(fields, fds):
    """What a worker makes of a request before it answers: "malformed" (the exceptions
    server._worker catches), else the refusal ('' when it takes the client), having read
    what it reads after its "ok" (the limits that become Process.rlimits)."""
    try:
        req = server.Request(fields, fds)
    except (IndexError, ValueError):
        return "malformed"
    why = req.refusal(FLOOR)
    if not why:
        [req.rlimit(r) for r in (resource.RLIMIT_AS, resource.RLIMIT_DATA)]
    return why


def without_pytest(env):
    return {k: v for k, v in env.items() if k != b"PYTEST_CURRENT_TEST"}  # (it changes from setup to call)


def test_the_client_situation_round_trips(situation):
    fields, fds = situation
    req = server.Request(fields, fds)
    assert req.argv == [os.fsencode(a) for a in sys.argv[1:]]
    assert without_pytest(req.env) == without_pytest(os.environb)
    assert req.cwd == os.getcwdb() and req.cwd_fd == fds[-1]
    assert req.numbers == req.fds == fds[:-1] and len(req.cloexec) == len(fds) - 1
    assert req.cpus == sorted(os.sched_getaffinity(0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert req.limits[resource.RLIMIT_NOFILE] == (soft, hard)
    want = resource.getrlimit(resource.RLIMIT_CPU)
    assert req.rlimit(resource.RLIMIT_CPU) == tuple(RLIM_INFINITY if v == -1 else v for v in want)
    assert req.refusal(FLOOR) == ""  # this very process may be served


def test_over_the_wire_with_descriptors(situation):
    fields, _ = situation
    payload = b"\0".join(fields)
    r, w = os.pipe()
    a, b = socket.socketpair()
    got = []
    try:
        a.sendmsg([len(payload).to_bytes(8, "little") + payload],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, r.to_bytes(4, "little") + w.to_bytes(4, "little"))])
        back, got = server._receive(b)
        assert back == fields and len(got) == 2
        assert [os.fstat(fd).st_ino for fd in got] == [os.fstat(r).st_ino, os.fstat(w).st_ino]
    finally:
        for fd in (r, w, *got):
            os.close(fd)
        a.close()
        b.close()


@pytest.mark.parametrize("message", [
    b"",  # the client went away
    b"\x05\0\0",  # a truncated length
    (100).to_bytes(8, "little") + b"km-request-1\0",  # a truncated body
    ((64 << 20) + 1).to_bytes(8, "little"),  # too large: not read at all
])
def test_truncated_or_oversized_messages_are_dropped(message):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(message)
        a.shutdown(socket.SHUT_WR)
        assert server._receive(b) is None


def test_malformed_requests_are_malformed(situation):
    fields, fds = situation
    n = int(fields[1])
    for bad in ([], [b""], [b"km-request-0"] + fields[1:], fields[:1] + [b"x"] + fields[2:],
                fields[:1] + [b"1000"] + fields[2:], fields[:2 + n] + [b"-"] + fields[3 + n:], fields[:-1],
                change(fields, umask=b"022x"), change(fields, limits=b"1:x"), change(fields, cpus=b"0,a")):
        assert answer(bad, fds) == "malformed", bad[:3]
    assert answer(fields, fds[:-2]) == "malformed"  # fewer descriptors than numbers
    assert answer(change(fields, cloexec=b"0,1" * len(fds)), fds) == "malformed"  # flags and descriptors differ


def test_requests_this_worker_cannot_serve_are_refused(situation):
    fields, fds = situation
    assert answer(change(fields, ns=b"1,2,3"), fds) == "other namespaces"
    assert answer(change(fields, groups=b"12345"), fds) == "other groups"
    assert answer(change(fields, limits=b"0:0"), fds) == "malformed"  # every limit, or none
    limits = fields[len(fields) - len(NAMES) + NAMES.index("limits")].split()
    limits[resource.RLIMIT_NOFILE] = b"0:0"
    assert answer(change(fields, limits=b" ".join(limits)), fds) == "another descriptor limit"
    numbers = b",".join(str(x).encode() for x in [*fds[:-2], FLOOR])
    assert answer(change(fields, numbers=numbers), fds) == "a descriptor among the monitor's"
    assert answer(fields, fds) == ""
    assert answer(fields + [b"later"], fds) == ""  # fields past the known ones: ignored (VERSION names the format)


@pytest.mark.parametrize("field, value", [
    ("ns", b"\xff"), ("groups", b"\xfe"), ("limits", b"0:0 " * 7 + b"%d:%d" % resource.getrlimit(7)),
    ("limits", b"1:2:3 " + b"0:0 " * 6 + b"%d:%d" % resource.getrlimit(7) + b" 0:0" * 8), ("cpus", b"-1"),
    ("numbers", b"-1"), ("umask", b"-1"),
], ids=["ns-not-utf8", "groups-not-utf8", "8-limits", "limit-not-a-pair", "negative-cpu", "negative-fd", "umask"])
def test_fields_that_would_kill_the_worker_are_refused(situation, field, value):
    fields, fds = situation
    try:
        why = answer(change(fields, **{field: value}), fds)
    except Exception as e:
        raise AssertionError(f"escaped: {e!r}") from None
    assert why != ""
