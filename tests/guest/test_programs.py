"""Our own small C programs, built with each toolchain, run natively and under km:
same stdout, same exit status."""

import pytest

from kt import ALL, STATIC, build, compare, km


@pytest.mark.parametrize("variant", ALL)
def test_hello(variant):
    native, guest = compare([build("hello", variant)])
    assert guest.text == "hello from a kontain guest\n"


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_exit_status(code):
    compare([build("exit_code"), str(code)])


@pytest.mark.parametrize("variant", ALL)
def test_args_env_auxv(variant):
    env = {"KT_ONE": "1", "KT_TWO": "two words", "PATH": "/usr/bin:/bin"}
    native, guest = compare([build("args_env", variant), "a", "", "with space", "ünïcödé"], env=env)
    assert "env KT_TWO=two words" in guest.text


@pytest.mark.parametrize("variant", ALL)
def test_files(variant, tmp):
    compare([build("files", variant), str(tmp / "dir")])


@pytest.mark.parametrize("variant", ALL)
def test_memory(variant, tmp):
    native, guest = compare([build("memory", variant), str(tmp / "map.bin")])
    assert "FAILED" not in guest.text


@pytest.mark.parametrize("variant", STATIC)
def test_time_identity_sysinfo(variant):
    compare([build("timeid", variant)])


@pytest.mark.parametrize("variant", STATIC)
def test_poll_select(variant):
    compare([build("poll_select", variant)])


@pytest.mark.parametrize("variant", STATIC)
def test_monitor_descriptors_invisible(variant):
    compare([build("fds", variant)])


@pytest.mark.parametrize("variant", STATIC)
def test_signal_bookkeeping(variant):
    compare([build("sigbook", variant)])


@pytest.mark.parametrize("variant", STATIC)
def test_self_signal_kills(variant):
    native, guest = compare([build("sigbook", variant), "die"])
    assert guest.returncode == -15
    assert "killed by SIGTERM" in guest.err


@pytest.mark.parametrize("variant", STATIC)
def test_compute(variant):
    compare([build("compute", variant), "3000000"])


def test_stdin_passes_through():
    import subprocess

    data = b"line one\nline two\n" * 1000
    r = km("/bin/busybox", "wc", "-c", stdin=data)
    assert r.text.strip() == str(len(data))
    assert subprocess.run(["true"]).returncode == 0


@pytest.mark.parametrize("variant", STATIC)
def test_proc_self(variant):
    import os

    native, guest = compare([build("procself", variant), "a", "b c"], env={**os.environ, "KT_PROC": "yes"})
    assert "exe is the program: 1" in guest.text and "fd/ lists 4 descriptors, highest 3" in guest.text


@pytest.mark.parametrize("variant", STATIC)
def test_sockets_epoll_events(variant, tmp):
    native, guest = compare([build("net", variant), str(tmp)])
    assert "FAILED" not in guest.text


@pytest.mark.parametrize("variant", STATIC)
def test_signal_delivery(variant):
    native, guest = compare([build("signals", variant, ("-lm",))])
    assert "FAILED" not in guest.text


@pytest.mark.parametrize("variant", STATIC)
def test_threads(variant):
    native, guest = compare([build("threads", variant, ("-lpthread",))])
    assert "FAILED" not in guest.text


@pytest.mark.parametrize("variant", STATIC)
def test_processes(variant, tmp):
    native, guest = compare([build("processes", variant), str(tmp)])
    assert "FAILED" not in guest.text
    assert guest.err == "", "km must not report how a child ends: its parent does"


@pytest.mark.parametrize("variant", STATIC)
def test_timers_and_signalfd(variant):
    native, guest = compare([build("timers", variant, ("-lpthread",))])
    assert "FAILED" not in guest.text
