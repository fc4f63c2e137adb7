"""The guest is hostile: wild pointers into every syscall family get EFAULT exactly as
natively (the program compares every result and errno), and the monitor survives."""

import pytest

from kt import STATIC, build, compare


@pytest.mark.parametrize("variant", STATIC)
def test_wild_pointers(variant):
    native, guest = compare([build("wild", variant)])
    assert "EFAULT" in guest.text


def test_proc_self_mem_is_refused():
    """/proc/self/mem is the monitor's memory: refused however it is named."""
    from kt import km

    r = km(build("procself"), "mem")
    assert r.returncode == 0, r.err
    for what in ("open /proc/self/mem", "open through a symlink", "open relative", "open pagemap"):
        assert f"{what}: Permission denied" in r.text, r.text


@pytest.mark.parametrize("variant", STATIC)
def test_wild_pointers_sockets_epoll(variant):
    native, guest = compare([build("wild_net", variant)])
    assert "EFAULT" in guest.text
