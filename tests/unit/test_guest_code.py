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


def _equs() -> dict[str, str]:
    """guest.S's `.equ NAME, VALUE` lines."""
    out = {}
    for line in (ROOT / "src/kontain/arch/x86_64/guest.S").read_text().splitlines():
        parts = line.split("/*")[0].split(None, 1)
        if len(parts) == 2 and parts[0] == ".equ":
            name, value = (x.strip() for x in parts[1].split(",", 1))
            out[name] = value
    return out


def test_poll_slot_layout_agrees():
    """The poll slot is written in three places: guest.S (the stub), layout.py, and
    kernel/poll.py (the monitor's half, which takes layout's): they must agree."""
    from kontain.arch.x86_64 import layout as L
    from kontain.kernel import poll

    equ = _equs()
    assert equ["S_STATE"] == "poll_entry + POLL_DISTANCE" and int(equ["POLL_DISTANCE"], 0) == L.POLL_DISTANCE
    assert L.POLL_SLOTS == L.POLL_STUBS + L.POLL_DISTANCE
    fields = {"S_ON": L.SLOT_ON, "S_NR": L.SLOT_NR, "S_ARGS": L.SLOT_ARGS, "S_RESULT": L.SLOT_RESULT,
              "S_FLAGS": L.SLOT_FLAGS}
    for name, offset in fields.items():
        assert equ[name] == f"S_STATE + {offset}", name
    assert L.SLOT_STATE == 0 and L.SLOT_ARGS + 6 * 8 <= L.SLOT_RESULT and L.SLOT_FLAGS + 8 <= L.SLOT_SIZE
    states = {"ST_IDLE": L.SLOT_IDLE, "ST_POSTED": L.SLOT_POSTED, "ST_DONE": L.SLOT_DONE,
              "ST_DONE_EXIT": L.SLOT_DONE_EXIT}
    for name, value in states.items():
        assert int(equ[name], 0) == value, name
    assert L.SLOT_TAKEN < L.SLOT_DONE < L.SLOT_DONE_EXIT < L.SLOT_DECLINED  # (the stub's compares)
    assert int(equ["POLL_SPIN_MAX"], 0) == L.POLL_SPIN_MAX == poll.SPIN_EAGER
    # the monitor's indices are the same fields
    assert (poll.STATE * 4, poll.ON * 4, poll.NR * 8, poll.ARG0 * 8, poll.RESULT * 8) == (
        L.SLOT_STATE, L.SLOT_ON, L.SLOT_NR, L.SLOT_ARGS, L.SLOT_RESULT)
    assert (poll.IDLE, poll.POSTED, poll.TAKEN, poll.DONE, poll.DONE_EXIT, poll.DECLINED) == tuple(range(6))


def test_poll_copies_fit():
    """Each vCPU's copy of the stub, with its syscall map, fits in its POLL_COPY bytes;
    the copies (read-only code) and the slots (user data) are in pages of their own,
    and neither reaches the vCPU pages."""
    from kontain.arch.x86_64 import layout as L

    assert guest_code.POLL_MAP + 512 // 8 <= L.POLL_COPY and len(guest_code.POLL) <= L.POLL_COPY
    assert L.SLOT_SIZE <= L.POLL_COPY
    stubs_end = L.POLL_STUBS + L.POLL_VCPUS * L.POLL_COPY
    assert stubs_end <= L.POLL_SLOTS and L.POLL_SLOTS % 4096 == 0 and L.POLL_STUBS % 4096 == 0
    assert L.POLL_SLOTS + L.POLL_VCPUS * L.POLL_COPY <= L.VCPU_AREA
