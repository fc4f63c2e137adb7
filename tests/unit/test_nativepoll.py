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
    assert nativepoll.C_PATCHED < nativepoll.C_VC and nativepoll.V_NATIVE < nativepoll.VC_WORDS
    assert top <= nativepoll.C_NR and nativepoll.C_NR + 64 <= nativepoll.C_SITES < nativepoll.WORDS
    assert nativepoll.WORDS == nativepoll.C_SITES + 2 * (1 << nativepoll.SITES_BITS)
