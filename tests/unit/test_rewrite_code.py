"""The pieces of the syscall-site rewriter that need no guest: the trampoline's machine
code, the proof that an instruction may be displaced, and function starts from ELF files."""

import os
import subprocess
import sys

import iced_x86 as iced
import pytest

from kontain.arch.x86_64 import decode
from kontain.arch.x86_64 import layout as L
from kontain.arch.x86_64 import trampoline as T
from kontain.loader import funcstarts


def _disasm(code: bytes, ip: int) -> list[str]:
    fmt = iced.Formatter(iced.FormatterSyntax.GAS)
    out = []
    for ins in iced.Decoder(64, code, ip=ip):
        if ins.code == iced.Code.INT3:
            break
        out.append(fmt.format(ins))
    return out


def test_trampoline_code():
    site, at = 0x401000, 0x400000
    code = T.code(at, bytes.fromhex("b86e000000"), site + 5)
    assert len(code) == T.SIZE
    text = _disasm(code, at)
    assert text[0] == "mov $0x6E,%eax"
    assert text[1] == "mov %rax,%r11"
    assert "lahf" in text and "rorx $0x15,%eax,%eax" in text
    assert text[-4:-2] == ["mov %r11,%rax", "mov %rcx,%r11"]
    insns = [i for i in iced.Decoder(64, code, ip=at) if i.code != iced.Code.INT3]
    lea, jmp = insns[-2], insns[-1]
    assert text[-2].startswith("lea") and lea.is_ip_rel_memory_operand
    assert lea.ip_rel_memory_address == site + 7  # the return address: after the syscall
    assert jmp.flow_control == iced.FlowControl.INDIRECT_BRANCH and jmp.memory_segment == iced.Register.GS
    assert jmp.memory_displacement == L.GS_ENTRY
    # nothing in it but the site's own instruction changes the flags or touches memory
    info = iced.InstructionInfoFactory()
    for ins in iced.Decoder(64, code[5:], ip=at + 5):
        if ins.code == iced.Code.INT3:
            break
        assert ins.rflags_modified == 0, ins
        used = info.info(ins).used_memory()
        assert not used or ins.flow_control == iced.FlowControl.INDIRECT_BRANCH


def test_jump_and_reach():
    assert T.jump(0x1000, 0x2000) == bytes.fromhex("e9fb0f0000")
    assert T.jump(0, 1 << 32) is None
    assert not T.reaches(0x1000, 0x1000 + (1 << 31))


def test_resume_points():
    n = 5
    assert T.resume_point(0, n) == ("site", False)
    assert T.resume_point(n, n) == ("syscall", False)  # the instruction ran, RAX intact
    assert T.resume_point(n + 3, n) == ("syscall", True)  # RAX clobbered, the number in R11
    end = len(T.code(0x1000, bytes(n), 0x2000).rstrip(b"\xcc"))
    assert T.resume_point(end - 1, n)[0] == "syscall"
    assert T.resume_point(end, n) is None


@pytest.mark.parametrize("before, ok", [
    ("b86e000000", True),  # mov $110,%eax
    ("4c8b4c2408", True),  # mov 0x8(%rsp),%r9 (glibc's syscall())
    ("4889f8", False),  # mov %rdi,%rax: too short
    ("488d0500000000", False),  # lea (%rip): position-dependent
    ("65488b042500000000", False),  # mov %gs:0,%rax: GS is km's
    ("e900000000", False),  # a jump
])
def test_displaced_instruction(before, ok):
    insn = bytes.fromhex(before)
    code = b"\x90" + insn + b"\x0f\x05\xc3"
    got = decode.displaced_before_syscall(code, 0x1000, 0x1001 + len(insn))
    assert got == (0x1001 if ok else None)


@pytest.mark.parametrize("before, ok", [
    ("4889f8", True),  # mov %rdi,%rax (musl's read and write)
    ("488b5218", True),  # mov 0x18(%rdx),%rdx (musl's syscall())
    ("4c89c0", True),  # mov %r8,%rax
    ("89f8", False),  # mov %edi,%eax: with the `syscall`, 4 bytes, too short for a jump
    ("b86e000000", False),  # 5 bytes: the jump covers it alone (displaced_before_syscall)
    ("ffd0", False),  # call *%rax: not a plain instruction
])
def test_instruction_covered_with_its_syscall(before, ok):
    insn = bytes.fromhex(before)
    code = b"\x90" + insn + b"\x0f\x05\xc3"
    got = decode.covered_with_syscall(code, 0x1000, 0x1001 + len(insn))
    assert got == (0x1001 if ok else None)


def test_nothing_may_land_on_a_covered_syscall():
    """The jump would cover the `syscall`: a branch in the function to it, an indirect
    jump (a jump table could), or a transaction's abort address there keeps the site."""
    body = bytes.fromhex("4889f8") + b"\x0f\x05" + b"\xc3"  # mov %rdi,%rax; syscall; ret
    at = 0x1000
    plain = b"\x90\x90" + body
    assert decode.covered_with_syscall(plain, at, at + 5) == at + 2
    # jmp rel8 from before to the syscall (eb 03: 0x1002 -> 0x1005)
    assert decode.covered_with_syscall(bytes.fromhex("eb03") + body, at, at + 5) is None
    # the same jump aimed at the instruction before it is fine
    assert decode.covered_with_syscall(bytes.fromhex("eb00") + body, at, at + 5) == at + 2
    # a conditional jump after it, back to the syscall (75 xx: jne)
    tail = bytes.fromhex("75") + bytes([(at + 5 - (at + 8 + 2)) & 0xFF])
    assert decode.covered_with_syscall(b"\x90\x90" + body[:5] + b"\x90" + tail + b"\xc3", at, at + 5) is None
    # jmp *%rax anywhere in the function
    assert decode.covered_with_syscall(b"\x90\x90" + body[:5] + bytes.fromhex("ffe0"), at, at + 5) is None
    # xbegin whose abort address is elsewhere is still refused
    assert decode.covered_with_syscall(bytes.fromhex("c7f800000000") + body, at, at + 9) is None
    # the syscall hidden inside another instruction is no syscall
    assert decode.covered_with_syscall(bytes.fromhex("b80f050000") + body, at, at + 1) is None


def test_function_end_for_the_covered_proof():
    starts = funcstarts.FunctionStarts([0x1000, 0x1040, 0x1100], [0x1030, 0, 0], [])
    assert starts.end_of(0x1000) == 0x1030  # its size
    assert starts.end_of(0x1040) == 0x1100  # unknown: the next start bounds it
    assert starts.end_of(0x1100) == 0  # the last, size unknown
    assert starts.end_of(0x1010) == 0  # no function starts there


def test_not_at_an_instruction_boundary():
    # b8 0f 05 00 00 (mov $0x50f,%eax) hides the bytes 0f 05: no syscall there
    code = bytes.fromhex("b80f0500000f05")
    assert decode.displaced_before_syscall(code, 0x1000, 0x1001) is None
    assert decode.displaced_before_syscall(code, 0x1000, 0x1005) == 0x1000


def test_function_starts_of_a_static_program(tmp_path):
    src = tmp_path / "p.c"
    src.write_text("#include <unistd.h>\nint main(void) { return getppid() < 0; }\n")
    exe = tmp_path / "p"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(exe), str(src)], check=True)
    nm = subprocess.run(["nm", str(exe)], check=True, capture_output=True, text=True).stdout
    getppid = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" getppid"))
    fd = os.open(exe, os.O_RDONLY)
    try:
        starts = funcstarts.read(fd)
    finally:
        os.close(fd)
    assert getppid in starts.starts
    assert starts.containing(getppid + 5, 1 << 16) == getppid
    off = starts.to_offset(getppid)
    assert starts.to_vaddr(off) == getppid


def test_function_starts_of_junk(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x7fELF" + os.urandom(4000))
    fd = os.open(bad, os.O_RDONLY)
    try:
        assert funcstarts.read(fd) is None or isinstance(funcstarts.read(fd), funcstarts.FunctionStarts)
    finally:
        os.close(fd)


def test_function_starts_of_a_stripped_program_from_eh_frame(tmp_path):
    """Stripped, and linked without .eh_frame_hdr: the .eh_frame section's FDEs."""
    src = tmp_path / "p.c"
    src.write_text("#include <unistd.h>\nint main(void) { return getppid() < 0; }\n")
    exe, stripped = tmp_path / "p", tmp_path / "s"
    subprocess.run(["gcc", "-static", "-O2", "-Wl,--no-eh-frame-hdr", "-o", str(exe), str(src)], check=True)
    subprocess.run(["strip", "-o", str(stripped), str(exe)], check=True)
    nm = subprocess.run(["nm", str(exe)], check=True, capture_output=True, text=True).stdout
    main = next(int(line.split()[0], 16) for line in nm.splitlines() if line.endswith(" T main"))
    fd = os.open(stripped, os.O_RDONLY)
    try:
        starts = funcstarts.read(fd)
    finally:
        os.close(fd)
    assert main in starts.starts
    assert starts.ends[starts.starts.index(main)] > main  # (an FDE has its size)


def test_decoder_core_learns_the_package_constants():
    """The rewriting's decoder (decode._core: iced-x86's extension module alone) learns
    its constants by decoding known instructions: they are the package's own."""
    core = decode._core()
    assert core is not None
    fc = iced.FlowControl
    assert (core.INVALID, core.SYSCALL, core.GS) == (iced.Code.INVALID, iced.Code.SYSCALL, iced.Register.GS)
    assert core.NEXT == fc.NEXT and core.INDIRECT == fc.INDIRECT_BRANCH and core.XBEGIN == fc.XBEGIN_XABORT_XEND
    assert core.BRANCHES == (fc.UNCONDITIONAL_BRANCH, fc.CONDITIONAL_BRANCH, fc.CALL)


def test_decoder_core_loads_without_the_package_which_then_shares_it():
    """In a fresh interpreter: _core does not import the package (its generated modules
    are what made the first rewrite slow), and a later import of the package (a SIGBUS's
    decoding) uses the same extension module."""
    script = ("import sys\nfrom kontain.arch.x86_64 import decode\n"
              "core = decode._core()\nassert core is not None and 'iced_x86' not in sys.modules\n"
              "assert decode.displaced_before_syscall(bytes.fromhex('b86e0000000f05'), 0x1000, 0x1005) == 0x1000\n"
              "import iced_x86\nassert iced_x86.Decoder is core.Decoder\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.stdout == "ok\n", r.stderr


def test_decoder_core_loads_on_its_own_thread_and_in_a_child_forked_meanwhile():
    """decode.load_soon loads the core on a thread of its own, without the importlib
    machinery (~2 ms of imports); _core waits for it.  A child forked while that thread
    held the load's lock has no such thread: its _core loads the core itself instead of
    waiting for good."""
    script = (
        "import os, sys, threading\nfrom kontain.arch.x86_64 import decode\n"
        "decode._loading.acquire()\n"  # (the thread's load in progress, as at a fork)
        "decode.load_soon()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    core = decode._core()\n"
        "    os._exit(0 if core is not None and not decode._loading.locked() else 3)\n"
        "assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0\n"
        "assert decode._core_decoder is None\n"  # (the thread still waits for the lock)
        "decode._loading.release()\n"
        "core = decode._core()\n"
        "assert core is not None and decode._load_started\n"
        "assert 'importlib.machinery' not in sys.modules and 'warnings' not in sys.modules\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.stdout == "ok\n", r.stderr


def test_a_frame_at_a_covered_syscall_returns_there_once_the_site_is_back():
    """A signal frame whose return address is a short site's `syscall` (the jump covers it
    now: a thread stood on it in km while another thread made the jump) returns to that
    `syscall`, and the site is put back before then (``put_back_soon``), as for a frame at
    the site's trampoline entry: it never returns into the jump's middle, whose bytes the
    frame's check would have read as no `syscall` at all."""
    from kontain.kernel.rewrite import Rewriter

    class Memory:
        def read(self, addr, n):
            return bytes.fromhex("e9 00 10 00 00")[addr - site:addr - site + n]  # (the jump's bytes)

    class Process:
        mem = Memory()

    site, tramp, n = 0x401000, 0x7000000, 3
    rw = Rewriter(Process())
    syscall_at, entry = site + n, tramp + n
    rw.patched[site] = (bytes.fromhex("4989ca0f05"), tramp)
    rw.tramps[tramp] = (site, n, syscall_at)
    rw.by_syscall[syscall_at] = tramp
    rw.short[syscall_at] = entry
    rw.entries[entry] = syscall_at
    assert rw.framed(syscall_at) == syscall_at and rw.put_back_soon == {site}
    rw.put_back_soon.clear()
    assert rw.framed(entry) == syscall_at and rw.put_back_soon == {site}
    assert rw.framed(site + 0x100) == site + 0x100  # (elsewhere: returns there)


def test_a_site_two_threads_put_back_at_once_is_put_back_once():
    """Two threads that each took a signal frame at the same short site put it back each
    (``_put_back``): the second, which waited for the first one's pause of the others,
    finds the site gone and leaves it (it failed with KeyError, km's internal error, in a
    signal storm on four threads)."""

    class Process:
        tasks = {1: None}
        pause_requests = 0

    site = 0x401000
    rw = _one_short_site(Process(), site)
    written = []
    rw._poke = lambda addr, data: written.append((addr, data)) or True
    first, second = {site: True}, {site: True}  # (each thread's, taken before either ran)
    rw._revert(None, first)
    rw._revert(None, second)
    assert written == [(site, bytes.fromhex("4989ca0f05"))] and rw.put_back == 1
    assert not rw.patched and not rw.short and not rw.entries


def test_a_site_to_put_back_stays_pending_until_it_is_back():
    """A site a frame returns into leaves ``put_back_soon`` only once its bytes are back:
    another thread's ``_put_back`` meanwhile still sees it, and puts it back itself or
    waits in the pause of the thread that does.  (``_put_back`` took the whole set for
    itself before it paused the others: a second thread found it empty, went on to its
    rt_sigreturn and ran the jump's middle, SIGSEGV.)"""

    class Process:
        tasks = {1: None}
        pause_requests = 0

    site = 0x401000
    rw = _one_short_site(Process(), site)
    rw.put_back_soon.add(site)
    pending = []  # what another thread sees while the bytes are written
    rw._poke = lambda addr, data: pending.append(set(rw.put_back_soon)) or True
    rw._put_back(None)
    assert pending == [{site}] and rw.put_back_soon == set() and not rw.patched


def _one_short_site(process, site: int, tramp: int = 0x7000000, n: int = 3):
    """A Rewriter of ``process`` with one short site rewritten (``mov %rcx,%r10``, then
    `syscall`), as _patch leaves it."""
    from kontain.kernel.rewrite import Rewriter

    rw = Rewriter(process)
    syscall_at, entry = site + n, tramp + n
    rw.patched[site] = (bytes.fromhex("4989ca0f05"), tramp)
    rw._sorted.append(site)
    rw.tramps[tramp] = (site, n, syscall_at)
    rw.by_syscall[syscall_at] = tramp
    rw.short[syscall_at] = entry
    rw.entries[entry] = syscall_at
    return rw
