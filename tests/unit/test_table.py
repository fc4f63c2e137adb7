"""The syscall table: in number order, names from the ABI, docs/compat.md current."""

from pathlib import Path

from kontain.abi.syscalls import NAMES
from kontain.syscalls import table

ROOT = Path(__file__).resolve().parents[2]


def test_order_and_names():
    nrs = [e.nr for e in table.TABLE]
    assert nrs == sorted(nrs) and len(set(nrs)) == len(nrs)
    for e in table.TABLE:
        assert NAMES[e.nr] == e.name, e
        assert e.level in (table.FULL, table.PARTIAL)
        assert callable(e.handler)
        assert e.level == table.FULL or e.note, f"{e.name}: a partial entry needs a note"


def test_handlers_indexed_by_number():
    for e in table.TABLE:
        assert table.HANDLERS[e.nr] in (e.handler, table.resolve(e.handler))
    assert table.HANDLERS[101] is None  # ptrace


def test_planned_names_exist():
    for name in table.PLANNED:
        assert name in NAMES, name


def test_compat_doc_is_current():
    assert (ROOT / "docs/compat.md").read_text() == table.compat_markdown(), \
        "docs/compat.md is stale: run `make compat`"


def test_every_handler_takes_the_task_and_six_registers():
    """The dispatcher calls handler(task, a0..a5): a handler that names fewer parameters
    (without *_) would fail on every call."""
    import inspect

    for e in table.TABLE:
        if e.handler is None:
            continue
        try:
            inspect.signature(table.resolve(e.handler)).bind(None, 0, 0, 0, 0, 0, 0)
        except TypeError as err:
            raise AssertionError(f"{e.name}: {err}") from None


def test_pass_through_rows_say_how_to_check_every_argument():
    """A row the host kernel serves names the kind of every argument, and every pointer
    has a size: nothing reaches the host unchecked (syscalls/common.py _convert)."""
    from kontain.syscalls.common import _convert
    from kontain.syscalls.table import TABLE

    passed = [e for e in TABLE if getattr(e.handler, "__qualname__", "").startswith("passthrough.")]
    assert len(passed) > 100
    for e in passed:
        for kind in e.args.split():
            _convert(kind)  # raises for an unsized pointer or an unknown kind


def test_the_facts_of_each_call_are_in_its_row():
    from kontain.abi.syscalls import BLOCKS, NEWFD, NORESTART, NR, POLL, SIGPIPE
    from kontain.syscalls import table

    known = POLL | NORESTART | SIGPIPE | NEWFD | BLOCKS
    assert all(not e.flags & ~known for e in table.TABLE)
    # signal(7): never restarted after a handler, whatever SA_RESTART says
    for name in ("poll", "select", "pause", "nanosleep", "rt_sigsuspend", "rt_sigtimedwait", "clock_nanosleep",
                 "epoll_wait", "pselect6", "ppoll", "epoll_pwait", "semop", "msgsnd", "msgrcv"):
        assert table.FLAGS[NR[name]] & NORESTART, name
    for name in ("write", "writev", "sendto", "sendmsg", "sendmmsg", "splice"):
        assert table.FLAGS[NR[name]] & SIGPIPE, name
    # socket sends say where their MSG_* flags are (MSG_NOSIGNAL spares SIGPIPE)
    assert [table.MSG_FLAGS_ARG[NR[n]] for n in ("sendto", "sendmsg", "sendmmsg")] == [3, 2, 3]
    # the polling tier serves only what the table marks
    assert table.FLAGS[NR["getppid"]] & POLL and not table.FLAGS[NR["read"]] & BLOCKS
    assert not table.FLAGS[NR["readlink"]] & POLL  # (/proc/thread-self: the calling thread's)
