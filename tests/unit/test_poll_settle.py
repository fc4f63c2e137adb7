"""Poller.settle: a vCPU kicked inside its poll stub is moved to before its syscall (to run
again after the signal handler) or after it (with its result), from every point of the
stub and every state of its slot.  The registers and the slot are plain memory here; the
stub's offsets are the assembled ones (guest_code.py)."""

import types

import pytest

from kontain import native
from kontain.arch.x86_64 import guest_code as G
from kontain.arch.x86_64 import layout as L
from kontain.kernel import poll
from kontain.kvm import abi as k

NR, ARG2, RESULT, RCX, R11 = 110, 0x1234, 4242, 0x401002, 0x246


class FakeVcpu:
    id = 3

    def __init__(self):
        self.dirty = False

    def mark_regs_dirty(self):
        self.dirty = True


class FakeTask:
    def __init__(self):
        self.q = [0] * (k.RFLAGS + 1)
        self.vcpu = FakeVcpu()


def setup(offset: int, state: int, *, serving: bool = False):
    p = object.__new__(poll.Poller)
    p.p = types.SimpleNamespace(rewriter=None)  # (no rewritten sites: a call runs again from its `syscall`)
    task = FakeTask()
    view = memoryview(bytearray(128))
    slot = poll.Slot(task, native.address_of(view.obj), view)
    p.slots = {task.vcpu.id: slot}
    p.serving = slot if serving else None
    p.ctl = None  # (no native poller unless a test gives one: ``control``)
    p.carried = 0
    slot.u32[poll.STATE] = state
    slot.q[poll.NR] = NR
    slot.q[poll.ARG0 + 2] = ARG2
    slot.q[poll.RESULT] = RESULT
    q = task.q
    q[k.RIP] = L.poll_stub(task.vcpu.id) + offset
    q[k.RCX], q[k.R11], q[k.RFLAGS] = RCX, R11, 0x297  # the stub's compares changed the flags
    # (the stub loads RAX from the slot at poll_withdrawn: at poll_exit it holds the call again)
    q[k.RAX], q[k.RDX] = NR if offset < G.POLL_POSTED or offset == G.POLL_EXIT else 0xDEAD, ARG2
    return p, task, slot


def control():
    """A native poller's control block (plain memory: no poller runs)."""
    from kontain.kernel import nativepoll

    return nativepoll.Control(types.SimpleNamespace(base=0, size=0), 1 << 20, [False] * 512, False, bytearray(8))


def restarted(task, slot):
    q = task.q
    return (q[k.RIP] == RCX - 2 and q[k.RAX] == NR and q[k.RDX] == ARG2 and q[k.RFLAGS] == R11
            and slot.u32[poll.STATE] == poll.IDLE and task.vcpu.dirty)


def completed(task, slot):
    q = task.q
    return (q[k.RIP] == RCX and q[k.RAX] == RESULT and q[k.RFLAGS] == R11 and slot.u32[poll.STATE] == poll.IDLE
            and task.vcpu.dirty)


@pytest.mark.parametrize(("offset", "state"), [
    (G.POLL_ENTRY, poll.IDLE), (G.POLL_ENTRY + 0x20, poll.IDLE), (G.POLL_POSTED - 1, poll.IDLE),  # not posted
    (G.POLL_POSTED, poll.POSTED),  # posted: taken back
    (G.POLL_POSTED, poll.TAKEN),  # "taken" written by the program itself: nobody will answer, do not wait
    (G.POLL_POSTED, poll.DECLINED),
    (G.POLL_WITHDRAWN, poll.IDLE), (G.POLL_EXIT, poll.IDLE),  # taken back, about to exit
    (G.POLL_DECLINED, poll.IDLE), (G.POLL_DECLINED + 10, poll.IDLE),  # declined, on the way to the exit
])
def test_restarts_before_the_call(offset, state):
    p, task, slot = setup(offset, state)
    assert p.settle(task) is None and restarted(task, slot)


@pytest.mark.parametrize("offset", [G.POLL_ENTRY, G.POLL_EXIT])
def test_a_call_never_posted_is_the_registers_one(offset):
    """A call the stub does not post (not in its map, or the slot off) jumps from
    poll_entry straight to poll_exit: the slot still holds an older call, which must not
    replace the one in the registers (the stale getppid made instead of an
    rt_sigprocmask left a thread with every signal blocked: test_runstate)."""
    p, task, slot = setup(offset, poll.IDLE)
    slot.q[poll.NR], slot.q[poll.ARG0 + 2] = 39, 0x777  # an older call's
    assert p.settle(task) is None and restarted(task, slot)


@pytest.mark.parametrize(("offset", "state"), [
    (G.POLL_POSTED, poll.DONE), (G.POLL_POSTED, poll.DONE_EXIT),  # answered while spinning
    (G.POLL_DONE, poll.DONE), (G.POLL_DONE, poll.DONE_EXIT),  # in the answer path
    (G.POLL_DECLINED - 2, poll.IDLE),  # consumed by the stub, at its last `jmp *%rcx`
    (G.POLL_DONE_EXIT, poll.DONE_EXIT),
])
def test_completes_after_the_call(offset, state):
    p, task, slot = setup(offset, state)
    assert p.settle(task) == (NR, RESULT) and completed(task, slot)


@pytest.mark.parametrize("offset", [G.POLL_EXIT + 2, G.POLL_END, -1])
def test_after_an_exit_or_outside_nothing_changes(offset):
    p, task, slot = setup(offset, poll.IDLE)
    before = list(task.q)
    assert p.settle(task) is None and task.q == before and not task.vcpu.dirty


@pytest.mark.parametrize("who", ["python", "native"])
def test_waits_for_a_call_a_poller_is_making(who):
    """A call taken by a poller (Python's, or the native one: its control block's
    C_SERVING names the vCPU) is waited for, then completed: run again, it would run
    twice.  The answer comes from another thread a moment later."""
    import threading
    import time

    from kontain.kernel import nativepoll

    p, task, slot = setup(G.POLL_POSTED, poll.TAKEN, serving=who == "python")
    if who == "native":
        p.ctl = control()
        p.ctl.w[nativepoll.C_SERVING] = task.vcpu.id + 1

    def answer():
        time.sleep(0.05)
        slot.u32[poll.STATE] = poll.DONE
        p.serving = None
        if p.ctl is not None:
            p.ctl.w[nativepoll.C_SERVING] = 0

    t = threading.Thread(target=answer)
    t.start()
    try:
        assert p.settle(task) == (NR, RESULT) and completed(task, slot)
    finally:
        t.join()


def test_another_vcpus_native_call_is_not_this_ones():
    """C_SERVING naming another vCPU: this slot's "taken" is the program's own scribble,
    not waited for (nobody would answer it)."""
    from kontain.kernel import nativepoll

    p, task, slot = setup(G.POLL_POSTED, poll.TAKEN)
    p.ctl = control()
    p.ctl.w[nativepoll.C_SERVING] = task.vcpu.id + 2
    assert p.settle(task) is None and restarted(task, slot)


def test_a_call_posted_again_runs_once():
    """The native poller takes a call it does not make (a pipe's read) and posts it again
    for Python (C_SERVING cleared), and Python's poller takes it at once: whatever the
    order, the call either completes through the poller or is restarted by settle, never
    both (it ran twice once: a pipe write twice under --pause-check)."""
    import threading

    from kontain.kernel import nativepoll

    for _ in range(200):
        p, task, slot = setup(G.POLL_POSTED, poll.TAKEN)
        p.ctl = control()
        p.ctl.w[nativepoll.C_SERVING] = task.vcpu.id + 1
        ran = []

        def poller(p=p, slot=slot, ran=ran):
            slot.u32[poll.STATE] = poll.POSTED  # posted again, for Python
            p.ctl.w[nativepoll.C_SERVING] = 0
            p.serving = slot  # Python's _serve: serving first, then the take
            if native.cas32(slot.addr, poll.POSTED, poll.TAKEN) == poll.POSTED:
                ran.append(True)
                slot.u32[poll.STATE] = poll.DONE
            p.serving = None

        t = threading.Thread(target=poller)
        t.start()
        try:
            settled = p.settle(task)
        finally:
            t.join()
        if ran:
            assert settled == (NR, RESULT) and completed(task, slot)
        else:
            assert settled is None and restarted(task, slot)


@pytest.mark.parametrize("offset", [G.POLL_POSTED, G.POLL_DECLINED, G.POLL_EXIT])
def test_a_socket_write_the_native_poller_began_is_not_made_again(offset):
    """The native poller declined a write a socket had taken part of (the carry), for the
    thread to finish; stopped by a signal first (waiting, on its way to the exit, at the
    `out`), the thread's call is over with that part as its result, as a blocking write a
    signal interrupts: made again, the part would be sent twice.  Without a carry a
    declined call runs again, and the block's flag is taken."""
    from kontain.kernel import nativepoll

    for carry in (1000, 0):
        p, task, slot = setup(offset, poll.DECLINED)
        p.ctl = control()
        o = nativepoll.C_VC + task.vcpu.id * nativepoll.VC_WORDS
        p.ctl.w[o + nativepoll.V_DECLINED], p.ctl.w[o + nativepoll.V_CARRY] = 1, carry
        if carry:
            assert p.settle(task) == (NR, carry) and task.q[k.RAX] == carry and task.q[k.RIP] == RCX
        else:
            assert p.settle(task) is None and restarted(task, slot)
        assert p.ctl.declined(task.vcpu.id) == (False, 0) and p.carried == int(carry > 0)


def test_no_thread_for_the_poller_switches_the_slots_off(monkeypatch):
    """A program that set RLIMIT_NPROC to what it has leaves km no thread for its poller:
    starting it fails (RuntimeError, which ended km with a traceback), and the tier stays
    off instead: the slot off and banned, the next switch-on free to try again."""
    import _thread

    p, task, slot = setup(G.POLL_POSTED, poll.IDLE)
    p.lock = _thread.allocate_lock()
    p.active = {task.vcpu.id: slot}
    p._started = True
    slot.u32[poll.ON] = poll.SPIN

    def refuse(*_a):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refuse)
    p._start(0, _thread.allocate_lock(), None)
    assert slot.u32[poll.ON] == 0 and not p.active and not p._started and slot.banned == poll.BACKOFF_MAX


def test_a_slot_the_poller_never_answered_is_off_for_long():
    """A slot switched on whose first MISSES pollable calls all exited unanswered (the
    poller thread had no CPU: a machine kept busy by other processes) is switched off and
    banned for as long as any slot is: each try there cost the program tens of
    milliseconds.  One the poller answered some of stays on until misses outweigh answers,
    and is banned for its own back-off."""
    import _thread

    for answered in (0, 5):
        p, task, slot = setup(G.POLL_POSTED, poll.IDLE)
        p.lock = _thread.allocate_lock()
        p.eager, p.poller_tid, p.backed_off = False, 0, 0
        p.active = {task.vcpu.id: slot}
        slot.u32[poll.ON] = poll.SPIN
        slot.recent = answered
        p.consider(slot)
        if answered:
            assert p.active and slot.u32[poll.ON] == poll.SPIN and slot.banned == 0
            for _ in range(3):
                p.consider(slot)
            assert not p.active and slot.banned == poll.BACKOFF_MIN and p.backed_off == 1
        else:
            assert not p.active and slot.u32[poll.ON] == 0 and slot.banned == poll.BACKOFF_MAX
            assert p.backed_off == 1
