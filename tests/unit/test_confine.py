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


def run_filter(program: bytes, nr: int, arch: int = X86_64, arg0: int = 0, arg1: int = 0, arg2: int = 0) -> int:
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0, arg1, arg2, 0, 0, 0)
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
        elif code == 0x45:  # jset
            pc += 1 + (jt if a & k else jf)
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
    """(but the calls km answers itself, test_no_call_the_filter_refuses_passes_through)"""
    prog = confine.monitor_filter()
    for e in TABLE:
        if e.name not in confine.DENIED and e.name not in ("unshare", "setns"):  # (their flags: below)
            assert run_filter(prog, e.nr) == confine.SECCOMP_RET_ALLOW, e.name
    for name in ("ioctl", "mmap", "futex", "process_vm_readv", "landlock_restrict_self", "rt_sigtimedwait"):
        assert run_filter(prog, NR[name]) == confine.SECCOMP_RET_ALLOW, name


NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET = 0x20000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000


@pytest.mark.parametrize("flags, allowed", [(confine.CLONE_FILES, True), (NEWNS, False), (NEWUSER, False),
                                            (confine.CLONE_FILES | confine.CLONE_FS, True), (NEWNET, True),
                                            (NEWUTS, True), (NEWIPC | NEWNET | NEWUTS, True),
                                            (NEWNET | NEWPID, False), (NEWUTS | confine.CLONE_FS, True),
                                            (confine.CLONE_FS, True), (0x40000, False),  # CLONE_SYSVSEM
                                            (confine.CLONE_FS | NEWNS, False), (0, True)])
def test_unshare_only_of_the_descriptor_table_fs_context_and_served_namespaces(flags, allowed):
    got = run_filter(confine.monitor_filter(), NR["unshare"], arg0=flags)
    assert got == (confine.SECCOMP_RET_ALLOW if allowed else ERRNO_ENOSYS)


@pytest.mark.parametrize("nstype, allowed", [(0, False), (NEWNS, False), (NEWUSER, False), (NEWPID, False),
                                             (NEWNET, True), (NEWUTS, True), (NEWIPC, True),
                                             (NEWNET | NEWUTS, True), (NEWNET | NEWNS, False)])
def test_setns_only_into_served_namespaces_named(nstype, allowed):
    got = run_filter(confine.monitor_filter(), NR["setns"], arg0=3, arg1=nstype)
    assert got == (confine.SECCOMP_RET_ALLOW if allowed else ERRNO_ENOSYS)


@pytest.mark.parametrize("advice, allowed", [(0, True), (4, True), (14, True), (100, False), (101, False),
                                            (102, True), (25, True)])
def test_madvise_without_memory_failure_injection(advice, allowed):
    got = run_filter(confine.monitor_filter(), NR["madvise"], arg0=0x1000, arg1=0x1000, arg2=advice)
    assert got == (confine.SECCOMP_RET_ALLOW if allowed else ERRNO_ENOSYS)


def test_the_other_calls_after_the_checks_are_allowed():
    prog = confine.monitor_filter()
    for name in ("getpid", "clone", "write"):
        assert run_filter(prog, NR[name], arg0=NEWUSER, arg1=0) == confine.SECCOMP_RET_ALLOW


def test_other_abis_are_refused():
    prog = confine.monitor_filter()
    assert run_filter(prog, 1, arch=I386) == ERRNO_ENOSYS
    assert run_filter(prog, 0x40000000 | 1) == ERRNO_ENOSYS  # x32


class _Task:
    """Just enough of a task for the handlers of the calls the filter refuses on the
    host: every argument reads as the path "/"."""

    class mem:
        @staticmethod
        def cstr(addr, limit=4096, too_long=36):
            return b"/"

        @staticmethod
        def read(addr, n):
            return b"/".ljust(n, b"\0")

        @staticmethod
        def host(addr, n):
            return addr

        @staticmethod
        def contains(addr, n):
            return True

    class fds:
        @staticmethod
        def check(fd):
            return fd & 0xFFFFFFFF

    class process:
        tasks = {1: None}
        procfd = -1


def _passed_through(handler) -> int | None:
    """The host call a pass-through handler (common.passthrough) makes, else None."""
    code = getattr(handler, "__code__", None)
    if code is None or "nr" not in code.co_freevars:
        return None
    return handler.__closure__[code.co_freevars.index("nr")].cell_contents


def test_no_call_the_filter_refuses_passes_through(monkeypatch):
    """km serves some calls the filter refuses on the host (mount, setns and unshare of
    most namespaces...) by answering them itself: none of their handlers may make a host
    call the filter refuses, directly or as a pass-through, whatever the arguments."""
    from kontain import native
    from kontain.errors import GuestError
    from kontain.syscalls.table import resolve

    denied = {NR[name] for name in confine.DENIED if name in NR}
    for e in TABLE:
        assert _passed_through(resolve(e.handler)) not in denied, e.name
    made = []

    def recording(nr, *args):
        made.append((nr, args))
        return -38  # ENOSYS, as the filter would answer

    monkeypatch.setattr(native, "syscall", recording)
    served = [e for e in TABLE if e.name in confine.DENIED or e.name in ("unshare", "setns")]
    assert {e.name for e in served} >= {"mount", "umount2", "pivot_root", "setns", "unshare"}
    prog = confine.monitor_filter()
    for e in served:
        handler = resolve(e.handler)
        for args in ((0,) * 6, (-1,) * 6, (0x7FFFFFFF,) * 6, (3, 0x40000000, 0, 0, 0, 0), (0x20000, 0, 0, 0, 0, 0),
                     (NEWNET | NEWUTS, 0, 0, 0, 0, 0), (3, NEWUTS, 0, 0, 0, 0)):
            made.clear()
            try:
                handler(_Task, *args)
            except GuestError:
                pass
            for nr, call_args in made:
                assert nr not in denied, (e.name, args)
                if nr in (NR["unshare"], NR["setns"]):  # what the filter lets through, only
                    a0, a1 = (list(call_args) + [0, 0])[:2]
                    assert run_filter(prog, nr, arg0=a0 & 0xFFFFFFFF, arg1=a1 & 0xFFFFFFFF) == \
                        confine.SECCOMP_RET_ALLOW, (e.name, args, call_args)
