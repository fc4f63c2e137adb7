"""The guest's descriptor table (kernel/fdtable.py) against Linux's rules: an fd argument
is an ``unsigned int`` (upper register bits dropped, negatives huge), the monitor's
descriptors at the floor and above are EBADF, a new descriptor at or above the soft
limit is EMFILE (and must not stay open), dup2's target must be below the limit
(EBADF), setrlimit(RLIMIT_NOFILE) fails as do_prlimit does, and the table grows as
fs/file.c's alloc_fdtable sizes it.  Real descriptors (os.pipe) stand in for the
program's."""

import os

import pytest

from kontain import native
from kontain.abi.errno import EBADF, EINVAL, EMFILE, EPERM
from kontain.abi.flags import CAP_SYS_RESOURCE
from kontain.errors import GuestError
from kontain.kernel.fdtable import FdTable


@pytest.fixture
def fds():
    return FdTable()


def errno_of(fn, *args):
    with pytest.raises(GuestError) as e:
        fn(*args)
    return e.value.errno


def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_check_on_the_floor_and_above(fds):
    assert fds.check(0) == 0 and fds.check(fds.floor - 1) == fds.floor - 1
    for fd in (fds.floor, fds.floor + 1, 0xFFFFFFFF):
        assert errno_of(fds.check, fd) == EBADF
    assert fds.allowed(fds.floor - 1) and not fds.allowed(fds.floor) and not fds.allowed(-1)


def test_check_reads_an_unsigned_int(fds):
    assert errno_of(fds.check, -1) == EBADF  # (unsigned int)-1
    assert errno_of(fds.check, -(1 << 31)) == EBADF
    assert fds.check((1 << 32) + 5) == 5  # the upper half of the register is not looked at
    assert fds.check(-(1 << 32) + 3) == 3


def test_new_above_the_soft_limit_closes_it_and_fails_with_emfile(fds):
    r, w = os.pipe()
    try:
        fds.soft = w  # r fits, w is the first one over the limit
        assert fds.new(r) == r
        assert fds.new(w) == -EMFILE
        assert not is_open(w)
        assert is_open(r)
    finally:
        os.close(r)
        if is_open(w):
            os.close(w)


def test_dup_target_must_be_below_the_soft_limit(fds):
    fds.soft = 100
    assert fds.dup_target(99) == 99
    for fd in (100, fds.floor, -1):
        assert errno_of(fds.dup_target, fd) == EBADF  # dup2/dup3: newfd >= rlimit -> EBADF
    assert fds.dup_target((1 << 32) + 7) == 7
    assert fds.table_size() >= 128  # the target counts as a descriptor the program has had


def test_set_nofile(fds):
    hard = fds.hard
    assert errno_of(fds.set_nofile, 11, 10) == EINVAL
    assert errno_of(fds.set_nofile, 10, hard + 1) == EPERM  # above the guest's nr_open
    fds.set_nofile(10, 20)
    assert (fds.soft, fds.hard) == (10, 20)
    fds.set_nofile(20, 20)  # the soft limit may go up to the hard one
    assert fds.soft == 20
    if not native.capable(CAP_SYS_RESOURCE):  # raising the hard limit back needs it
        assert errno_of(fds.set_nofile, 0, hard) == EPERM


def test_raising_the_hard_limit_again_takes_cap_sys_resource(fds):
    """(Root in a container may lack it: then Linux refuses too.)"""
    floor = fds.hard
    fds.set_nofile(10, 20)
    if native.capable(CAP_SYS_RESOURCE):
        fds.set_nofile(floor, floor)
        assert (fds.soft, fds.hard) == (floor, floor)
    else:
        assert errno_of(fds.set_nofile, floor, floor) == EPERM
    assert errno_of(fds.set_nofile, floor + 1, floor + 1) == EPERM  # past nr_open: never


# fs/file.c: NR_OPEN_DEFAULT (64) descriptors, then alloc_fdtable(fd):
# roundup_pow_of_two(fd / 128 + 1) * 128
LINUX_SIZES = {0: 64, 63: 64, 64: 128, 127: 128, 128: 256, 255: 256, 256: 512, 383: 512, 511: 512,
               512: 1024, 1023: 1024, 1024: 2048, 5000: 8192}


@pytest.mark.parametrize("highest", sorted(LINUX_SIZES))
def test_table_size_follows_alloc_fdtable(fds, highest):
    fds.seen(highest)
    assert fds.table_size() == min(LINUX_SIZES[highest], fds.floor)
    fds.seen(3)  # a table never shrinks
    assert fds.table_size() == min(LINUX_SIZES[highest], fds.floor)


def test_table_size_the_first_time_covers_what_is_open(fds):
    r, w = os.pipe()
    try:
        assert fds.table_size() > max(r, w) and fds.table_size() >= 64
    finally:
        os.close(r)
        os.close(w)
