"""CPU faults and signals end the program the way they end it natively: same signal,
and km says what happened on its last line."""

import pytest

from kt import STATIC, build, compare

SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGUSR1, SIGSEGV, SIGTERM = 4, 5, 6, 7, 8, 10, 11, 15

CASES = {
    "null-write": (SIGSEGV, "SIGSEGV at 0x0 (address not mapped)"),
    "null-read": (SIGSEGV, "SIGSEGV at 0x10 (address not mapped)"),
    "wild-read": (SIGSEGV, "SIGSEGV at 0x123456789000 (address not mapped)"),
    "kernel-address": (SIGSEGV, "SIGSEGV at 0xffffffff81000000 (address not mapped)"),
    "noncanonical": (SIGSEGV, "(general protection fault)"),
    "exec-null": (SIGSEGV, "SIGSEGV at 0x0 (address not mapped)"),
    "ud2": (SIGILL, "SIGILL at 0x"),
    "hlt": (SIGSEGV, "general protection fault"),
    "int3": (SIGTRAP, "SIGTRAP at 0x"),
    "divide": (SIGFPE, "(integer divide by zero)"),
    "abort": (SIGABRT, "killed by SIGABRT"),
    "raise-term": (SIGTERM, "killed by SIGTERM"),
    "kill-usr1": (SIGUSR1, "killed by SIGUSR1"),
    "write-readonly": (SIGSEGV, "(invalid permissions)"),
    "unmapped": (SIGSEGV, "(address not mapped)"),
    "prot-none": (SIGSEGV, "(invalid permissions)"),
    "stack-overflow": (SIGSEGV, "(address not mapped)"),
}


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("how", sorted(CASES))
def test_fault(how, variant):
    sig, message = CASES[how]
    native, guest = compare([build("faults", variant), how])
    assert native.returncode == -sig
    assert message in guest.err, guest.err


@pytest.mark.parametrize("variant", STATIC)
def test_sigbus_past_end_of_file(variant, tmp):
    native, guest = compare([build("faults", variant), "sigbus", str(tmp / "f")])
    assert native.returncode == -SIGBUS
    assert "killed by SIGBUS" in guest.err


def test_ignored_signal_survives():
    native, guest = compare([build("faults"), "ignored-usr1"])
    assert guest.returncode == 3
