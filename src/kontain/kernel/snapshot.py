"""Snapshots: a paused program written to a file (kernel/snapfile.py), and resumed from it.

Taking one (``take``): every thread is paused at a safe point (kernel/runstate.py); the
thread that asked (the in-guest call, ``KM_SNAPSHOT``) is in its handler, so it is
marked paused itself.  What cannot come back is refused first, with one line that says
which thing and why (``Refused``): a descriptor that is not a regular file, a directory,
a character device, a pipe with both ends in the program, a listening socket, an epoll set
(its watched descriptors, events and data, from /proc/self/fdinfo) or an eventfd; System V
shared memory; POSIX timers; changed credentials; live children.  Then
``Process.save()`` gives every component's state, adjusted so that it can run again in
another VM:

* the thread that asked gets 1 in RAX (the call's answer in a resumed run; 0 in this one);
* a thread parked in the middle of a call that waits in km (sigsuspend, pause,
  sigtimedwait: ``Task.mid_call``) is set to make the call again, with the mask it had
  before it;

and the memory goes into PT_LOADs.  The program goes on (0 from the call) or ends
(``km snapshot`` without ``--leave-running``).

Resuming (``restore``, into a process ``lifecycle.prepare`` built: the VM, vCPU 0, the
probe): the checks first (the same CPU model and features as KVM reports them, the same
kind of KVM, the same vDSO), then the memory mapped from the file copy-on-write, the
vDSO at its old address, the VMAs and memslots, the descriptors reopened (regular files
by path, offset and flags, each checked unchanged: device, inode, size, mtime; pipes
made again with their queued bytes), cwd, umask, limits, the signal state, and every
thread on a vCPU of the same number with its registers, FPU/AVX state and TLS.
"""

from __future__ import annotations

import _thread
import os
import stat
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.arch.x86_64 import cpu
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError, KmError
from kontain.kernel import snapfile
from kontain.kernel.runstate import PAUSED, RUNNING
from kontain.kernel.snapfile import PF_R, PF_W, PF_X, Segment, SnapshotError
from kontain.kernel.task import Task
from kontain.kvm import abi as k
from kontain.memory.mm import VM_SPECIAL, ShmVma, access_of

_RAX = 8 * k.REG_NAMES.index("rax")
_RCX = 8 * k.REG_NAMES.index("rcx")
_FIONREAD = 0x541B
_TSS_END = L.TSS_SIZE + L.IO_BITMAP_BYTES + 1
_HOST_RLIMITS = (F.RLIMIT_CPU, F.RLIMIT_FSIZE, F.RLIMIT_STACK, F.RLIMIT_CORE, F.RLIMIT_NPROC,
                 F.RLIMIT_MEMLOCK, F.RLIMIT_MSGQUEUE, F.RLIMIT_NICE, F.RLIMIT_RTPRIO, F.RLIMIT_RTTIME,
                 F.RLIMIT_SIGPENDING, F.RLIMIT_LOCKS, F.RLIMIT_RSS)


class Refused(KmError):
    """The program has something a snapshot cannot keep (one line: what and why)."""


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
        while p.exiting or any(t.state == RUNNING for t in p.tasks.values()):
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
    files, pipes_data = _describe_fds(p)
    try:
        state = p.save()
        tasks = state["tasks"]
        for t in tasks:
            task = p.tasks[t["tid"]]
            t["vcpu_id"] = task.vcpu.id
            regs = bytearray(t["vcpu"]["regs"])
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
            t["stack"] = bytes(p.sys.buf[page + _TSS_END:page + L.VCPU_PAGE])
        if caller is not None:  # the asking thread first: gdb's current thread
            tasks.sort(key=lambda t: t["tid"] != caller.tid)
        del state["slots"]  # (host addresses: a resume registers the slots from the VMAs)
        state["fds"] = files
        segments, loads, mapped_files = _segments(p)
        head = {
            "cpuid": cpu_model(p.cpuid), "xcr0": p.xcr0, "xsave_size": p.kvm.xsave_size,
            "user_stub": p.platform.user_stub, "poll": p.spec.poll if p.poller is not None else "off",
            "window": p.spec.window, "kernel": os.uname().release, "uid": os.getuid(), "gid": os.getgid(),
            "floor": p.fds.floor,
        }
        extra = {
            "exe_path": p.exe_path, "auxv": bytes(p.auxv_bytes), "cwd": os.getcwdb(), "umask": _umask(),
            "host_rlimits": {r: _getrlimit(r) for r in _HOST_RLIMITS}, "loads": loads, "pipes": pipes_data,
            "caller": caller.tid if caller is not None else 0, "mmap_top": p.mm.mmap_top,
        }
        notes = _gdb_notes(p, caller, mapped_files)
        notes += snapfile.state_note({"head": head, "process": state, "extra": extra})
        return snapfile.write(path, notes, segments)
    finally:
        for fd, data in pipes_data_back(pipes_data):
            _put_back(fd, data)


def pipes_data_back(pipes: list) -> list[tuple[int, bytes]]:
    """The bytes taken out of the program's pipes to be saved go back in (the program
    goes on, or is resumed from the file with them)."""
    return [(w, data) for _r, w, data in pipes if data]


def _put_back(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:
            return


def _refusals(p) -> None:
    if any(isinstance(v, ShmVma) for v in p.mm):
        raise Refused("snapshot: the program has System V shared memory attached (shmat), which a snapshot "
                      "cannot take along")
    if p.timers.targets:
        raise Refused("snapshot: the program has POSIX timers (timer_create), which a snapshot cannot keep")
    if any(t.creds is not None for t in p.tasks.values()):
        raise Refused("snapshot: the program changed its credentials (setuid & co.), which a resume cannot")
    if p._signalfds is not None and p._signalfds.files:
        raise Refused("snapshot: the program has a signalfd, which a snapshot cannot keep yet")
    for pid in p.children:
        if native.syscall(62, pid, 0) != -3:  # kill(pid, 0): not ESRCH
            raise Refused(f"snapshot: the program has a child process ({pid}), which a resume would not have")
    if p.vfork_fd >= 0:
        raise Refused("snapshot: the program is a vfork child")


def _describe_fds(p) -> tuple[dict, list]:
    """Each of the program's descriptors as a resume reopens it; Refused for one that
    cannot come back.  0-2 are the resuming km's own (the terminal or pipes it is given),
    whatever they were."""
    import fcntl

    files: dict = {}
    pipes: dict[int, list] = {}  # inode -> [read fds, write fds]
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= p.fds.floor or fd <= 2:
            continue
        try:
            st = os.fstat(fd)
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # (the listing's own descriptor)
        mode = st.st_mode
        if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISCHR(mode):
            if not target.startswith("/") or target.endswith(" (deleted)"):
                raise Refused(f"snapshot: descriptor {fd} is a file without a path ({target}), which a resume "
                              "cannot open again")
            offset = os.lseek(fd, 0, os.SEEK_CUR) if not stat.S_ISCHR(mode) else 0
            mtime = st.st_mtime_ns if stat.S_ISREG(mode) else 0
            size = st.st_size if stat.S_ISREG(mode) else 0
            files[fd] = {"kind": "file", "path": os.fsencode(target), "flags": flags, "cloexec": cloexec,
                         "offset": offset, "dev": st.st_dev, "ino": st.st_ino, "size": size, "mtime": mtime,
                         "mode": mode}
        elif stat.S_ISFIFO(mode):
            ends = pipes.setdefault(st.st_ino, [[], []])
            ends[flags & os.O_ACCMODE != os.O_RDONLY].append(fd)
            files[fd] = {"kind": "pipe", "ino": st.st_ino, "flags": flags, "cloexec": cloexec,
                         "write": flags & os.O_ACCMODE != os.O_RDONLY}
        elif target in ("anon_inode:[eventpoll]", "anon_inode:[eventfd]"):
            files[fd] = dict(_anon(fd, target), flags=flags, cloexec=cloexec, ino=st.st_ino)
        elif stat.S_ISSOCK(mode) and _listening(fd):
            files[fd] = dict(_listener(fd, target), flags=flags, cloexec=cloexec, ino=st.st_ino)
        elif stat.S_ISSOCK(mode):
            raise Refused(f"snapshot: descriptor {fd} is a socket ({target}), which a snapshot cannot take along "
                          "yet (connections cannot be resumed)")
        else:
            raise Refused(f"snapshot: descriptor {fd} ({target}) is of a kind a snapshot cannot take along")
    for fd, f in files.items():  # an epoll set's descriptors must be the program's own, open
        for tfd, _events, _data, ino in f.get("watch", ()):
            if files.get(tfd, {}).get("ino") != ino and not (tfd <= 2 and _same_inode(tfd, ino)):
                raise Refused(f"snapshot: descriptor {fd} is an epoll set watching a file that is no longer open "
                              f"as descriptor {tfd}, which a resume cannot watch again")
    for readers, writers in pipes.values():
        if not readers or not writers:
            fd = (readers or writers)[0]
            raise Refused(f"snapshot: descriptor {fd} is a pipe whose other end is outside the program, which a "
                          "resume cannot connect again")
    saved = []
    for readers, writers in pipes.values():
        data = _drain(readers[0])
        saved.append((readers[0], writers[0], data))
        for fd in readers + writers:
            files[fd]["data"] = data if fd == readers[0] else b""
    return files, saved


def _fdinfo(fd: int) -> list[str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return f.read().splitlines()


def _anon(fd: int, target: str) -> dict:
    """An epoll set (each watched descriptor, its events and data: the kernel lists them
    in fdinfo) or an eventfd (its count and mode)."""
    lines = _fdinfo(fd)
    if target == "anon_inode:[eventfd]":
        info = dict(line.split(":", 1) for line in lines if ":" in line)
        return {"kind": "eventfd", "count": int(info["eventfd-count"].strip(), 16),
                "semaphore": info.get("eventfd-semaphore", "0").strip() == "1"}
    watch = []
    for line in lines:
        if line.startswith("tfd:"):
            words = line.split()
            tfd, events, data = int(words[1]), int(words[3], 16), int(words[5], 16)
            ino = int(words[7].split(":")[1], 16)
            watch.append((tfd, events, data, ino))
    return {"kind": "epoll", "watch": watch}


def _same_inode(fd: int, ino: int) -> bool:
    try:
        return os.fstat(fd).st_ino == ino
    except OSError:
        return False


def _listening(fd: int) -> bool:
    buf = bytearray(4)
    size = bytearray(struct.pack("<I", 4))
    r = native.syscall(55, fd, 1, 30, native.address_of(buf), native.address_of(size))  # SO_ACCEPTCONN
    return r == 0 and buf != bytes(4)


def _listener(fd: int, target: str) -> dict:
    """A listening TCP socket, as a resume binds one again (its queue of connections
    not accepted yet is not taken along)."""
    import socket

    s = socket.socket(fileno=os.dup(fd))
    try:
        family, typ, proto = s.family, s.type, s.proto
        if family not in (socket.AF_INET, socket.AF_INET6) or typ != socket.SOCK_STREAM:
            raise Refused(f"snapshot: descriptor {fd} is a listening socket other than TCP ({target}), which a "
                          "snapshot cannot take along yet")
        addr = s.getsockname()
    finally:
        s.close()
    return {"kind": "listener", "family": int(family), "proto": proto, "addr": list(addr[:2])}


def _drain(fd: int) -> bytes:
    """Everything queued in a pipe, taken out without waiting (``take`` puts it back)."""
    import fcntl

    buf = bytearray(4)
    if native.syscall(16, fd, _FIONREAD, native.address_of(buf)) < 0:
        return b""
    n = int.from_bytes(buf, "little")
    out = b""
    if n:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            while len(out) < n:
                try:
                    chunk = os.read(fd, n - len(out))
                except BlockingIOError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            fcntl.fcntl(fd, fcntl.F_SETFL, fl)
    return out


def _segments(p) -> tuple[list[Segment], list, list]:
    """The PT_LOADs: each mapping's memory (a shared file mapping's is its file's, and
    the vDSO is the host's: neither is in the file), how a resume puts each back, and
    the file mappings for NT_FILE."""
    segments, loads, files = [], [], []
    for v in p.mm:
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
    hostprot = prot & ~F.PROT_EXEC

    def read(addr: int, n: int) -> bytes:
        opened = not hostprot & (F.PROT_READ | F.PROT_WRITE)
        if opened:
            native.syscall(10, mem.base + addr, n, F.PROT_READ)  # mprotect
        try:
            try:
                return mem.read(addr, n)
            except GuestError:  # (a file mapping past its file's end: those pages are holes)
                return b"".join(_page_or_zero(mem, a) for a in range(addr, addr + n, snapfile.PAGE))
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


# -- resuming ------------------------------------------------------------------------------
def check_host(p, snap, path: str) -> None:
    """Refuse a snapshot this machine cannot run exactly: another CPU model or feature
    set (the program may use instructions this CPU lacks), another kind of KVM, another
    kernel's vDSO."""
    head = _need(snap.state, "head", dict)
    cpuid = [tuple(e) for e in _need(head, "cpuid", list)]
    if cpuid != cpu_model(p.cpuid) or head.get("xcr0") != p.xcr0 or \
            head.get("xsave_size") != p.kvm.xsave_size:
        raise SnapshotError(f"{path}: taken on another CPU model or with other CPU features (its CPUID differs "
                            "from this machine's KVM): resume it where it was taken")
    if head.get("user_stub") != p.platform.user_stub:
        raise SnapshotError(f"{path}: taken under another kind of KVM (PVM and hardware KVM differ)")
    if head.get("uid") != os.getuid():
        raise SnapshotError(f"{path}: taken by another user (uid {head.get('uid')})")


def cpu_model(cpuid: list) -> list[tuple]:
    """KVM's supported CPUID as a snapshot compares it: the entries, without the APIC
    ids of the host CPU that answered (leaf 1 EBX[31:24], leaves 0xB and 0x1F EDX)."""
    out = []
    for e in cpuid:
        e = tuple(e)  # (function, index, flags, eax, ebx, ecx, edx, ...)
        if e[0] == 1:
            e = e[:4] + (e[4] & 0x00FFFFFF,) + e[5:]
        elif e[0] in (0xB, 0x1F):
            e = e[:6] + (0,) + e[7:]
        out.append(e)
    return out


def _need(d, key, typ):
    if type(d) is not dict or key not in d or type(d[key]) is not typ:
        raise SnapshotError(f"km's state lacks a valid {key!r}")
    return d[key]


# -- what km's state must look like (every value of the file is checked before use) -----
_U64 = ("int", 0, (1 << 64) - 1)
_S64 = ("int", -(1 << 63), (1 << 63) - 1)
_PENDING = {"mask": _U64, "infos": ("dict", ("int", 1, 64), ("list", ("tuple", ("bytes", 128), bool)))}
_TASK = {
    "tid": ("int", 1, (1 << 30) - 1), "vcpu_id": ("int", 0, (1 << 16) - 1),
    "vcpu": {"regs": bytes, "sregs": bytes, "xsave": bytes}, "stop": ("int", 0, 2), "sigmask": _U64,
    "saved_mask": ("opt", _U64), "pending": _PENDING, "altstack": ("tuple", _U64, ("int", 0, 0xFFFFFFFF), _U64),
    "robust_list": ("tuple", _U64, _U64), "clear_child_tid": _U64, "creds": ("opt", "never"),
}
_VMA = ("tuple", ("str", 3), ("tuple", _U64, _U64, ("int", 0, 0xFF), _U64, str, _U64, _U64, _U64))
_STATE = {
    "head": {"poll": str, "window": _U64, "uid": int},
    "process": {
        "program": {"path": str, "name": str, "argv": ("list", bytes), "envp": ("list", bytes),
                    "personality": ("int", 0, 0xFFFFFFFF), "rlimits": ("dict", ("int", 0, 15), ("tuple", _U64, _U64)),
                    "stack_info": ("tuple", _U64, _U64, _U64, _U64, _U64)},
        "tasks": ("list", _TASK),
        "mm": {"vmas": ("list", _VMA), "brk": ("tuple", _U64, _U64), "mmap_top": _U64, "committed": _U64,
               "limit": ("opt", _U64), "lock_future": _S64},
        "actions": ("list", ("tuple", _U64, _U64, _U64, _U64)),
        "shared_pending": _PENDING,
        "timers": {"targets": ("dict", int, int), "overruns": ("dict", int, int)},
        "fds": ("dict", ("int", 3, (1 << 31) - 1), dict),
    },
    "extra": {"exe_path": bytes, "auxv": bytes, "cwd": bytes, "umask": ("int", 0, 0o777),
              "host_rlimits": ("dict", ("int", 0, 15), ("tuple", _S64, _S64)),
              "loads": ("list", ("tuple", _U64, _U64, str)), "mmap_top": _U64},
}


def check_state(state, path: str) -> None:
    """km's state has the shape and the ranges a resume expects: SnapshotError otherwise
    (the file is untrusted: a value of the wrong type or size must not reach KVM, the
    host or a later handler)."""
    problem = _check(state, _STATE, "state")
    if problem:
        raise SnapshotError(f"{path}: not a km snapshot, or a damaged one ({problem})")
    for t in state["process"]["tasks"]:
        if any(x not in t for x in _TASK):
            raise SnapshotError(f"{path}: not a km snapshot, or a damaged one (a thread's state is incomplete)")
    if state["process"]["timers"]["targets"]:
        raise SnapshotError(f"{path}: a snapshot with POSIX timers (km never writes one)")


def _check(value, schema, where: str) -> str:
    """'' when ``value`` fits ``schema``, else what does not."""
    if isinstance(schema, dict):
        if type(value) is not dict:
            return f"{where} is not a table"
        for key, sub in schema.items():
            if key not in value:
                if isinstance(sub, tuple) and sub[0] == "opt":
                    continue
                return f"{where} has no {key}"
            problem = _check(value[key], sub, f"{where}.{key}")
            if problem:
                return problem
        return ""
    if schema in (int, bytes, str, bool, dict):
        return "" if type(value) is schema else f"{where} is not {schema.__name__}"
    kind = schema[0]
    if kind == "never":
        return f"{where} is set"
    if kind == "opt":
        return "" if value is None else _check(value, schema[1], where)
    if kind == "int":
        return "" if type(value) is int and schema[1] <= value <= schema[2] else f"{where} is out of range"
    if kind in ("bytes", "str"):
        return "" if type(value).__name__ == kind and len(value) <= schema[1] * 4096 and \
            (kind == "str" or len(value) == schema[1]) else f"{where} has the wrong size"
    if kind == "list":
        if type(value) is not list:
            return f"{where} is not a list"
        return next((p for p in (_check(x, schema[1], f"{where}[{i}]") for i, x in enumerate(value)) if p), "")
    if kind == "tuple":
        if type(value) is not tuple or len(value) != len(schema) - 1:
            return f"{where} is not a tuple of {len(schema) - 1}"
        return next((p for p in (_check(x, s, f"{where}[{i}]") for i, (x, s) in enumerate(zip(value, schema[1:])))
                     if p), "")
    if kind == "dict":
        if type(value) is not dict:
            return f"{where} is not a table"
        for key, sub in value.items():
            problem = _check(key, schema[1], f"{where} key") or _check(sub, schema[2], f"{where}[{key!r}]")
            if problem:
                return problem
        return ""
    return f"{where}: unknown schema"


def restore(p, snap, path: str):
    """Put the program of ``snap`` into the prepared process ``p``; returns its main
    thread, ready to run (the others run already, or wait for it: Process.run)."""
    from kontain.memory import vdso

    check_state(snap.state, path)
    snap.fd = _above(snap.fd, p.fds.floor)  # (the program's descriptors go below)
    state, extra = _need(snap.state, "process", dict), _need(snap.state, "extra", dict)
    mm_state = _need(state, "mm", dict)
    loads = _need(extra, "loads", list)
    vmas = _need(mm_state, "vmas", list)
    if len(loads) != len(vmas) or len(snap.loads) != len(loads):
        raise SnapshotError(f"{path}: its memory segments do not match km's state")
    # memory
    window = p.mem.size
    prev_end = 0
    for (kind, values), load, (start, end, offset, filesz, _fl) in zip(vmas, loads, snap.loads):
        if type(values) is not tuple or len(values) < 8 or not (type(load) is tuple and len(load) == 3):
            raise SnapshotError(f"{path}: a bad mapping in km's state")
        vstart, vend, prot, vflags, name, voffset, dev, ino = values[:8]
        if (vstart, vend) != (start, end) or load[:2] != (start, end) or start < prev_end or end > window:
            raise SnapshotError(f"{path}: a mapping outside the program's window or out of order")
        if type(prot) is not int or type(vflags) is not int or type(name) is not str or kind != "Vma":
            raise SnapshotError(f"{path}: a bad mapping in km's state")
        prev_end = end
        how = load[2]
        hostprot = prot & (F.PROT_READ | F.PROT_WRITE)
        if how == "special":
            continue
        if how == "file":
            _map_shared_file(p, start, end, hostprot, vflags, name, voffset, dev, ino, path)
        elif how == "memory":
            if filesz != end - start:
                raise SnapshotError(f"{path}: the memory of {start:#x} is not in the file")
            shared = bool(vflags & F.MAP_SHARED) and vflags & F.MAP_TYPE != F.MAP_PRIVATE
            if shared:  # (shared with the program's future children: its own memory, not the file's)
                _copy_into_shared(p, start, end, hostprot, snap.fd, offset)
            else:
                r = native.mmap(p.mem.base + start, end - start, hostprot, F.MAP_PRIVATE | F.MAP_FIXED, snap.fd,
                                offset)
                if r < 0:
                    raise SnapshotError(f"{path}: cannot map its memory ({os.strerror(-r)})")
        else:
            raise SnapshotError(f"{path}: a mapping of an unknown kind")
    specials = [(v[1], ld) for v, ld in zip(vmas, loads) if ld[2] == "special"]
    if specials:
        host = vdso.host_layout()
        saved = [(vals[4], ld[0], ld[1]) for vals, ld in specials]
        if host is None or [(n, hi - lo) for n, lo, hi, _p in host] != [(n, e - s) for n, s, e in saved]:
            raise SnapshotError(f"{path}: taken under another kernel (its vDSO differs): resume it where it was "
                                "taken")
        from kontain.memory.mm import Vma

        for (name, lo, _hi, prot), (_n, s, e) in zip(host, saved):
            p.mm.map_special(Vma(s, e, prot, F.MAP_PRIVATE | F.MAP_ANONYMOUS | VM_SPECIAL, name), hva=lo)
    try:
        p.mm.restore(mm_state)
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotError(f"{path}: a bad address space in km's state ({e})") from None
    p.mm.mmap_top = extra.get("mmap_top", p.mm.mmap_top)
    p.mm.restored = True
    for v in p.mm:
        if not v.flags & VM_SPECIAL:
            p.slots.set_access(v.start, v.end, access_of(v.prot))
    # descriptors, directory, limits
    _restore_fds(p, _need(state, "fds", dict), path)
    try:
        os.chdir(_need(extra, "cwd", bytes))
    except OSError as e:
        raise SnapshotError(f"{path}: its working directory {extra['cwd']!r} is gone ({e.strerror})") from None
    os.umask(extra.get("umask", 0o22) & 0o777)
    import resource

    for r, (soft, hard) in _need(extra, "host_rlimits", dict).items():
        try:
            resource.setrlimit(r, (soft, hard))
        except (ValueError, OSError):
            raise SnapshotError(f"{path}: cannot set the program's limit {r} to {soft}:{hard} (a hard limit "
                                "above this km's)") from None
    # the program's identity
    program = _need(state, "program", dict)
    p.path, p.name = program["path"], program["name"]
    p.argv, p.envp = list(program["argv"]), list(program["envp"])
    p.personality = program["personality"]
    p.rlimits = dict(program["rlimits"])
    p.stack_info = tuple(program["stack_info"])
    p.exe_path = _need(extra, "exe_path", bytes)
    p.exe_path_buf = bytearray(p.exe_path + b"\0")
    p.auxv_bytes = _need(extra, "auxv", bytes)
    p.actions.restore(_need(state, "actions", list))
    p.timers.restore(_need(state, "timers", dict))
    p.shared_pending.restore(_need(state, "shared_pending", dict), p.timers)
    from kontain.kernel.process import _name_process

    _name_process(os.fsencode(os.path.basename(p.name)), p.argv)
    return _restore_threads(p, _need(state, "tasks", list), path)


def _map_shared_file(p, start, end, hostprot, vflags, name, offset, dev, ino, path) -> None:
    try:
        fd = os.open(name, os.O_RDWR if hostprot & F.PROT_WRITE else os.O_RDONLY)
    except OSError as e:
        raise SnapshotError(f"{path}: the program's shared mapping of {name} cannot be made again "
                            f"({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (dev, ino):
            raise SnapshotError(f"{path}: {name}, which the program maps shared, is another file now")
        r = native.mmap(p.mem.base + start, end - start, hostprot, F.MAP_SHARED | F.MAP_FIXED, fd, offset)
        if r < 0:
            raise SnapshotError(f"{path}: cannot map {name} again ({os.strerror(-r)})")
    finally:
        os.close(fd)


def _copy_into_shared(p, start, end, hostprot, fd, offset) -> None:
    size = end - start
    r = native.mmap(p.mem.base + start, size, F.PROT_READ | F.PROT_WRITE, F.MAP_SHARED | F.MAP_ANONYMOUS | F.MAP_FIXED)
    if r < 0:
        raise SnapshotError(f"cannot make shared memory ({os.strerror(-r)})")
    done = 0
    while done < size:
        chunk = os.pread(fd, min(1 << 20, size - done), offset + done)
        if not chunk:
            break
        native.write_mem(p.mem.base + start + done, chunk)
        done += len(chunk)
    native.syscall(10, p.mem.base + start, size, hostprot)


def _restore_fds(p, files: dict, path: str) -> None:
    """The program's descriptors at their numbers, each checked; the resuming km's own
    0-2 stay; anything else it inherited below the floor is closed (not the program's)."""
    import fcntl

    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
        if 2 < fd < p.fds.floor and fd not in files:
            try:
                os.close(fd)
            except OSError:
                pass
    pipes: dict[int, tuple[int, int]] = {}
    epolls: list[tuple[int, dict]] = []  # (made last: they watch the others)
    for fd, f in sorted(files.items()):
        if type(fd) is not int or not 2 < fd < p.fds.floor or type(f) is not dict:
            raise SnapshotError(f"{path}: descriptor {fd} is beyond this km's limit (RLIMIT_NOFILE)")
        if f.get("kind") == "file":
            new = _reopen(f, fd, path)
        elif f.get("kind") == "pipe":
            ino = f["ino"]
            if ino not in pipes:  # (made above the program's range: its numbers are placed one by one)
                pipes[ino] = tuple(_above(x, p.fds.floor) for x in os.pipe())
            r, w = pipes[ino]
            new = os.dup(w if f["write"] else r)
            fcntl.fcntl(new, fcntl.F_SETFL, f["flags"] & (os.O_NONBLOCK | os.O_APPEND | os.O_DIRECT))
            if f.get("data"):
                _put_back(w, f["data"])
        elif f.get("kind") == "listener":
            new = _listen_again(f, fd, path)
        elif f.get("kind") == "eventfd":
            count = f["count"]
            if type(count) is not int or not 0 <= count < 1 << 64 - 1:
                raise SnapshotError(f"{path}: descriptor {fd}: a bad eventfd")
            new = os.eventfd(count, (os.EFD_SEMAPHORE if f.get("semaphore") else 0) |
                             (f["flags"] & os.O_NONBLOCK and os.EFD_NONBLOCK))
        elif f.get("kind") == "epoll":
            epolls.append((fd, f))
            continue
        else:
            raise SnapshotError(f"{path}: descriptor {fd} is of an unknown kind")
        _place(new, fd, f)
    for r, w in pipes.values():
        os.close(r)
        os.close(w)
    for fd, f in epolls:
        _place(_epoll_again(f, fd, path), fd, f)
    p.fds.seen(max(files, default=2))


def _place(new: int, fd: int, f: dict) -> None:
    """Descriptor ``new`` becomes the program's ``fd``, close-on-exec as it was."""
    import fcntl

    if new != fd:
        os.dup2(new, fd, inheritable=True)
        os.close(new)
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC if f.get("cloexec") else 0)


def _epoll_again(f: dict, fd: int, path: str) -> int:
    """An epoll set made again, watching the same descriptors (restored already) with the
    same events and data.  One of 0-2 (the resuming km's own now) that epoll cannot
    watch (a regular file) is left out."""
    ep = native.syscall(291, os.O_CLOEXEC)  # epoll_create1
    if ep < 0:
        raise SnapshotError(f"{path}: descriptor {fd}: no epoll ({os.strerror(-ep)})")
    for tfd, events, data, _ino in f["watch"]:
        if type(tfd) is not int or not 0 <= tfd < 1 << 31:
            raise SnapshotError(f"{path}: descriptor {fd}: a bad epoll set")
        ev = bytearray(struct.pack("<IQ", events & 0xFFFFFFFF, data & 0xFFFFFFFFFFFFFFFF))
        r = native.syscall(233, ep, 1, tfd, native.address_of(ev))  # epoll_ctl(EPOLL_CTL_ADD)
        if r < 0 and not (tfd <= 2 and r == -1):  # (EPERM: a file epoll does not watch)
            os.close(ep)
            raise SnapshotError(f"{path}: descriptor {fd}: cannot watch descriptor {tfd} again "
                                f"({os.strerror(-r)})")
    return ep


def _above(fd: int, floor: int) -> int:
    new = native.dup_at_least(fd, floor)
    os.close(fd)
    if new < 0:
        raise SnapshotError(f"no descriptor left for the monitor ({os.strerror(-new)})")
    return new


def _listen_again(f: dict, fd: int, path: str) -> int:
    """A listening socket bound again to its address, with SO_REUSEPORT: several
    resumes of one snapshot listen at once, and the host shares the connections out."""
    import fcntl
    import socket

    family, addr = f["family"], f["addr"]
    if family not in (socket.AF_INET, socket.AF_INET6) or type(addr) is not list or len(addr) != 2:
        raise SnapshotError(f"{path}: descriptor {fd}: a bad listening socket")
    s = socket.socket(family, socket.SOCK_STREAM, f["proto"])
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(tuple(addr))
        s.listen(socket.SOMAXCONN)
    except (OSError, TypeError, OverflowError) as e:
        s.close()
        raise SnapshotError(f"{path}: descriptor {fd} listened on {addr[0]} port {addr[1]}, which cannot be "
                            f"listened on again ({getattr(e, 'strerror', None) or e})") from None
    new = s.detach()
    fcntl.fcntl(new, fcntl.F_SETFL, f["flags"] & os.O_NONBLOCK)
    return new


def _reopen(f: dict, fd: int, path: str) -> int:
    name = f["path"]
    flags = f["flags"] & ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)
    try:
        new = os.open(name, flags | os.O_CLOEXEC)
    except OSError as e:
        raise SnapshotError(f"{path}: descriptor {fd} was {os.fsdecode(name)}, which cannot be opened again "
                            f"({e.strerror})") from None
    st = os.fstat(new)
    changed = (st.st_dev, st.st_ino) != (f["dev"], f["ino"]) or stat.S_ISREG(st.st_mode) and \
        (st.st_size, st.st_mtime_ns) != (f["size"], f["mtime"])
    if changed:
        os.close(new)
        raise SnapshotError(f"{path}: descriptor {fd} was {os.fsdecode(name)}, which has changed since the "
                            "snapshot (another file, size or modification time)")
    if f["offset"]:
        os.lseek(new, f["offset"], os.SEEK_SET)
    return new


def _restore_threads(p, tasks: list, path: str):
    """Every saved thread on a vCPU of its old number (its per-vCPU page, poll slot and
    TSS are that number's); the first saved thread runs on km's main thread."""
    if not tasks:
        raise SnapshotError(f"{path}: no threads")
    ids = []
    for t in tasks:
        vid = t.get("vcpu_id") if type(t) is dict else None
        if type(vid) is not int or not 0 <= vid < _max_vcpus() or vid in ids:
            raise SnapshotError(f"{path}: a thread with a bad vCPU number")
        vcpu = t.get("vcpu")
        if type(vcpu) is not dict or any(type(vcpu.get(x)) is not bytes for x in ("regs", "sregs", "xsave")):
            raise SnapshotError(f"{path}: a thread without its registers")
        if len(vcpu["regs"]) != 8 * len(k.REG_NAMES) or len(vcpu["sregs"]) != k.sregs.size or \
                len(vcpu["xsave"]) != p.kvm.xsave_size:
            raise SnapshotError(f"{path}: a thread's registers have the wrong size")
        ids.append(vid)
    p.next_vcpu_id = max(ids) + 1
    main = None
    for t, vid in zip(tasks, ids):
        if vid == 0:
            vcpu = p.vcpu0
        else:
            vcpu = p.vm.create_vcpu(vid)
            p.sys.init_vcpu_page(vid)
            cpu.init_vcpu(vcpu, p.cpuid, p.xcr0, p.platform.fmask, p.lstar(vid))
        tid = t.get("tid")
        if type(tid) is not int or not 0 < tid < 1 << 30 or tid in p.tasks:
            raise SnapshotError(f"{path}: a thread with a bad id")
        # each thread keeps the id the program knows it by (its C library keeps it: raise,
        # pthread_kill, mutex owners); km answers for its threads by those ids
        if main is None:
            task = Task(p, vcpu, tid, _thread.get_ident())
            main = task
        else:
            task = Task(p, vcpu, tid)
        try:
            vstate = t["vcpu"]
            t = dict(t, vcpu=dict(vstate, sregs=_sane_sregs(vstate, vid, path)))
            stack = t.get("stack")
            if type(stack) is bytes and len(stack) == L.VCPU_PAGE - _TSS_END:
                page = L.vcpu_page(vid) - L.SYS_BASE
                p.sys.buf[page + _TSS_END:page + L.VCPU_PAGE] = stack
            task.restore(t)
        except (KeyError, TypeError, ValueError, KmError) as e:
            raise SnapshotError(f"{path}: a thread's state cannot be restored ({e})") from None
        task.on_syscall = p.syscalls.dispatcher(task)
        if task is not main:
            p.start_thread(task)
        else:
            p.tasks[task.tid] = task
    if 0 not in ids:  # vCPU 0 made by prepare() waits for a later thread
        p.idle_vcpus.append(p.vcpu0)
    p.main_task = main
    return main


def _sane_sregs(vcpu: dict, vid: int, path: str) -> bytes:
    """A thread's system registers as km builds them (segments, GDT, IDT, TSS, control
    registers: nothing of the file's), with the file's FS and GS bases; and the file's
    CPL0 code and stack segments only for a thread stopped in km's own code (hardware
    KVM's syscall stub, an exception vector)."""
    saved = bytearray(vcpu["sregs"])
    clean = cpu.child_sregs(saved, vid)
    off = k.sregs.offsets
    names = k.segment.names
    cs = k.segment.unpack_from(saved, off["cs"])
    if cs[names.index("dpl")] != 0:
        return bytes(clean)
    rip = struct.unpack_from("<Q", vcpu["regs"], 8 * k.REG_NAMES.index("rip"))[0]
    ss = k.segment.unpack_from(saved, off["ss"])
    if cs[names.index("selector")] != L.KERNEL_CS or ss[names.index("selector")] not in (0, L.KERNEL_DS) or \
            not L.HANDLERS <= rip < L.VCPU_AREA or cs[names.index("base")] or ss[names.index("base")]:
        raise SnapshotError(f"{path}: a thread in kernel mode outside km's own code")
    for seg in ("cs", "ss"):
        clean[off[seg]:off[seg] + 24] = saved[off[seg]:off[seg] + 24]
    return bytes(clean)


def _max_vcpus() -> int:
    return L.MAX_VCPUS


# -- from outside: km snapshot PID (cli/snapctl.py) -----------------------------------
#
# The channel only the program's user can reach: ``km snapshot PID`` makes a Unix
# socket in a directory of that user's, mode 0700 ($XDG_RUNTIME_DIR/kontain, else
# /tmp/kontain-UID), named for the pid, and sends the km the signal REQUEST_SIGNAL with
# si_code SI_QUEUE and REQUEST_VALUE (sending a signal needs the same user already).
# That km, seeing it in its signal thread (Process.post, never the program's), checks
# the directory (its own, 0700, not a link) and connects; each side checks the other's
# credentials (SO_PEERCRED: the same uid, and the pid asked for).  The request is one
# line, "PATH\0LEAVE_RUNNING"; the answer "ok SIZE" or "no WHY".  A km that gets no
# such socket ignores the signal; any other process ignores SIGURG by default.
REQUEST_SIGNAL = 23  # SIGURG
REQUEST_VALUE = 0x4B4D534E4150  # "KMSNAP"


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
        sock = socket.socket(fileno=_above(sock.detach(), p.fds.floor))
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
    p.pause_all()
    try:
        size = take(p, os.fsdecode(path))
        answer, ok = f"ok {size}", True
    except KmError as e:
        answer = f"no {e}"
    except OSError as e:
        answer = f"no {os.fsdecode(path)}: {e.strerror}"
    finally:
        if leave == b"1" or not ok:
            p.resume_all()
    try:
        sock.sendall(answer.encode("utf-8", "surrogateescape").replace(b"\n", b" ") + b"\n")
    except OSError:
        pass
    sock.close()
    if ok and leave != b"1":
        say(f"snapshot: the program ended, snapshotted to {os.fsdecode(path)}")
        p.finish(ProcessExit(status=0))
