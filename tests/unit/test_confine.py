"""The monitor's seccomp filter (kontain/confine.py), run through a small classic-BPF
interpreter: what it allows and refuses, and that it never refuses a call the syscall
table serves."""

import struct

import pytest

from kontain import confine
from kontain.abi.syscalls import NR
from kontain.syscalls.table import TABLE

X86_64, I386 = 0xC000003E, 0x40000003
ERRNO_ENOSYS = confine.SECCOMP_RET_ERRNO | 38


def run_filter(program: bytes, nr: int, arch: int = X86_64, arg0: int = 0) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    pc, a = 0, 0
    for _ in range(len(insns) + 1):
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code == 0x15:  # jeq
            pc += 1 + (jt if a == k else jf)
        elif code == 0x35:  # jge
            pc += 1 + (jt if a >= k else jf)
        elif code == 0x06:  # ret
            return k
        else:
            raise AssertionError(f"unexpected BPF instruction {code:#x}")
    raise AssertionError("the filter does not end")


def test_the_filter_refuses_what_km_never_needs():
    prog = confine.monitor_filter()
    for name in confine.DENIED:
        if name in NR:
            assert run_filter(prog, NR[name]) == ERRNO_ENOSYS, name


def test_the_filter_allows_everything_km_serves():
    prog = confine.monitor_filter()
    for e in TABLE:
        assert run_filter(prog, e.nr) == confine.SECCOMP_RET_ALLOW, e.name
    for name in ("ioctl", "mmap", "futex", "process_vm_readv", "landlock_restrict_self", "rt_sigtimedwait"):
        assert run_filter(prog, NR[name]) == confine.SECCOMP_RET_ALLOW, name


@pytest.mark.parametrize("flags, allowed", [(confine.CLONE_FILES, True), (0x20000, False), (0x10000000, False),
                                            (confine.CLONE_FILES | 0x200, False)])
def test_unshare_only_of_the_descriptor_table(flags, allowed):
    got = run_filter(confine.monitor_filter(), NR["unshare"], arg0=flags)
    assert got == (confine.SECCOMP_RET_ALLOW if allowed else ERRNO_ENOSYS)


def test_other_abis_are_refused():
    prog = confine.monitor_filter()
    assert run_filter(prog, 1, arch=I386) == ERRNO_ENOSYS
    assert run_filter(prog, 0x40000000 | 1) == ERRNO_ENOSYS  # x32


def test_nothing_the_table_serves_is_denied():
    """Serving one of these for the program (mount, setns...) means taking it off the
    monitor's filter first."""
    served = {e.name for e in TABLE}
    assert not served & set(confine.DENIED)
