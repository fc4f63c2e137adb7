"""Hostile sizes and pulled limits (tests/programs/hog.c), as an unprivileged user: km
answers each as Linux does (the same output natively and under km), and what the
program makes km copy or keep stays within ``km --memory`` plus the monitor's own
allowance (docs/security.md): none of these attacks grows km past it."""

import os

import pytest

from kt import KM, STATIC, as_user, build, compare, run, user_dir

CAP_MIB = 64
# km's own memory, apart from the program's (docs/security.md): about 14 MiB at start,
# ~25 KiB per thread, ~3 KiB per mapping; the tests here stay under 300 threads
ALLOWANCE_MIB = 32


def _hog():
    return build("hog", "musl", ("-lpthread",))


def _peak(argv, cwd) -> tuple[int, str, str, int]:
    """(exit status, stdout, stderr, peak resident memory in MiB) of the program under
    km: the program reports VmHWM of its /proc/self/status at exit, which is the whole
    km process's (a wait4 from here would count the test runner's own size, which the
    child had before its exec)."""
    r = run(argv, cwd=cwd, env={**os.environ, "HOG_PEAK": "1"})
    peak = [line.split()[1] for line in r.err.splitlines() if line.startswith("VmHWM:")]
    return r.returncode, r.text, r.err, int(peak[0]) // 1024 if peak else -1


def _both(tmp, *args):
    argv = [_hog(), *args]
    native = run(as_user(argv), cwd=user_dir(tmp))
    status, out, err, _ = _peak(as_user(KM + ["--memory", f"{CAP_MIB}M"] + [str(a) for a in argv]), user_dir(tmp))
    assert (status, out) == (native.returncode, native.text), err
    assert "internal error" not in err and "Traceback" not in err, err
    return out


@pytest.mark.parametrize("target", ["/nonexistent", "/bin/true"])
def test_execve_with_huge_arguments(tmp, target):
    """20000 pointers to one 128 KiB string: ENOENT for a missing file (the file is
    looked at first), E2BIG for a real one; km never copies more than Linux would."""
    out = _both(tmp, "argv", target)
    assert ("No such file" if target == "/nonexistent" else "Argument list too long") in out


@pytest.mark.parametrize("variant", STATIC)
def test_execve_pointer_arrays_at_a_page_end(variant):
    """argv and envp arrays whose NULL ends a page with a hole after it: read as they are."""
    compare([build("exec_edge", variant)])


def test_sendmmsg_with_huge_control_data(tmp):
    assert "sendmmsg" in _both(tmp, "cmsg")


def test_select_with_huge_nfds(tmp):
    assert "pselect6 with nfds 2^30: 1 (ok)" in _both(tmp, "select")


def test_mlockall_locks_the_program_not_km(tmp):
    assert "mlockall: ok" in _both(tmp, "mlockall")


def test_no_process_left_for_threads_or_children(tmp):
    """RLIMIT_NPROC 0: fork and pthread_create fail with EAGAIN (no internal error)."""
    out = _both(tmp, "nproc")
    assert "fork: Resource temporarily unavailable" in out and "pthread_create: Resource" in out


def test_stderr_closed_before_a_crash(tmp):
    """The program closes descriptor 2 and dies: km still says so (on its own copy of
    stderr) and dies of the same signal."""
    r = run(as_user(KM + [_hog(), "stderr"]), cwd=user_dir(tmp))
    assert r.returncode == -11 and "killed by SIGSEGV" in r.err, r.err


def test_many_threads_leave_no_monitor_descriptor_behind(tmp):
    """300 threads at once (km reserves a descriptor per vCPU above the program's);
    none of km's descriptors is ever in the program's range."""
    out = _both(tmp, "threads", 300)
    assert "threads made: 300 of 300" in out and "KVM descriptors the program can see: 0" in out


@pytest.mark.parametrize("mode", [("argv", "/bin/true"), ("cmsg",), ("select",), ("mlockall",), ("threads", "200")])
def test_the_monitor_stays_within_the_cap(tmp, mode):
    """Under --memory 64M, each attack leaves km (the whole process: the program's memory
    and the monitor's) within the cap plus the monitor's allowance."""
    status, out, err, peak = _peak(as_user(KM + ["--memory", f"{CAP_MIB}M", _hog(), *mode]), user_dir(tmp))
    assert status == 0 and peak > 0, err
    assert peak <= CAP_MIB + ALLOWANCE_MIB, f"km peaked at {peak} MiB: {out}"
