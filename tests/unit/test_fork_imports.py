"""kernel/fork.py's _imports_quiet: a fork waits for another thread's import to end, and
no new import starts while it holds the lock (a child forked mid-import found the module
half made, its lock held forever by a thread it does not have)."""

import _imp
import sys
import threading
import time

from kontain.kernel import fork


def test_a_fork_waits_for_an_import_under_way(tmp_path, monkeypatch):
    (tmp_path / "km_slow_module.py").write_text(
        "import time\nSTARTED = time.monotonic()\ntime.sleep(0.3)\nDONE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    started = threading.Event()

    def importer():
        started.set()
        import km_slow_module  # noqa: F401

    t = threading.Thread(target=importer)
    t.start()
    started.wait()
    deadline = time.monotonic() + 5
    while "km_slow_module" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.001)  # (its code is running: the module is in sys.modules, half made)
    assert "km_slow_module" in sys.modules
    fork._imports_quiet()
    try:
        assert getattr(sys.modules["km_slow_module"], "DONE", False)  # (the import ended first)
    finally:
        _imp.release_lock()
    t.join()
    sys.modules.pop("km_slow_module", None)


def test_no_import_starts_while_it_is_held(tmp_path, monkeypatch):
    (tmp_path / "km_later_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fork._imports_quiet()
    done = threading.Event()

    def importer():
        import km_later_module  # noqa: F401
        done.set()

    t = threading.Thread(target=importer)
    try:
        t.start()
        assert not done.wait(0.2)
    finally:
        _imp.release_lock()
    assert done.wait(5)
    t.join()
    sys.modules.pop("km_later_module", None)
