"""Syscall sites rewritten into jumps (kernel/rewrite.py, PVM only): programs give the
same output with rewriting as natively, and km --timings shows that sites were rewritten
and calls took the new path.  tests/programs/rewrite.c does the calls."""

import os
import re
import struct

import pytest

from kt import KM, STATIC, build, build_go, compare, km, kvm_platform, run

PY = "/usr/bin/python3"
pytestmark = pytest.mark.skipif(kvm_platform() != "pvm", reason="syscall sites are rewritten on PVM only")
# sites rewritten from the first hot one on (by default only after 200 calls, which
# these short programs do not all make)
EAGER = ("--rewrite-after", "0")


def _prog(variant):
    return build("rewrite", variant, ("-lpthread",))


def _rewritten(err: str) -> tuple[int, int, int]:
    """(sites rewritten, calls rewritten and polled, calls rewritten and exited) from --timings."""
    m = re.search(r"(\d+) syscall sites rewritten .*?(\d+) rewritten and polled, (\d+) rewritten and exited", err)
    assert m, err
    return int(m[1]), int(m[2]), int(m[3])


@pytest.mark.parametrize("variant", STATIC)
def test_calls_as_native_with_sites_rewritten(variant):
    """getppid, write, pread, lseek many times: the same answers; sites rewritten, and
    most calls went through them."""
    argv = [_prog(variant), "calls", "3000"]
    compare(argv, km_options=EAGER)
    r = km("--timings", *EAGER, *argv)
    sites, polled, exited = _rewritten(r.err)
    assert sites > 0 and polled + exited > 3000, r.err
    # with --poll always the poller answers the sites from their first calls: they never
    # trap, and turn hot by the poller's count (Rewriter.answered)
    compare(argv, km_options=EAGER + ("--poll", "always"))
    r = km("--timings", *EAGER, "--poll", "always", *argv)
    sites, polled, exited = _rewritten(r.err)
    assert r.returncode == 0 and sites > 0 and polled + exited > 3000, r.err


@pytest.mark.parametrize("variant", STATIC)
def test_polled_sites_rewritten_after_the_warm_up(variant):
    """Sites the poller answers from the first call turn hot by its count too, and the
    warm-up (--rewrite-after) counts polled calls: none is rewritten before it."""
    argv = [_prog(variant), "calls", "3000"]
    r = km("--timings", "--poll", "always", *argv)
    sites, polled, exited = _rewritten(r.err)
    assert r.returncode == 0 and sites > 0 and polled + exited > 3000, r.err
    r = km("--timings", "--poll", "always", "--rewrite-after", "1000000", "--no-site-cache", *argv)
    assert r.returncode == 0 and _rewritten(r.err)[0] == 0, r.err


def _proofs(err: str) -> tuple[int, int]:
    """(proofs taken from earlier runs, proofs kept) from --timings."""
    m = re.search(r"; (\d+) proofs from earlier runs, (\d+) kept", err)
    assert m, err
    return int(m[1]), int(m[2])


def _entries(cache, program) -> os.PathLike:
    """The proofs file of ``program`` in the site cache ``cache`` (kernel/sitecache.py)."""
    st = os.stat(program)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return cache / "sites-v1" / "-".join(f"{x:x}" for x in key)


@pytest.mark.parametrize("variant", STATIC)
def test_proofs_of_an_earlier_run(variant, tmp):
    """A run keeps the proofs of the sites it rewrote (owner-only files); a later run of
    the same file rewrites them before its warm-up ends, here one too long to reach, and
    gives the same answers.  With --no-site-cache nothing is read."""
    prog = _prog(variant)
    argv = [prog, "calls", "3000"]
    r = km("--timings", "--site-cache", tmp, *argv)
    assert r.returncode == 0 and _proofs(r.err)[1] > 0 and _rewritten(r.err)[0] > 0, r.err
    entries = _entries(tmp, prog)
    assert entries.stat().st_mode & 0o777 == 0o600 and entries.parent.stat().st_mode & 0o777 == 0o700
    late = ("--timings", "--site-cache", str(tmp), "--rewrite-after", "1000000")
    compare(argv, km_options=late)
    r = km(*late, *argv)
    sites, polled, exited = _rewritten(r.err)
    assert _proofs(r.err) == (sites, 0) and sites > 0 and polled + exited > 2900, r.err
    r = km("--timings", "--no-site-cache", "--rewrite-after", "1000000", *argv)
    assert "proofs" not in r.err and _rewritten(r.err)[0] == 0, r.err


def test_proofs_that_do_not_hold_are_not_applied(tmp):
    """Proofs are checked against the program's memory as a fresh one is: an entry whose
    instruction is not the one before that `syscall`, or that names no `syscall`, is
    refused; so are the entries of a directory or file that others may write."""
    prog = _prog("musl")
    argv = [prog, "calls", "3000"]
    r = km("--timings", "--site-cache", tmp, *argv)
    entries = _entries(tmp, prog)
    good = entries.read_text().split()
    assert r.returncode == 0 and len(good) >= 2, r.err
    late = ("--timings", "--site-cache", str(tmp), "--rewrite-after", "1000000")
    # the same offsets with another instruction of the same length, and offsets one off
    wrong = [f"{off} {'90' * (len(insn) // 2)}" for off, insn in zip(good[::2], good[1::2])]
    wrong += [f"{int(off, 16) + 1:x} {insn}" for off, insn in zip(good[::2], good[1::2])]
    entries.write_text("\n".join(wrong) + "\nnot an entry\n")
    compare(argv, km_options=late)
    r = km(*late, *argv)
    assert _proofs(r.err)[0] == 0 and _rewritten(r.err)[0] == 0, r.err
    entries.write_text("\n".join(f"{o} {i}" for o, i in zip(good[::2], good[1::2])) + "\n")
    for path, mode in ((entries, 0o622), (entries.parent, 0o777)):
        path.chmod(mode)
        r = km(*late, *argv)
        assert _proofs(r.err)[0] == 0 and _rewritten(r.err)[0] == 0, (oct(mode), r.err)
        path.chmod(0o600 if path == entries else 0o700)
    r = km(*late, *argv)
    assert _proofs(r.err)[0] > 0, r.err


def test_other_instruction_before_syscall():
    """glibc's syscall(3): the instruction before its `syscall` is `mov 0x8(%rsp),%r9`,
    which the trampoline runs in its place."""
    argv = [_prog("glibc"), "raw", "3000"]
    compare(argv, km_options=EAGER)
    r = km("--timings", *EAGER, *argv)
    sites, polled, exited = _rewritten(r.err)
    assert sites >= 2 and polled + exited > 5000, r.err


def _short(err: str) -> tuple[int, int]:
    """(short sites rewritten, sites put back) from --timings."""
    m = re.search(r"\((\d+) short, \d+ refused, (\d+) put back\)", err)
    assert m, err
    return int(m[1]), int(m[2])


def test_short_site_covered_with_its_syscall():
    """musl's syscall(3) has `mov 0x18(%rdx),%rdx` (4 bytes) right before its `syscall`:
    the jump covers both (a short site), and the calls take it."""
    argv = [_prog("musl"), "raw", "3000"]
    compare(argv, km_options=EAGER)
    r = km("--timings", *EAGER, *argv)
    sites, polled, exited = _rewritten(r.err)
    assert _short(r.err)[0] >= 1 and polled + exited > 5000, r.err
    r = km("--timings", *EAGER, "--no-poll", *argv)
    sites, polled, exited = _rewritten(r.err)
    assert _short(r.err)[0] >= 1 and exited > 2900, r.err


@pytest.mark.parametrize("restart", ["1", "0"])
@pytest.mark.parametrize("variant", STATIC)
def test_signals_during_calls_from_a_short_site(variant, restart):
    """Blocking writes and reads through syscall(3), its site rewritten first, SIGALRM
    every 300 us: a call made again enters the trampoline (its `syscall` is under the
    jump), and a handler's frame never returns into km's code or under a jump: the
    site gets its bytes back first (``put back``)."""
    argv = [_prog(variant), "rawsignals", "300", restart]
    compare(argv, km_options=EAGER)
    compare(argv, km_options=EAGER + ("--no-poll",))


@pytest.mark.parametrize("variant", STATIC)
def test_a_handler_makes_a_call_again_from_its_syscall(variant):
    """A handler whose frame it changes to return onto the `syscall` of syscall(3)'s
    rewritten site, RAX another number: the call runs again there, natively by the
    instruction itself; under km that `syscall` of musl's short site is under the jump,
    and rt_sigreturn resumes at the trampoline's entry instead (in the jump's middle,
    its last byte and the next instructions make an `incl disp32(%rip)`: the rawthreads
    storm below once died so, "killed by SIGSEGV at 0xffffffffe907b440")."""
    argv = [_prog(variant), "rerun", "200"]
    compare(argv, km_options=EAGER)
    if variant == "musl":
        r = km("--timings", *EAGER, *argv)
        assert r.returncode == 0 and _short(r.err)[0] >= 1, r.err


@pytest.mark.parametrize("variant", STATIC)
def test_threads_and_signals_at_a_short_site(variant):
    """Four threads calling through syscall(3) while SIGALRM lands in whichever thread it
    finds: kicks stop threads anywhere, also between the site's instruction and its
    `syscall` (the jump waits for them, or never comes if a frame returns there)."""
    compare([_prog(variant), "rawthreads", "4", "20000"], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_no_rewrite(variant):
    r = km("--timings", *EAGER, "--no-rewrite", _prog(variant), "code", "200")
    assert "rewritten" not in r.err
    before, after = re.findall(r"(?:before|after):(.*)", r.text)
    assert before == after


@pytest.mark.parametrize("restart", ["1", "0"])
@pytest.mark.parametrize("variant", STATIC)
def test_signals_during_rewritten_calls(variant, restart):
    """Writes to a pipe that fills up, SIGALRM every 300 us, with and without
    SA_RESTART: every write's result is legal (EINTR only without SA_RESTART) and the
    reader gets exactly what was written: an interrupted call runs again from its
    original `syscall` with the right number."""
    compare([_prog(variant), "signals", "300", restart], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_threads_hammering_a_site_while_it_is_patched(variant):
    argv = [_prog(variant), "threads", "4", "20000"]
    compare(argv, km_options=EAGER)
    r = km("--timings", *EAGER, *argv)
    assert _rewritten(r.err)[0] > 0, r.err


@pytest.mark.parametrize("variant", STATIC)
def test_fork_and_exec(variant):
    """The child inherits the rewritten code and its trampolines; exec starts afresh."""
    compare([_prog(variant), "forkexec", "2000"], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_program_setting_gs(variant):
    """GS base 0 as the program sees it; a program setting its own makes km put the
    sites back (its trampolines find the stub through GS)."""
    compare([_prog(variant), "gs", "200"], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_code_made_writable_gets_its_bytes_back(variant):
    """mprotect(PROT_WRITE) over rewritten code: the original bytes come back first."""
    compare([_prog(variant), "writable", "200"], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_trampoline_page_unmapped(variant):
    """The program unmaps km's trampoline page ([km-syscalls] in its maps): the sites
    that jump there get their bytes back first."""
    compare([_prog(variant), "unmap", "200"], km_options=EAGER)


@pytest.mark.parametrize("variant", STATIC)
def test_waiters_stay_in_their_futex_wait_while_a_site_is_rewritten(variant):
    """Rewriting a site pauses the other threads, but leaves those inside a host wait
    there (Task.blocking): wakes made after the pause find every waiter, which a pause
    that took them out of the wait (and made the call again, on the word it names,
    not the one they were moved to) would lose (LTP futex_wake02)."""
    argv = [_prog(variant), "futexwake", "4"]
    native, guest = compare(argv, km_options=EAGER + ("--timings",))
    assert "wakes: 1 1 1 1" in native.text
    assert _rewritten(guest.err)[0] > 0, guest.err


def test_code_bytes_and_core_file(tmp_path):
    """The program reading its own code at a rewritten site sees the jump (documented:
    docs/known-issues.md); its core file shows the original bytes."""
    prog = _prog("glibc")
    native = run([prog, "code", "200"])
    r = run(KM + [*EAGER, "--core", str(prog), "code", "200", "core"], cwd=tmp_path, env={**os.environ, "SHOW_ADDRESS": "1"})
    assert r.returncode == -11 or r.returncode == 128 + 11, r.err
    before, after = re.findall(r"(?:before|after):(.*)", r.text)
    assert before == re.findall(r"before:(.*)", native.text)[0]
    assert after.split()[0] == "e9" and after.split()[5:] == ["0f", "05"], after
    addr = int(re.search(r"getppid at (0x[0-9a-f]+)", r.text)[1], 16)
    cores = list(tmp_path.glob("core*"))
    assert cores, os.listdir(tmp_path)
    data = cores[0].read_bytes()
    phoff, phentsize, phnum = struct.unpack_from("<Q", data, 32)[0], *struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = \
            struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_vaddr <= addr < p_vaddr + p_filesz:
            got = data[p_offset + addr - p_vaddr:p_offset + addr - p_vaddr + 7]
            assert " ".join(f"{b:02x}" for b in got) == before.strip()
            break
    else:
        raise AssertionError("getppid's page is not in the core file")


def test_go_program():
    """Go's runtime calls (futex, write1, nanosleep...) take the number as an immediate."""
    go = build_go()
    for mode in ("goroutines", "timers"):
        compare([go, mode], km_options=EAGER)
    r = km("--timings", *EAGER, go, "goroutines")
    assert _rewritten(r.err)[0] > 0, r.err


def test_dynamic_python3():
    """Debian's python3 (libc.so.6, sites found through its .eh_frame_hdr and .dynsym)."""
    argv = [PY, "-c", "import os\nfor i in range(3000): os.getppid()\nprint('ok', os.getppid() == os.getppid())"]
    compare(argv, km_options=EAGER)
    # (--no-poll: with the polling tier on, the getppid site may be answered by the poller
    # before it traps 8 times, and then it is never rewritten: known-issues)
    r = km("--timings", "--no-poll", *EAGER, *argv)
    sites, polled, exited = _rewritten(r.err)
    assert sites > 0 and polled + exited > 2000, r.err


def test_busybox():
    """Debian's busybox: static and stripped, function starts from its .eh_frame section."""
    import shutil

    bb = shutil.which("busybox")
    if bb is None:
        pytest.fail("busybox is not installed (make deps installs busybox-static)", pytrace=False)
    argv = [bb, "sh", "-c", "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo $i >/dev/null; done; echo $i"]
    compare(argv, km_options=EAGER)
    r = km("--timings", *EAGER, *argv)
    assert _rewritten(r.err)[0] > 0, r.err


def test_short_programs_are_left_alone(tmp):
    """By default no site is rewritten before the program made 200 calls: 30 rounds of
    four calls (every site hot, ~130 calls in all) keep their code, and never load the
    decoder; a longer loop of calls does not.  Once a run proved its sites, a short run
    rewrites them too (kernel/sitecache.py), from the proofs alone."""
    cache = ("--site-cache", str(tmp))
    r = km("--timings", *cache, _prog("glibc"), "calls", "30")
    assert r.returncode == 0 and _rewritten(r.err)[0] == 0, r.err
    r = km("--timings", *cache, _prog("glibc"), "calls", "3000")
    sites, polled, exited = _rewritten(r.err)
    assert r.returncode == 0 and sites > 0 and polled + exited > 3000, r.err
    r = km("--timings", *cache, _prog("glibc"), "calls", "30")
    sites, _polled, _exited = _rewritten(r.err)
    assert r.returncode == 0 and sites > 0 and _proofs(r.err) == (sites, 0), r.err


@pytest.mark.parametrize("variant", STATIC)
@pytest.mark.parametrize("site", ["warm", "first"])
def test_fork_while_another_thread_rewrites(variant, site):
    """A fork waits for the address space (another thread maps 512 MiB with
    MAP_POPULATE) while a third thread's site turns hot.  "warm": that thread pauses the
    others to rewrite; the child inherited the pause (Process.pausing_others) and sat out
    its first blocking call, a read, forever (Go's runtime TestSignalDuringExec hung).
    "first": the program's first site, whose trampoline page that thread waits to map
    holding the rewriter's lock; the child inherited the lock held and hung when a site
    of its own turned hot (sometimes the fork gets the address space second, and it is
    the "warm" case)."""
    native, guest = compare([_prog(variant), "forkpause", "512", site], km_options=EAGER)
    assert native.text == "child: exit 0\n"
