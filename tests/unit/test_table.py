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
