"""kernel/faultpc.py: where a store that faulted began (KVM's emulator left RIP past
it), forward from a function's start or, without one, the one start before RIP that
decodes to such a store."""

import pytest

pytest.importorskip("iced_x86")

from kontain.arch.x86_64 import decode  # noqa: E402
from kontain.kernel import faultpc  # noqa: E402

BASE = 0x400000


class _Mm:
    def find(self, _addr):
        return None  # (no file: the backward search)


class _Process:
    def __init__(self, code: bytes):
        self.code = code
        self.mm = _Mm()
        self.posix_locked = set()

    def read_memory(self, addr: int, length: int) -> bytes:
        if addr < BASE or addr + length > BASE + len(self.code):
            from kontain.errors import GuestError

            raise GuestError(14)
        return self.code[addr - BASE:addr - BASE + length]


def _start(code: bytes, end_offset: int, gpa: int, length: int, **regs) -> int | None:
    return faultpc.store_start(_Process(code), BASE + end_offset, gpa, length, regs, 0, 0)


def test_a_store_found_backwards():
    # nop; movl $42,(%rax): "00 00", its end, is a byte store there too, but of 1 byte
    code = b"\x90\xc7\x00\x2a\x00\x00\x00"
    assert _start(code, 7, 0x5000, 4, rax=0x5000) == BASE + 1


def test_no_store_there():
    code = b"\x90\x48\x89\xc7"  # mov %rax,%rdi: no memory
    assert _start(code, 4, 0x5000, 8, rax=0x5000) is None


def test_two_starts_are_no_answer_backwards():
    # mov %r8d,(%rdi) ends like mov %eax,(%rdi): without a function's start, km cannot tell
    code = b"\x90\x44\x89\x07"
    assert _start(code, 4, 0x5000, 4, rdi=0x5000) is None
    assert decode.instruction_ending_at(code, BASE, BASE + 4) == BASE + 1  # forward, it can


def test_instructions_that_moved_registers_are_not_repeated():
    assert not decode.repeatable_store(b"\x50", BASE, 0x5000, 8, {"rsp": 0x5000}, 0, 0)  # push %rax
    assert not decode.repeatable_store(b"\xab", BASE, 0x5000, 4, {"rdi": 0x5004}, 0, 0)  # stos
    assert decode.repeatable_store(b"\x48\x89\x07", BASE, 0x5000, 8, {"rdi": 0x5000}, 0, 0)
    assert not decode.repeatable_store(b"\x48\x89\x07", BASE, 0x6000, 8, {"rdi": 0x5000}, 0, 0)
