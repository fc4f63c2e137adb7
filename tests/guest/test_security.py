"""The guest is hostile: wild pointers into every syscall family get EFAULT exactly as
natively (the program compares every result and errno), and the monitor survives."""

import pytest

from kt import STATIC, build, compare


@pytest.mark.parametrize("variant", STATIC)
def test_wild_pointers(variant):
    native, guest = compare([build("wild", variant)])
    assert "EFAULT" in guest.text
