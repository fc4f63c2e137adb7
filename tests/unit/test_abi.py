"""The ABI tables agree with the host's C headers."""

import re
from pathlib import Path

from kontain.abi import signals, syscalls

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def test_syscall_numbers_match_headers():
    assert UNISTD.exists(), "linux-libc-dev is needed for this test"
    for m in re.finditer(r"#define __NR_(\w+) (\d+)", UNISTD.read_text()):
        name, nr = m.group(1), int(m.group(2))
        assert syscalls.NAMES[nr] == name, (nr, name)
        assert syscalls.NR[name] == nr


def test_well_known_numbers():
    assert syscalls.NR["read"] == 0 and syscalls.NR["exit_group"] == 231 and syscalls.NR["clone3"] == 435


def test_signal_names_and_defaults():
    assert signals.name(11) == "SIGSEGV" and signals.name(34) == "SIGRT2"
    assert signals.default_action(signals.SIGCHLD) == signals.IGNORE
    assert signals.default_action(signals.SIGSEGV) == signals.CORE
    assert signals.default_action(signals.SIGTERM) == signals.TERM
