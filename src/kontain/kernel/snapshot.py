"""Snapshots: a paused program written to a file (kernel/snapfile.py), and resumed from it.

Taking one (``take``): every thread is paused at a safe point (kernel/runstate.py); the
thread that asked (the in-guest call, ``KM_SNAPSHOT``) is in its handler, so it is
marked paused itself.  What cannot come back is refused first, with one line that says
which thing and why (``Refused``): a descriptor that is not a regular file, a directory,
a character device, a pipe or a socketpair with both ends in the program, a listening socket, an epoll set
(its watched descriptors, events and data, from /proc/self/fdinfo), an eventfd, a timerfd or
a signalfd; a POSIX timer on a clock a resume cannot count (kernel/snaptimers.py); System V
shared memory; changed credentials; live children.  Then
``Process.save()`` gives every component's state, adjusted so that it can run again in
another VM:

* the thread that asked gets 1 in RAX (the call's answer in a resumed run; 0 in this one);
* a thread parked in the middle of a call that waits in km (sigsuspend, pause,
  sigtimedwait: ``Task.mid_call``) is set to make the call again, with the mask it had
  before it;

and the memory goes into PT_LOADs.  The program goes on (0 from the call) or ends
(``km snapshot`` without ``--leave-running``).

Resuming is kernel/resume.py; descriptors both ways kernel/snapfds.py; the file format
kernel/snapfile.py.
"""

from __future__ import annotations

import os
import stat
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError, KmError
from kontain.kernel import aio, rewrite, snapfds, snapfile, snaptimers
from kontain.kernel.runstate import PAUSED, RUNNING
from kontain.kernel.snapfile import PF_R, PF_W, PF_X, Refused, Segment, SnapshotError
from kontain.kvm import abi as k
from kontain.memory.mm import VM_SPECIAL, ShmVma, host_prot

__all__ = ["Refused", "take", "pause", "unpause", "default_path", "serve_request", "VCPU_STACK"]

_RAX = 8 * k.REG_NAMES.index("rax")
_RCX = 8 * k.REG_NAMES.index("rcx")
_RIP = 8 * k.REG_NAMES.index("rip")
VCPU_STACK = L.TSS_SIZE + L.IO_BITMAP_BYTES + 1  # where a vCPU page's exception stack begins (past its TSS)
_HOST_RLIMITS = (F.RLIMIT_CPU, F.RLIMIT_FSIZE, F.RLIMIT_STACK, F.RLIMIT_CORE, F.RLIMIT_NPROC,
                 F.RLIMIT_MEMLOCK, F.RLIMIT_MSGQUEUE, F.RLIMIT_NICE, F.RLIMIT_RTPRIO, F.RLIMIT_RTTIME,
                 F.RLIMIT_SIGPENDING, F.RLIMIT_LOCKS, F.RLIMIT_RSS)


def default_path(pid: int | None = None) -> str:
    """Where a snapshot goes when the program names no file: ./kmsnap.PID."""
    return f"kmsnap.{os.getpid() if pid is None else pid}"


# -- taking one ----------------------------------------------------------------------------
def pause(p, caller) -> None:
    """Every thread of the program paused; ``caller`` (a program thread in its handler,
    or None from a monitor thread) counts as paused."""
    with p.lock:
        p.pause_requests += 1
        if caller is not None:
            caller.state = PAUSED
        others = [t for t in p.tasks.values() if t is not caller]
    for t in others:
        p.kick(t)
    with p.lock:
        while p.exiting or p.pausing_others or any(t.state == RUNNING for t in p.tasks.values()):
            p.changed.wait()


def unpause(p, caller) -> None:
    with p.lock:
        if caller is not None:
            caller.state = RUNNING
        p.pause_requests -= 1
        p.changed.notify_all()


def take(p, path: str, caller=None, result: int = 1) -> int:
    """Write the paused program ``p`` to ``path``; returns the file's size.  Refused
    (nothing written) when it holds what cannot be resumed.  ``caller``: the program
    thread asking, whose call answers ``result`` in a resumed run."""
    _refusals(p)
    timers = snaptimers.describe(p)
    files, pipes_data = snapfds.describe(p)
    try:
        if p.rewriter is not None:  # threads inside a trampoline go back to the program's code
            for task in p.tasks.values():
                p.rewriter.settle(task)
        state = p.save()
        # rewritten syscall sites are saved as the program had them, and km's trampoline
        # pages not at all: a resume starts with no site rewritten (kernel/rewrite.py)
        state["mm"]["vmas"] = [v for v in state["mm"]["vmas"] if v[1][4] != rewrite.NAME]
        tasks = state["tasks"]
        for t in tasks:
            task = p.tasks[t["tid"]]
            t["vcpu_id"] = task.vcpu.id
            regs = bytearray(t["vcpu"]["regs"])
            if p.rewriter is not None:  # a short site's trampoline entry is its `syscall` in the saved code
                for at in (_RIP, _RCX):
                    struct.pack_into("<Q", regs, at, p.rewriter.as_program(struct.unpack_from("<Q", regs, at)[0]))
            if task is caller:
                struct.pack_into("<q", regs, _RAX, result)  # the call's answer after a resume
            elif task.mid_call:
                # parked inside a call that waits in km: make it again after the resume
                nr = task.q[k.RAX] & 0xFFFFFFFF
                struct.pack_into("<q", regs, _RAX, nr)
                struct.pack_into("<Q", regs, _RCX, (task.q[k.RCX] - 2) & 0xFFFFFFFFFFFFFFFF)
                if t["saved_mask"] is not None:
                    t["sigmask"], t["saved_mask"] = t["saved_mask"], None
            t["vcpu"]["regs"] = bytes(regs)
            # the vCPU's exception stack (an exception or iret frame of a thread stopped in
            # km's code at CPL0): its page past the TSS, which a resume builds itself
            page = L.vcpu_page(task.vcpu.id) - L.SYS_BASE
            t["stack"] = bytes(p.sys.buf[page + VCPU_STACK:page + L.VCPU_PAGE])
        if caller is not None:  # the asking thread first: gdb's current thread
            tasks.sort(key=lambda t: t["tid"] != caller.tid)
        del state["slots"]  # (host addresses: a resume registers the slots from the VMAs)
        state["fds"] = files
        segments, loads, mapped_files = _segments(p)
        head = {
            "cpuid": snapfile.cpu_model(p.cpuid), "xcr0": p.xcr0, "xsave_size": p.kvm.xsave_size,
            "user_stub": p.platform.user_stub, "poll": p.spec.poll if p.poller is not None else "off",
            "window": p.spec.window, "kernel": os.uname().release, "uid": os.getuid(), "gid": os.getgid(),
            "floor": p.fds.floor,
        }
        extra = {
            "exe_path": p.exe_path, "auxv": bytes(p.auxv_bytes), "cwd": os.getcwdb(), "umask": _umask(),
            "host_rlimits": {r: _getrlimit(r) for r in _HOST_RLIMITS}, "loads": loads, "pipes": pipes_data,
            "caller": caller.tid if caller is not None else 0, "mmap_top": p.mm.mmap_top, "timers": timers,
            "aio": aio.describe(p),
        }
        notes = _gdb_notes(p, caller, mapped_files)
        notes += snapfile.state_note({"head": head, "process": state, "extra": extra})
        return snapfile.write(path, notes, segments)
    finally:
        snapfds.put_back_all(pipes_data)


def dump_core(p, path: str) -> int:
    """km dump: the paused program's core file at ``path`` (every thread, each where it
    stopped; no signal), as gdb's gcore writes one; returns its size.  Unlike a snapshot,
    nothing in the program refuses it."""
    from kontain.abi.signals import SIGINFO_SIZE
    from kontain.kernel import coredump

    tasks = sorted(p.tasks.values(), key=lambda t: t.tid != os.getpid())  # the main thread first
    if not tasks:
        raise KmError("dump: the program has no thread left")
    if p.rewriter is not None:
        for t in tasks:
            p.rewriter.settle(t)
    first = tasks[0]
    coredump.write(p, first, 0, bytes(SIGINFO_SIZE), first.user_context(), path,
                   others=[(t, t.user_context()) for t in tasks[1:]])
    return os.stat(path).st_size


def _refusals(p) -> None:
    if any(isinstance(v, ShmVma) for v in p.mm):
        raise Refused("snapshot: the program has System V shared memory attached (shmat), which a snapshot "
                      "cannot take along")
    if any(t.creds is not None for t in p.tasks.values()):
        raise Refused("snapshot: the program changed its credentials or namespaces (setuid, unshare & co.), which a "
                      "resume cannot")
    for pid in p.children:
        if native.syscall(62, pid, 0) != -3:  # kill(pid, 0): not ESRCH
            raise Refused(f"snapshot: the program has a child process ({pid}), which a resume would not have")
    if p.vfork_fd >= 0:
        raise Refused("snapshot: the program is a vfork child")


def _segments(p) -> tuple[list[Segment], list, list]:
    """The PT_LOADs: each mapping's memory (a shared file mapping's is its file's, and
    the vDSO is the host's: neither is in the file), how a resume puts each back, and
    the file mappings for NT_FILE."""
    segments, loads, files = [], [], []
    for v in p.mm:
        if v.name == rewrite.NAME:
            continue  # (km's trampolines: not the program's)
        flags = (PF_R if v.prot & 1 else 0) | (PF_W if v.prot & 2 else 0) | (PF_X if v.prot & 4 else 0)
        if v.flags & VM_SPECIAL:
            kind, read = "special", None
        elif not v.anonymous and v.shared:
            kind, read = "file", None
        else:
            kind, read = "memory", _reader(p, v.prot)
        segments.append(Segment(v.start, v.end, flags, read))
        loads.append((v.start, v.end, kind))
        if not v.anonymous and v.name.startswith("/"):
            files.append((v.start, v.end, v.offset, os.fsencode(v.name)))
    return segments, loads, files


def _reader(p, prot: int):
    """How to read a mapping's memory: as the host maps it, made readable for a moment
    when the program's protection leaves the host mapping without access."""
    mem = p.mem
    hostprot = host_prot(prot)
    rewriter = p.rewriter

    def read(addr: int, n: int) -> bytes:
        opened = not hostprot & (F.PROT_READ | F.PROT_WRITE)
        if opened:
            native.syscall(10, mem.base + addr, n, F.PROT_READ)  # mprotect
        try:
            try:
                data = mem.read(addr, n)
            except GuestError:  # (a file mapping past its file's end: those pages are holes)
                data = b"".join(_page_or_zero(mem, a) for a in range(addr, addr + n, snapfile.PAGE))
            return rewriter.original(addr, data) if rewriter is not None else data
        finally:
            if opened:
                native.syscall(10, mem.base + addr, n, hostprot)

    return read


def _page_or_zero(mem, addr: int) -> bytes:
    try:
        return mem.read(addr, snapfile.PAGE)
    except GuestError:
        return bytes(snapfile.PAGE)


def _gdb_notes(p, caller, mapped_files) -> bytes:
    """What gdb reads from a core file: each thread's registers and FPU state, the
    process, its auxv and its file mappings."""
    from kontain.kernel import coredump

    pid = os.getpid()
    ppid, pgrp, sid = os.getppid(), os.getpgrp(), os.getsid(0)
    tasks = sorted(p.tasks.values(), key=lambda t: t is not caller)
    out = b""
    for t in tasks:
        ctx = t.context()
        regs = dict(ctx.regs)
        regs.update(eflags=ctx.rflags, orig_rax=0xFFFFFFFFFFFFFFFF, cs=0x33, ss=0x2B,
                    fs_base=t.segment_base("fs"), gs_base=t.segment_base("gs"))
        out += snapfile.note(snapfile.NT_PRSTATUS, coredump.prstatus(0, t.tid, ppid, pgrp, sid, regs,
                                                                     t.pending.mask, t.sigmask))
        xsave = bytes(t.vcpu.get_xsave())
        out += snapfile.note(snapfile.NT_FPREGSET, xsave[:512])
        out += snapfile.note(snapfile.NT_X86_XSTATE, xsave[:p.xstate_size] if p.xstate_size else xsave,
                             b"LINUX")
    argv = p.argv
    out += snapfile.note(snapfile.NT_PRPSINFO, coredump.prpsinfo(pid, ppid, pgrp, sid, os.getuid(), os.getgid(),
                                                                 os.path.basename(argv[0]) if argv else b"",
                                                                 b" ".join(argv)))
    out += snapfile.note(snapfile.NT_AUXV, bytes(p.auxv_bytes))
    out += snapfile.note(snapfile.NT_FILE, snapfile.nt_file(mapped_files))
    return out


def _umask() -> int:
    old = os.umask(0o22)
    os.umask(old)
    return old


def _getrlimit(r: int) -> tuple[int, int]:
    import resource

    soft, hard = resource.getrlimit(r)
    return soft, hard


# -- from outside: km snapshot PID (cli/snapctl.py) -----------------------------------
#
# The channel only the program's user can reach: ``km snapshot PID`` makes a Unix
# socket in a directory of that user's, mode 0700 ($XDG_RUNTIME_DIR/kontain, else
# /tmp/kontain-UID), named for the pid, and sends the km the signal REQUEST_SIGNAL with
# si_code SI_QUEUE and REQUEST_VALUE (sending a signal needs the same user already).
# That km, seeing it in its signal thread (Process.post, never the program's), checks
# the directory (its own, 0700, not a link) and connects; each side checks the other's
# credentials (SO_PEERCRED: the same uid, and the pid asked for).  The request is one
# line, "PATH\0MODE" (MODE_*); the answer "ok SIZE" or "no WHY".  A km that gets no
# such socket ignores the signal; any other process ignores SIGURG by default.
REQUEST_SIGNAL = 23  # SIGURG
REQUEST_VALUE = 0x4B4D534E4150  # "KMSNAP"
# the request's second field: end the program after its snapshot, leave it running, or
# write its core file (km dump) and leave it running
MODE_END, MODE_LEAVE, MODE_CORE = b"0", b"1", b"core"


def channel_dir() -> str:
    """The user's own directory for the channel (made 0700 if missing); SnapshotError
    when it is not safe (another owner, open to others, a symbolic link)."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    uid = os.getuid()
    if base and os.path.isdir(base) and os.stat(base).st_uid == uid:
        d = os.path.join(base, "kontain")
    else:
        d = f"/tmp/kontain-{uid}"
    try:
        os.mkdir(d, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise KmError(f"snapshot: cannot make {d} ({e.strerror})") from None
    st = os.lstat(d)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise KmError(f"snapshot: {d} is not a directory of this user's only (mode 0700): remove it")
    return d


def channel_path(pid: int) -> str:
    return os.path.join(channel_dir(), f"snap-{pid}.sock")


def is_request(info: bytes) -> bool:
    """Is this siginfo of REQUEST_SIGNAL a `km snapshot` request?"""
    return struct.unpack_from("<i", info, 8)[0] == -1 and struct.unpack_from("<Q", info, 24)[0] == REQUEST_VALUE


def serve_request(p) -> None:
    """In a monitor thread of the km asked (Process.post): connect, take the request,
    snapshot the program, answer; then the program goes on or ends."""
    import socket

    from kontain.errors import ProcessExit, say
    from kontain.kernel import signals

    signals.block_forwarded()
    try:  # (the monitor's own descriptor: above the program's range)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock = socket.socket(fileno=snapfds.above(sock.detach(), p.fds.floor))
    except (OSError, SnapshotError):
        return
    try:
        sock.settimeout(5)
        sock.connect(channel_path(os.getpid()))
        cred = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if struct.unpack("<iII", cred)[1] != os.getuid():
            return
        data = b""
        while not data.endswith(b"\n") and len(data) < 8192:
            chunk = sock.recv(8192)
            if not chunk:
                return
            data += chunk
        path, leave = data[:-1].split(b"\0")
    except (OSError, ValueError, KmError):
        sock.close()
        return
    ok = False
    if leave not in (MODE_END, MODE_LEAVE, MODE_CORE):
        sock.close()
        return
    p.pause_all()
    try:
        size = dump_core(p, os.fsdecode(path)) if leave == MODE_CORE else take(p, os.fsdecode(path))
        answer, ok = f"ok {size}", True
    except KmError as e:
        answer = f"no {e}"
    except OSError as e:
        answer = f"no {os.fsdecode(path)}: {e.strerror}"
    finally:
        if leave != MODE_END or not ok:
            p.resume_all()
    try:
        sock.sendall(answer.encode("utf-8", "surrogateescape").replace(b"\n", b" ") + b"\n")
    except OSError:
        pass
    sock.close()
    if ok and leave == MODE_END:
        say(f"snapshot: the program ended, snapshotted to {os.fsdecode(path)}")
        p.finish(ProcessExit(status=0))
