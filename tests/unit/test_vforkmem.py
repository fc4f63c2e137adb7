"""What a vfork child sends back of a page it wrote (kernel/vforkmem.py): exactly the
bytes it changed, so that a byte another thread of the parent wrote meanwhile stays."""

import random

from kontain.kernel.vforkmem import PAGE, _changes


def test_changes_are_exactly_the_bytes_that_differ():
    rng = random.Random(7)
    for _ in range(300):
        old = bytearray(rng.randbytes(PAGE))
        new = bytearray(old)
        for _ in range(rng.randint(0, 12)):
            a = rng.randrange(PAGE)
            for k in range(a, min(PAGE, a + rng.randint(1, 200))):
                new[k] = (new[k] + rng.randint(1, 255)) % 256
        rebuilt = bytearray(old)
        last = -1
        for off, piece in _changes(bytes(old), bytes(new)):
            assert off > last and piece and all(old[off + k] != b for k, b in enumerate(piece))
            rebuilt[off:off + len(piece)] = piece
            last = off + len(piece)
        assert rebuilt == new


def test_a_page_with_no_original_goes_whole_and_an_unchanged_one_not_at_all():
    page = bytes(range(256)) * (PAGE // 256)
    assert list(_changes(None, page)) == [(0, page)]
    assert list(_changes(page, page)) == []
    changed = page[:PAGE - 1] + b"\x00"
    assert list(_changes(page, changed)) == [(PAGE - 1, b"\x00")]
