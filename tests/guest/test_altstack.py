"""The alternate signal stack (tests/programs/altstack.c) as Linux keeps it: the flags
sigaltstack reports and a frame saves, EPERM while on it, SS_AUTODISARM, rt_sigreturn
taking the stack back from the frame unless the handler ran on it, and a frame that no
longer fits on it killing the program with SIGSEGV; one a read-only altstack cannot take
turned into a SIGSEGV the program's handler takes (LTP's signal06).  Each mode natively
and under km, with the C libraries' own signal code."""

import pytest

from kt import STATIC, build, compare

MODES = ("nested", "legacy", "autodisarm", "restore", "edit", "overflow", "readonly", "thread")


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("mode", MODES)
def test_altstack(mode, variant):
    native, _ = compare([build("altstack", variant, ("-lpthread",)), mode])
    if mode == "overflow":
        assert native.returncode == -11
    else:
        assert native.returncode == 0 and native.stdout
