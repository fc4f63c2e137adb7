"""A guest thread: one vCPU, its registers, its signal mask, and how its exits are served.

The vCPU loop (vcpu.py) reports exits; the Task decides what they mean for the program:
a syscall goes to the dispatcher, a fault becomes a signal, a kick delivers pending
signals.  Where the thread stopped decides how its user-mode registers are read and
written back (``context``/``resume``):

* SYSCALL: in the syscall stub; user RIP and RFLAGS are in RCX and R11 (as `syscall`
  left them); on PVM the stub runs at CPL3, so the monitor may set RIP directly.
* EXCEPTION: in an exception vector stub at CPL0; user RIP, RFLAGS and RSP are in the
  iret frame on this vCPU's exception stack, which the stub returns through.
* DIRECT: at a user instruction (MMIO, emulation failure, host fault, interruption).
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EFBIG, EINTR, EINVAL, ENOMEM, EPERM, EPIPE, ERESTARTNOINTR
from kontain.abi.signals import SIGINFO_SIZE, siginfo
from kontain.abi.structs import SIGCONTEXT_REGS
from kontain.abi.syscalls import NORESTART, NR, SIGPIPE
from kontain.arch.x86_64 import cpu, guest_code, sigframe
from kontain.arch.x86_64 import layout as L
from kontain.errors import GuestError, ProcessExit
from kontain.kernel import faults
from kontain.kernel.runstate import PAUSED, RUNNING
from kontain.kernel.signals import Pending, namespace_init, pick, sigbit, stop_by_signal
from kontain.kvm import abi as k
from kontain.memory import slots

SYSCALL, EXCEPTION, DIRECT = 0, 1, 2
IN_KM = 3  # (user_view) paused inside km's own guest code, between exits: user registers not at hand
SYS_futex, FUTEX_WAKE = 202, 1
FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048
# sigcontext register name -> index in the vCPU's synced registers
_Q = {name: getattr(k, name.upper()) for name in SIGCONTEXT_REGS}
_XFSZ_SET = bytearray(struct.pack("<Q", 1 << (S.SIGXFSZ - 1)))
_NO_WAIT = bytearray(16)  # a zero timespec


class ThreadExit(BaseException):
    """This guest thread is gone (exit() with other threads left)."""


class Task:
    """One guest thread.  Handlers see ``t.mem``, ``t.mm``, ``t.fds``, ``t.process``."""

    def __init__(self, process, vcpu, tid: int, ident: int = 0):
        self.process = process
        self.mem = process.mem
        self.mm = process.mm
        self.fds = process.fds
        self.vcpu = vcpu
        self.q = vcpu.q
        self.tid = tid
        self.ident = ident  # the host thread's pthread id, for kicking it
        self.sigmask = 0
        self.pending = Pending()  # signals sent to this thread
        self.shared = process.shared_pending  # signals sent to the process
        self.saved_mask: int | None = None  # the mask before sigsuspend's or ppoll's: the handler's frame gets it
        self.kick_flag = bytearray(1)  # set by a kick until the thread notices: no blocking host call starts
        self.kick_addr = native.address_of(self.kick_flag)  # (native.blocking reads it)
        self.waiting = 0  # signals this thread waits for while blocking them (sigtimedwait, signalfd)
        self.stop = SYSCALL
        self.clear_child_tid = 0
        self.fault_seen = (0, -1)  # (RIP, slots' generation) of the last failed access run again
        self.robust_list = (0, 0)
        self.altstack = (0, 0, 0)  # (sp, flags as sigaltstack set them, size): none, size 0
        self.gs_own = False  # the program set this thread's GS base (else, with rewriting, km owns it)
        self.state = RUNNING  # kernel/runstate.py
        self.mid_call = False  # parked inside a call that waits in km (Process.wait_for)
        self.in_host_wait = False  # inside a host call that may wait (``blocking``)
        self.in_wait = False  # ... or in Process.wait_for: for kernel/readyfd.py, which looks from outside
        # this thread's host credentials, when it changed them (None: the ones km
        # started with); monitor threads act for it only with the same (kernel/poll.py)
        self.creds: tuple | None = None
        # the tid of the thread whose unshare(CLONE_FS) made the file-system context
        # (cwd, root, umask) this thread's host thread has, 0 for the process's own: a
        # part of its credentials for the polling tier (syscalls/ns.py)
        self.fs_own = 0
        self.on_syscall = None  # set by the dispatcher
        self.gdb_step = False  # gdb single-steps this thread (TF set: kernel/gdbstub.py)
        self.gdb_step_syscall = False  # ... over a system call: stop on the way back from it
        self.cpu_seen = 0  # its host thread's CPU time (ns) at the last ITIMER_PROF/VIRTUAL signal (Process.post)

    @property
    def kicked(self) -> bool:
        """Kicked, and not noticed yet (Process.kick; cleared where the thread looks at
        its signals)."""
        return self.kick_flag[0] != 0

    @kicked.setter
    def kicked(self, on: bool) -> None:
        self.kick_flag[0] = on

    def blocking(self, nr: int, *args: int) -> int:
        """Host call ``nr`` that may wait, as native.blocking (a kick before it starts
        keeps it from starting).  Meanwhile the thread counts as away from the program
        (``in_host_wait``): a pause for a code change (Process.pause_others) leaves it in
        its host wait instead of kicking it out, so that a FUTEX_WAKE, a write or a
        signal made during the pause still finds it waiting, as on Linux.  On its way
        out it waits for such a pause to end: its registers, and the rewriter's tables
        a call made again reads, are the pauser's until then.  (The flag, then the
        pauser's: Process.pause_others sets its own, then looks at this one.)  Only
        the task's own thread counts so: a monitor thread making a call for it (the
        polling tier's) leaves it running its code."""
        if _thread.get_ident() != self.ident:
            return native.blocking(self.kick_addr, nr, *args)
        self.in_host_wait = self.in_wait = True
        r = native.blocking(self.kick_addr, nr, *args)
        self.in_host_wait = self.in_wait = False
        self.process.host_signals.after_wait()
        if self.process.pausing_others:
            self.process.sit_out_pause(self)
        return r

    # -- registers outside the synced set (slow path) --------------------------------
    def fs_base(self) -> int:
        return cpu.sreg(self.vcpu.get_sregs(), "fs")

    def set_segment_base(self, seg: str, base: int) -> None:
        sregs = self.vcpu.get_sregs()
        cpu.set_segment_base(sregs, seg, base)
        self.vcpu.set_sregs(sregs)

    def segment_base(self, seg: str) -> int:
        return cpu.segment_field(self.vcpu.get_sregs(), seg, "base")

    def user_segment_base(self, seg: str) -> int:
        """FS or GS base as the program knows it: GS is 0 while km owns it (kernel/rewrite.py)."""
        if seg == "gs" and not self.gs_own and self.process.rewriter is not None:
            return 0
        return self.segment_base(seg)

    @property
    def rip(self) -> int:
        return self.q[k.RIP] & 0xFFFFFFFFFFFFFFFF

    # -- the interrupted user context ----------------------------------------------------
    def context(self) -> sigframe.Context:
        q = self.q
        regs = {name: q[i] & 0xFFFFFFFFFFFFFFFF for name, i in _Q.items()}
        if self.stop == SYSCALL:
            regs["rip"] = q[k.RCX] & 0xFFFFFFFFFFFFFFFF
            return sigframe.Context(regs, q[k.R11] & 0xFFFFFFFFFFFFFFFF)
        if self.stop == EXCEPTION:
            vector, error, rip, _cs, rflags, rsp, _ss = self.process.sys.exception_frame(q[k.RSP])
            regs["rip"], regs["rsp"] = rip, rsp
            return sigframe.Context(regs, rflags, trapno=vector, err=error)
        return sigframe.Context(regs, q[k.RFLAGS] & 0xFFFFFFFFFFFFFFFF)

    def resume(self, ctx: sigframe.Context, *, full: bool) -> None:
        """Continue user mode at ``ctx``; ``full``: every register exactly (rt_sigreturn),
        else what a handler's entry needs."""
        q = self.q
        regs = ctx.regs
        if self.stop == EXCEPTION:
            for name, i in _Q.items():
                if name not in ("rsp", "rip"):
                    q[i] = s64(regs[name])
            self.process.sys.write_exception_frame(q[k.RSP], regs["rip"], ctx.rflags, regs["rsp"])
        elif self.stop == SYSCALL and not self.process.platform.user_stub:
            self._resume_from_cpl0(ctx, full)
        else:
            for name, i in _Q.items():
                q[i] = s64(regs[name])
            q[k.RFLAGS] = s64(ctx.rflags)
        self.vcpu.mark_regs_dirty()

    def _resume_from_cpl0(self, ctx: sigframe.Context, full: bool) -> None:
        """Hardware KVM, stopped in the stub at CPL0: sysretq can restore RIP and RFLAGS
        (through RCX and R11); every register exactly needs an iretq (guest.S iret_path)."""
        q = self.q
        regs = ctx.regs
        for name, i in _Q.items():
            q[i] = s64(regs[name])
        if full:
            top = L.vcpu_page(self.vcpu.id) + L.VCPU_PAGE - 5 * 8
            self.process.sys.write_iret_frame(top, regs["rip"], ctx.rflags, regs["rsp"])
            q[k.RSP] = top
            q[k.RIP] = L.STUB + guest_code.IRET_PATH
        else:
            q[k.RCX] = s64(regs["rip"])
            q[k.R11] = s64(ctx.rflags)
            q[k.RIP] = L.STUB + guest_code.SYSCALL_RETURN

    def user_context(self) -> sigframe.Context:
        """The user registers of this thread, paused anywhere (``user_view``)."""
        saved, self.stop = self.stop, user_view(self)
        try:
            return self.context()
        finally:
            self.stop = saved

    # -- save / restore (a PAUSED thread: kernel/runstate.py) ------------------------------
    def save(self) -> dict:
        """The thread as plain data: its vCPU, where it stopped, its signal state, the
        addresses the kernel keeps for it, and its credentials as last seen."""
        return {"tid": self.tid, "vcpu": self.vcpu.save(), "stop": self.stop, "sigmask": self.sigmask,
                "saved_mask": self.saved_mask, "pending": self.pending.save(), "altstack": self.altstack,
                "robust_list": self.robust_list, "clear_child_tid": self.clear_child_tid, "creds": self.creds,
                "gs_own": self.gs_own}

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back (the process's timers first: Process.restore)."""
        if state["tid"] != self.tid:
            raise ValueError(f"thread {state['tid']}'s state given to thread {self.tid}")
        self.vcpu.restore(state["vcpu"])
        self.stop, self.sigmask, self.saved_mask = state["stop"], state["sigmask"], state["saved_mask"]
        self.pending.restore(state["pending"], self.process.timers)
        self.altstack, self.robust_list = state["altstack"], state["robust_list"]
        self.clear_child_tid, self.creds = state["clear_child_tid"], state["creds"]
        self.gs_own = state.get("gs_own", False)

    # -- signals -------------------------------------------------------------------------
    def has_signals(self) -> int:
        return (self.pending.mask | self.shared.mask) & ~self.sigmask

    def signal_self(self, sig: int, info: bytes | None = None) -> int:
        """A signal aimed at this thread (tkill, a fault, SIGPIPE); 0 or -EAGAIN."""
        return self.process.post(sig, info or siginfo(sig, S.SI_TKILL, pid=os.getpid(), uid=os.getuid()), task=self)

    def next_signal(self) -> tuple[int, bytes | None]:
        """Take the next signal to deliver to a handler; default actions that end or stop
        the program, and ignored signals, are dealt with on the way."""
        actions = self.process.actions
        with self.process.lock:
            while True:
                ready = (self.pending.mask | self.shared.mask) & ~self.sigmask
                if not ready:
                    return 0, None
                sig = pick(ready)
                src = self.pending if self.pending.mask & sigbit(sig) else self.shared
                info = src.take(sig)
                gdb = self.process.gdb
                if gdb is not None and gdb.wants(sig):  # the debugger sees it first (kernel/gdbstub.py)
                    self.process.lock.release()
                    try:
                        sig = gdb.report(self, sig, user_view(self))
                    finally:
                        self.process.lock.acquire()
                    if not sig:
                        continue
                    if info is None or int.from_bytes(info[:4], "little") != sig:
                        info = siginfo(sig, S.SI_USER, pid=os.getpid(), uid=os.getuid())
                handler = actions.handler(sig)
                if handler == S.SIG_IGN:
                    continue
                if handler != S.SIG_DFL:
                    return sig, info
                action = S.default_action(sig)
                if action in (S.IGNORE, S.CONT) or namespace_init():
                    continue
                if action == S.STOP:
                    stop_by_signal(sig)  # km stops; SIGCONT resumes it
                    continue
                break  # its default action ends the program: outside the lock (die may stop the others)
        self.die(sig, f"{self.process.name}: killed by {S.name(sig)}", info)

    def deliver_pending(self) -> None:
        sig, info = self.next_signal()
        if sig:
            self.deliver(sig, info, self.context())

    def check_zapped(self) -> None:
        """Another thread is exec'ing: this one ends, silently (Linux's de_thread)."""
        p = self.process
        if p.zap and p.zapper is not self:
            with p.lock:
                p.tasks.pop(self.tid, None)
                p.retire_vcpu(self)
            self.vcpu.set_immediate_exit(False)
            raise ThreadExit()

    def checkpoint(self) -> None:
        """A safe point (kernel/runstate.py): end here if another thread is exec'ing,
        wait here while the program is paused."""
        p = self.process
        if p.zap:
            self.check_zapped()
        if p.pause_requests:
            with p.lock:
                self.state = PAUSED
                p.changed.notify_all()
                while p.pause_requests and not p.zap:
                    p.changed.wait()
                self.state = RUNNING
            self.check_zapped()

    def after_syscall(self, nr: int, res: int, flags: int = 0) -> None:
        """On the way back to user mode: a host call a kick interrupted is restarted or
        fails with EINTR (as SA_RESTART and the call say), then a signal is delivered."""
        if self.process.zap:
            self.check_zapped()
        if self.stop == DIRECT:  # rt_sigreturn set every register already
            self.stop = SYSCALL
            if self.process.platform.user_stub and self.has_signals():
                self.stop = DIRECT
                try:
                    self.deliver_pending()
                finally:
                    self.stop = SYSCALL
            if self.gdb_step_syscall:
                self.process.gdb.syscall_step_done(self)
            if self.process.pause_requests:
                self.checkpoint()
            return
        # Only SIG_KICK reaches a vCPU thread (forwarded signals are blocked there), so an
        # EINTR from a host call is a kick; ERESTARTNOINTR is a call that would wait and
        # that a kick kept from starting (native.blocking): the same to the program, as on
        # Linux a signal pending when a call would sleep interrupts it.  A kick that finds
        # nothing to deliver (a stale one): the call restarts.
        interrupted = res == -EINTR or res == -ERESTARTNOINTR
        if res == -ERESTARTNOINTR:
            self.q[k.RAX] = -EINTR
        self.kicked = False
        self.vcpu.set_immediate_exit(False)
        if res == -EPIPE and flags & SIGPIPE:  # (the dispatcher left the flag out for MSG_NOSIGNAL)
            self.signal_self(S.SIGPIPE, siginfo(S.SIGPIPE, S.SI_USER, pid=os.getpid(), uid=os.getuid()))
        elif res == -EFBIG:
            self.take_xfsz()
        sig, info = self.next_signal() if self.has_signals() else (0, None)
        if interrupted:
            if not sig:
                self._restart(nr)
            elif self.process.actions.get(sig)[1] & S.SA_RESTART and not flags & NORESTART:
                self._restart(nr)
        if sig:
            self.deliver(sig, info, self.context())
        elif self.saved_mask is not None:  # sigsuspend's or ppoll's mask, and no handler to run
            self.sigmask, self.saved_mask = self.saved_mask, None
        if self.gdb_step_syscall:
            self.process.gdb.syscall_step_done(self)
        if self.process.pause_requests:
            self.checkpoint()  # (registers final: the call's result, a restart, or a handler)

    def take_xfsz(self) -> None:
        """A call failed with EFBIG: if it went past RLIMIT_FSIZE, the host sent SIGXFSZ
        to the calling host thread (send_sig to current), where it waits, blocked (a
        blocked signal is queued even while ignored).  Take it and give it to this
        thread, with the host's siginfo.  (Called in the thread that made the host
        call: this task's, or the poller's for a polled write.)"""
        info = bytearray(SIGINFO_SIZE)
        if native.syscall(NR["rt_sigtimedwait"], native.address_of(_XFSZ_SET), native.address_of(info),
                          native.address_of(_NO_WAIT), 8) == S.SIGXFSZ:
            self.signal_self(S.SIGXFSZ, bytes(info))

    def _restart(self, nr: int) -> None:
        """Make the `syscall` instruction run again (it is 2 bytes before the return address;
        a rewritten short site's call enters its trampoline again: kernel/rewrite.py)."""
        rw = self.process.rewriter
        again = self.q[k.RCX] - 2
        self.q[k.RCX] = again if rw is None else rw.again(again)
        self.q[k.RAX] = nr
        self.vcpu.mark_regs_dirty()

    def on_altstack(self, sp: int) -> bool:
        """Linux's on_sig_stack: is ``sp`` on the alternate signal stack?  Never with
        SS_AUTODISARM (a stack pointer corrupted near its end must not stop delivery)."""
        ss_sp, ss_flags, ss_size = self.altstack
        return not ss_flags & S.SS_AUTODISARM and _within(sp, ss_sp, ss_size)

    def altstack_flags(self, sp: int) -> int:
        """sigaltstack's old ss_flags (Linux's sas_ss_flags, and the flag bits as set)."""
        _ss_sp, ss_flags, ss_size = self.altstack
        mode = S.SS_DISABLE if not ss_size else S.SS_ONSTACK if self.on_altstack(sp) else 0
        return mode | ss_flags & S.SS_AUTODISARM

    def set_altstack(self, ss_sp: int, ss_flags: int, ss_size: int, sp: int) -> int:
        """sigaltstack's new stack, also rt_sigreturn's (Linux's do_sigaltstack): 0 or -errno.
        The flags are kept as given: a signal frame saves them so."""
        if self.on_altstack(sp):
            return -EPERM
        ss_flags &= 0xFFFFFFFF
        mode = ss_flags & ~S.SS_AUTODISARM
        if mode not in (0, S.SS_ONSTACK, S.SS_DISABLE):
            return -EINVAL
        if mode == S.SS_DISABLE:
            ss_sp = ss_size = 0
        elif ss_size < S.MINSIGSTKSZ:
            return -ENOMEM
        self.altstack = (ss_sp, ss_flags, ss_size)
        return 0

    def deliver(self, sig: int, info: bytes, ctx: sigframe.Context) -> None:
        """Set up Linux's signal frame and enter the handler (handle_signal, get_sigframe)."""
        p = self.process
        handler, flags, restorer, sa_mask = p.actions.get(sig)
        sp = ctx.regs["rsp"] & 0xFFFFFFFFFFFFFFFF
        alt_sp, alt_flags, alt_size = self.altstack
        nested = self.on_altstack(sp)
        sp_top = sp - sigframe.RED_ZONE
        entering = bool(flags & S.SA_ONSTACK and alt_size and not self.on_altstack(sp_top))
        if entering:
            sp_top = alt_sp + alt_size
        if not flags & S.SA_RESTORER:
            return self._bad_frame(sig, ctx)
        frame, _fp = sigframe.frame_location(sp_top, p.xstate_size)
        if (nested or entering) and not _within(frame, alt_sp, alt_size):
            return self._bad_frame(sig, ctx)  # it would overflow the alternate stack
        old_mask = self.saved_mask if self.saved_mask is not None else self.sigmask
        rw = p.rewriter
        if rw is not None:  # (never into a trampoline, never under a short site's jump: kernel/rewrite.py)
            rip = ctx.regs["rip"] & 0xFFFFFFFFFFFFFFFF
            again = rw.framed(rip)
            if again != rip:
                ctx.regs["rip"] = again
        frame, blob = sigframe.build(ctx, sig_mask=old_mask, info=info, restorer=restorer, sp_top=sp_top,
                                     xsave=self.vcpu.get_xsave(), xsize=p.xstate_size, xfeatures=p.xcr0,
                                     altstack=self.altstack)
        try:
            self.mem.write(frame, blob)
        except GuestError:
            return self._bad_frame(sig, ctx)
        self.saved_mask = None
        if alt_flags & S.SS_AUTODISARM:
            self.altstack = (0, S.SS_DISABLE, 0)
        self.sigmask = (self.sigmask | sa_mask | (0 if flags & S.SA_NODEFER else sigbit(sig))) & ~S.UNBLOCKABLE
        if flags & S.SA_RESETHAND:  # only the handler goes back to SIG_DFL (Linux's get_signal)
            p.actions.set(sig, (S.SIG_DFL, flags, restorer, sa_mask))
        regs = dict(ctx.regs, rdi=sig, rsi=frame + sigframe.INFO_OFFSET, rdx=frame + sigframe.UC_OFFSET, rax=0,
                    rsp=frame, rip=handler)
        self.resume(sigframe.Context(regs, sigframe.entry_rflags(ctx.rflags)), full=False)
        self.vcpu.set_xsave(p.init_xsave)  # the handler starts with a clean FPU, as on Linux

    def _bad_frame(self, sig: int, ctx: sigframe.Context) -> None:
        """The frame cannot be written (or there is no restorer): Linux's force_sigsegv, a
        SIGSEGV the program's handler may take (on its own stack: LTP's signal06 makes
        the alternate stack of another signal read-only), uncatchable only when SIGSEGV
        itself could not be delivered."""
        if sig == S.SIGSEGV:
            self._fatal_frame()
        self.fault(S.SIGSEGV, S.SI_KERNEL, None, ctx)

    def _fatal_frame(self) -> None:
        self.die(S.SIGSEGV, f"{self.process.name}: killed by SIGSEGV (cannot deliver a signal)")

    def sigreturn(self) -> int:
        """rt_sigreturn: everything back as the frame says; returns the restored RAX."""
        p = self.process
        sp = self.q[k.RSP] & 0xFFFFFFFFFFFFFFFF
        try:
            r = sigframe.parse(self.mem.read(sp - 8 + sigframe.UC_OFFSET, sigframe.UC_SIZE),
                               self.q[k.R11] & 0xFFFFFFFFFFFFFFFF)
            area = p.init_xsave
            if r.fpstate:
                area = sigframe.xsave_from_frame(self.mem.read, r.fpstate, p.xstate_size, p.xcr0, p.init_xsave)
            if area is None or self.vcpu.set_xsave(bytearray(area)) < 0:
                self._fatal_frame()
        except GuestError:
            self._fatal_frame()
        self.sigmask = r.mask & ~S.UNBLOCKABLE
        self.set_altstack(*r.altstack, sp)  # (its errors are ignored, as Linux's restore_altstack does)
        rw = p.rewriter
        if rw is not None:
            # (a frame that returns to a `syscall` a short site's jump still covers: the
            # site's trampoline entry does what that `syscall` does, kernel/rewrite.py)
            r.ctx.regs["rip"] = rw.again(r.ctx.regs["rip"] & 0xFFFFFFFFFFFFFFFF)
        self.resume(r.ctx, full=True)
        self.stop = DIRECT  # registers are final: nothing may treat this as a syscall result
        return s64(r.ctx.regs["rax"])

    # -- exits other than syscalls (the vCPU loop's ExitHandler) ----------------------
    def on_exception(self, frame_rsp: int) -> None:
        vector, error, rip, _cs, _rflags, _rsp, _ss = self.process.sys.exception_frame(frame_rsp)
        if vector in (1, 3) and self.process.gdb is not None and self.process.gdb.trap(self, vector):
            return  # gdb's breakpoint or single step
        cr2 = cpu.sreg(self.vcpu.get_sregs(), "cr2") if vector == faults.PAGE_FAULT else None
        sig, code, addr = faults.from_vector(vector, error, rip, cr2)
        if vector == 19:
            code = faults.simd_code(self._mxcsr())
        self.stop = EXCEPTION
        try:
            ctx = self.context()
            if cr2 is not None:
                ctx.cr2 = cr2
            self.fault(sig, code, addr, ctx)
        finally:
            self.stop = SYSCALL

    def _mxcsr(self) -> int:
        return k.fpu.unpack(self.vcpu.get_fpu())[k.fpu.names.index("mxcsr")]

    def on_mmio(self, gpa: int, is_write: bool) -> None:
        """An access to guest memory without a memslot: a hole, or a write to read-only."""
        gdb = self.process.gdb
        if gdb is not None and gdb.watched and gdb.watch_access(self, gpa, is_write):
            return  # a page gdb watches (kernel/gdbstub.py)
        vma = self.mm.find(gpa) if 0 <= gpa < self.mem.size else None
        if vma is None and 0 <= gpa < self.mem.size and \
                self.mm.grow_down(gpa, F.PROT_WRITE if is_write else F.PROT_READ):
            self._complete_mmio(gpa, is_write)
            return
        if vma is not None and self._slot_was_remade(gpa, is_write):
            self._complete_mmio(gpa, is_write)
            return
        self.stop = DIRECT
        ctx = self.context()
        ctx.trapno, ctx.err, ctx.cr2 = faults.PAGE_FAULT, (6 if is_write else 4) | (1 if vma else 0), gpa
        _gpa, length, _w = self.vcpu.mmio_exit()
        # KVM completes the access on the next entry; do that now, before the registers change
        self.vcpu.set_immediate_exit(True)
        self.vcpu.run()
        self.vcpu.set_immediate_exit(False)
        if is_write:  # (KVM's emulator moved RIP past the store already: kernel/faultpc.py)
            self._store_start(ctx, gpa, length)
        try:
            self.fault(S.SIGSEGV, S.SEGV_ACCERR if vma is not None else S.SEGV_MAPERR, gpa, ctx)
        finally:
            self.stop = SYSCALL

    def _store_start(self, ctx: sigframe.Context, gpa: int, length: int) -> None:
        """The faulting store's own address as the frame's RIP, as Linux reports it (a
        handler that makes the page writable returns there to store again), when km can
        tell where it began; else RIP stays past it."""
        from kontain.kernel import faultpc

        sregs = self.vcpu.get_sregs()
        start = faultpc.store_start(self.process, ctx.regs["rip"], gpa, length, ctx.regs,
                                    cpu.segment_field(sregs, "fs", "base"), cpu.segment_field(sregs, "gs", "base"))
        if start is not None:
            ctx.regs["rip"] = start

    def _complete_mmio(self, gpa: int, is_write: bool) -> None:
        """The access is KVM's to complete on the next entry: make it now, against memory."""
        _gpa, length, _w = self.vcpu.mmio_exit()
        data = self.vcpu.mmio_data(length)
        if is_write:
            self.mem.write(gpa, bytes(data))
        else:
            data[:] = self.mem.read(gpa, len(data))

    def _slot_was_remade(self, gpa: int, is_write: bool) -> bool:
        """Did the access only fall in the moment another thread re-made the memslots
        around ``gpa``?  An mprotect (or a mapping) of part of a memslot deletes all of it
        and adds back what stays (memory/slots.py), so a neighbouring page the change does
        not touch has no slot for that moment (LTP's signal06: a thread flipping the
        alternate stack read-only killed the program at a write next to it).  Once the
        change is over (the address space's lock), the page's mapping and slot allow the
        access: it was no fault of the program's."""
        with self.mm.lock:
            vma = self.mm.find(gpa)
            need = F.PROT_WRITE if is_write else F.PROT_READ | F.PROT_EXEC
            if vma is None or not vma.prot & need:
                return False
            self.process.slots.ensure(gpa)  # (a forked child's first touch of a parent's slot)
            slot = self.process.slots.lookup(gpa)
            return slot is not None and not (is_write and slot[2] & slots.READ_ONLY)

    def _once_more(self) -> bool:
        """Should an access that failed run again (call with the address space's lock)?
        Another thread may have changed the slots since it failed: given the access (an
        mprotect, so nothing was left loose to make exact), or re-made the slot of the
        code it runs (a fetch with no slot for that moment, as ``_slot_was_remade``
        for data).  So it runs once more, unless it failed at this RIP before with no
        change of the slots since."""
        seen = (self.q[k.RIP], self.process.slots.generation)
        if seen == self.fault_seen:
            return False
        self.fault_seen = seen
        return True

    def on_emulation_failure(self, suberror: int, data: list[int]) -> None:
        """KVM could not emulate an instruction: a fetch from an unmapped page, or an
        access to one by an instruction KVM's emulator does not know."""
        with self.mm.lock:
            slots, rip = self.process.slots, self.q[k.RIP]
            # a forked child's first fetch from a slot of its parent's (``rebind``); or, the
            # code's slot there, an access KVM cannot emulate to one not registered yet
            if slots.ensure(rip) or slots.lookup(rip) is not None and (slots.ensure_all() or self._once_more()):
                return
        self.stop = DIRECT
        try:
            ctx = self.context()
            rip = ctx.regs["rip"]
            addr = rip if self.process.slots.lookup(rip) is None else None
            ctx.trapno, ctx.err, ctx.cr2 = faults.PAGE_FAULT, 0x14, rip if addr is not None else 0
            self.fault(S.SIGSEGV, S.SEGV_MAPERR, addr, ctx)
        finally:
            self.stop = SYSCALL

    def on_host_fault(self) -> None:
        """KVM_RUN failed with EFAULT: the host could not provide a guest page.  Maybe in
        an unmapped range whose memslot was kept for reuse (memory/slots.py, ``park``),
        or one whose slot allows more than its mapping (``_loose``): KVM does not say
        where, so every slot is made exact and the access runs again, to fail as in any
        hole or read-only slot.  Else a file mapping past the end of its file: SIGBUS;
        an anonymous mapping has no end, so there it is a guard page (madvise
        MADV_GUARD_INSTALL, passed to the host): SIGSEGV, as Linux (LTP's madvise12)."""
        with self.mm.lock:
            if self.process.slots.exact() or self._once_more():
                return
        self.stop = DIRECT
        try:
            ctx = self.context()
            addr = self._bus_address(ctx)
            vma = self.mm.find(addr) if addr is not None else None
            if vma is not None and vma.anonymous:
                ctx.trapno, ctx.err, ctx.cr2 = faults.PAGE_FAULT, 4, addr  # (a read or a write: KVM does not say)
                self.fault(S.SIGSEGV, S.SEGV_MAPERR, addr, ctx)
            else:
                self.fault(S.SIGBUS, S.BUS_ADRERR, addr, ctx)
        finally:
            self.stop = SYSCALL

    def _bus_address(self, ctx: sigframe.Context) -> int | None:
        """Where the instruction at RIP touched memory the host cannot give (KVM does not
        say): the first of its memory operands that km cannot read either."""
        from kontain.arch.x86_64 import decode

        rip = ctx.regs["rip"]
        code = b""
        try:
            code = self.mem.read(rip, min(15, L.PAGE - rip % L.PAGE))
            code += self.mem.read(rip + len(code), 15 - len(code))  # (across a page boundary)
        except GuestError:
            if not code:
                return None
        sregs = self.vcpu.get_sregs()
        addrs = decode.memory_operands(code, rip, ctx.regs, cpu.segment_field(sregs, "fs", "base"),
                                       cpu.segment_field(sregs, "gs", "base"))
        for addr in addrs:
            if 0 <= addr < self.mem.size and isinstance(native.read_mem(self.mem.base + addr, 1), int):
                return addr  # (read_mem's errno: the host could not read it either)
        return addrs[0] if addrs else None

    def on_interrupt(self) -> None:
        """Out of KVM_RUN because of a kick: signals to deliver, or the process ends."""
        self.vcpu.set_immediate_exit(False)
        if self.process.zap:
            self.check_zapped()
        if self.q[k.RIP] == L.STUB + guest_code.SYSCALL_ENTRY:
            # between `syscall` and the exit to the monitor: on Linux the call would run
            # with the signal pending (interrupted if it blocks), so let it reach the
            # monitor; the kick stays noticed-not (``kicked``): a blocking call does not
            # start, and the signal is delivered on the way out
            return
        poller = self.process.poller
        if poller is not None:
            poller.settle(self)  # inside the poll stub: to before the call or after it (kernel/poll.py)
        rw = self.process.rewriter
        if rw is not None and rw.pages:
            rw.settle(self)  # inside a trampoline: back to its site (kernel/rewrite.py)
        self.kicked = False
        self.checkpoint()
        if self.has_signals():
            self.stop = DIRECT
            try:
                self.deliver_pending()
            finally:
                self.stop = SYSCALL

    def on_bad_io(self, direction: int, size: int, port: int) -> None:
        self.stop = DIRECT
        try:
            self.fault(S.SIGSEGV, S.SI_KERNEL, 0, self.context())
        finally:
            self.stop = SYSCALL

    def on_shutdown(self) -> None:
        self.die(S.SIGSEGV, self.process.describe_death(S.SIGSEGV, S.SI_KERNEL, None))

    def fault(self, sig: int, code: int, addr: int | None, ctx: sigframe.Context) -> None:
        """A synchronous signal from the CPU (Linux's force_sig_fault): delivered to a
        handler if there is one and it is not blocked; otherwise the default action,
        even for an ignored or blocked signal."""
        gdb = self.process.gdb
        if gdb is not None and gdb.wants(sig):  # the debugger sees it first; it may suppress it
            new = gdb.report(self, sig, self.stop, ctx, dirty=True)
            if not new:
                return  # (the instruction runs again, as on Linux)
            if new != sig:
                self.signal_self(new)
                return
        handler = self.process.actions.handler(sig)
        if handler in (S.SIG_DFL, S.SIG_IGN) or self.sigmask & sigbit(sig):
            self.die(sig, self.process.describe_death(sig, code, addr), siginfo(sig, code, addr=addr or 0), ctx)
        self.deliver(sig, siginfo(sig, code, addr=addr or 0), ctx)

    def die(self, sig: int, message: str, info: bytes | None = None, ctx: sigframe.Context | None = None) -> None:
        """The program ends by ``sig``'s default action, taken in this thread.  For a
        signal whose default is to dump core, the program's core file is written first
        (kernel/coredump.py): with ``km --core`` as core.PID, else where Linux would
        write it (core_pattern) when the program's RLIMIT_CORE allows one."""
        if S.default_action(sig) == S.CORE:
            from kontain.kernel import coredump

            p = self.process
            path, limit = (f"core.{os.getpid()}", None) if p.spec.core else coredump.native_path(p, sig)
            if path is not None:
                ctx = ctx or self.context()
                others = [(t, t.user_context()) for t in p.stop_others(self)]  # every thread, stopped
                try:
                    coredump.write(p, self, sig, info or siginfo(sig, S.SI_KERNEL), ctx, path, limit=limit,
                                   others=others)
                    message += f" (core dumped to {path})"
                    if p.parent_link:
                        from kontain.kernel import fork

                        fork.dumped_core(p)
                except (OSError, GuestError) as e:
                    message += f" (no core file: {e})"
        raise ProcessExit(signal=sig, message=message)

    def credentials_changed(self) -> None:
        """This thread (the calling one) changed its host credentials (syscalls/identity.py)."""
        p = self.process
        self.creds = p.procfs.thread_credentials(self.tid)
        if self.fs_own:  # (a poller thread started from this one shares its context too)
            self.creds += (b"fs %d" % self.fs_own,)
        if p.poller is not None:
            p.poller.creds_changed(self)

    # -- thread exit ---------------------------------------------------------------------
    def exit_thread(self) -> None:
        """What Linux does when a thread ends: robust futexes released, the
        clear-child-tid word zeroed and its waiter woken."""
        self._release_robust_list()
        if self.clear_child_tid:
            try:
                self.mem.write(self.clear_child_tid, b"\0\0\0\0")
                native.syscall(SYS_futex, self.mem.host(self.clear_child_tid, 4), FUTEX_WAKE, 1, 0, 0, 0)
            except GuestError:
                pass

    def _release_robust_list(self) -> None:
        head, _size = self.robust_list
        if not head:
            return
        try:
            first, offset, pending = struct.unpack("<QqQ", self.mem.read(head, 24))
            entry = first & ~1
            for _ in range(ROBUST_LIST_LIMIT):
                if entry == head or entry == 0:
                    break
                self._owner_died(entry + offset)
                entry = self.mem.read_u64(entry) & ~1
            if pending & ~1:
                self._owner_died((pending & ~1) + offset)
        except GuestError:
            pass

    def _owner_died(self, uaddr: int) -> None:
        val = struct.unpack("<I", self.mem.read(uaddr, 4))[0]
        if val & FUTEX_TID_MASK != self.tid:
            return
        self.mem.write(uaddr, struct.pack("<I", (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED))
        if val & FUTEX_WAITERS:
            native.syscall(SYS_futex, self.mem.host(uaddr, 4), FUTEX_WAKE, 1, 0, 0, 0)


def user_view(task: Task) -> int:
    """Where a stopped thread's user registers are, judged by where its vCPU stopped: at
    an exception vector's exit (the iret frame: EXCEPTION), at a syscall stub's exit (RIP
    and RFLAGS in RCX and R11: SYSCALL), or at a user instruction (DIRECT).  A thread
    kicked while KVM ran km's own code (an exception being delivered) is IN_KM: its
    registers are read as they are, and nothing may be written.  For a debugger or a core
    file looking at a thread paused anywhere (kernel/runstate.py)."""
    rip = task.q[k.RIP] & 0xFFFFFFFFFFFFFFFF
    if rip < L.SYS_BASE:
        return DIRECT
    if rip == _EXCEPTION_EXIT:
        return EXCEPTION
    if rip == _SYSCALL_EXIT:
        return SYSCALL
    if L.POLL_STUBS <= rip < L.POLL_STUBS + L.POLL_VCPUS * L.POLL_COPY and \
            (rip - L.POLL_STUBS) % L.POLL_COPY in _POLL_EXITS:
        return SYSCALL
    return IN_KM


_EXCEPTION_EXIT = L.HANDLERS + guest_code.EXC_COMMON + 2  # after exc_common's `out`
_SYSCALL_EXIT = L.STUB + guest_code.SYSCALL_RETURN  # after syscall_entry's `out`
_POLL_EXITS = (guest_code.POLL_EXIT + 2, guest_code.POLL_DONE_RETURN)  # after the poll stub's two `out`s


def s64(v: int) -> int:
    """A 64-bit value as a vCPU register holds it in the synced register view (signed)."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >> 63 else v


def _within(sp: int, ss_sp: int, ss_size: int) -> bool:
    """Linux's __on_sig_stack: ``sp`` in (ss_sp, ss_sp + ss_size], unsigned."""
    return sp > ss_sp and sp - ss_sp <= ss_size
