"""km's options and conventions, end to end."""

import os
import signal
import subprocess
import sys

from kt import KM, KM_PYTHON, build, km, run, wait_for


def test_help_and_version():
    r = km("--help")
    assert r.returncode == 0 and r.text.startswith("usage: km")
    r = km("--version")
    assert r.returncode == 0 and "kontain" in r.text


def test_bad_option():
    r = km("--no-such-option", "/bin/true")
    assert r.returncode == 2 and r.err.startswith("km: unknown option")


def test_env_options(tmp_path):
    f = tmp_path / "env"
    f.write_text("# a comment\nKT_FROM_FILE=yes\n")
    r = km("-e", "KT_A=1", "--env", "KT_B=two words", "--env-file", f, build("args_env"))
    assert "env KT_A=1" in r.text and "env KT_B=two words" in r.text and "env KT_FROM_FILE=yes" in r.text


def test_clear_env():
    r = km("--clear-env", "-e", "ONLY=1", "/bin/busybox", "env")
    assert r.returncode == 0 and r.text == "ONLY=1\n", r.text


def test_environment_is_kms():
    r = km("/bin/busybox", "env", env={**os.environ, "KT_INHERITED": "from km"})
    assert "KT_INHERITED=from km\n" in r.text


def test_memory_cap():
    ok = km("--memory", "64M", build("alloc"), "32")
    assert ok.returncode == 0 and ok.text == "32\n", ok.err
    capped = km("--memory", "64M", build("alloc"), "200")
    assert capped.returncode == 1
    assert 40 < int(capped.text) < 64, capped.text
    assert run([build("alloc"), "200"]).returncode == 0


def test_path_search():
    r = km("busybox", "echo", "found in PATH")
    assert r.text == "found in PATH\n"


def test_shebang_script(tmp_path):
    s = tmp_path / "script"
    s.write_text(f"#!{build('args_env')} -x\nignored\n")
    s.chmod(0o755)
    r = km(s, "arg1")
    assert r.returncode == 0
    lines = r.text.splitlines()
    assert lines[1:5] == [f"argv[0]={build('args_env')}", "argv[1]=-x", f"argv[2]={s}", "argv[3]=arg1"], r.text


def test_strace_decodes_calls(tmp_path):
    p = tmp_path / "file.txt"
    p.write_text("x")
    r = km("--strace", "/bin/busybox", "cat", p)
    assert r.text == "x"
    assert f'open("{p}", O_RDONLY' in r.err or f'openat(AT_FDCWD, "{p}", O_RDONLY' in r.err, r.err
    assert 'write(1, "x", 1) = 1' in r.err or "sendfile(1, 3, NULL" in r.err, r.err
    assert "exit_group(0) = ?" in r.err


def test_strace_marks_unsupported_calls():
    r = km("--strace", build("wild"))
    assert "syscall_0x3e8() = -1 ENOSYS (Function not implemented) (not supported by km)" in r.err, r.err[-2000:]


def test_working_directory(tmp_path):
    r = km("/bin/busybox", "pwd", cwd=tmp_path)
    assert r.text.strip() == str(tmp_path)


def test_environment_is_exactly_kms():
    """Python sets LC_CTYPE=C.UTF-8 when started in the C locale (PEP 538): the program
    must not get it (nor any other variable km was not given)."""
    r = run(["env", "-i", *KM, "/bin/busybox", "env"])
    assert r.returncode == 0 and r.text == "", r.text
    r = run(["env", "-i", "LC_CTYPE=C.UTF-8", *KM, "/bin/busybox", "env"])
    assert r.text == "LC_CTYPE=C.UTF-8\n"


def test_first_process_of_a_pid_namespace(tmp_path):
    """As a namespace's first process (a container's, under krun) the program ignores
    the signals it has no handler for, as Linux's init does; handled ones arrive, and
    SIGKILL from outside ends it."""
    marks = tmp_path / "marks"
    marks.mkdir()
    p = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", *KM, build("pid1")],
                         env={**os.environ, "MARKS": str(marks)})
    try:
        wait_for(lambda: (marks / "ready").exists())
        km_pid = _child_of(p.pid)  # (unshare forks km into the new namespace)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGWINCH):
            os.kill(km_pid, sig)
        wait_for(lambda: (marks / "winch").exists())  # (the highest number: the others came first)
        assert p.poll() is None
        os.kill(km_pid, signal.SIGKILL)
        assert p.wait(timeout=60) != 0  # (unshare says 1 for a child killed)
    finally:
        p.kill()
        p.wait()


def _child_of(pid: int) -> int:
    wait_for(lambda: open(f"/proc/{pid}/task/{pid}/children").read().split())
    return int(open(f"/proc/{pid}/task/{pid}/children").read().split()[0])


_GC_PROBE = """
import gc, runpy, sys
from kontain.kernel import process
run = process.Process.run
def probe(self):
    seen = gc.isenabled()
    try:
        return run(self)
    finally:
        print("start-up", seen, "running", gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)
process.Process.run = probe
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_garbage_collector_is_off_only_for_the_start_up():
    """km's launcher turns Python's garbage collector off (a faster start: the collections
    its start-up's allocations set off find nothing to free) and on again, the start-up's
    objects frozen, once the program runs: a long-running program's km collects as any."""
    r = subprocess.run([sys.executable, "-c", _GC_PROBE, KM_PYTHON[-1], str(build("hello"))], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "start-up False running True True" in r.stderr, r.stderr
