"""The signal queue's bound (kernel/signals.py): what km keeps queued whatever
RLIMIT_SIGPENDING says, checked on the pending sets themselves (filling it through a
guest takes 65536 exits)."""

import resource

from kontain.abi import signals as S
from kontain.abi.signals import siginfo
from kontain.kernel import signals


def test_queue_bounded_even_when_the_limit_is_not(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda r: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    monkeypatch.setattr(signals.QUEUED, "count", 0)
    p = signals.Pending()
    rt = S.SIGRTMIN + 1
    queued = signals.QUEUE_MAX
    for i in range(queued):
        assert p.add(rt, siginfo(rt, S.SI_QUEUE, value=i))
    assert not p.add(rt, siginfo(rt, S.SI_QUEUE))  # sigqueue: EAGAIN
    assert not p.add(rt, siginfo(rt, S.SI_TKILL))  # tgkill: EAGAIN
    assert p.add(rt, siginfo(rt, S.SI_USER))  # kill: pending without its siginfo
    assert p.add(S.SIGUSR1, siginfo(S.SIGUSR1, S.SI_QUEUE))  # a standard signal: the same
    assert p.take(S.SIGUSR1)[8:12] == b"\0\0\0\0"  # SI_USER, no sender
    assert sum(len(q) for q in p.infos.values()) == queued == signals.QUEUED.count
    assert p.take(rt) == siginfo(rt, S.SI_QUEUE, value=0)
    assert p.add(rt, siginfo(rt, S.SI_QUEUE))  # room for one again
    p.discard(rt)
    assert signals.QUEUED.count == 0 and not p.mask


def test_timer_signals_are_not_counted(monkeypatch):
    monkeypatch.setattr(signals.QUEUED, "count", signals.QUEUE_MAX)
    p = signals.Pending()
    rt = S.SIGRTMIN + 2
    assert p.add(rt, siginfo(rt, S.SI_TIMER))
    assert p.infos[rt] and signals.QUEUED.count == signals.QUEUE_MAX


def test_a_signal_before_the_program_is_loaded():
    """km's signal thread runs before the program is loaded (a container's SIGTERM can come
    that early): an ignored signal is discarded, a SIGTERM stays pending for the program,
    and nothing in km fails (it once looked up a main thread that did not exist yet)."""
    from kontain.kernel.process import Process
    from kontain.spec import Spec

    p = Process(Spec("hello"), None)
    assert p.main_task is None
    assert p.post(S.SIGWINCH, siginfo(S.SIGWINCH, S.SI_USER)) == 0  # ignored by default: gone
    assert p.post(S.SIGTERM, siginfo(S.SIGTERM, S.SI_USER)) == 0
    assert p.shared_pending.mask == signals.sigbit(S.SIGTERM)
    p.shared_pending.discard(S.SIGTERM)


def test_a_restore_in_place_keeps_what_was_posted_since_the_save(monkeypatch):
    """Process.restore (--pause-check: save, restore, while the program is paused) puts
    the saved pending sets back: signals posted in between (km's signal thread, a
    timer) are what Pending.since gives, to post again; before, they were lost."""
    monkeypatch.setattr(signals.QUEUED, "count", 0)
    p = signals.Pending()
    rt = S.SIGRTMIN + 2
    p.add(S.SIGUSR1, siginfo(S.SIGUSR1, S.SI_USER, pid=7))
    p.add(rt, siginfo(rt, S.SI_QUEUE, value=1))
    saved = p.save()
    assert p.since(saved) == []
    p.add(S.SIGUSR1, siginfo(S.SIGUSR1, S.SI_USER, pid=8))  # pending already: one signal, nothing new
    p.add(S.SIGTERM, siginfo(S.SIGTERM, S.SI_USER, pid=9))
    p.add(rt, siginfo(rt, S.SI_QUEUE, value=2))
    posted = p.since(saved)
    assert sorted(posted) == [(S.SIGTERM, siginfo(S.SIGTERM, S.SI_USER, pid=9)), (rt, siginfo(rt, S.SI_QUEUE, value=2))]
    p.restore(saved, None)
    for sig, info in posted:
        p.add(sig, info)
    assert [p.take(rt) for _ in range(2)] == [siginfo(rt, S.SI_QUEUE, value=1), siginfo(rt, S.SI_QUEUE, value=2)]
    assert p.take(S.SIGTERM) == siginfo(S.SIGTERM, S.SI_USER, pid=9)
    assert p.take(S.SIGUSR1) == siginfo(S.SIGUSR1, S.SI_USER, pid=7) and not p.mask
