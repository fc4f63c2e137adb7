"""Resuming a snapshot (``lifecycle.resume``): the program of a snapshot file
(kernel/snapfile.py) put into a process that ``lifecycle.prepare`` built (the VM, vCPU 0,
the probe).

The checks first: km's state has the shape and ranges it must have (``check_state``,
nothing of the file is used before), the host is one that can run it exactly
(``check_host``: the same CPU model and features as KVM reports them, the same kind of
KVM, the same user).  Then the memory mapped from the file copy-on-write, the vDSO at its
old address (refused if this kernel's differs), the VMAs and memslots, the descriptors
(kernel/snapfds.py), cwd, umask, limits, the signal state, and every thread on a vCPU of
the same number with its registers, FPU/AVX state and TLS, under the thread id the
program knows it by.  System registers are km's own, never the file's (``_sane_sregs``).
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.arch.x86_64 import cpu
from kontain.arch.x86_64 import layout as L
from kontain.errors import KmError
from kontain.kernel import snapfds, snapfile
from kontain.kernel.snapfile import SnapshotError
from kontain.kernel.snapshot import VCPU_STACK
from kontain.kernel.task import Task
from kontain.kvm import abi as k
from kontain.memory.mm import VM_SPECIAL, access_of, host_prot

# How much of a snapshot's memory a resume maps in up front (MADV_POPULATE_READ: the host's
# page tables filled from the page cache, read-only, so still copy-on-write and shared between
# resumes; MAP_POPULATE would write-fault a writable private mapping, a private copy of every
# page for each resume).  Each
# page the program then touches first costs a host page fault inside KVM's fault handling
# otherwise: ~40 us on the PVM host of docs/performance.md, 0.38 s of a warm Python's 0.41 s
# after its resume (~9000 pages), against ~0.06 s when populated; bench/snapshot.py's heavy
# imports, resumed to their first output: 360 -> 146 ms.  The price is paid by a program that
# touches little after its resume (~0.8 ms a MiB populated: 132 -> 179 ms for one that exits
# at once), so past the budget memory is left to fault in as touched.
POPULATE_BUDGET = 128 << 20
# Of that, the first WRITE_BUDGET bytes of writable memory are populated for writing
# (MADV_POPULATE_WRITE: each page the resume's own private copy at once).  A page populated
# for reading that the program then writes costs KVM two faults around the host's copy-on-write,
# whose MMU notifier zaps the page and flushes the TLB: on this host (6.18.44-fc-v1300) ~80 us
# a page, and a resumed CPython writes most of its heap (reference counts): the bench's heavy
# imports, resumed to exit, 298 -> 83 ms.  The price is memory a page never written would have
# kept shared with other resumes of the snapshot: at most this much each.
WRITE_BUDGET = 32 << 20
SYS_madvise = 28


def check_host(p, snap, path: str) -> None:
    """Refuse a snapshot this machine cannot run exactly: another CPU model or feature
    set (the program may use instructions this CPU lacks), another kind of KVM, another
    kernel's vDSO."""
    head = need(snap.state, "head", dict)
    cpuid = [tuple(e) for e in need(head, "cpuid", list)]
    if cpuid != snapfile.cpu_model(p.cpuid) or head.get("xcr0") != p.xcr0 or \
            head.get("xsave_size") != p.kvm.xsave_size:
        raise SnapshotError(f"{path}: taken on another CPU model or with other CPU features (its CPUID differs "
                            "from this machine's KVM): resume it where it was taken")
    if head.get("user_stub") != p.platform.user_stub:
        raise SnapshotError(f"{path}: taken under another kind of KVM (PVM and hardware KVM differ)")
    if head.get("uid") != os.getuid():
        raise SnapshotError(f"{path}: taken by another user (uid {head.get('uid')})")


def need(d, key, typ):
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


_VMA = ("tuple", ("str", 3), ("tuple", _U64, _U64, ("int", 0, 0xFF), _U64, str, _U64, _U64, _U64, bool, bool))  # (mm.Vma)


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
              "loads": ("list", ("tuple", _U64, _U64, str)), "mmap_top": _U64,
              # (kernel/aio.py: ring, its mapping's length, events, tail, io_setup's count)
              "aio": ("opt", ("list", ("tuple", _U64, _U64, ("int", 1, 1 << 24), ("int", 0, 1 << 24),
                                       ("int", 1, 0xFFFFFFFF))))},
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


def restore(p, snap, path: str, image_files: bool = False):
    """Put the program of ``snap`` into the prepared process ``p``; returns its main
    thread, ready to run (the others run already, or wait for it: Process.run).
    ``image_files``: the files it re-opens or maps are a container image's copies (km
    image, oci/snapimage.py), other inodes: checked by size and time only."""
    restore_memory(p, snap, path, image_files)
    return restore_process(p, snap, path, image_files)


def restore_memory(p, snap, path: str, image_files: bool = False) -> None:
    """The first half of ``restore``, which needs nothing of whoever resumes: km's state
    checked, the memory mapped, the VMAs and memslots.  (A km server's worker warm for a
    snapshot, cli/server.py, does it before its client comes.)"""
    from kontain.memory import vdso

    check_state(snap.state, path)
    p._mark("checked")
    snap.fd = snapfds.above(snap.fd, p.fds.floor)  # (the program's descriptors go below)
    state, extra = need(snap.state, "process", dict), need(snap.state, "extra", dict)
    mm_state = need(state, "mm", dict)
    loads = need(extra, "loads", list)
    vmas = need(mm_state, "vmas", list)
    if len(loads) != len(vmas) or len(snap.loads) != len(loads):
        raise SnapshotError(f"{path}: its memory segments do not match km's state")
    # memory
    window = p.mem.size
    prev_end = 0
    populate, write = POPULATE_BUDGET, WRITE_BUDGET
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
        hostprot = host_prot(prot) & (F.PROT_READ | F.PROT_WRITE)
        if how == "special":
            continue
        if how == "file":
            _map_shared_file(p, start, end, hostprot, vflags, name, voffset, (dev, ino) if not image_files else None,
                             path)
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
                if end - start <= populate:
                    populate -= end - start
                    how = F.MADV_POPULATE_READ
                    if hostprot & F.PROT_WRITE and end - start <= write:
                        write -= end - start
                        how = F.MADV_POPULATE_WRITE
                    native.syscall(SYS_madvise, p.mem.base + start, end - start, how)
        else:
            raise SnapshotError(f"{path}: a mapping of an unknown kind")
    p._mark("mapped")
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
    p._mark("vdso")
    try:
        p.mm.restore(mm_state)
    except (KeyError, TypeError, ValueError) as e:
        raise SnapshotError(f"{path}: a bad address space in km's state ({e})") from None
    p.mm.mmap_top = extra.get("mmap_top", p.mm.mmap_top)
    p.mm.restored = True
    for v in p.mm:
        if not v.flags & VM_SPECIAL:
            p.slots.set_access(v.start, v.end, access_of(v.prot))
    p._mark("memory")


def restore_process(p, snap, path: str, image_files: bool = False):
    """The second half of ``restore`` (after ``restore_memory``): what the resuming
    process gives the program (its descriptors, directory, limits) and the program's
    own state, then its threads; returns the main thread."""
    state, extra = need(snap.state, "process", dict), need(snap.state, "extra", dict)
    # descriptors, directory, limits
    snapfds.restore(p, need(state, "fds", dict), path, image_files, getattr(snap, "listening", None))
    p._mark("fds")
    try:
        os.chdir(need(extra, "cwd", bytes))
    except OSError as e:
        raise SnapshotError(f"{path}: its working directory {extra['cwd']!r} is gone ({e.strerror})") from None
    os.umask(extra.get("umask", 0o22) & 0o777)
    import resource

    for r, (soft, hard) in need(extra, "host_rlimits", dict).items():
        try:
            resource.setrlimit(r, (soft, hard))
        except (ValueError, OSError):
            raise SnapshotError(f"{path}: cannot set the program's limit {r} to {soft}:{hard} (a hard limit "
                                "above this km's)") from None
    # the program's identity
    program = need(state, "program", dict)
    p.path, p.name = program["path"], program["name"]
    p.argv, p.envp = list(program["argv"]), list(program["envp"])
    p.personality = program["personality"]
    p.rlimits.clear()  # (in place: the address space holds the same dict)
    p.rlimits.update(program["rlimits"])
    p.stack_info = tuple(program["stack_info"])
    p.exe_path = need(extra, "exe_path", bytes)
    p.exe_path_buf = bytearray(p.exe_path + b"\0")
    p.auxv_bytes = need(extra, "auxv", bytes)
    p.actions.restore(need(state, "actions", list))
    p.timers.restore(need(state, "timers", dict))
    with p.lock:  # (as the signal thread posts)
        early = _taken_out(p.shared_pending)
        p.shared_pending.restore(need(state, "shared_pending", dict), p.timers)
    from kontain.kernel import snaptimers

    tids = {t.get("tid") for t in need(state, "tasks", list) if type(t) is dict}
    snaptimers.restore(p, extra.get("timers"), tids, path)
    from kontain.kernel import aio

    problem = aio.restore(p, extra.get("aio"))
    if problem:
        raise SnapshotError(f"{path}: {problem} (a damaged snapshot)")
    from kontain.kernel.process import _name_process

    _name_process(os.fsencode(os.path.basename(p.name)), p.argv)
    p._mark("state")
    main = _restore_threads(p, need(state, "tasks", list), path)
    for sig, info in early:  # under the program's own dispositions now, to its own threads
        p.post(sig, info)
    if p._signalfds is not None:
        p._signalfds.update()  # (readable while a signal of its mask is pending: restored now)
    return main


def _taken_out(pending) -> list[tuple[int, bytes]]:
    """The signals km took for the program while the resume was under way (a SIGTERM
    right after `km resume` started: km holds the host's signals for the program from
    its start on), taken out of ``pending`` in the order they would be delivered.
    Restoring the snapshot's pending set used to discard them: such a km never ended."""
    early = []
    mask = pending.mask
    while mask:
        sig = (mask & -mask).bit_length()
        mask &= mask - 1
        while pending.mask & (1 << (sig - 1)):
            early.append((sig, pending.take(sig)))
    return early


def _map_shared_file(p, start, end, hostprot, vflags, name, offset, inode, path) -> None:
    """``inode``: (device, inode) the file must be, None for an image's copy (km image
    carries only read-only ones, checked unchanged when it made the image)."""
    try:
        fd = os.open(name, os.O_RDWR if hostprot & F.PROT_WRITE else os.O_RDONLY)
    except OSError as e:
        raise SnapshotError(f"{path}: the program's shared mapping of {name} cannot be made again "
                            f"({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if inode is not None and (st.st_dev, st.st_ino) != inode or \
                inode is None and (hostprot & F.PROT_WRITE or st.st_size <= offset):
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
            if type(stack) is bytes and len(stack) == L.VCPU_PAGE - VCPU_STACK:
                page = L.vcpu_page(vid) - L.SYS_BASE
                p.sys.buf[page + VCPU_STACK:page + L.VCPU_PAGE] = stack
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
