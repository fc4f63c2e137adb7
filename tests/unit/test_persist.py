"""Save and restore (Firecracker's Persist): each stateful component gives its state as
plain data and takes it back.  Round trips of the signal state, the timers, the
descriptor table and the address space with its slots; the vCPUs' part is run on real
KVM by tests/guest/test_runstate.py (km --pause-check saves and restores the whole
program at every pause)."""

import copy
import os
import pickle
import struct

import pytest

from kontain.abi import signals as S
from kontain.abi.signals import siginfo
from kontain.errors import KmError
from kontain.kernel import signals
from kontain.kernel.fdtable import FdTable
from kontain.kernel.timers import TimerInfo, Timers

from .test_mm import ANON, PAGE, RW, Recorder, check_slots, space  # noqa: F401 (a fixture)


def plain(state):
    """Plain data: it pickles, and a deep copy is equal to it."""
    pickle.dumps(state)
    assert copy.deepcopy(state) == state
    return state


def timer_info(sig: int, timerid: int, overrun: int = 0) -> bytes:
    info = bytearray(siginfo(sig, S.SI_TIMER))
    struct.pack_into("<ii", info, 16, timerid, overrun)
    return bytes(info)


@pytest.fixture
def queued(monkeypatch):
    monkeypatch.setattr(signals.QUEUED, "count", 0)
    return signals.QUEUED


def test_pending_round_trip_keeps_order_count_and_timer_links(queued):
    rt = S.SIGRTMIN + 3
    timers = Timers()
    timers.restore({"targets": {7: 0}, "overruns": {7: 2}})
    timers_timer = timers.timers[7]
    p = signals.Pending()
    p.add(S.SIGUSR1, siginfo(S.SIGUSR1, S.SI_TKILL, pid=5))
    for v in range(3):
        p.add(rt, siginfo(rt, S.SI_QUEUE, value=v))
    info = timers.arrived(timer_info(S.SIGALRM, 7))
    p.add(S.SIGALRM, info)
    assert timers.arrived(timer_info(S.SIGALRM, 7, overrun=4)) is None  # overruns meanwhile
    assert queued.count == 4
    state = plain({"pending": p.save(), "timers": timers.save()})

    p.discard_all()  # the program goes on meanwhile: everything taken
    assert queued.count == 0 and timers_timer.queued is None

    timers.restore(state["timers"])
    p.restore(state["pending"], timers)
    assert p.save() == state["pending"] and queued.count == 4
    assert [p.take(rt) for _ in range(3)] == [siginfo(rt, S.SI_QUEUE, value=v) for v in range(3)]
    t = timers.timers[7]
    assert type(t.queued) is TimerInfo and t.queued.where is p
    assert timers.arrived(timer_info(S.SIGALRM, 7)) is None  # still the one pending signal
    got = p.take(S.SIGALRM)
    assert struct.unpack_from("<ii", got, 16) == (7, 6) and t.overrun_last == 6 and t.queued is None
    assert p.take(S.SIGUSR1) == siginfo(S.SIGUSR1, S.SI_TKILL, pid=5)
    assert p.mask == 0 and queued.count == 0


def test_restore_replaces_what_is_pending(queued):
    p = signals.Pending()
    empty = p.save()
    p.add(S.SIGUSR2, siginfo(S.SIGUSR2))
    p.restore(empty, Timers())
    assert p.mask == 0 and not p.infos and queued.count == 0


def test_a_timer_deleted_meanwhile_leaves_a_plain_siginfo(queued):
    timers = Timers()
    timers.restore({"targets": {3: 0}, "overruns": {3: 0}})
    p = signals.Pending()
    p.add(S.SIGALRM, timers.arrived(timer_info(S.SIGALRM, 3)))
    state = p.save()
    p.discard_all()
    p.restore(state, Timers())
    assert struct.unpack_from("<i", p.take(S.SIGALRM), 16)[0] == 3 and queued.count == 0


def test_signal_actions_round_trip():
    a = signals.SignalActions()
    a.set(S.SIGUSR1, (0x401000, S.SA_SIGINFO | S.SA_RESTORER, 0x402000, 1 << 5))
    a.set(S.SIGTERM, (S.SIG_IGN, 0, 0, 0))
    state = plain(a.save())
    b = signals.SignalActions()
    b.restore(state)
    assert b.save() == state and b.ignored(S.SIGTERM) and b.handler(S.SIGUSR1) == 0x401000
    with pytest.raises(ValueError):
        b.restore(state[:-1])


def test_fd_table_round_trip_and_a_changed_descriptor_refused():
    t = FdTable()
    r, w = os.pipe()
    try:
        t.new(w)
        t.set_nofile(100, 200)
        state = plain(t.save())
        assert state["open"][r][2] == os.O_RDONLY and w in state["open"]
        t.set_nofile(10, 20)
        t.restore(state)
        assert (t.soft, t.hard) == (100, 200) and t.save() == state
        with open("/dev/null", "rb") as f:  # another file under the same number
            os.dup2(f.fileno(), w)
        with pytest.raises(KmError, match=f"descriptor {w} "):
            t.restore(state)
    finally:
        os.close(r)
        os.close(w)


def test_address_space_and_slots_round_trip(space):  # noqa: F811
    a = space.mmap(0, 16 * PAGE, RW, ANON, -1, 0)
    space.mmap(0, 4 * PAGE, 0, ANON, -1, 0)
    space.munmap(a + 4 * PAGE, 4 * PAGE)  # two mappings, a parked slot
    state = plain({"mm": space.save(), "slots": space.slots.save()})
    before = [(v.start, v.end, v.prot, v.flags) for v in space]

    space.munmap(a, 16 * PAGE)  # the bookkeeping goes on; put the mappings back as they were
    space.mmap(a, 4 * PAGE, RW, ANON | 0x10, -1, 0)  # MAP_FIXED
    space.mmap(a + 8 * PAGE, 8 * PAGE, RW, ANON | 0x10, -1, 0)
    calls = space.rec.calls
    space.slots.restore(state["slots"])
    space.restore(state["mm"])
    assert [(v.start, v.end, v.prot, v.flags) for v in space] == before
    assert space.save() == state["mm"] and space.slots.save() == state["slots"]
    check_slots(space)  # KVM's slots (the recorder's) are the saved ones again
    assert space.rec.calls > calls
    calls = space.rec.calls
    space.slots.restore(state["slots"])  # nothing changed: KVM is not called
    assert space.rec.calls == calls
