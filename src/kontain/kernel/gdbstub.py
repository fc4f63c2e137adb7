"""A GDB Remote Serial Protocol stub inside km (``km --gdb PORT``, ``--gdb-listen PORT``).

gdb (or anything speaking its remote protocol: VS Code through gdb, lldb) connects over
TCP to 127.0.0.1:PORT and debugs the program as it would a process under gdbserver.
Imported only when one of the options is given: a km without them pays nothing but a
``process.gdb is None`` test on a few rare paths (faults, signals, exceptions).

How the program is stopped and run (the mechanism, measured on this project's PVM host,
docs/debugging.md):

* **All-stop** with the run-state machine (kernel/runstate.py): a stop is
  ``Process.pause_all`` from the stub's thread; the thread that caused it waits in
  ``report`` (PAUSED) until gdb resumes it.  ``resume_all`` lets them all go.
* **Software breakpoints** (Z0) are an ``int3`` km writes into the program's memory (a
  read-only text page is made writable on the host for the write: the program's private
  copy changes, never the file).  The ``int3`` raises #BP at CPL3, which reaches km
  through the guest IDT as every exception does (kernel/task.py ``on_exception``); km
  reports it with ``swbreak`` and the PC already at the breakpoint.  gdb's reads of
  memory show the original bytes.
* **Single-step** sets RFLAGS.TF in the thread's user context: the #DB after one
  instruction comes back the same way.  A ``syscall`` instruction is stepped by letting
  the call run and stopping on the way back to user mode (TF would trap inside km's
  stub).  KVM_SET_GUEST_DEBUG is not used: on PVM neither USE_SW_BP nor SINGLESTEP
  intercepts native CPL3 code (they are reflected into the guest), and hardware
  breakpoints are not offered (KVM_CAP_GUEST_DEBUG_HW_BPS 0, guest debug registers
  accepted but never firing).  The IDT path is the same on hardware KVM, so nothing here
  depends on the platform (arch/x86_64/platform.py records the probe).
* **Watchpoints** (Z2 write, Z3 read, Z4 access) are km's, by memslot: no debug register
  fires here (above), but km's memslots already carry page protections.  A watched page's
  slot becomes read-only (write watchpoints) or goes (read and access ones), so an access
  there exits as MMIO with its address; km completes it against the memory, lets KVM
  finish the instruction, and reports ``watch:ADDR`` (after the instruction, as a debug
  register would) when the access touched a watched range.  Other accesses to the page
  cost an exit each and go on.
* **Signals** stop the program in gdb before their action (``Task.next_signal`` and
  ``Task.fault`` ask ``wants``); gdb's resume says which signal, if any, goes on
  (``signal 0`` suppresses it).  QPassSignals lists the ones not to stop for.

* **Processes**: gdb's multiprocess protocol when gdb offers it, with fork events (``catch
  fork``: the child, a km of its own, runs free, or waits for a gdb of its own with
  --gdb-fork-wait) and exec events (gdb loads the new program).  File I/O (vFile) is
  read-only: the user's files, and the program's own /proc view (maps, smaps: gcore).

Every packet is parsed defensively: the network is as hostile as the guest.  A
malformed packet gets ``E01`` (or the empty reply for an unknown one), never a
traceback; the stub listens on 127.0.0.1 only and serves only km's user (or root).
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import signals as S
from kontain.arch.x86_64 import cpu
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError, ProcessExit, say
from kontain.kernel import signals
from kontain.kernel.runstate import PAUSED, RUNNING
from kontain.kernel.task import DIRECT, EXCEPTION, IN_KM, SYSCALL, user_view
from kontain.kvm import abi as k
from kontain.memory.mm import host_prot

INT3 = 0xCC
TF = 0x100
MAX_PACKET = 0x4000  # PacketSize we announce (and the most we read before a '#')
MAX_MEM = 0x1000  # most bytes one m packet answers (gdb asks again for the rest)
MAX_WATCH = 0x10000  # the longest range one watchpoint may cover
MAX_FILES = 64  # files gdb may have open at once (vFile)
# gdb's File-I/O errno values (its protocol's own, equal to Linux's for these)
EPERM, ENOENT, EBADF, EACCES, EMFILE, EINVAL, EUNKNOWN = 1, 2, 9, 13, 24, 22, 9999
_FILEIO_ERRNOS = {1, 2, 4, 5, 9, 13, 14, 16, 17, 19, 20, 21, 22, 23, 24, 27, 28, 29, 30, 36}
SYSCALL_INSN = b"\x0f\x05"

# Linux signal number -> GDB's (gdb/signals.def: the remote protocol speaks GDB's numbers)
_TO_GDB = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 10, 8: 8, 9: 9, 10: 30, 11: 11, 12: 31, 13: 13, 14: 14, 15: 15,
           17: 20, 18: 19, 19: 17, 20: 18, 21: 21, 22: 22, 23: 16, 24: 24, 25: 25, 26: 26, 27: 27, 28: 28, 29: 23,
           30: 32, 31: 12, 32: 77, 64: 78}
_TO_GDB.update({n: 45 + n - 33 for n in range(33, 64)})
_FROM_GDB = {g: n for n, g in _TO_GDB.items()}
GDB_UNKNOWN = 143


def to_gdb(sig: int) -> int:
    return _TO_GDB.get(sig, GDB_UNKNOWN) if sig else 0


def from_gdb(num: int) -> int:
    """A GDB signal number to Linux's; 0 for none or one Linux does not have."""
    return _FROM_GDB.get(num, 0)


class BadPacket(Exception):
    """A packet that does not parse: answered E01."""


# -- registers (gdb's amd64 numbering, as the target description below declares) --------
_GP = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
       "r15")
_SEGS = ("cs", "ss", "ds", "es", "fs", "gs")
_FPCTL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
RIP, EFLAGS, SEG0, ST0, FCTRL, XMM0, MXCSR, ORIG_RAX, FS_BASE, GS_BASE, YMM0H = 16, 17, 18, 24, 32, 40, 56, 57, 58, 59, 60


def reg_size(n: int, avx: bool) -> int:
    """Bytes of register ``n`` (0 if there is none)."""
    if 0 <= n < 16 or n == RIP or n in (ORIG_RAX, FS_BASE, GS_BASE):
        return 8
    if n == EFLAGS or SEG0 <= n < ST0 or FCTRL <= n < XMM0 or n == MXCSR:
        return 4
    if ST0 <= n < FCTRL:
        return 10
    if XMM0 <= n < MXCSR or (avx and YMM0H <= n < YMM0H + 16):
        return 16
    return 0


def target_xml(avx: bool) -> str:
    """The target description gdb asks for (qXfer:features:read:target.xml): x86-64 Linux,
    general registers, x87, SSE (and AVX where the vCPU has it), orig_rax, fs/gs base."""
    out = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', '<target version="1.0">',
           "<architecture>i386:x86-64</architecture>", "<osabi>GNU/Linux</osabi>",
           '<feature name="org.gnu.gdb.i386.core">']
    for n, name in enumerate(_GP):
        kind = "data_ptr" if name in ("rbp", "rsp") else "int64"
        out.append(f'<reg name="{name}" bitsize="64" type="{kind}" regnum="{n}"/>')
    out.append('<reg name="rip" bitsize="64" type="code_ptr"/>')
    out.append('<reg name="eflags" bitsize="32" type="int32"/>')
    out += [f'<reg name="{s}" bitsize="32" type="int32"/>' for s in _SEGS]
    out += [f'<reg name="st{i}" bitsize="80" type="i387_ext"/>' for i in range(8)]
    out += [f'<reg name="{c}" bitsize="32" type="int" group="float"/>' for c in _FPCTL]
    out.append("</feature>")
    out += ['<feature name="org.gnu.gdb.i386.sse">',
            '<vector id="v8bf16" type="bfloat16" count="8"/>', '<vector id="v8h" type="ieee_half" count="8"/>',
            '<vector id="v4f" type="ieee_single" count="4"/>', '<vector id="v2d" type="ieee_double" count="2"/>',
            '<vector id="v16i8" type="int8" count="16"/>', '<vector id="v8i16" type="int16" count="8"/>',
            '<vector id="v4i32" type="int32" count="4"/>', '<vector id="v2i64" type="int64" count="2"/>',
            '<union id="vec128"><field name="v8_bfloat16" type="v8bf16"/><field name="v8_half" type="v8h"/>'
            '<field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>'
            '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>'
            '<field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>'
            '<field name="uint128" type="uint128"/></union>']
    out += [f'<reg name="xmm{i}" bitsize="128" type="vec128" regnum="{XMM0 + i}"/>' for i in range(16)]
    out.append('<reg name="mxcsr" bitsize="32" type="int" group="vector"/>')
    out.append("</feature>")
    out += ['<feature name="org.gnu.gdb.i386.linux">',
            f'<reg name="orig_rax" bitsize="64" type="int" regnum="{ORIG_RAX}"/>', "</feature>",
            '<feature name="org.gnu.gdb.i386.segments">',
            f'<reg name="fs_base" bitsize="64" type="int" regnum="{FS_BASE}"/>',
            f'<reg name="gs_base" bitsize="64" type="int" regnum="{GS_BASE}"/>', "</feature>"]
    if avx:
        out.append('<feature name="org.gnu.gdb.i386.avx">')
        out += [f'<reg name="ymm{i}h" bitsize="128" type="uint128" regnum="{YMM0H + i}"/>' for i in range(16)]
        out.append("</feature>")
    out.append("</target>")
    return "\n".join(out)


def view_of(process, task) -> int:
    """Where ``task``'s user registers are, judged by where its vCPU stopped: in an
    exception vector (the iret frame), in the syscall stub (RIP and RFLAGS in RCX and
    R11), or at a user instruction."""
    return user_view(task)


class Regs:
    """One stopped thread's registers as gdb sees them, read when first asked and written
    back (``flush``) before the thread runs again."""

    def __init__(self, stub, task, kind: int, ctx=None, dirty: bool = False):
        self.stub = stub
        self.task = task
        self.kind = kind
        self.ctx = ctx if ctx is not None else self._context()
        self.dirty = dirty  # ctx changed (or must be written: a fault's context)
        self._xsave: bytearray | None = None
        self.xsave_dirty = False
        self._sregs: bytearray | None = None

    def _context(self):
        t = self.task
        saved, t.stop = t.stop, self.kind
        try:
            return t.context()
        finally:
            t.stop = saved

    @property
    def xsave(self) -> bytearray:
        if self._xsave is None:
            self._xsave = self.task.vcpu.get_xsave()
        return self._xsave

    @property
    def sregs(self) -> bytearray:
        if self._sregs is None:
            self._sregs = self.task.vcpu.get_sregs()
        return self._sregs

    @property
    def pc(self) -> int:
        return self.ctx.regs["rip"] & 0xFFFFFFFFFFFFFFFF

    def set_pc(self, pc: int) -> None:
        self.ctx.regs["rip"] = pc
        self.dirty = True

    def get(self, n: int) -> bytes:
        ctx = self.ctx
        if n < 16:
            return struct.pack("<Q", ctx.regs[_GP[n]] & 0xFFFFFFFFFFFFFFFF)
        if n == RIP:
            return struct.pack("<Q", self.pc)
        if n == EFLAGS:
            return struct.pack("<I", ctx.rflags & 0xFFFFFFFF)
        if SEG0 <= n < ST0:
            return struct.pack("<I", cpu.segment_field(self.sregs, _SEGS[n - SEG0], "selector"))
        if ST0 <= n < FCTRL:
            o = 32 + 16 * (n - ST0)
            return bytes(self.xsave[o:o + 10])
        if FCTRL <= n < XMM0:
            return struct.pack("<I", self._fpctl(n - FCTRL))
        if XMM0 <= n < MXCSR:
            o = 160 + 16 * (n - XMM0)
            return bytes(self.xsave[o:o + 16])
        if n == MXCSR:
            return bytes(self.xsave[24:28])
        if n == ORIG_RAX:
            return struct.pack("<q", -1)
        if n in (FS_BASE, GS_BASE):
            return struct.pack("<Q", cpu.segment_field(self.sregs, "fs" if n == FS_BASE else "gs", "base"))
        if self.stub.avx and YMM0H <= n < YMM0H + 16:
            o = 576 + 16 * (n - YMM0H)
            return bytes(self.xsave[o:o + 16])
        raise BadPacket(f"no register {n}")

    def _fpctl(self, i: int) -> int:
        x = self.xsave
        fcw, fsw, ftw, fop, fip, fdp = struct.unpack_from("<HHBxHQQ", x, 0)
        if i == 2:  # the full tag word from FXSAVE's abridged one: valid or empty
            return sum((0 if ftw >> r & 1 else 3) << 2 * r for r in range(8))
        return (fcw, fsw, 0, (fip >> 32) & 0xFFFF, fip & 0xFFFFFFFF, (fdp >> 32) & 0xFFFF, fdp & 0xFFFFFFFF,
                fop)[i]

    def set(self, n: int, data: bytes) -> None:
        if self.kind == IN_KM:
            raise BadPacket("the thread is inside km's code: its registers cannot be written now")
        size = reg_size(n, self.stub.avx)
        if not size or len(data) != size:
            raise BadPacket("register size")
        ctx = self.ctx
        if n < 16 or n == RIP:
            ctx.regs["rip" if n == RIP else _GP[n]] = int.from_bytes(data, "little")
            self.dirty = True
        elif n == EFLAGS:
            # the user-modifiable flags only (as ptrace's putreg)
            mask = 0x54DD5  # CF PF AF ZF SF TF DF OF NT RF AC (Linux's FLAG_MASK)
            ctx.rflags = (ctx.rflags & ~mask) | (int.from_bytes(data, "little") & mask)
            self.dirty = True
        elif ST0 <= n < FCTRL or XMM0 <= n < MXCSR or n == MXCSR or YMM0H <= n:
            o = (32 + 16 * (n - ST0) if n < FCTRL else 160 + 16 * (n - XMM0) if n < MXCSR else 24 if n == MXCSR
                 else 576 + 16 * (n - YMM0H))
            x = self.xsave
            x[o:o + len(data)] = data
            if n >= YMM0H:
                x[512] |= 4  # XSTATE_BV: the AVX state is in the area now
            elif n >= XMM0:
                x[512] |= 2
            else:
                x[512] |= 1
            self.xsave_dirty = True
        elif n in (FS_BASE, GS_BASE):
            base = int.from_bytes(data, "little")
            if base >= 1 << 47:
                raise BadPacket("not a user address")
            self.task.set_segment_base("fs" if n == FS_BASE else "gs", base)
            self._sregs = None
        # segment selectors, x87 control words, orig_rax: read-only here (writes ignored, as gdb expects of
        # registers a target cannot change)

    def flush(self) -> None:
        """Write what changed back into the thread (before it runs again)."""
        if self.dirty:
            t = self.task
            saved, t.stop = t.stop, self.kind
            try:
                t.resume(self.ctx, full=True)
            finally:
                t.stop = saved
        if self.xsave_dirty and self.task.vcpu.set_xsave(self.xsave) < 0:
            say("gdb: the thread's FPU state was refused by KVM (left as it was)")


class Event:
    """A thread's stop, waiting for gdb: what happened and how to go on."""

    __slots__ = ("task", "sig", "kind", "ctx", "dirty", "swbreak", "done", "resume_sig", "reason")

    def __init__(self, task, sig: int, kind: int, ctx=None, dirty=False, swbreak=False):
        self.task, self.sig, self.kind, self.ctx, self.dirty, self.swbreak = task, sig, kind, ctx, dirty, swbreak
        self.done = False
        self.resume_sig = 0  # what gdb said to deliver (Linux numbering); 0: none
        self.reason = ""  # more of the stop reply: "watch:ADDR;" (rwatch, awatch), "exec:PATH;"


class Stub:
    """The stub of one program: its listening socket, its thread, the connection."""

    def __init__(self, process, port: int, *, wait: bool, host: str = "127.0.0.1", who: str = ""):
        import socket

        self.p = process
        self.port = port
        self.wait = wait  # --gdb: the program waits for gdb before its first instruction
        self.who = who  # whose stub, in km's message ("" for the program km started)
        self.avx = bool(process.xcr0 & 4)
        self.xml = target_xml(self.avx).encode()
        self.breakpoints: dict[int, int] = {}  # address -> the original byte
        self.watches: list[tuple[int, int, int]] = []  # (Z type 2/3/4, address, length)
        self.watched: dict[int, str] = {}  # page -> the memslot access km gave it while watched
        # tid -> RIP: a single-step's #DB that KVM still has to deliver after a watchpoint's
        # stop in the stepped instruction (reported already, with the watchpoint)
        self.db_pending: dict[int, int] = {}
        self.passed = 0  # QPassSignals: signals delivered without a stop (bit per Linux number)
        self.attached = False  # a gdb is connected and the program is under its control
        self.events: list[Event] = []  # stops not told to gdb yet
        self.current: Event | None = None  # the stop gdb knows of
        self.stopped = False  # the program is paused for gdb (pause_all held)
        self.regs: dict[int, Regs] = {}
        self.g_tid = 0  # Hg: the thread register and memory packets are about
        self.no_ack = False
        self.conn = None
        self.send_lock = _thread.allocate_lock()
        self.exited = False
        self.exec_events = False  # gdb takes exec stops (qSupported)
        self.multi = False  # gdb's multiprocess protocol: thread ids "pPID.TID" (qSupported)
        self.fork_events = False  # gdb takes fork stops (needs multi)
        self.children: set[int] = set()  # forked children gdb was told of and has not detached yet
        self.files: dict[int, bytes | int] = {}  # vFile handle -> contents, or a descriptor of km's
        self.g_child = 0  # Hg named such a child (gdb taking its breakpoints out): its packets are no-ops
        self._interrupted = False  # stopped by gdb's ^C
        self.buf = b""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind((host, port))
            srv.listen(1)
        except OSError as e:
            srv.close()
            raise OSError(f"--gdb {port}: cannot listen on {host}:{port}: {e.strerror}") from None
        self.port = srv.getsockname()[1]  # (--gdb 0: a free one, which the message says)
        self.srv_fd = native.dup_at_least(srv.detach(), process.fds.floor)  # above the program's descriptors
        r, w = os.pipe()
        self.wake_r = native.dup_at_least(r, process.fds.floor)
        self.wake_w = native.dup_at_least(w, process.fds.floor)
        os.close(r)
        os.close(w)
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    def start(self) -> None:
        who = f"{self.who}: " if self.who else ""
        say(f"{who}waiting for gdb on 127.0.0.1:{self.port} (target remote :{self.port})" if self.wait else
            f"{who}gdb may attach on 127.0.0.1:{self.port} (target remote :{self.port})")
        if self.wait:
            self.attached = True  # the first stop is gdb's, whenever it comes
        _thread.start_new_thread(self._main, ())

    # -- the program's side: threads stopping for gdb (called in their own threads) -------
    def wants(self, sig: int) -> bool:
        """Does gdb want to see ``sig`` before its action (not in QPassSignals)?"""
        return self.attached and not (self.passed >> sig & 1)

    def report(self, task, sig: int, kind: int, ctx=None, *, dirty=False, swbreak=False, reason="") -> int:
        """``task`` stops for gdb: wait (PAUSED) until gdb resumes it; returns the signal
        gdb says to deliver (Linux numbering, 0 for none)."""
        p = self.p
        ev = Event(task, sig, kind, ctx, dirty, swbreak)
        ev.reason = reason
        with p.lock:
            task.state = PAUSED
            task.gdb_step = False
            self.events.append(ev)
            p.changed.notify_all()
        self._wake()
        with p.lock:
            while not ev.done and not p.zap:
                p.changed.wait()
            task.state = RUNNING
        if p.zap:
            task.check_zapped()
        return ev.resume_sig

    def _wake(self) -> None:
        try:
            os.write(self.wake_w, b"!")
        except OSError:
            pass  # (the pipe is full: the stub is woken already)

    def trap(self, task, vector: int) -> bool:
        """A #BP or #DB in ``task`` (stopped in its exception vector): gdb's breakpoint or
        single step (True: handled, the thread goes on as gdb says), or the program's own
        (False: the program's SIGTRAP)."""
        if not self.attached:
            task.gdb_step = False
            return False
        regs = Regs(self, task, EXCEPTION)
        ctx = regs.ctx
        pending = self.db_pending.pop(task.tid, None) if vector == 1 else None
        if pending is not None and pending in (-1, ctx.regs["rip"]):
            # a step's #DB gdb has no use for any more: after a watchpoint's stop in the stepped
            # instruction (the frame as it is), or from a step called off (TF off: it runs on)
            if pending == -1 and not task.gdb_step:
                ctx.rflags &= ~TF
                regs.dirty = True
                regs.flush()
            return True
        swbreak = False
        if vector == 3 and (ctx.regs["rip"] - 1) in self.breakpoints:
            ctx.regs["rip"] -= 1  # report the breakpoint's address (swbreak): the int3 runs again after
            swbreak = True
        elif vector == 1 and task.gdb_step:
            pass
        else:
            return False
        ctx.rflags &= ~TF
        self._resume_event(task, self.report(task, S.SIGTRAP, EXCEPTION, ctx, dirty=True, swbreak=swbreak))
        return True

    def watch_access(self, task, gpa: int, is_write: bool) -> bool:
        """An MMIO exit at ``gpa``: an access to a page km watches for gdb (True: served,
        and reported if it touched a watched range), or a real fault (False)."""
        page = gpa & ~(L.PAGE - 1)
        if page not in self.watched:
            return False
        p = self.p
        vma = p.mm.find(gpa)
        if vma is None or not vma.prot & (2 if is_write else 1):
            return False  # the program may not: its fault
        vcpu = task.vcpu
        mem = p.mem
        hit, elsewhere = "", None
        for _ in range(16):  # (an instruction may make several accesses: each exits)
            gpa, length, is_write = vcpu.mmio_exit()
            data = vcpu.mmio_data(length)
            try:
                if is_write:
                    mem.write(gpa, bytes(data))
                else:
                    data[:] = mem.read(gpa, len(data))
            except GuestError:
                return False
            hit = hit or self._watch_hit(gpa, len(data), is_write)
            vcpu.set_immediate_exit(True)  # KVM finishes the instruction, and returns before the next
            r = vcpu.run()
            vcpu.set_immediate_exit(False)
            if r != 0 or vcpu.exit_reason != k.KVM_EXIT_MMIO:
                break
            nxt, _n, nxt_write = vcpu.mmio_exit()
            if (nxt & ~(L.PAGE - 1)) not in self.watched:
                elsewhere = (nxt, nxt_write)  # the instruction's next access: a hole, or a page of its own
                break
        if hit and self.attached:
            ctx = Regs(self, task, DIRECT).ctx
            if task.gdb_step:  # the stepped instruction: this stop ends the step, its #DB is still to come
                ctx.rflags &= ~TF
                self.db_pending[task.tid] = ctx.regs["rip"]
            self._resume_event(task, self.report(task, S.SIGTRAP, DIRECT, ctx, dirty=True, reason=hit))
        if elsewhere is not None:
            task.on_mmio(*elsewhere)
        return True

    def _watch_hit(self, addr: int, length: int, is_write: bool) -> str:
        for kind, start, size in self.watches:
            if start < addr + length and addr < start + size and (kind == 4 or (kind == 2) == is_write):
                return f"{('watch', 'rwatch', 'awatch')[kind - 2]}:{start:x};"
        return ""

    def forked(self, task, pid: int) -> None:
        """``task`` (the parent) forked ``pid``: gdb, if it takes fork events, stops
        here (``catch fork``) and then detaches the child, which runs free already
        (gdb follows the parent; a child gdb should follow: --gdb-fork-wait)."""
        if self.attached and self.fork_events:
            self.children.add(pid)
            self._resume_event(task, self.report(task, S.SIGTRAP, user_view(task), reason=f"fork:p{pid:x}.{pid:x};"))

    def execed(self, task) -> None:
        """``task`` exec'd a new program (registers at its entry): gdb, if it takes exec
        events, stops there and loads the new program's symbols (``catch exec``)."""
        self.breakpoints.clear()  # the old program's: gone with its memory
        self.watches.clear()
        self.watched.clear()
        task.gdb_step = task.gdb_step_syscall = False
        if self.attached and self.exec_events:
            path = self.p.exe_path.hex()
            self._resume_event(task, self.report(task, S.SIGTRAP, DIRECT, reason=f"exec:{path};"))

    def syscall_step_done(self, task) -> None:
        """A thread gdb stepped over a ``syscall`` is back from it (Task.after_syscall)."""
        task.gdb_step_syscall = False
        if self.attached:
            self._resume_event(task, self.report(task, S.SIGTRAP, view_of(self.p, task)))

    def initial(self, task) -> None:
        """--gdb: the main thread waits for gdb before the program's first instruction."""
        self._resume_event(task, self.report(task, S.SIGTRAP, DIRECT))

    def _resume_event(self, task, sig: int) -> None:
        """gdb resumed a thread it stopped by a trap with a signal: deliver it (gdb's
        ``signal SIG``)."""
        if sig:
            task.signal_self(sig)

    def exit(self, end: ProcessExit) -> None:
        """The program ends (Process.finish): tell gdb how, W or X."""
        if not self.attached or self.conn is None or self.exited:
            return
        self.exited = True
        packet = f"X{to_gdb(end.signal):02x}" if end.signal else f"W{end.status & 0xFF:02x}"
        if self.multi:
            packet += f";process:{os.getpid():x}"
        try:
            self._send(packet)
        except OSError:
            pass

    def forked_child(self) -> None:
        """In a forked child (kernel/fork.py): gdb follows the parent; the child runs free,
        without the parent's breakpoints in its copy of the memory."""
        for addr, orig in self.breakpoints.items():
            try:
                self.force_write(addr, bytes([orig]))
            except GuestError:
                pass
        self.forget_watches()  # (the child's memslots are its own VM's)
        conn_fd = self.conn.detach() if self.conn is not None else -1
        self.conn = None
        for fd in (self.srv_fd, self.wake_r, self.wake_w, conn_fd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def child_waits(self, task) -> None:
        """--gdb-fork-wait, in a forked child (its only thread, ``task``): a stub of its
        own on a free port, which km names, and the child waits there, before its first
        instruction after fork, until a gdb comes and continues it (Kontain's
        KM_GDB_CHILD_FORK_WAIT)."""
        try:
            child = start(self.p, 0, wait=True, who=f"forked child {os.getpid()}")
        except OSError as e:
            say(f"forked child {os.getpid()}: {e} (it runs without gdb)")
            return
        child.initial(task)

    # -- the stub's thread -------------------------------------------------------------
    def _main(self) -> None:
        import socket

        signals.block_forwarded()
        native.name_thread(b"km-gdb")
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=self.srv_fd)
        while True:
            try:
                conn, _addr = srv.accept()
            except OSError:
                return
            if not self._same_user(conn):
                conn.close()  # another user's gdb would control this user's program: refused
                continue
            fd = native.dup_at_least(conn.fileno(), self.p.fds.floor)
            conn.close()
            self.conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM, fileno=fd)
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.no_ack = False
            self.buf = b""
            try:
                self._session()
            except (OSError, ConnectionError):
                pass
            except Exception as e:  # a stub bug: the program goes on without gdb
                say(f"gdb: internal error in the stub: {e!r} (please report it); the program continues")
            self._detach()
            for content in self.files.values():  # (gdb's open files: vFile)
                if isinstance(content, int):
                    os.close(content)
            self.files = {}
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None

    @staticmethod
    def _same_user(conn) -> bool:
        """Is the connecting process this user's (or root's)?  TCP has no SO_PEERCRED:
        the kernel's table of sockets (/proc/net/tcp) says who owns the peer's end of a
        loopback connection.  Unknown means no."""
        try:
            peer_host, peer_port = conn.getpeername()[:2]
            my_port = conn.getsockname()[1]
            with open("/proc/net/tcp") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            return False
        want = (f"{peer_port:04X}", f"{my_port:04X}")
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            local, remote = fields[1].partition(":")[2], fields[2].partition(":")[2]
            if (local, remote) == want:
                uid = int(fields[7])
                return uid == os.getuid() or uid == 0
        return False

    def _session(self) -> None:
        if not self.stopped:
            self._stop_all()
        self.attached = True
        if self.current is None:  # attached to a running program (--gdb-listen): stopped by gdb
            self._take_event(wait=False)
        while True:
            packet = self._recv()
            if packet is None:
                return
            reply = self._dispatch(packet)
            if reply is not None:
                self._send(reply)
            if self.exited:
                return

    # the two states: stopped (every thread paused) or running (waiting for a stop)
    def _stop_all(self) -> None:
        """Every thread paused; steps gdb asked for and another thread's stop got ahead
        of are called off (gdb asks again: a thread left with TF would stop by itself)."""
        tasks = self.p.pause_all()
        self.stopped = True
        for t in tasks:
            t.gdb_step_syscall = False
            if t.gdb_step:
                t.gdb_step = False
                regs = Regs(self, t, view_of(self.p, t))
                if regs.kind == IN_KM:
                    self.db_pending[t.tid] = -1  # (its #DB is on its way: dropped when it comes)
                elif regs.ctx.rflags & TF:
                    regs.ctx.rflags &= ~TF
                    regs.dirty = True
                    regs.flush()

    def _resume_all(self, actions: dict[int, tuple[str, int]], default: tuple[str, int] | None) -> None:
        """Let the program run: each thread as ``actions`` (tid -> (c|s, signal)) says,
        the rest as ``default`` (None: they stay stopped: not offered here, all run)."""
        p = self.p
        default = default or ("c", 0)
        for regs in list(self.regs.values()):
            regs.flush()
        self.regs.clear()
        with p.lock:
            tasks = list(p.tasks.values())
        for t in tasks:
            action, sig = actions.get(t.tid, default)
            ev = self.current if self.current is not None and self.current.task is t else None
            if action == "s":
                self._arm_step(t, ev)
            if ev is not None:
                ev.resume_sig = sig
            elif sig:
                t.signal_self(sig)
        with p.lock:
            if self.current is not None:
                self.current.done = True
            self.current = None
            self.stopped = False
            p.pause_requests -= 1
            p.changed.notify_all()

    def _arm_step(self, t, ev: Event | None) -> None:
        """Make ``t`` stop after one instruction (TF in its user RFLAGS), or after the
        system call it is in or about to make."""
        kind = ev.kind if ev is not None else view_of(self.p, t)
        if kind == IN_KM:
            return  # (in km's code between exits: it runs on, and gdb sees it stopped next time)
        if kind == SYSCALL and ev is None:  # blocked in a call: stop on its way back
            t.gdb_step_syscall = True
            return
        regs = Regs(self, t, kind, ev.ctx if ev is not None and ev.ctx is not None else None)
        try:
            insn = self.read_memory(regs.pc, 2)
        except GuestError:
            insn = b""
        if insn == SYSCALL_INSN:
            t.gdb_step_syscall = True
            regs.flush()
            return
        regs.ctx.rflags |= TF
        regs.dirty = True
        regs.flush()
        t.gdb_step = True

    def _take_event(self, wait: bool) -> bool:
        """Make the next queued stop the current one (the program is stopped); with
        ``wait``, the program runs until one comes or gdb interrupts.  False: the
        connection ended meanwhile."""
        import select

        p = self.p
        while True:
            with p.lock:
                ev = self.events.pop(0) if self.events else None
            if ev is not None:
                if ev.swbreak and ev.ctx is not None and ev.ctx.regs["rip"] not in self.breakpoints:
                    # a breakpoint gdb took out while this hit waited: as if it had not run
                    # (its thread waits in report: its registers are ours to set), and
                    # before any stop of the others, which would then be a stop with no
                    # event: "Thread 1 stopped" for a continue that had not ended
                    ev.ctx.rflags &= ~TF
                    Regs(self, ev.task, ev.kind, ev.ctx, dirty=True).flush()
                    with p.lock:
                        ev.done = True
                        p.changed.notify_all()
                    continue
                if not self.stopped:
                    self._stop_all()
                self.current = ev
                if ev.ctx is not None:
                    self.regs[ev.task.tid] = Regs(self, ev.task, ev.kind, ev.ctx, dirty=ev.dirty)
                self.g_tid = ev.task.tid
                return True
            if self.stopped:  # stopped without an event (attach, ^C): the main thread, no signal
                return True
            if not wait:
                self._stop_all()
                return True
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            poller.register(self.conn.fileno(), select.POLLIN)
            for fd, _mask in poller.poll():
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except OSError:
                        pass
                else:
                    data = self.conn.recv(4096)
                    if not data:
                        return False
                    if b"\x03" in data:  # ^C: stop the program (SIGINT, not delivered)
                        self.buf += data.replace(b"\x03", b"")
                        self._stop_all()
                        self._interrupted = True
                        return True
                    self.buf += data

    def _stop_reply(self) -> str:
        ev = self.current
        if ev is None:
            sig = S.SIGINT if getattr(self, "_interrupted", False) else 0
            self._interrupted = False
            tid = self.g_tid if self.g_tid in self.p.tasks else self._first_tid()
            self.g_tid = tid
            return f"T{to_gdb(sig):02x}thread:{self._ptid(tid)};"
        extra = "swbreak:;" if ev.swbreak else ev.reason
        return f"T{to_gdb(ev.sig):02x}thread:{self._ptid(ev.task.tid)};{extra}"

    def _ptid(self, tid: int) -> str:
        return f"p{os.getpid():x}.{tid:x}" if self.multi else f"{tid:x}"

    def _first_tid(self) -> int:
        with self.p.lock:
            main = getattr(self.p, "main_task", None)
            if main is not None and main.tid in self.p.tasks:
                return main.tid
            return next(iter(self.p.tasks), 0)

    def _detach(self) -> None:
        """gdb is gone (D, or the connection closed): breakpoints out, stepping off, and
        the program runs on its own, every stop gdb had not seen let go as it was."""
        if self.exited or (not self.attached and not self.stopped):
            return
        self.attached = False
        p = self.p
        if not self.stopped:
            self._stop_all()  # (which calls off the steps gdb asked for)
        for addr in list(self.breakpoints):
            self.remove_breakpoint(addr)
        self.forget_watches()
        for regs in list(self.regs.values()):
            regs.ctx.rflags &= ~TF
            regs.dirty = True
            regs.flush()
        self.regs.clear()
        with p.lock:
            pending = ([self.current] if self.current is not None else []) + self.events
            self.events = []
            self.current = None
        for ev in pending:
            ev.resume_sig = ev.sig if ev.sig != S.SIGTRAP else 0
            if ev.ctx is not None:
                ev.ctx.rflags &= ~TF
                Regs(self, ev.task, ev.kind, ev.ctx, dirty=True).flush()
        with p.lock:
            for ev in pending:
                ev.done = True
            self.stopped = False
            p.pause_requests -= 1
            p.changed.notify_all()

    # -- packets -----------------------------------------------------------------------
    def _recv(self) -> bytes | None:
        """The next packet's payload (checksum verified, acked unless no-ack mode); None
        when the connection ends.  Junk between packets is skipped."""
        while True:
            start = self.buf.find(b"$")
            if start >= 0:
                end = self.buf.find(b"#", start)
                if end >= 0 and len(self.buf) >= end + 3:
                    body = self.buf[start + 1:end]
                    csum = self.buf[end + 1:end + 3]
                    self.buf = self.buf[end + 3:]
                    ok = True
                    try:
                        ok = int(csum, 16) == sum(body) & 0xFF
                    except ValueError:
                        ok = False
                    if not self.no_ack:
                        self.conn.sendall(b"+" if ok else b"-")
                    if ok:
                        return body
                    continue
                if len(self.buf) - start > MAX_PACKET * 2 + 8:
                    self.buf = b""  # a packet too long to be gdb's: dropped
                    if not self.no_ack:
                        self.conn.sendall(b"-")
            elif len(self.buf) > 1:
                if b"\x03" in self.buf and not self.stopped:
                    self._stop_all()
                self.buf = b""
            data = self.conn.recv(65536)
            if not data:
                return None
            self.buf += data

    def _send(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            payload = payload.encode("latin-1")
        # escape what the protocol reserves
        if any(c in payload for c in b"#$}*"):
            out = bytearray()
            for c in payload:
                if c in b"#$}*":
                    out += bytes([0x7D, c ^ 0x20])
                else:
                    out.append(c)
            payload = bytes(out)
        with self.send_lock:
            if self.conn is not None:
                self.conn.sendall(b"$" + payload + b"#" + b"%02x" % (sum(payload) & 0xFF))

    def _dispatch(self, packet: bytes) -> str | bytes | None:
        try:
            return self._handle(packet)
        except (BadPacket, ValueError, IndexError, KeyError, UnicodeDecodeError, OverflowError, struct.error):
            return "E01"
        except GuestError:
            return "E0e"  # EFAULT

    def _handle(self, packet: bytes) -> str | bytes | None:
        if not packet:
            return ""
        c = packet[:1]
        rest = packet[1:]
        if c == b"q" or c == b"Q":
            return self._query(packet)
        if self.g_child and c in (b"g", b"G", b"p", b"P", b"m", b"M", b"X", b"Z", b"z"):
            # gdb at a forked child (taking its breakpoints out before detaching it): the
            # child is a km of its own, which dropped the parent's breakpoints already
            return "OK" if c in (b"M", b"X", b"Z", b"z") else "E01"
        if c == b"?":
            return self._stop_reply()
        if c == b"g":
            if rest:
                return "E01"
            regs = self._regs(self.g_tid)
            n = 76 if self.avx else 60
            return b"".join(regs.get(i) for i in range(n)).hex()
        if c == b"G":
            regs = self._regs(self.g_tid)
            data = bytes.fromhex(rest.decode())
            off = 0
            for i in range(76 if self.avx else 60):
                size = reg_size(i, self.avx)
                if off + size > len(data):
                    break
                regs.set(i, data[off:off + size])
                off += size
            return "OK"
        if c == b"p":
            n = int(rest, 16)
            if not reg_size(n, self.avx):
                return "E01"
            return self._regs(self.g_tid).get(n).hex()
        if c == b"P":
            num, _, val = rest.partition(b"=")
            self._regs(self.g_tid).set(int(num, 16), bytes.fromhex(val.decode()))
            return "OK"
        if c == b"m":
            addr, length = _addr_len(rest)
            data = self.read_memory(addr, min(length, MAX_MEM), partial=True)
            return data.hex() if data or length == 0 else "E0e"
        if c == b"M":
            head, _, hexdata = rest.partition(b":")
            addr, length = _addr_len(head)
            data = bytes.fromhex(hexdata.decode())
            if len(data) != length:
                return "E01"
            self.write_memory(addr, data)
            return "OK"
        if c == b"X":
            colon = rest.find(b":")
            if colon < 0:
                return "E01"
            addr, length = _addr_len(rest[:colon])
            data = _unescape(rest[colon + 1:])
            if len(data) != length:
                return "E01"
            self.write_memory(addr, data)
            return "OK"
        if c in (b"Z", b"z"):
            return self._breakpoint(c == b"Z", rest)
        if c == b"H":
            op, tid = rest[:1], _tid(rest[1:])
            if op not in (b"g", b"c"):
                return "E01"
            pid = _pid(rest[1:])
            if pid in self.children:
                self.g_child = pid if op == b"g" else self.g_child
                return "OK"
            self.g_child = 0 if op == b"g" else self.g_child
            if tid > 0 and tid not in self.p.tasks:
                return "E01"
            if op == b"g":
                self.g_tid = tid if tid > 0 else self.g_tid or self._first_tid()
            return "OK"
        if c == b"T":
            return "OK" if _tid(rest) in self.p.tasks else "E01"
        if c in (b"c", b"s", b"C", b"S"):
            return self._resume_simple(c.decode(), rest)
        if packet.startswith(b"vCont?"):
            return "vCont;c;C;s;S"
        if packet.startswith(b"vCont;"):
            return self._vcont(packet[6:])
        if packet.startswith(b"vKill;") and _hex(packet[6:]) in self.children:
            child = _hex(packet[6:])
            self.children.discard(child)
            try:
                os.kill(child, S.SIGKILL)  # (a forked child is a km process of its own)
            except OSError:
                pass
            return "OK"
        if packet.startswith(b"vKill") or c == b"k":
            if c == b"v" and (_hex(packet[6:]) < 0 or self.multi and _hex(packet[6:]) != os.getpid()):
                return "E01"  # (without multiprocess, gdb names a made-up pid)
            if c == b"v":
                self._send("OK")
            self._kill()
            return None
        if packet.startswith(b"vMustReplyEmpty"):
            return ""
        if packet.startswith(b"vFile:"):
            return self._vfile(packet[6:])
        if c == b"D" and rest[:1] == b";" and _hex(rest[1:]) in self.children:
            self.children.discard(_hex(rest[1:]))  # a forked child: it runs free already
            self.g_child = 0
            return "OK"
        if c == b"D":
            if rest and (rest[:1] != b";" or _hex(rest[1:]) != os.getpid()):
                return "E01"  # (D;PID of no process of gdb's)
            self._send("OK")
            self._detach()
            raise ConnectionError("detached")
        return ""

    def _query(self, packet: bytes) -> str | bytes:
        if packet.startswith(b"qSupported"):
            self.exec_events = b"exec-events+" in packet  # gdb can take an exec as a stop (catch exec)
            self.multi = b"multiprocess+" in packet
            self.fork_events = self.multi and b"fork-events+" in packet  # (catch fork)
            return (f"PacketSize={MAX_PACKET:x};QStartNoAckMode+;qXfer:features:read+;qXfer:exec-file:read+;"
                    "qXfer:auxv:read+;qXfer:libraries-svr4:read+;swbreak+;QPassSignals+;vContSupported+"
                    + (";exec-events+" if self.exec_events else "") + (";multiprocess+" if self.multi else "")
                    + (";fork-events+" if self.fork_events else ""))
        if packet == b"QStartNoAckMode":
            self._send("OK")
            self.no_ack = True
            return None
        if packet.startswith(b"QPassSignals:"):
            mask = 0
            for item in packet[13:].split(b";"):
                if item:
                    sig = from_gdb(int(item, 16))
                    if sig:
                        mask |= 1 << sig
            self.passed = mask
            return "OK"
        if packet == b"qC":
            return f"QC{self._ptid(self.g_tid or self._first_tid())}"
        if packet == b"qAttached" or packet.startswith(b"qAttached:"):
            return "1" if not self.wait else "0"
        if packet == b"qfThreadInfo":
            with self.p.lock:
                tids = sorted(self.p.tasks)
            return "m" + ",".join(self._ptid(t) for t in tids)
        if packet == b"qsThreadInfo":
            return "l"
        if packet.startswith(b"qThreadExtraInfo,"):
            tid = _tid(packet[17:])
            t = self.p.tasks.get(tid)
            return (f"{'main' if t is self.p.main_task else 'thread'}".encode().hex()) if t else "E01"
        if packet.startswith(b"qXfer:"):
            return self._xfer(packet[6:])
        if packet == b"qOffsets" or packet == b"qSymbol::" or packet.startswith(b"qTStatus"):
            return "OK" if packet == b"qSymbol::" else ""
        return ""

    def _xfer(self, rest: bytes) -> str | bytes:
        obj, _, rest = rest.partition(b":")
        op, _, rest = rest.partition(b":")
        annex, _, span = rest.rpartition(b":")
        if op != b"read":
            return ""
        offset, length = _addr_len(span)
        if obj == b"features":
            if annex != b"target.xml":
                return "E00"
            data = self.xml
        elif obj == b"exec-file":
            data = self.p.exe_path
        elif obj == b"auxv":
            data = self.p.auxv_bytes
        elif obj == b"libraries-svr4":
            data = self._libraries().encode()
        else:
            return ""
        chunk = data[offset:offset + min(length, MAX_PACKET - 16)]
        return (b"l" if offset + len(chunk) >= len(data) else b"m") + chunk

    # -- files (vFile): gdb reads the program, its libraries and /proc/PID/maps through km --
    def _vfile(self, rest: bytes) -> str | bytes:
        """gdb's host I/O, read-only: files as km's user may read them (the stub serves
        only that user: _same_user), and the program's own /proc/PID files (maps, exe) as
        the program sees them; anything else answers an errno."""
        op, _, args = rest.partition(b":")
        files = self.files
        if op == b"setfs":
            return "F0"
        if op == b"open":
            path_hex, _, tail = args.partition(b",")
            flags = _hex(tail.partition(b",")[0])
            path = bytes.fromhex(path_hex.decode())
            if flags != 0:
                return f"F-1,{EACCES}"
            if len(files) >= MAX_FILES:
                return f"F-1,{EMFILE}"
            try:
                ours = self._proc_file(path)
            except FileNotFoundError:
                return f"F-1,{ENOENT}"
            if ours is not None:
                content: bytes | int = ours
            else:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
                except OSError as e:
                    return f"F-1,{_fileio_errno(e.errno)}"
                import stat

                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    return f"F-1,{EACCES}"
                content = native.dup_at_least(fd, self.p.fds.floor)
                os.close(fd)
            handle = next(i for i in range(MAX_FILES + 1) if i not in files)
            files[handle] = content
            return f"F{handle:x}"
        if op in (b"pread", b"close", b"fstat"):
            fields = args.split(b",")
            handle = _hex(fields[0])
            if handle not in files:
                return f"F-1,{EBADF}"
            content = files[handle]
            if op == b"close":
                del files[handle]
                if isinstance(content, int):
                    os.close(content)
                return "F0"
            if op == b"fstat":
                size = len(content) if isinstance(content, bytes) else os.fstat(content).st_size
                st = struct.pack(">IIIIIIIQQQIII", 0, 0, 0o100444, 1, 0, 0, 0, size, 4096, (size + 511) // 512, 0, 0, 0)
                return f"F{len(st):x};".encode() + st
            count, offset = _hex(fields[1]), _hex(fields[2]) if len(fields) > 2 else -1
            if count < 0 or offset < 0:
                return f"F-1,{EINVAL}"
            count = min(count, MAX_PACKET // 2)
            if isinstance(content, bytes):
                data = content[offset:offset + count]
            else:
                try:
                    data = os.pread(content, count, offset)
                except OSError as e:
                    return f"F-1,{_fileio_errno(e.errno)}"
            return f"F{len(data):x};".encode() + data
        if op == b"readlink":
            path = bytes.fromhex(args.decode())
            if self._proc_name(path) == b"exe":
                target = self.p.exe_path
            else:
                try:
                    target = os.readlink(path)
                except OSError as e:
                    return f"F-1,{_fileio_errno(e.errno)}"
            return f"F{len(target):x};".encode() + target
        return f"F-1,{EACCES}" if op in (b"pwrite", b"unlink") else ""

    def _proc_name(self, path: bytes) -> bytes | None:
        """What /proc/PID/NAME (or /proc/PID/task/TID/NAME) of the program ``path``
        names; None for any other path."""
        return self._proc_path(path)[0]

    def _proc_path(self, path: bytes) -> tuple[bytes | None, int]:
        parts = path.split(b"/")
        if len(parts) < 4 or parts[:2] != [b"", b"proc"] or parts[2] not in (b"%d" % os.getpid(), b"self"):
            return None, 0
        if len(parts) == 6 and parts[3] == b"task" and parts[4].isdigit() and int(parts[4]) in self.p.tasks:
            return parts[5], int(parts[4])
        return (parts[3] if len(parts) == 4 else b""), os.getpid()

    def _proc_file(self, path: bytes) -> bytes | None:
        """The program's own /proc files as the program reads them (kernel/procfs.py):
        maps, smaps (gcore and ``info proc mappings`` use them), status, stat, cmdline,
        auxv, and Linux's default coredump_filter; anything else of the program's /proc
        does not exist for gdb (never the monitor's own files)."""
        name, tid = self._proc_path(path)
        if name is None:
            return None
        if name == b"coredump_filter":
            return b"00000033\n"  # (Linux's default: what gcore should write)
        if name in (b"maps", b"smaps", b"status", b"stat", b"cmdline", b"auxv"):
            try:
                return bytes(self.p.procfs.content(name, tid))
            except OSError:
                pass
        raise FileNotFoundError(ENOENT, "not served")

    def _regs(self, tid: int) -> Regs:
        if not self.stopped:
            raise BadPacket("running")
        tid = tid if tid > 0 else self._first_tid()
        regs = self.regs.get(tid)
        if regs is None:
            t = self.p.tasks.get(tid)
            if t is None:
                raise BadPacket("no thread")
            regs = self.regs[tid] = Regs(self, t, view_of(self.p, t))
        return regs

    def _resume_simple(self, c: str, rest: bytes) -> str | None:
        sig = 0
        if c in "CS":
            num, _, addr = rest.partition(b";")
            sig = from_gdb(int(num, 16))
            rest = addr
        tid = self.g_tid if self.g_tid in self.p.tasks else self._first_tid()
        if rest:
            self._regs(tid).set_pc(int(rest, 16))
        action = "s" if c in "sS" else "c"
        return self._go({tid: (action, sig)}, ("c", 0))

    def _vcont(self, spec: bytes) -> str | None:
        actions: dict[int, tuple[str, int]] = {}
        default = None
        for item in spec.split(b";"):
            what, _, thread = item.partition(b":")
            if not what:
                raise BadPacket("empty action")
            kind = what[:1].decode()
            if kind not in "cCsS":
                return "E01"
            sig = from_gdb(int(what[1:], 16)) if kind in "CS" else 0
            action = (kind.lower(), sig)
            if thread:
                tid = _tid(thread)
                if tid <= 0:
                    default = default or action
                elif tid not in actions:
                    actions[tid] = action
            elif default is None:
                default = action
        return self._go(actions, default)

    def _go(self, actions, default) -> str | None:
        if not self.stopped:
            return "E01"
        self._resume_all(actions, default)
        if not self._take_event(wait=True):
            raise ConnectionError("gdb went away")
        return self._stop_reply()

    def _kill(self) -> None:
        self.exited = True
        self.p.finish(ProcessExit(signal=S.SIGKILL, message=""))

    # -- breakpoints and memory -------------------------------------------------------------
    def _breakpoint(self, insert: bool, rest: bytes) -> str:
        kind, _, tail = rest.partition(b",")
        if kind not in (b"0", b"2", b"3", b"4"):
            return ""  # hardware breakpoints (Z1): none here
        addr_s, _, size_s = tail.partition(b",")
        addr = int(addr_s, 16)
        size = int(size_s.split(b";")[0], 16)
        if kind != b"0":
            if not 0 < size <= MAX_WATCH:
                return "E01"
            if insert:
                self.insert_watch(int(kind), addr, size)
            else:
                self.remove_watch(int(kind), addr, size)
            return "OK"
        if size not in (1,):
            return "E01"
        if insert:
            self.insert_breakpoint(addr)
        else:
            self.remove_breakpoint(addr)
        return "OK"

    def insert_breakpoint(self, addr: int) -> None:
        if addr in self.breakpoints:
            return
        orig = self.p.mem.read(addr, 1)[0]
        self.force_write(addr, bytes([INT3]))
        self.breakpoints[addr] = orig

    def insert_watch(self, kind: int, addr: int, size: int) -> None:
        """A watchpoint by memslot: its pages' slots made read-only (writes exit) or
        removed (every access exits).  Only memory the program has mapped, and for read
        and access watchpoints no executable page (a fetch from a page without a slot
        cannot be completed)."""
        p = self.p
        if not p.mem.contains(addr, size):
            raise GuestError(14)
        with p.mm.lock:
            for page in range(addr & ~(L.PAGE - 1), addr + size, L.PAGE):
                vma = p.mm.find(page)
                if vma is None or vma.shared or (kind != 2 and vma.prot & 4):
                    raise GuestError(14)
            self.watches.append((kind, addr, size))
            self._protect(addr, size)

    def remove_watch(self, kind: int, addr: int, size: int) -> None:
        p = self.p
        with p.mm.lock:
            if (kind, addr, size) in self.watches:
                self.watches.remove((kind, addr, size))
            self._protect(addr, size)

    def _protect(self, addr: int, size: int) -> None:
        """Give the pages of [addr, addr+size) the slot access the watchpoints on them
        need, or back the program's own (call with the address space's lock held)."""
        from kontain.memory.mm import access_of

        p = self.p
        for page in range(addr & ~(L.PAGE - 1), addr + size, L.PAGE):
            kinds = {k_ for k_, a, n in self.watches if a < page + L.PAGE and page < a + n}
            vma = p.mm.find(page)
            own = access_of(vma.prot) if vma is not None else "none"
            want = own if not kinds else ("ro" if kinds == {2} and own == "rw" else "none" if kinds - {2} else own)
            if kinds:
                self.watched[page] = want
            else:
                self.watched.pop(page, None)
            if vma is not None:
                p.slots.set_access(page, page + L.PAGE, want, strict=True)  # (km's host mapping stays)

    def forget_watches(self) -> None:
        """Every watched page back to the program's access (detach, a forked child)."""
        with self.p.mm.lock:
            watches, self.watches = self.watches, []
            for _kind, addr, size in watches:
                self._protect(addr, size)
            self.watched.clear()

    def remove_breakpoint(self, addr: int) -> None:
        orig = self.breakpoints.pop(addr, None)
        if orig is not None:
            try:
                self.force_write(addr, bytes([orig]))
            except GuestError:
                pass  # unmapped meanwhile: nothing to restore

    def read_memory(self, addr: int, length: int, partial: bool = False) -> bytes:
        """The program's memory as gdb should see it: breakpoints show their original
        bytes.  ``partial``: what is readable from ``addr`` on (maybe nothing)."""
        mem = self.p.mem
        if not (0 <= addr and length >= 0 and mem.contains(addr, length)):
            if not partial or not mem.contains(addr, 0):
                raise GuestError(14)
            length = max(0, mem.size - addr)
        out = b""
        pos = addr
        while pos < addr + length:
            n = min(L.PAGE - pos % L.PAGE, addr + length - pos)
            try:
                out += mem.read(pos, n)
            except GuestError:
                data = self._vdso_read(pos, n)
                if data is None:
                    if not partial:
                        raise
                    break
                out += data
            pos += n
        if self.breakpoints:
            buf = bytearray(out)
            for a, orig in self.breakpoints.items():
                if addr <= a < addr + len(buf):
                    buf[a - addr] = orig
            out = bytes(buf)
        return out

    def _vdso_read(self, addr: int, length: int) -> bytes | None:
        """The program's vDSO is the host's own (memory/vdso.py): its pages are not in the
        window, km reads them where they are in km (gdb loads the vDSO's symbols)."""
        vma = self.p.mm.find(addr)
        if vma is None or vma.name != "[vdso]":
            return None
        from kontain.memory import vdso

        parts = vdso.host_layout()
        if parts is None:
            return None
        _name, lo, hi, _prot = parts[-1]
        host = lo + (addr - vma.start)
        if not lo <= host and host + length <= hi:
            return None
        data = native.read_mem(host, length)
        return None if isinstance(data, int) else data

    def write_memory(self, addr: int, data: bytes) -> None:
        """gdb's writes (variables, and code: a read-only text page too); a write over a
        breakpoint changes the byte the breakpoint will restore."""
        if not self.p.mem.contains(addr, len(data)):
            raise GuestError(14)
        buf = bytearray(data)
        for a in self.breakpoints:
            if addr <= a < addr + len(buf):
                self.breakpoints[a] = buf[a - addr]
                buf[a - addr] = INT3
        self.force_write(addr, bytes(buf))

    def force_write(self, addr: int, data: bytes) -> None:
        """Write the program's memory even where the program may not (its text): the
        host page is made writable for the write (the program's private copy changes,
        never a file: a shared mapping is refused)."""
        p = self.p
        mem = p.mem
        try:
            mem.write(addr, data)
            return
        except GuestError:
            pass
        with p.mm.lock:
            pos, end = addr, addr + len(data)
            while pos < end:
                n = min(L.PAGE - pos % L.PAGE, end - pos)
                vma = p.mm.find(pos)
                if vma is None or vma.shared or not vma.prot:
                    raise GuestError(14)
                page = mem.base + (pos & ~(L.PAGE - 1))
                if native.mprotect(page, L.PAGE, 3) < 0:
                    raise GuestError(14)
                try:
                    mem.write(pos, data[pos - addr:pos - addr + n])
                finally:
                    native.mprotect(page, L.PAGE, host_prot(vma.prot))  # (as mm keeps it)
                pos += n

    # -- shared libraries (qXfer:libraries-svr4) -----------------------------------------
    def _libraries(self) -> str:
        """The dynamic linker's list of loaded objects (r_debug's link_map chain, found
        through the program's DT_DEBUG), as gdb's svr4 XML."""
        lm_main, libs = 0, []
        try:
            r_debug = self._r_debug()
            if r_debug:
                lm = self.p.mem.read_u64(r_debug + 8)
                lm_main = lm
                for _ in range(4096):
                    if not lm:
                        break
                    l_addr, l_name, l_ld, l_next = struct.unpack("<QQQQ", self.p.mem.read(lm, 32))
                    try:
                        name = self.p.mem.cstr(l_name, 4096) if l_name else b""
                    except GuestError:
                        name = b""  # (the vDSO's, in pages km shares from the host's vDSO)
                    if lm != lm_main and name:  # (not the program, nor the vDSO: gdb finds it by auxv)
                        libs.append((name, lm, l_addr, l_ld))
                    lm = l_next
        except GuestError:
            pass  # (a chain being changed, or a wild pointer: what was read so far)
        main = f' main-lm="0x{lm_main:x}"' if lm_main else ""
        out = [f'<library-list-svr4 version="1.0"{main}>']
        for name, lm, l_addr, l_ld in libs:
            out.append(f'<library name="{_xml_escape(name)}" lm="0x{lm:x}" l_addr="0x{l_addr:x}" l_ld="0x{l_ld:x}" lmid="0x0"/>')
        out.append("</library-list-svr4>")
        return "".join(out)

    def _r_debug(self) -> int:
        """r_debug's address: the DT_DEBUG entry of the program's dynamic section, which
        the dynamic linker fills in (0 before it has, or in a static program)."""
        auxv = self.p.auxv_bytes
        vals = {}
        for i in range(0, len(auxv) - 15, 16):
            key, val = struct.unpack_from("<QQ", auxv, i)
            vals.setdefault(key, val)
        phdr, phnum = vals.get(3, 0), vals.get(5, 0)  # AT_PHDR, AT_PHNUM
        if not phdr or phnum > 256:
            return 0
        mem = self.p.mem
        bias, dynamic = None, 0
        for i in range(phnum):
            p_type, _f, _off, p_vaddr = struct.unpack("<IIQQ", mem.read(phdr + 56 * i, 24))
            if p_type == 6:  # PT_PHDR
                bias = phdr - p_vaddr
            elif p_type == 2:  # PT_DYNAMIC
                dynamic = p_vaddr
        if not dynamic:
            return 0
        addr = dynamic + (bias or 0)
        for i in range(1024):
            tag, val = struct.unpack("<qQ", mem.read(addr + 16 * i, 16))
            if tag == 0:
                return 0
            if tag == 21:  # DT_DEBUG
                return val
        return 0


def _addr_len(s: bytes) -> tuple[int, int]:
    a, sep, n = s.partition(b",")
    if not sep:
        raise BadPacket("addr,length")
    addr, length = int(a, 16), int(n, 16)
    if addr < 0 or length < 0 or addr >= 1 << 64 or length > 1 << 32:
        raise BadPacket("range")
    return addr, length


def _tid(s: bytes) -> int:
    """A thread-id: hex, -1 (all) or 0 (any)."""
    if s == b"-1":
        return -1
    if s.startswith(b"p"):
        s = s.partition(b".")[2] or b"0"
    return int(s, 16)


def _fileio_errno(errno: int | None) -> int:
    return errno if errno in _FILEIO_ERRNOS else EUNKNOWN


def _pid(s: bytes) -> int:
    """The process of a multiprocess thread-id "pPID.TID" (0 when it names none)."""
    if not s.startswith(b"p"):
        return 0
    pid = s[1:].partition(b".")[0]
    return int(pid, 16) if pid and pid != b"-1" else 0


def _hex(s: bytes) -> int:
    try:
        return int(s, 16)
    except ValueError:
        return -1


def _unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for c in it:
        if c == 0x7D:
            c = next(it, None)
            if c is None:
                raise BadPacket("escape at the end")
            out.append(c ^ 0x20)
        else:
            out.append(c)
    return bytes(out)


def _xml_escape(name: bytes) -> str:
    s = name.decode("utf-8", "replace")
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def start(process, port: int, *, wait: bool, who: str = "") -> Stub:
    """Listen for gdb (raises OSError with a message when the port cannot be had)."""
    stub = Stub(process, port, wait=wait, who=who)
    process.gdb = stub
    stub.start()
    return stub
