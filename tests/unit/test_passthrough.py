"""Pass-through calls (syscalls/common.py): real table rows called through the dispatcher's
``invoke`` with real host calls.  A guest pointer becomes its host address in the window
(the host kernel fills guest memory); a pointer outside the window reaches the host as
a poison address, so the host call fails with EFAULT where Linux would; a descriptor at
the monitor's floor or above, or negative, is EBADF before any host call; plain values
pass unchanged (an ``int`` keeps its low 32 bits); a new descriptor over the soft limit is
EMFILE and closed.  The task is a plain object with what a pass-through reads."""

import os
import struct

import pytest

from kontain.abi.errno import EBADF, EFAULT, EMFILE
from kontain.abi.flags import AT_FDCWD
from kontain.kernel.fdtable import FdTable
from kontain.syscalls.dispatch import invoke

from . import test_window
from .test_window import END, PAGE

mem = test_window.mem  # the fixture: a 1 GiB window whose first and last pages are backed

FSTAT, UNAME, GETCWD, MKDIRAT, EVENTFD2 = 5, 63, 79, 258, 290
S_IFIFO, EFD_CLOEXEC = 0o010000, 0o2000000


class Process:
    """What ``invoke`` reads of a process: whether calls collect host signals, and the
    epoch it bumps at each call (nativepoll.c)."""

    own_signals = False

    def __init__(self):
        self.epoch = memoryview(bytearray(8)).cast("Q")


class Task:
    """What a pass-through handler, and ``invoke``, read of a task."""

    def __init__(self, memory, fds):
        self.mem, self.fds, self.kick_addr, self.process = memory, fds, 0, Process()


@pytest.fixture
def t(mem):
    return Task(mem, FdTable())


def call(t, nr, *args):
    return invoke(t, nr, *(list(args) + [0] * (6 - len(args))))


def open_fds():
    return sorted(os.listdir("/proc/self/fd"))


def test_a_pointer_is_translated_into_the_window(t):
    assert call(t, UNAME, 0x100) == 0
    assert t.mem.read(0x100, 6) == b"Linux\0"  # the host wrote guest memory
    assert call(t, UNAME, END - PAGE) == 0  # the last page


@pytest.mark.parametrize("addr", [0, END, END - 100, PAGE, -1, 1 << 47, (1 << 64) - 8])
def test_a_pointer_outside_the_window_is_efault(t, addr):
    assert call(t, UNAME, addr) == -EFAULT  # (END - 100: runs into the guard; PAGE: a hole)


def test_descriptors(t):
    r, w = os.pipe()
    try:
        assert call(t, FSTAT, r, 0x200) == 0
        assert struct.unpack_from("<I", t.mem.read(0x200 + 24, 4))[0] & 0o170000 == S_IFIFO
        assert call(t, FSTAT, (1 << 32) + r, 0x200) == 0  # an unsigned int: upper bits dropped
        for fd in (t.fds.floor, t.fds.floor + 5, -1, -(1 << 31)):
            assert call(t, FSTAT, fd, 0x200) == -EBADF
        assert call(t, FSTAT, r, END) == -EFAULT  # a good descriptor, a bad pointer
    finally:
        os.close(r)
        os.close(w)


def test_a_buffer_and_its_length(t):
    cwd = os.getcwd().encode()
    assert call(t, GETCWD, 0x300, 4096) == len(cwd) + 1
    assert t.mem.read(0x300, len(cwd) + 1) == cwd + b"\0"
    assert call(t, GETCWD, END - len(cwd), 4096) == -EFAULT  # the NUL would be past the end
    assert call(t, GETCWD, END - len(cwd) - 1, 4096) == len(cwd) + 1  # ends exactly at the end


def test_paths_and_directory_descriptors(t, tmp_path):
    t.mem.write(0x400, str(tmp_path / "a").encode() + b"\0")
    assert call(t, MKDIRAT, AT_FDCWD, 0x400, 0o755) == 0
    assert (tmp_path / "a").is_dir()
    assert call(t, MKDIRAT, AT_FDCWD, 0x400, 0o755) == -17  # EEXIST: the same path read again
    assert call(t, MKDIRAT, AT_FDCWD, END, 0o755) == -EFAULT
    t.mem.write(END - 4, b"abcd")
    assert call(t, MKDIRAT, AT_FDCWD, END - 4, 0o755) == -EFAULT  # no NUL before the guard
    t.mem.write(0x500, b"relative\0")
    assert call(t, MKDIRAT, t.fds.floor, 0x500, 0o755) == -EBADF
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert call(t, MKDIRAT, d, 0x500, 0o755) == 0 and (tmp_path / "relative").is_dir()
    finally:
        os.close(d)


def test_an_absolute_path_ignores_the_directory_descriptor(t, tmp_path):
    t.mem.write(0x400, str(tmp_path / "b").encode() + b"\0")
    assert call(t, MKDIRAT, t.fds.floor, 0x400, 0o755) == 0


def test_values_pass_unchanged_and_a_new_descriptor_is_checked(t):
    fd = call(t, EVENTFD2, 5, (1 << 32) | EFD_CLOEXEC)  # flags: an int, upper bits dropped
    assert fd >= 0
    try:
        assert struct.unpack("<Q", os.read(fd, 8))[0] == 5
        assert not os.get_inheritable(fd)
        t.fds.soft = fd  # the next one is over the program's limit
        before = open_fds()
        assert call(t, EVENTFD2, 0, 0) == -EMFILE
        assert open_fds() == before  # the host's descriptor was closed again
    finally:
        os.close(fd)
