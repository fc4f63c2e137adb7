"""km's snapshot note encoding (kernel/snapfile.py): plain data round-trips with its
types (tuples, int keys, bytes), and anything else, random or cut short, is refused
with SnapshotError, never another exception."""

import os
import random

import pytest

from kontain.kernel import snapfile
from kontain.kernel.snapfile import SnapshotError, decode, encode

STATE = {"a": [1, -2, 2**64 - 1, -(2**70)], 3: (b"\0\xff", "t\udcff", None, True, False), (1, 2): {"x": []}}


def test_plain_data_round_trips_with_its_types():
    assert decode(encode(STATE)) == STATE
    assert type(decode(encode((1,)))) is tuple and type(decode(encode([1]))) is list


def test_objects_are_not_plain_data():
    with pytest.raises(TypeError):
        encode({"x": object()})
    with pytest.raises(TypeError):
        encode(1.5)


def test_cut_short_or_random_bytes_are_refused_cleanly():
    data = encode(STATE)
    for n in range(len(data)):
        with pytest.raises(SnapshotError):
            decode(data[:n])
    rng = random.Random(13)
    for _ in range(3000):
        blob = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        try:
            decode(bytes(blob))
        except SnapshotError:
            pass
    for _ in range(2000):
        try:
            decode(os.urandom(rng.randint(0, 64)))
        except SnapshotError:
            pass


def test_nesting_is_bounded():
    deep = b"l\x01\x00\x00\x00" * 100 + b"N"
    with pytest.raises(SnapshotError, match="deeply"):
        decode(deep)


def test_a_file_that_is_no_elf_core_is_refused(tmp_path):
    f = tmp_path / "x"
    f.write_bytes(b"\x7fELF" + bytes(100))
    with pytest.raises(SnapshotError) as e:
        snapfile.read(str(f))
    assert e.value.status == 126


def test_an_unhashable_key_is_refused():
    key = b"t\x01\x00\x00\x00l\x00\x00\x00\x00"  # a tuple holding a list
    with pytest.raises(SnapshotError, match="key"):
        decode(b"d\x01\x00\x00\x00" + key + b"N")
