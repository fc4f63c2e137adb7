"""The gdb stub (``km --gdb PORT``, kernel/gdbstub.py), driven by Debian's gdb in batch
mode as a user would drive it, and by a raw socket for what gdb never sends."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest

from kt import KM, ROOT, STATIC, build

GDB = "/usr/bin/gdb"
TIMEOUT = 120


class Session:
    """km running PROGRAM under its gdb stub (port chosen by km: --gdb 0)."""

    def __init__(self, prog, *args, listen: bool = False, km_options=()):
        self.prog = str(prog)
        self.km = subprocess.Popen(KM + list(km_options) + ["--gdb-listen" if listen else "--gdb", "0", self.prog,
                                                            *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.km.stderr.readline().decode()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        assert m, f"km did not say where it listens: {line!r}"
        self.port = int(m.group(1))

    def gdb(self, *commands: str, timeout: float = TIMEOUT) -> str:
        argv = [GDB, "-batch", "-nx", "-ex", "set confirm off", "-ex", f"target remote :{self.port}"]
        for c in commands:
            argv += ["-ex", c]
        r = subprocess.run(argv + [self.prog], capture_output=True, text=True, timeout=timeout)
        return r.stdout + r.stderr

    def end(self) -> tuple[int, str, str]:
        out, err = self.km.communicate(timeout=TIMEOUT)
        return self.km.returncode, out.decode(), err.decode()


def debuggee(variant="musl"):
    return build("debuggee", variant, ("-g", "-O1", "-pthread"))


@pytest.mark.parametrize("variant", STATIC)
def test_break_step_finish_exit(variant):
    s = Session(debuggee(variant), "plain")
    out = s.gdb("break square", "continue", "bt", "print x", "next", "next", "print result", "finish",
                "delete", "break sum_squares", "info breakpoints", "delete", "stepi", "continue")
    status, stdout, _err = s.end()
    assert re.search(r"Breakpoint 1, square \(x=(x@entry=)?1\)", out), out
    assert re.search(r"#1 .* in sum_squares \(n=", out) and re.search(r"#2 .* in main ", out)
    assert "$1 = 1" in out
    assert "Value returned is $3 = 1" in out
    assert "exited with code 07" in out
    assert status == 7 and stdout == "total 30\n"


def test_registers_and_memory():
    s = Session(debuggee(), "plain")
    out = s.gdb("break square", "continue", "print $rip == (long)&square", "print $fs_base != 0",
                "print $xmm1.v4_int32[0] == $xmm1.v4_int32[0]", "print $mxcsr", "set var counter = 100", "print counter",
                "set var $rax = 0x1234", "print/x $rax", "x/1bx square",
                "info registers eflags", "set var $xmm1.v4_int32[0] = 7", "print $xmm1.v4_int32[0]",
                "set var $ymm2.v8_int32[7] = 9", "print $ymm2.v8_int32[7]", "set var $st0 = 2.5", "print $st0",
                "delete", "continue")
    status, stdout, _err = s.end()
    assert "$7 = 7" in out and "$8 = 9" in out and "$9 = 2.5" in out, out
    assert out.count("= 1") >= 3, out
    assert "$5 = 100" in out and "$6 = 0x1234" in out
    assert re.search(r"<square>:\s+0x[0-9a-f]{2}", out) and "0xcc" not in out.split("x/1bx")[-1][:200]
    assert status == 7


def test_threads():
    s = Session(debuggee(), "threads")
    out = s.gdb("break worker", "continue", "info threads", "thread apply all bt", "delete", "continue")
    status, stdout, _err = s.end()
    assert re.search(r"Thread \d+ hit Breakpoint 1, worker \(arg=", out), out
    assert len(re.findall(r"^\*?\s+\d+\s+Thread \d+", out, re.M)) >= 2, out
    assert out.count("Thread ") >= 4 and re.search(r"#0 .*worker", out)
    assert status == 0 and stdout == "threads 365\n"


def test_stepping_while_other_threads_hit_breakpoints():
    """next in one thread while the others run into the same breakpoint: every stop is
    one gdb understands (a step another thread's stop got ahead of is called off and
    asked again), and the program ends as it should."""
    s = Session(debuggee(), "threads")
    out = s.gdb("break square", "continue", "next", "next", "next", "continue", "next", "delete", "continue")
    status, stdout, _err = s.end()
    assert "Breakpoint 1, square" in out and "SIGTRAP" not in out, out
    assert status == 0 and stdout == "threads 365\n", out


def test_sigsegv_caught():
    s = Session(debuggee(), "crash")
    out = s.gdb("continue", "bt", "print p", "continue")
    status, _out, err = s.end()
    assert "Program received signal SIGSEGV" in out
    assert re.search(r"#0 .*crash \(p=", out) and re.search(r"#1 .* main ", out)
    assert "$1 = (int *) 0x10" in out
    assert "Program terminated with signal SIGSEGV" in out
    assert status == -11 or status == 139


def test_signal_stop_and_suppress():
    s = Session(debuggee(), "signal")
    out = s.gdb("continue", "signal 0")
    status, stdout, _err = s.end()
    assert "Program received signal SIGUSR1" in out
    assert status == 3 and stdout == "after raise\n"  # the handler never ran
    s = Session(debuggee(), "signal")
    out = s.gdb("continue", "continue")
    status, stdout, _err = s.end()
    assert status == 3 and stdout == "usr1 handled\nafter raise\n"
    s = Session(debuggee(), "signal")
    out = s.gdb("handle SIGUSR1 nostop noprint pass", "continue")
    status, stdout, _err = s.end()
    assert "SIGUSR1" not in out.split("continue")[-1] and "exited with code 03" in out
    assert stdout == "usr1 handled\nafter raise\n"


def test_stepi_over_a_syscall():
    """A `syscall` instruction is stepped by running the call: the next stop is after it,
    with its result in RAX (TF would trap inside km's own stub)."""
    s = Session(debuggee(), "syscall")
    out = s.gdb("break getppid", "continue", "stepi", "x/i $pc", "stepi", "print $rax", "print $pc",
                "print (long)&getppid + 7", "delete", "continue")
    status, stdout, _err = s.end()
    assert "syscall" in out.split("x/i $pc")[-1].splitlines()[0] or "syscall" in out, out
    assert f"$1 = {os.getpid()}" in out, out
    assert re.search(r"\$2 = \(void \(\*\)\(\)\) (0x[0-9a-f]+)", out).group(1) == hex(int(
        re.search(r"\$3 = (\d+)", out).group(1))), out
    assert status == 0 and stdout == f"parent {os.getpid()}\n"


def test_detach_then_program_finishes():
    s = Session(debuggee(), "plain")
    out = s.gdb("break sum_squares", "continue", "detach")
    status, stdout, _err = s.end()
    assert "Breakpoint 1, sum_squares" in out and "detached" in out.lower()
    assert status == 7 and stdout == "total 30\n"


def test_software_watchpoint():
    s = Session(debuggee(), "watch")
    out = s.gdb("set can-use-hw-watchpoints 0", "break bump", "continue", "watch watched", "continue", "continue",
                "delete", "continue")
    status, stdout, _err = s.end()
    assert "Old value = 0\nNew value = 1" in out and "Old value = 1\nNew value = 3" in out, out
    assert status == 0 and stdout == "watched 10\nstack 14\n"


def test_watchpoints_by_memslot():
    """watch, rwatch, awatch without telling gdb anything: km watches pages through their
    memslots (read-only, or none), and reports the access after the instruction."""
    s = Session(debuggee(), "watch")
    out = s.gdb("break bump", "continue", "watch watched", "continue", "continue", "delete", "rwatch watched",
                "continue", "delete", "awatch watched", "continue", "delete", "continue")
    status, stdout, _err = s.end()
    assert "Hardware watchpoint 2: watched" in out
    assert "Old value = 0\nNew value = 1" in out and "Old value = 1\nNew value = 3" in out, out
    assert "Hardware read watchpoint 3: watched\n\nValue = 3" in out, out
    assert "Hardware access (read/write) watchpoint 4: watched" in out and "New value = 6" in out, out
    assert status == 0 and stdout == "watched 10\nstack 14\n"


def test_watchpoint_on_the_stack():
    """A watched local: its stack page is read-only to the program, so every call and push
    there is an exit km completes; only the local's changes stop."""
    s = Session(debuggee(), "watch")
    out = s.gdb("break stack_sum", "continue", "next", "watch local", "continue", "continue", "continue",
                "delete", "continue")
    status, stdout, _err = s.end()
    assert "Old value = 0\nNew value = 1" in out and "Old value = 1\nNew value = 5" in out, out
    assert "Old value = 5\nNew value = 14" in out, out
    assert status == 0 and stdout == "watched 10\nstack 14\n"


def test_attach_to_running_loop():
    s = Session(debuggee(), "loop", listen=True)
    assert s.km.stdout.readline() == b"looping\n"  # running before gdb comes
    out = s.gdb("info threads", "break square", "continue", "bt 1", "delete", "set var stop_loop = 1", "detach")
    status, stdout, _err = s.end()
    assert re.search(r"Breakpoint 1, square \(x=", out), out
    assert status == 0 and stdout == "loop done 1\n"


def test_catch_fork():
    """Fork events (gdb's multiprocess protocol): catch fork stops in the parent, gdb
    detaches the child, which runs free without the parent's breakpoints."""
    s = Session(debuggee(), "fork")
    out = s.gdb("catch fork", "break square", "continue", "info threads", "continue")
    status, stdout, _err = s.end()
    assert re.search(r"Catchpoint 1 \(forked process (\d+)\)", out), out
    assert re.search(r"Thread \d+\.\d+ \(main\)", out), out
    assert "Detaching after fork from child process" in out and "exited normally" in out, out
    assert "Breakpoint 2, square" not in out  # (the child's copy has no breakpoints)
    assert status == 0 and stdout == "child exited 5\n"


def test_forked_child_waits_for_its_own_gdb():
    """--gdb-fork-wait: the parent goes on under its gdb; the child it forks waits on a
    port of its own (km names it) for a second gdb, which debugs it to its exit."""
    s = Session(debuggee(), "fork", km_options=("--gdb-fork-wait",))
    parent = subprocess.Popen([GDB, "-batch", "-nx", "-ex", f"target remote :{s.port}", "-ex", "continue", s.prog],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = s.km.stderr.readline().decode()
    m = re.search(r"forked child (\d+): waiting for gdb on 127\.0\.0\.1:(\d+)", line)
    assert m, line
    s.port = int(m.group(2))
    out = s.gdb("break square", "continue", "bt", "continue")
    parent_out = parent.communicate(timeout=TIMEOUT)[0]
    status, stdout, _err = s.end()
    assert re.search(r"Breakpoint 1, square \(x=(x@entry=)?5\)", out) and re.search(r"#1 .* main ", out), out
    assert "exited with code 05" in out
    assert "exited normally" in parent_out
    assert status == 0 and stdout == "child exited 5\n"


def test_exec_followed():
    """An exec stops in gdb (exec events: `catch exec`), which loads the new program;
    without the catchpoint gdb follows it on its own and its breakpoints hit there."""
    s = Session(debuggee(), "exec")
    out = s.gdb("catch exec", "break square", "continue", "continue", "bt 1", "delete", "continue")
    status, stdout, _err = s.end()
    assert "executing new program" in out and "Catchpoint 1 (exec'd" in out, out
    assert re.search(r"Breakpoint 2, square \(x=(x@entry=)?1\)", out), out
    assert status == 7 and stdout == "total 30\n"
    s = Session(debuggee(), "exec")
    out = s.gdb("break sum_squares", "continue", "delete", "continue")
    status, stdout, _err = s.end()
    assert re.search(r"Breakpoint 1, sum_squares \(n=", out), out
    assert status == 7 and stdout == "total 30\n"


def test_gcore_of_a_running_program(tmp_path):
    """A core of a running program: attach (--gdb-listen), gdb's gcore (the program's
    mappings from its own /proc/PID/smaps, through km), detach: it runs on."""
    s = Session(debuggee(), "loop", listen=True)
    assert s.km.stdout.readline() == b"looping\n"
    core = tmp_path / "core.gcore"
    out = s.gdb(f"gcore {core}", "set var stop_loop = 1", "detach")
    status, stdout, _err = s.end()
    assert "Saved corefile" in out and status == 0 and stdout == "loop done 1\n", out
    out = subprocess.run([GDB, "-batch", "-nx", "-ex", "info threads", "-ex", "print stop_loop", "-ex",
                          "print counter > 0", s.prog, str(core)],
                         capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert re.search(r"^\*\s+1\s+LWP \d+", out, re.M), out
    assert "$1 = 0" in out and "$2 = 1" in out, out  # (the data as it was: stop_loop not set yet)


def test_dynamic_glibc_break_in_libc(tmp_path):
    """A dynamic glibc program: gdb learns the libraries as ld.so loads them
    (qXfer:libraries-svr4), so `break printf` set before libc is there stops in libc."""
    prog = tmp_path / "debuggee-dyn"
    subprocess.run(["gcc", "-g", "-O1", "-pthread", "-o", str(prog), str(ROOT / "tests" / "programs" / "debuggee.c")],
                   check=True)
    s = Session(prog, "plain")
    out = s.gdb("break printf", "continue", "bt", "info sharedlibrary", "finish", "continue")
    status, stdout, _err = s.end()
    assert re.search(r"Breakpoint 1, (__)?printf \(format=", out), out
    assert "libc.so.6" in out and re.search(r"#1 .* main ", out)
    assert status == 7 and stdout == "total 30\n"


def test_core_has_every_thread(tmp_path):
    """km --core writes every thread (an NT_PRSTATUS each), the crashing one first."""
    prog = debuggee()
    r = subprocess.run(KM + ["--core", str(prog), "threadcrash"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=TIMEOUT)
    cores = list(tmp_path.glob("core.*"))
    assert r.returncode in (-11, 139) and len(cores) == 1, r.stderr
    out = subprocess.run([GDB, "-batch", "-nx", "-ex", "info threads", "-ex", "thread apply all bt", str(prog),
                          str(cores[0])], capture_output=True, text=True, timeout=TIMEOUT).stdout
    assert len(re.findall(r"^\*?\s+\d+\s+(LWP|Thread) \d+", out, re.M)) == 3, out
    assert re.search(r"^\*\s+1\s+.*crash \(p=", out, re.M), out
    assert re.search(r"#0 .*spinner", out) or re.search(r"spinner \(arg=", out), out
    assert re.search(r"clock_nanosleep|sleeper", out), out  # (musl's nanosleep has no unwind info)


def test_another_users_gdb_is_refused():
    """TCP on 127.0.0.1 is open to every local user: a connection from another user's
    process (not root's) is closed at once, the program's own user is served."""
    import sys

    from kt import as_user

    s = Session(debuggee(), "loop", listen=True)
    assert s.km.stdout.readline() == b"looping\n"
    probe = (f"import socket,sys; c=socket.create_connection(('127.0.0.1',{s.port})); "
             "c.sendall(b'$qSupported#37'); c.settimeout(20); d=c.recv(100); sys.stdout.write(repr(d))")
    r = subprocess.run(as_user([sys.executable, "-c", probe]), capture_output=True, text=True, timeout=TIMEOUT)
    assert r.stdout == "b''" or "ConnectionResetError" in r.stderr, (r.stdout, r.stderr)
    out = s.gdb("set var stop_loop = 1", "detach")
    status, stdout, _err = s.end()
    assert "detached" in out.lower() and status == 0 and stdout == "loop done 1\n"


# -- the protocol itself, over a raw socket ---------------------------------------------------

def _packet(body: bytes) -> bytes:
    return b"$" + body + b"#" + b"%02x" % (sum(body) & 0xFF)


class Raw:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def ask(self, body: bytes, raw: bool = False) -> bytes:
        self.sock.sendall(body if raw else _packet(body))
        while True:
            m = re.search(rb"\$([^#]*)#[0-9a-f]{2}", self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m.group(1)
            data = self.sock.recv(65536)
            assert data, "the stub closed the connection"
            self.buf += data


MALFORMED = [
    b"g1", b"p", b"pzz", b"p999", b"P", b"P10", b"P10=zz", b"P10=00", b"m", b"m0", b"mzz,4", b"m1,", b"m,1",
    b"m-1,4", b"mffffffffffffffffffff,4", b"m0,ffffffffffffffff", b"M0,4", b"M0,4:zz", b"M10,2:00", b"X", b"X0,4",
    b"X0,4:ab", b"X0,1:}", b"Z0", b"Z0,", b"Z0,zz,1", b"Z0,0,1", b"Z0,401000,9", b"Z9,0,1", b"z0,1,1", b"H",
    b"Hx1", b"Hgzz", b"Hg99999", b"T", b"Tzz", b"vCont;", b"vCont;x", b"vCont;C", b"vCont;Czz", b"vCont;c:zz",
    b"qXfer:features:read:target.xml:zz", b"qXfer:features:read:other.xml:0,10", b"qXfer:auxv:read::",
    b"qXfer:nothing:read::0,10", b"qXfer:auxv:write::0,10", b"QPassSignals:zz", b"qThreadExtraInfo,zz",
    b"G00", b"Gzz", b"C", b"Czz", b"S", b"sZZ", b"czz", b"\xff\xfe", b"q", b"Q", b"v", b"vFile:open:",
    b"qC\x00", b"G" + b"0" * 5000, b"vFile:pread:zz", b"vFile:pread:0", b"vFile:pread:0,10,zz",
    b"vFile:open:zz,0,0", b"vFile:open:2f,1,0", b"vFile:fstat:99", b"vFile:readlink:zz", b"vFile:close:",
    b"vFile:pwrite:0,0,", b"vFile:unlink:2f", b"D;zz", b"vKill;zz", b"Hgp1.1", b"Hgpzz.1",
]


def test_random_packets_leave_the_stub_answering():
    """Thousands of random packets (a fixed seed: the same ones every run), none of them
    a resume, detach or kill: every one answered, the stub still sane after."""
    import random

    rnd = random.Random(14)
    s = Session(debuggee(), "loop")
    r = Raw(s.port)
    alphabet = b"0123456789abcdefxyzGgPpMmXZzHTqQv?,:;=-$}*#"
    for _ in range(3000):
        body = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 40)))
        body = body.replace(b"$", b"").replace(b"#", b"").replace(b"}", b"")
        if not body or body[:1] in b"cCsSDkKRr!" or body.startswith((b"vCont", b"vKill", b"vRun", b"vAttach")):
            continue
        reply = r.ask(body)
        assert b"Traceback" not in reply
    assert r.ask(b"?").startswith(b"T")
    assert r.ask(b"qfThreadInfo").startswith(b"m")
    assert r.ask(b"vKill;1") == b"OK"
    status, _out, err = s.end()
    assert status in (-9, 137) and "Traceback" not in err and "internal error" not in err, err


def test_malformed_packets_are_answered():
    s = Session(debuggee(), "loop")
    r = Raw(s.port)
    assert b"swbreak+" in r.ask(b"qSupported")
    assert r.ask(b"?").startswith(b"T05")
    for bad in MALFORMED:
        reply = r.ask(bad)
        assert reply == b"" or reply.startswith((b"E", b"T", b"F-1,")) or reply in (b"OK", b"l", b"m"), (bad, reply)
    # junk, a bad checksum, a lone '#', an unterminated escape: skipped, the stub answers the next one
    r.sock.sendall(b"garbage#00$nope#zz$g#00#")
    assert r.ask(b"?").startswith(b"T05")
    assert len(r.ask(b"g")) >= 16 * 16
    assert r.ask(b"m0,4") in (b"E0e", b"")  # address 0: nothing mapped
    # gdb's file I/O: the program's own /proc/PID/maps as it sees it
    handle = r.ask(b"vFile:open:" + f"/proc/{s.km.pid}/maps".encode().hex().encode() + b",0,0")
    assert handle.startswith(b"F") and not handle.startswith(b"F-"), handle
    maps = r.ask(b"vFile:pread:" + handle[1:] + b",1000,0")
    assert b"[stack]" in maps and b"python" not in maps, maps
    assert r.ask(b"vFile:close:" + handle[1:]) == b"F0"
    # ^C while the program runs: it stops (SIGINT, which gdb's "signal 0" then drops)
    r.sock.sendall(_packet(b"vCont;c"))
    r.sock.sendall(b"\x03")
    assert r.ask(b"", raw=True).startswith(b"T02")
    assert r.ask(b"vKill;1") == b"OK"
    status, _out, err = s.end()
    assert status in (-9, 137) and "Traceback" not in err
