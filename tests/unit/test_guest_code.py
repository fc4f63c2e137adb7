"""The committed guest machine code is exactly what guest.S assembles to."""

import importlib.util
from pathlib import Path

from kontain.arch.x86_64 import guest_code

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("gen_guest_code", ROOT / "tools" / "gen_guest_code.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bytes_match_source():
    tool = _tool()
    parts = tool.assemble()
    assert parts[".stub"][0] == guest_code.STUB
    assert parts[".handlers"][0] == guest_code.HANDLERS
    assert tool.render(parts) == (ROOT / "src/kontain/arch/x86_64/guest_code.py").read_text()


def test_stub_fits_and_returns():
    # the syscall entry is a one-byte out to the syscall port, then the return
    assert guest_code.STUB[guest_code.SYSCALL_ENTRY:guest_code.SYSCALL_ENTRY + 2] == bytes.fromhex("e610")
    assert guest_code.STUB[guest_code.SYSCALL_RETURN:guest_code.SYSCALL_RETURN + 2] == bytes.fromhex("ffe1")
    assert len(guest_code.STUB) <= 4096 and len(guest_code.HANDLERS) <= 4096
