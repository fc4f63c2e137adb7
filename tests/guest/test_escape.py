"""Ways out of the VM, tried as an attacker would (issue: the guest is hostile).

The program and km are one host process: /proc/<pid> is km's own directory, its
descriptors sit above the program's, its helper threads have /proc/<tid> directories.
tests/programs/escape.c tries every way of naming them; each test here is one attack,
run as an unprivileged user where that matters (root could do most of it anyway), and
compared with the same program run natively where the program's view must not change.
"""

import re
import subprocess

import pytest

from kt import KM, as_user, build, run, user_dir


def _escape():
    return build("escape", "musl", ("-lpthread",))


def _as_nobody_both(tmp, *args):
    """The program run as user nobody, natively and under km: the same output and status."""
    argv = [_escape(), *args]
    native = run(as_user(argv), cwd=user_dir(tmp))
    guest = run(as_user(KM + argv), cwd=user_dir(tmp))
    assert (guest.returncode, guest.text) == (native.returncode, native.text), \
        f"native:\n{native.text}\nkm:\n{guest.text}\n{guest.err}"
    return guest


def test_the_monitors_threads_do_not_exist(tmp):
    """/proc/self/task, /proc/<tid>, /proc/self/task/<tid>, thread-self and the thread
    counts in status and stat show the program's threads only."""
    guest = _as_nobody_both(tmp, "threads")
    assert "0 not the program's" in guest.text and "reachable: 0" in guest.text, guest.text


def test_the_monitors_descriptors_do_not_exist(tmp):
    """No spelling reaches a descriptor above the program's limit, where km keeps /dev/kvm,
    the VM, the vCPUs: /proc/self/fd/N, /dev/fd/N, thread-self, /proc/<pid>/fd/N,
    symlinks to fd/ and to /proc/self, openat on the fd/ directory, O_PATH."""
    guest = _as_nobody_both(tmp, "fds")
    assert "reached: 0 opened, 0 stat, 0 readlink" in guest.text, guest.text


def test_this_processs_memory_is_out_of_reach(tmp):
    """/proc/self/mem, pagemap, map_files and syscall, however named: by pid, by thread,
    with dots, through symlinks, /proc/self/root and cwd magic links, directory
    descriptors, /dev/fd, an O_PATH descriptor reopened, relative to /proc/self."""
    r = run(as_user(KM + [_escape(), "mem"]), cwd=user_dir(tmp))
    assert r.returncode == 0, r.err
    assert "reached 0 times" in r.text, r.text
    native = run(as_user([_escape(), "mem"]), cwd=user_dir(tmp))
    assert "reached 0 times" not in native.text  # (the attempts are real ones)


@pytest.mark.parametrize("who", ["parent", "child"])
@pytest.mark.parametrize("user", ["nobody", "root"])
def test_a_parent_and_child_cannot_reach_each_other(tmp, who, user):
    """A forked child's km and its parent's are two processes of the same user: neither
    program may open the other's memory or descriptors (natively it can)."""
    argv = KM + [_escape(), who]
    r = run(as_user(argv) if user == "nobody" else argv, cwd=user_dir(tmp))
    assert r.returncode == 0, r.err
    assert f"{who}'s memory: Permission denied" in r.text and "(0 opened)" in r.text, r.text
    native = run(as_user([_escape(), who]), cwd=user_dir(tmp))
    assert f"{who}'s memory: opened" in native.text, native.text


@pytest.mark.parametrize("user", ["nobody", "root"])
def test_other_processes_of_the_user_are_out_of_reach(tmp, user):
    """A process outside km (the user's shell, say) is not the program's to open, even
    as root (Landlock's ptrace scope: docs/security.md)."""
    prefix = as_user([]) if user == "nobody" else []
    other = subprocess.Popen(prefix + ["sleep", "60"])
    try:
        r = run(prefix + KM + [_escape(), "other", str(other.pid)], cwd=user_dir(tmp))
        native = run(prefix + [_escape(), "other", str(other.pid)], cwd=user_dir(tmp))
    finally:
        other.kill()
        other.wait()
    assert "other process's memory: Permission denied" in r.text, r.text
    assert "other process's memory: opened" in native.text, native.text


def test_dropped_privileges_hold_in_the_polling_tier(tmp):
    """A root program that drops to nobody can no longer see a root-only file, nor read
    uid 0, in the calls the polling tier serves: Linux's credentials are per host
    thread, and the poller thread acts for the program (--poll always: it is running,
    as root, before the drop)."""
    import os

    if os.geteuid() != 0:
        pytest.fail("this test drops root privileges: run the tests as root", pytrace=False)
    secret = tmp / "root-only"
    secret.mkdir(mode=0o700)
    (secret / "secret").write_text("s")
    (secret / "secret").chmod(0o600)
    native = run([_escape(), "drop", secret])
    guest = run(KM + ["--poll", "always", _escape(), "drop", secret])
    assert (guest.returncode, guest.text) == (native.returncode, native.text), guest.err
    assert "after setuid: secret seen 0 times, uid 0 seen 0 times" in guest.text, guest.text


def test_close_range_unshare_does_not_split_the_monitor(tmp):
    """close_range(CLOSE_RANGE_UNSHARE) must not give the calling vCPU thread a
    descriptor table apart from km's other threads: reads of the closed descriptor
    (served by the polling tier) fail with EBADF, as natively."""
    f = tmp / "file"
    f.write_text("data")
    native = run([_escape(), "unshare", f])
    guest = run(KM + ["--poll", "always", _escape(), "unshare", f])
    assert (guest.returncode, guest.text) == (native.returncode, native.text), guest.err
    assert "returned data: 0" in guest.text


def test_the_monitor_confines_itself_and_the_program_does_not_see_it(tmp):
    """From outside, km is not dumpable, has no CAP_SYS_PTRACE, no_new_privs and its
    seccomp filter; the program's own /proc/self/status and prctl show its own flags
    (nothing set), as natively (docs/security.md, layer 4)."""
    script = "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status; echo ready; read x"
    p = subprocess.Popen(KM + ["/bin/busybox", "sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        seen = [p.stdout.readline() for _ in range(4)]
        with open(f"/proc/{p.pid}/status") as f:
            host = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    finally:
        p.communicate("\n", timeout=30)
    assert seen == ["NoNewPrivs:\t0\n", "Seccomp:\t0\n", "Seccomp_filters:\t0\n", "ready\n"], seen
    assert host["NoNewPrivs"].strip() == "1" and host["Seccomp"].strip() == "2", host
    assert not int(host["CapEff"], 16) & (1 << 19)  # CAP_SYS_PTRACE


def _under_a_filter():
    """In the child, before exec: a seccomp filter that allows everything (a container's
    profile, as crun installs it)."""
    from kontain import confine

    confine.install_filter(bytes.fromhex("0600000000" "00ff7f"))  # ret SECCOMP_RET_ALLOW


def test_a_filter_km_is_started_under_is_the_programs_too(tmp):
    """A container's seccomp profile filters km's host calls, which are the program's: the
    program sees it (Seccomp: 2, its filter count) as natively, and not km's own."""
    script = "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status"
    native = subprocess.run(["/bin/busybox", "sh", "-c", script], capture_output=True, text=True,
                            preexec_fn=_under_a_filter)
    guest = subprocess.run(KM + ["/bin/busybox", "sh", "-c", script], capture_output=True, text=True,
                           preexec_fn=_under_a_filter)
    assert native.stdout == "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"
    assert guest.stdout == native.stdout, guest.stderr


def test_calls_after_dropping_root_when_km_itself_is_root_only(tmp):
    """km installed where only root may read it: a program that drops to nobody then
    makes calls of every family (some km imports only at first use: ioctl, writev,
    setrlimit, sockets, timers, fork and exec) gets the same answers as natively, not
    "internal error ... ModuleNotFoundError" with its output lost."""
    import os
    import shutil
    import sys

    from kt import ROOT

    if os.geteuid() != 0:
        pytest.fail("this test drops root privileges: run the tests as root", pytrace=False)
    private = tmp / "root-only"
    private.mkdir(mode=0o700)
    shutil.copytree(ROOT / "src" / "kontain", private / "kontain", ignore=shutil.ignore_patterns("__pycache__"))
    native = run([_escape(), "dropcalls"], cwd=tmp)
    guest = run([sys.executable, "-m", "kontain", _escape(), "dropcalls"], cwd=tmp,
                env={**os.environ, "PYTHONPATH": str(private)})
    assert (guest.returncode, guest.text) == (native.returncode, native.text), guest.err
    assert "internal error" not in guest.err, guest.err


def test_no_memory_failure_injection_on_the_hosts_pages():
    """madvise(MADV_HWPOISON) and (MADV_SOFT_OFFLINE) of a page of the program's act on the
    host's physical page behind it (a poisoned page is gone for the whole machine; a
    soft-offlined one is taken out of use): km refuses both, as Linux refuses a process
    without CAP_SYS_ADMIN (EPERM), or says EINVAL where the host's Linux has no memory-failure
    support, as that Linux would.  (km passed MADV_SOFT_OFFLINE to the host, root's to make.)
    Only under km: natively, as root, the program would do it."""
    from kt import km

    r = km(_escape(), "poison")
    assert r.returncode == 0, r.err
    for name in ("MADV_HWPOISON", "MADV_SOFT_OFFLINE"):
        assert re.search(rf"^{name}: -1 (Operation not permitted|Invalid argument)$", r.text, re.M), r.text
    assert "the page reads: p" in r.text
