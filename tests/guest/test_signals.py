"""Signal behaviours found different from Linux by third-party suites (LTP, Go's tests,
busybox) run natively and under km: each mode of sigcases.c is one behaviour, run
natively and under km with both C libraries (same output, same end)."""

import signal
import subprocess

import pytest

from kt import KM, STATIC, build, compare, ended

MODES = [
    "thread-segv",  # a thread other than the main one dies of SIGSEGV: km ends by it too
    "thread-abort",  # ... of SIGABRT (abort() in a thread)
    "resethand",  # SA_RESETHAND puts the handler back to SIG_DFL and keeps the flags (SA_SIGINFO)
    "held-from-parent",  # every catchable signal from another process, held and released (SIGILL too)
    # a temporary mask: in force during the wait, the old one saved in the handler's frame
    "ppoll-mask", "pselect-mask", "epoll-pwait-mask", "epoll-pwait2-mask",
    "xfsz",  # past RLIMIT_FSIZE: EFBIG and SIGXFSZ (write, pwrite, pwritev, ftruncate, fallocate)
    "xfsz-default",  # ... whose default action ends the program
    "timer-overrun-rt", "timer-overrun",  # one signal pending per POSIX timer, later expirations its overruns
    "sigtimedwait",  # LTP's sigwaitinfo01 cases, signals sent by other processes
    "popen",  # popen's child signals its parent: during the read, during pclose's wait, in sigsuspend
    "raise-race",  # raise() in four threads at once, kill() of the process among them
    "pending-after-kill",  # a signal from another process is pending once kill() has returned there
    "delivered-after-kill",  # ... and handled by the time a read it sent after it returns (CPython's tests)
    "itimer-off",  # a timer's signal sent before setitimer turned it off is handled when setitimer returns
    "sigpipe-once",  # a write to a pipe nobody reads raises SIGPIPE once (LTP's pipe08, write05)
    "sigchld-after-wait",  # a reaped child's SIGCHLD is pending when the wait returns (blocked, ignored by default)
    "rt-queue",  # RLIMIT_SIGPENDING: sigqueue, tgkill, rt_(tg)sigqueueinfo fail with EAGAIN; kill loses the siginfo
    "store-retry",  # a store to a read-only page made again once the handler made it writable, RIP at the store
]


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("mode", MODES)
def test_signal_case(mode, variant):
    compare([build("sigcases", variant, ("-lpthread",)), mode], timeout=60)


def test_busybox_timeout():
    """busybox timeout vforks a child that forks the watcher and exits: the parent goes
    on when the child exits (the watcher, which kills it at the deadline, must not hold
    it back), runs the command and exits with its status."""
    compare(["/bin/busybox", "sh", "-c", "timeout 20 true; echo $?; timeout 20 sh -c 'exit 3'; echo $?"], timeout=60)



@pytest.mark.parametrize("runner", ["native", "km"])
def test_sigterm_past_a_blocked_fast_timer(runner):
    """A 1 us setitimer and a 1 ns POSIX timer whose signals the program blocks: SIGTERM
    still ends it (128+15).  km's signal thread took the host's SIGALRM again and again,
    and the host gives the lowest signal first: SIGTERM never came through, and km ran
    until SIGKILL.  (The same timers make bench/bench.py's "blocked fast timers" row.)"""
    p = subprocess.Popen(([] if runner == "native" else KM) + [str(build("fastalarm")), "wait"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline() == b"ready\n"
    ended(p, timeout=120)
    assert p.returncode == -signal.SIGTERM
