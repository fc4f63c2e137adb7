"""A guest process: one VM, its address space, descriptors, dispositions and threads.

``Process.start`` is the monitor's start-up sequence (docs/ARCHITECTURE.md numbers it):

1. take over the host's signals (one monitor thread forwards them to the program); set
   aside descriptors for the monitor
2. open /dev/kvm and create the VM (without zapping all shadow pages on slot changes)
3. reserve the guest window; build the system region (page tables, GDT, IDT, stub)
4. create vCPU 0 in 64-bit user mode (CPUID, XCR0, segments, MSRs)
5. probe how `syscall` behaves here (PVM or hardware KVM) and patch the stub
6. load the program (and its interpreter) and build the initial stack
7. set the entry registers and run
"""

from __future__ import annotations

import _thread
import os
import struct
import time

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EAGAIN
from kontain.arch.x86_64 import cpu, guest_code, platform, sigframe
from kontain.arch.x86_64 import layout as L
from kontain.confine import Confinement
from kontain.errors import ForkedChild, GuestError, ProcessExit, messages_fd, messages_to, say
from kontain.kernel import signals
from kontain.kernel.fdtable import FdTable
from kontain.kernel.task import Task, ThreadExit
from kontain.kvm import abi as k
from kontain.kvm.api import Kvm, KvmError
from kontain.loader import load
from kontain.memory import vdso
from kontain.memory.mm import AddressSpace
from kontain.memory.slots import SlotMap
from kontain.memory.window import GuestMemory
from kontain.syscalls import dispatch
from kontain.syscalls.timer import Timers
from kontain.vcpu import VcpuRunner


class Config:
    """What the user chose on km's command line."""

    def __init__(self, *, window: int = L.DEFAULT_WINDOW, memory: int | None = None, strace: bool = False,
                 core: bool = False, timings: bool = False, kvm_device: str = "/dev/kvm", vdso: bool = True,
                 poll: str = "auto"):
        self.window = window  # guest address space
        self.memory = memory  # cap on accessible guest memory (--memory)
        self.strace = strace
        self.core = core  # leave a core file when the program dies of a core-dumping signal
        self.timings = timings
        self.kvm_device = kvm_device
        self.vdso = vdso  # share the host's vDSO (clock_gettime without an exit)
        self.poll = poll  # the polling tier (kernel/poll.py), where the platform has it: auto, always, off


class Process:
    """The guest process this km runs."""

    def __init__(self, config: Config, path: str, argv: list[bytes], envp: list[bytes]):
        self.config = config
        self.path = path
        self.name = path
        self.argv = argv
        self.envp = envp
        self.timings: list[tuple[str, float]] = []
        self.personality = F.PER_LINUX
        self.actions = signals.SignalActions()
        self.rlimits: dict[int, tuple[int, int]] = {r: _host_rlimit(r) for r in (F.RLIMIT_AS, F.RLIMIT_DATA)}
        self.tasks: dict[int, Task] = {}
        self.lock = _thread.allocate_lock()  # guards tasks, pending sets and the vCPU pool
        self.shared_pending = signals.Pending()
        self.poller = None  # kernel/poll.py, once the platform is known
        self.idle_vcpus: list = []  # vCPUs of exited threads, for the next ones (KVM never frees a vCPU)
        self.unacked: set[Task] = set()  # kicked tasks that have not noticed yet
        self.timers = Timers()  # POSIX timers (timer_create)
        self._signalfds = None  # kernel/signalfd.py, at the first signalfd
        self._procfs = None  # kernel/procfs.py, at the first look at /proc
        self._opener = None  # kernel/paths.py, at the first open
        self.procfd = -1  # the monitor's own descriptor of /proc (kernel/paths.py)
        self.stack_info = (0, 0, 0, 0, 0)  # start_stack, arg_start, arg_end, env_start, env_end
        self.confinement = Confinement()
        self.zap = False  # exec: every other thread must end
        self.forked = False  # a child of a fork of this km
        self.vfork_fd = -1  # a vfork child: its parent waits until this closes
        self.sys_gpa, self.sys_size = L.SYS_BASE, L.SYS_SIZE
        self.next_vcpu_id = 1
        self.report = None  # see finish

    def _mark(self, what: str) -> None:
        if self.config.timings:
            self.timings.append((what, time.perf_counter()))

    def start(self, exe_fd: int | None = None, head: bytes | None = None, size: int = 0) -> Task:
        """Build the VM and load the program; returns the main thread, ready to run."""
        self.prepare()
        return self.launch(exe_fd, head, size)

    def prepare(self) -> None:
        """The part of the start that does not depend on the program: the VM, its memory,
        vCPU 0, the platform probe.  (A km server's workers do it before they have a
        client, cli/server.py.)"""
        self._mark("start")
        # /dev/kvm goes to the top of the descriptor table (fds.floor) before the signal
        # thread exists: growing the table of a multi-threaded process waits for an RCU
        # grace period (~8 ms here), of a single-threaded one it does not
        self.fds = FdTable()
        self.kvm = Kvm(self.config.kvm_device, fd_floor=self.fds.floor)
        self.procfd = _open_procfs(self.fds.floor)
        self.keep_messages()
        self.confinement.start()  # before km has a second thread (kontain/confine.py)
        # the signal mask and ignored signals the program starts with, before km changes them
        # (a server's worker replaces them with its client's)
        self.inherited = signals.inherited_state()
        self.host_signals = signals.HostSignals(self.post, self._rekick)
        self.host_signals.install()
        self._create_vm()
        self._mark("vm")
        self.mem = GuestMemory(self.config.window)
        self.sys = cpu.SystemRegion(self.vm, self.config.window)
        nslots = self.kvm.check_extension(k.KVM_CAP_NR_MEMSLOTS) or 509
        self.slots = SlotMap(self.vm.set_memory_region, self.mem.base, first=1, limit=nslots)
        self.mm = AddressSpace(self.mem, self.slots, mmap_top=0, mmap_min=L.MMAP_MIN, limit=self.config.memory)
        self._mark("memory")
        self.cpuid = self.kvm.supported_cpuid()
        self.xcr0 = cpu.xcr0_from_cpuid(self.cpuid)
        vcpu = self.vm.create_vcpu(0)
        self.sys.init_vcpu_page(0)
        self.user_sregs = cpu.init_vcpu(vcpu, self.cpuid, self.xcr0, 0)
        self._mark("vcpu")
        self.platform = platform.probe(vcpu)
        if not self.platform.user_stub:
            vcpu.set_sregs(self.user_sregs)
            vcpu.set_msrs([(k.MSR_SYSCALL_MASK, self.platform.fmask)])
        self.sys.patch_stub(guest_code.SYSCALL_RETURN, self.platform.stub_return)
        if self.platform.user_stub and self.config.poll != "off" and not self.config.strace:
            from kontain.kernel.poll import Poller

            self.poller = Poller(self)
            self.sys.install_poll_stubs(self.poller.map)
            vcpu.set_msrs([(k.MSR_LSTAR, self.lstar(0))])
        self.xstate_size = sigframe.xstate_size(self.cpuid, self.xcr0)
        self.init_xsave = _init_xsave(self.kvm.xsave_size)
        self.vcpu0 = vcpu
        self._mark("probe")

    def keep_messages(self) -> None:
        """km's messages go to its stderr as it is now, through a descriptor of the
        monitor's own: the program may close or redirect its descriptor 2."""
        fd = native.dup_at_least(2, self.fds.floor)
        if fd >= 0:
            old = messages_fd()
            messages_to(fd)
            if old != 2:
                os.close(old)

    def take(self, path: str, argv: list[bytes], envp: list[bytes], *, memory: int | None, core: bool,
             timings: bool, vdso: bool) -> None:
        """A prepared process (a km server's worker) takes on a client's program and the
        options a prepared VM can serve (cli/main.fits_prepared)."""
        self.keep_messages()  # (the client's stderr now)
        self.path, self.argv, self.envp = path, argv, envp
        self.config.core, self.config.timings, self.config.vdso = core, timings, vdso
        self.config.memory = self.mm.limit = memory
        self.timings = []
        self._mark("start")  # (the VM was built before the client came)

    def launch(self, exe_fd: int | None = None, head: bytes | None = None, size: int = 0) -> Task:
        """Load the program into the prepared VM; returns the main thread, ready to run."""
        entry, sp = self._load(self.path, self.argv, self.envp, exe_fd, head, size)
        self._mark("load")
        vcpu = self.vcpu0
        task = Task(self, vcpu, os.getpid(), _thread.get_ident())
        task.sigmask, ignored = self.inherited
        self.actions.inherit(ignored)
        self.tasks[task.tid] = task
        self.main_task = task
        cpu.enter(vcpu, entry, sp)
        task.on_syscall = dispatch.make_dispatcher(task, strace=self.config.strace, poller=self.poller)
        self.runner = VcpuRunner(vcpu, task)
        return task

    def _create_vm(self) -> None:
        self.vm = self.kvm.create_vm()
        if self.kvm.check_extension(k.KVM_CAP_DISABLE_QUIRKS2) & k.KVM_X86_QUIRK_SLOT_ZAP_ALL:
            # deleting a memslot then zaps only that slot's shadow pages, not all of them
            self.vm.enable_cap(k.KVM_CAP_DISABLE_QUIRKS2, k.KVM_X86_QUIRK_SLOT_ZAP_ALL)

    def _load(self, path: str, argv: list[bytes], envp: list[bytes], fd: int | None, head: bytes | None,
              size: int, opener=None) -> tuple[int, int]:
        """Load a program into the (empty) address space: (entry, initial stack pointer).
        ``opener``: how its interpreter is opened (the program's own exec: as its opens)."""
        self.layout = L.Layout(self.config.window, _randomizer())
        self.mm.mmap_top = self.layout.mmap_top
        loaded = load.load_program(self.mm, path, pie_base=self.layout.pie_base, fd=fd, head=head, size=size,
                                   opener=opener)
        self.mm.set_brk_start(loaded.brk + self.layout.brk_offset)
        top = self.layout.stack_top
        self.mm.mmap(top - L.STACK_MAX, L.STACK_MAX, F.PROT_READ | F.PROT_WRITE,
                     F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_FIXED, -1, 0, name="[stack]")
        vdso_addr = vdso.map_into(self.mm) if self.config.vdso and self.platform.user_stub else None
        auxv = ([(F.AT_SYSINFO_EHDR, vdso_addr)] if vdso_addr else []) + self._auxv(loaded)
        sp = load.build_stack(self.mm, top, argv, envp, os.fsencode(path), auxv, os.urandom(16))
        self.path, self.argv, self.envp = path, argv, envp
        self.exe_path = os.fsencode(os.path.realpath(path))  # what /proc/self/exe names
        self.exe_path_buf = bytearray(self.exe_path + b"\0")
        self.auxv_bytes = load.read_auxv(self.mm, sp, len(argv), len(envp))
        self.stack_info = _stack_info(self.mm.mem, sp, argv, envp)
        self._procfs = None  # a new program: a new /proc/self
        _name_process(os.path.basename(path), argv)
        return loaded.entry, sp

    def _auxv(self, loaded: load.Loaded) -> list[tuple[int, int]]:
        host = host_auxv()
        return [
            (F.AT_MINSIGSTKSZ, host.get(F.AT_MINSIGSTKSZ, 2048)),
            (F.AT_HWCAP, host.get(F.AT_HWCAP, 0)),
            (F.AT_PAGESZ, F.PAGE_SIZE),
            (F.AT_CLKTCK, host.get(F.AT_CLKTCK, 100)),
            (F.AT_PHDR, loaded.phdr),
            (F.AT_PHENT, 56),
            (F.AT_PHNUM, loaded.phnum),
            (F.AT_BASE, loaded.base),
            (F.AT_FLAGS, 0),
            (F.AT_ENTRY, loaded.program_entry),
            (F.AT_UID, os.getuid()),
            (F.AT_EUID, os.geteuid()),
            (F.AT_GID, os.getgid()),
            (F.AT_EGID, os.getegid()),
            (F.AT_SECURE, 0),
            (F.AT_HWCAP2, host.get(F.AT_HWCAP2, 0)),
        ]

    def run(self) -> ProcessExit:
        """Run the program until it exits or dies; returns how (to the main thread: the
        other threads end the process themselves, see ``finish``)."""
        self._mark("run")
        while True:
            try:
                self.runner.run()
            except ProcessExit as e:
                return e
            except ForkedChild as child:  # this is now the child of a fork, and its only thread
                self.runner = VcpuRunner(child.task.vcpu, child.task)
                continue
            except ThreadExit:
                # the main thread of the program is gone, the others go on: km's main
                # thread waits until one of them ends the process
                _thread.allocate_lock().acquire()
                _thread.allocate_lock().acquire()

    def finish(self, end: ProcessExit) -> None:
        """End km the way the program ended (never returns).  ``self.report``, if set, is
        told how, last (a km server's worker tells its client, which then ends the same
        way, cli/server.py)."""
        if end.signal and end.message and end.signal not in (S.SIGPIPE, S.SIGINT) and not self.forked:
            say(end.message)
        if self.report is not None:
            self.report(end)
        if end.signal:
            signals.die_by_signal(end.signal)
        os._exit(end.status)

    # -- signals -----------------------------------------------------------------------
    def post(self, sig: int, info: bytes, task: Task | None = None) -> None:
        """A signal for the program: to ``task`` (thread-directed), or to the process,
        which gives it to a thread that does not block it.  Called from any thread."""
        if sig == signals.SIG_KICK or not 1 <= sig <= S.NSIG:
            return
        if task is None and self.timers.targets and info[8:12] == _SI_TIMER:  # SIGEV_THREAD_ID?
            tid = self.timers.target(int.from_bytes(info[16:20], "little", signed=True))
            task = self.tasks.get(tid) if tid else None
        with self.lock:
            blocked_everywhere = all(t.sigmask & signals.sigbit(sig) for t in self.tasks.values())
            discarded = self.actions.ignored(sig) or (self.actions.handler(sig) == S.SIG_DFL and signals.namespace_init())
            if discarded and not (task.sigmask if task else blocked_everywhere) & signals.sigbit(sig):
                return  # discarded now, as Linux does for an ignored signal nobody blocks
            if task is not None:
                task.pending.add(sig, info)
                target = task
            else:
                self.shared_pending.add(sig, info)
                bit = signals.sigbit(sig)  # to a thread that takes it: unblocked, or waited for
                target = next((t for t in self.tasks.values() if not t.sigmask & bit or t.waiting & bit), None)
        if self._signalfds is not None and self._signalfds.files:
            self._signalfds.update()
        if target is not None and target.ident != _thread.get_ident():
            self.kick(target)

    def background_read(self, task: Task, fd: int) -> int:
        """A read of ``fd`` failed with EIO on the host (kernel/jobctl.py)."""
        from kontain.kernel import jobctl

        return jobctl.background_read(task, fd)

    def wait_for(self, task: Task, ready, timeout_ns: int | None = None) -> bool:
        """Block the calling thread (``task``'s) until ``ready()`` is true; False when
        ``timeout_ns`` runs out first.  A kick wakes it: SIG_KICK is blocked while
        ``ready()`` is checked, so one sent in between is not lost, and collected by
        rt_sigtimedwait."""
        deadline = None if timeout_ns is None else time.monotonic_ns() + timeout_ns
        kick_set = bytearray(struct.pack("<Q", signals.sigbit(signals.SIG_KICK)))
        signals.block_kick(True)
        try:
            while not ready():
                if deadline is None:
                    ts = 0
                else:
                    left = deadline - time.monotonic_ns()
                    if left <= 0:
                        return False
                    ts_buf = bytearray(struct.pack("<qq", left // 10**9, left % 10**9))
                    ts = native.address_of(ts_buf)
                native.syscall(128, native.address_of(kick_set), 0, ts, 8)  # rt_sigtimedwait
                task.kicked = False
                task.vcpu.set_immediate_exit(False)
                task.check_zapped()
            return True
        finally:
            signals.block_kick(False)

    def discard_pending(self, sig: int) -> None:
        with self.lock:
            self.shared_pending.discard(sig)
            for t in self.tasks.values():
                t.pending.discard(sig)

    def kick(self, task: Task) -> None:
        """Make ``task`` look at its signals now: out of KVM_RUN, or out of a host call.
        The signal thread repeats the kick until the task notices (HostSignals)."""
        task.kicked = True
        task.vcpu.set_immediate_exit(True)
        signals.kick(task.ident)
        with self.lock:
            self.unacked.add(task)
        self.host_signals.wake()

    def _rekick(self) -> bool:
        with self.lock:
            for t in list(self.unacked):
                if not t.kicked or t.tid not in self.tasks:
                    self.unacked.discard(t)
            left = list(self.unacked)
        for t in left:
            signals.kick(t.ident)
        return bool(left)

    def thread_idents(self):
        """The host thread ids (pthread idents) of the program's threads."""
        return {t.ident for t in self.tasks.values()}

    # -- threads -------------------------------------------------------------------------
    def _vcpu(self):
        with self.lock:
            if self.idle_vcpus:
                return self.idle_vcpus.pop()
            vcpu_id = self.next_vcpu_id
            if vcpu_id >= L.MAX_VCPUS:
                raise GuestError(EAGAIN)
            self.next_vcpu_id += 1
        try:
            vcpu = self.vm.create_vcpu(vcpu_id)
        except KvmError:
            # no descriptor left above the program's (RLIMIT_NOFILE), or KVM's own limit:
            # as Linux when it cannot make a thread
            raise GuestError(EAGAIN) from None
        self.sys.init_vcpu_page(vcpu_id)
        cpu.init_vcpu(vcpu, self.cpuid, self.xcr0, self.platform.fmask, self.lstar(vcpu_id))
        return vcpu

    def lstar(self, vcpu_id: int) -> int:
        """Where `syscall` enters on vCPU ``vcpu_id``: its poll stub, or the plain one."""
        if self.poller is not None and vcpu_id < L.POLL_VCPUS:
            return L.poll_stub(vcpu_id) + guest_code.POLL_ENTRY
        return L.STUB + guest_code.SYSCALL_ENTRY

    def retire_vcpu(self, task: Task) -> None:
        """``task`` ended: its vCPU waits for the next thread (call with the lock held)."""
        if self.poller is not None:
            self.poller.detach(task)
        self.idle_vcpus.append(task.vcpu)

    def clone_thread(self, parent: Task, flags: int, stack: int, ptid: int, ctid: int, tls: int) -> int:
        """A new guest thread on a vCPU of its own, run by a host thread of its own; it
        starts where the parent returns from clone, with RAX = 0 (returns its tid)."""
        vcpu = self._vcpu()
        pq, cq = parent.q, vcpu.q
        for i in range(k.Q_REGS, k.Q_REGS + 18):
            cq[i] = pq[i]
        cq[k.RAX] = 0
        cq[k.RIP] = pq[k.RCX]  # where `syscall` returns, in the parent
        cq[k.RFLAGS] = pq[k.R11] | cpu.RFLAGS_INIT
        if stack:
            cq[k.RSP] = stack
        vcpu.mark_regs_dirty()
        sregs = cpu.child_sregs(parent.vcpu.get_sregs(), vcpu.id)
        if flags & F.CLONE_SETTLS:
            cpu.set_segment_base(sregs, "fs", tls)
        vcpu.set_sregs(sregs)
        vcpu.set_xsave(parent.vcpu.get_xsave())
        task = Task(self, vcpu, 0)
        task.sigmask = parent.sigmask
        task.creds = parent.creds  # (its host thread is the parent's child: the same credentials)
        task.on_syscall = dispatch.make_dispatcher(task, strace=self.config.strace, poller=self.poller)
        started = _thread.allocate_lock()
        started.acquire()
        go = _thread.allocate_lock()
        go.acquire()
        try:
            _thread.start_new_thread(self._thread_main, (task, started, go))
        except RuntimeError:  # no host thread (RLIMIT_NPROC, memory): EAGAIN, as Linux's clone
            with self.lock:
                self.idle_vcpus.append(vcpu)
            raise GuestError(EAGAIN) from None
        started.acquire()  # the host thread knows its tid now
        try:
            if flags & F.CLONE_PARENT_SETTID:
                self.mem.write(ptid, struct.pack("<i", task.tid))
            if flags & F.CLONE_CHILD_SETTID:
                self.mem.write(ctid, struct.pack("<i", task.tid))
        except GuestError:
            pass  # as Linux: a bad address here is the program's problem, not clone's
        if flags & F.CLONE_CHILD_CLEARTID:
            task.clear_child_tid = ctid
        with self.lock:
            self.tasks[task.tid] = task
        go.release()
        return task.tid

    def _thread_main(self, task: Task, started, go) -> None:
        signals.block_forwarded()
        task.tid = native.syscall(186)  # gettid: guest tid = host tid
        task.ident = _thread.get_ident()
        started.release()
        go.acquire()
        runner = VcpuRunner(task.vcpu, task)
        while True:
            try:
                runner.run()
            except ThreadExit:
                return
            except ProcessExit as end:
                self.finish(end)
            except ForkedChild as child:  # this thread forked: it is the child's only thread now
                runner = VcpuRunner(child.task.vcpu, child.task)
                continue
            except BaseException as e:  # a monitor bug in a thread must not leave the program hanging
                say(f"internal error in thread {task.tid}: {e!r} (please report it)")
                os._exit(70)

    # -- processes --------------------------------------------------------------------
    def reset_after_fork(self) -> None:
        """In a forked child: only the forking thread exists; no lock is held, no signal
        pending, no kick outstanding, no vCPU to reuse."""
        self.lock = _thread.allocate_lock()
        self.shared_pending = signals.Pending()
        self.tasks = {}
        self.idle_vcpus = []
        self.next_vcpu_id = 1
        self.unacked = set()
        self.timers = Timers()  # a child has no timers
        self.zap = False
        self._procfs = None  # /proc/<pid> is the child's now
        self._opener = None

    def adopt_forked(self, task: Task) -> None:
        self.forked = True  # its parent is a guest program: it, not km, reports how this one ends
        self.tasks = {task.tid: task}
        self.main_task = task
        task.on_syscall = dispatch.make_dispatcher(task, strace=self.config.strace, poller=self.poller)
        self.host_signals = signals.HostSignals(self.post, self._rekick)
        self.host_signals.install()

    def wait_for_fd(self, task: Task, fd: int) -> None:
        """vfork: the parent waits, unkillable but by SIGKILL, as on Linux, until the
        child's exec or exit closes the pipe."""
        buf = bytearray(1)
        while native.syscall(0, fd, native.address_of(buf), 1) not in (0, -9):
            pass
        task.kicked = False
        task.vcpu.set_immediate_exit(False)

    def execve(self, task: Task, path: str, argv: int, envp: int) -> None:
        from kontain.kernel import exec as exec_

        exec_.execve(self, task, path, argv, envp)

    def fork(self, task: Task, flags: int, stack: int, ptid: int, ctid: int) -> int:
        # A process that forks tends to fork again (shells, servers, build tools), and
        # every child would import on its own what the parent had not: import it all
        # once here, and let the children inherit it (kontain/lazy.py)
        from kontain import lazy

        lazy.preload()
        from kontain.kernel import fork as fork_

        return fork_.fork(self, task, flags, stack, ptid, ctid)

    # imported at first use (kontain/lazy.py): many programs never look at either
    @property
    def procfs(self):
        """/proc as this program sees it (kernel/procfs.py)."""
        if self._procfs is None:
            from kontain.kernel.procfs import ProcFs

            self._procfs = ProcFs(self, self.procfd)
        return self._procfs

    @property
    def opener(self):
        """How this program's paths are opened (kernel/paths.py)."""
        if self._opener is None:
            from kontain.kernel.paths import Opener

            self._opener = Opener(self)
        return self._opener

    @property
    def signalfds(self):
        """The program's signalfds (kernel/signalfd.py)."""
        if self._signalfds is None:
            from kontain.kernel.signalfd import SignalFds

            self._signalfds = SignalFds(self)
        return self._signalfds

    def zap_threads(self, task: Task) -> None:
        """exec: every thread but ``task`` ends (Linux's de_thread)."""
        self.zapper = task
        self.zap = True
        for t in list(self.tasks.values()):
            if t is not task:
                self.kick(t)
        deadline = time.monotonic() + 5
        while len(self.tasks) > 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        self.zap = False

    def exit_thread(self, task: Task, status: int) -> None:
        """exit(2): the thread ends; the last one ends the process with its status."""
        with self.lock:
            if len(self.tasks) == 1:
                last = True
            else:
                last = False
                del self.tasks[task.tid]
        if last:
            raise ProcessExit(status=status & 0xFF)
        task.exit_thread()
        vcpu = task.vcpu
        vcpu.set_immediate_exit(False)
        with self.lock:
            self.retire_vcpu(task)
        raise ThreadExit()

    def describe_death(self, sig: int, code: int | None, addr: int | None) -> str:
        return f"{self.name}: killed by {signals.describe(sig, code, addr)}"


_SI_TIMER = S.SI_TIMER.to_bytes(4, "little", signed=True)  # si_code of a POSIX timer signal

ADDR_NO_RANDOMIZE = 0x0040000


def _randomizer():
    """Random page-aligned offsets, or none when km runs with ASLR off (setarch -R),
    which is what the program would have got natively."""
    if native.syscall(135, 0xFFFFFFFF) & ADDR_NO_RANDOMIZE:  # personality(query)
        return lambda limit: 0
    return lambda limit: int.from_bytes(os.urandom(4), "little") % (limit // L.PAGE) * L.PAGE


def _name_process(name: str, argv: list[bytes]) -> None:
    """ps, top and /proc/<pid>/comm show the program, not python: the thread's name, and
    as much of the program's argv as fits in km's own argv area (what /proc/<pid>/cmdline
    reads, for `ps aux`)."""
    buf = bytearray(os.fsencode(name)[:15] + b"\0")
    native.syscall(157, 15, native.address_of(buf), 0, 0, 0)  # prctl(PR_SET_NAME)
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end (fields 48 and 49)
    except (OSError, IndexError, ValueError):
        return
    cmdline = b"".join(a + b"\0" for a in argv)[:end - start]
    native.write_mem(start, cmdline.ljust(end - start, b"\0"))


def _open_procfs(floor: int) -> int:
    """The monitor's own descriptor of /proc (above the program's range): it reopens and
    identifies what the program opens (kernel/paths.py, kernel/procfs.py) even after the
    program moved its root where there is no /proc.  -1 when there is no /proc."""
    try:
        fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    high = native.dup_at_least(fd, floor)
    os.close(fd)
    return high


def _stack_info(mem, sp: int, argv: list[bytes], envp: list[bytes]) -> tuple[int, int, int, int, int]:
    """Where the initial stack and the argument and environment strings are (fields 28
    and 48-51 of /proc/self/stat)."""
    try:
        arg_start = mem.read_u64(sp + 8) if argv else 0
        env_start = mem.read_u64(sp + 8 * (len(argv) + 2)) if envp else 0
    except GuestError:
        return sp, 0, 0, 0, 0
    arg_end = arg_start + sum(len(a) + 1 for a in argv)
    env_end = env_start + sum(len(e) + 1 for e in envp)
    return sp, arg_start, arg_end, env_start, env_end


def _init_xsave(size: int) -> bytearray:
    """An XSAVE area in the state a process starts with (FCW 0x37f, MXCSR 0x1f80)."""
    buf = bytearray(size)
    struct.pack_into("<H", buf, 0, 0x37F)
    struct.pack_into("<II", buf, 24, 0x1F80, 0xFFFF)
    struct.pack_into("<Q", buf, 512, 0x3)  # XSTATE_BV: x87 and SSE as written here
    return buf


def _host_rlimit(resource: int) -> tuple[int, int]:
    import resource as r

    soft, hard = r.getrlimit(resource)
    inf = F.RLIM_INFINITY
    return (inf if soft == r.RLIM_INFINITY else soft, inf if hard == r.RLIM_INFINITY else hard)


def host_auxv() -> dict[int, int]:
    """km's own auxiliary vector: the same CPU and kernel, so the same hardware caps."""
    import struct

    try:
        with open("/proc/self/auxv", "rb") as f:
            data = f.read()
    except OSError:
        return {}
    out = {}
    for i in range(0, len(data) - 15, 16):
        key, val = struct.unpack_from("<QQ", data, i)
        out[key] = val
    return out
