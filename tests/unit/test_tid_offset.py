"""Where glibc keeps a thread's id in its struct pthread (kernel/fork.py ``_tid_offset``),
which a host clone mends in the child.  One struct can hold a word equal to the id
elsewhere too: the upper half of a pointer into the stack is 0x00007ffc, the id of a
thread with tid 32764 on a host whose pid_max is 32768.  A vfork child with that pid
found two places, made no keeper, and what it wrote was not given back (vforkmem.c:
"9 of 10 clone children's writes", 1 run in ~1000)."""

import _thread
import struct
import time

from kontain import native
from kontain.kernel import fork

TID_AT, POINTER_AT = 720, 772  # glibc 2.36's place, and one of a pointer's upper half


def _struct(words: dict[int, int]) -> bytearray:
    buf = bytearray(2048)
    for at, value in words.items():
        buf[at:at + 4] = struct.pack("<i", value)
    return buf


def _ident(buf: bytearray) -> int:
    return native.address_of(buf)


def test_the_words_equal_to_the_id_are_found_at_4_byte_places_only():
    buf = _struct({TID_AT: 0x7FFC, POINTER_AT: 0x7FFC})
    buf[101:105] = struct.pack("<i", 0x7FFC)  # (not at a word's place)
    assert fork._tid_words(_ident(buf), 0x7FFC) == {TID_AT, POINTER_AT}


def test_another_threads_struct_tells_the_id_from_a_pointers_half():
    child = _struct({TID_AT: 0x7FFC, POINTER_AT: 0x7FFC})  # tid 32764 and a stack pointer 0x00007ffc...
    other = _struct({TID_AT: 9475, POINTER_AT: 0x7FFC})
    stale = _struct({})  # (a struct read as its thread ended: it takes nothing away)
    assert fork._places([(_ident(child), 0x7FFC)]) == {TID_AT, POINTER_AT}
    assert fork._places([(_ident(child), 0x7FFC), (_ident(stale), 1234), (_ident(other), 9475)]) == {TID_AT}


class _Process:
    tasks: dict = {}

    def __init__(self) -> None:
        self.ending: list[int] = []


def test_the_offset_found_holds_each_real_threads_id():
    kept = list(fork._TID)
    fork._TID.clear()
    try:
        offset = fork._tid_offset(_Process(), probe=True)
    finally:
        fork._TID[:] = kept
    assert offset is not None
    mine = native.read_mem(_thread.get_ident() + offset, 4)
    assert struct.unpack("<i", mine)[0] == native.syscall(fork.SYS_gettid)
    seen = []
    done = _thread.allocate_lock()
    done.acquire()

    def look():
        seen.append((native.read_mem(_thread.get_ident() + offset, 4), native.syscall(fork.SYS_gettid)))
        done.release()

    _thread.start_new_thread(look, ())
    done.acquire()
    assert struct.unpack("<i", seen[0][0])[0] == seen[0][1]


def test_a_probe_thread_gives_its_own_places_and_is_waited_for():
    """The thread made when the program has no other one to look at (a single-threaded
    program's clone with another exit signal): its places hold the true one, and it is
    among the ending threads a host clone waits for (``_settle``)."""
    p = _Process()
    places = fork._probe(p)
    offset = fork._tid_offset(_Process())
    assert offset in places
    assert len(p.ending) == 1
    ident = p.ending[0]
    fork._settle(p, offset)  # (waits, 0.2 s at most, until the probe's id word is cleared)
    assert p.ending == []
    deadline = time.monotonic() + 30  # (the word the kernel clears as the thread ends: a loaded machine may take long)
    word = native.read_mem(ident + offset, 4)
    while isinstance(word, bytes) and word != bytes(4) and time.monotonic() < deadline:
        time.sleep(0.01)
        word = native.read_mem(ident + offset, 4)
    assert not isinstance(word, bytes) or word == bytes(4)
