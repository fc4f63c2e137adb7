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

from kontain import lazy, native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EAGAIN
from kontain.arch.x86_64 import cpu, guest_code, hostcode, platform, sigframe
from kontain.arch.x86_64 import layout as L
from kontain.confine import Confinement
from kontain.errors import ForkedChild, GuestError, ProcessExit, messages_fd, messages_to, say
from kontain.kernel import signals
from kontain.kernel.fdtable import FdTable
from kontain.kernel.rewrite import Rewriter
from kontain.kernel.runstate import GONE, PAUSED, RUNNING, Condition
from kontain.kernel.task import Task, ThreadExit
from kontain.kernel.timers import TimerInfo, Timers
from kontain.kvm import abi as k
from kontain.kvm.api import Kvm, KvmError
from kontain.loader import load, textbusy
from kontain.memory import vdso
from kontain.memory.mm import AddressSpace
from kontain.memory.slots import SlotMap
from kontain.memory.window import GuestMemory
from kontain.vcpu import VcpuRunner

native.use_copy_code(hostcode.VM_COPY)  # (guest memory copies: the platform's machine code)


class Process:
    """The guest process this km runs."""

    def __init__(self, spec, syscalls):
        """``spec``: what to run and how (kontain/spec.py); ``syscalls``: what serves the
        program's system calls, from the layer above (kontain/lifecycle.py): its
        ``dispatcher(task)`` and ``poller(process)``."""
        self.spec = spec
        self.syscalls = syscalls
        self.path = spec.program
        self.name = spec.program
        self.argv: list[bytes] = []
        self.envp: list[bytes] = []
        self.timings: list[tuple[str, float]] = []
        self.personality = F.PER_LINUX
        self.actions = signals.SignalActions()
        # the limits km keeps for the program (syscalls/sysinfo.py EMULATED, NOFILE aside)
        self.rlimits: dict[int, tuple[int, int]] = {r: _host_rlimit(r) for r in
                                                    (F.RLIMIT_AS, F.RLIMIT_DATA, F.RLIMIT_SIGPENDING)}
        self.rlimits.update(spec.rlimits)  # km --rlimit (what krun passes: oci/config.py)
        signals.QUEUED.process = self
        self.tasks: dict[int, Task] = {}
        self.threaded = False  # a second thread has been started (lazy.threaded)
        self.main_task: Task | None = None  # (none until the program is loaded: a signal may come first)
        self.lock = _thread.allocate_lock()  # guards tasks, pending sets, the vCPU pool, the run states
        self.changed = Condition(self.lock)  # a thread paused, resumed or went (kernel/runstate.py)
        self.pause_requests = 0
        self.pausing_others = False  # a thread's pause_others is under way
        self.exiting = 0  # threads ending (Process.exit_thread): a pause waits for them to be gone
        self.shared_pending = signals.Pending()
        self.poller = None  # kernel/poll.py, once the platform is known
        # (st_dev, st_ino) of the files the program took POSIX record locks on (fcntl
        # F_SETLK, F_SETLKW): km closes no duplicate of their descriptors, which would drop
        # the locks (kernel/poll.py posix_locked); kept across execve, as the locks are
        self.posix_locked: set[tuple[int, int]] = set()
        self.rewriter = None  # kernel/rewrite.py: syscall sites that jump to the stub (PVM, unless --no-rewrite)
        self.idle_vcpus: list = []  # vCPUs of exited threads, for the next ones (KVM never frees a vCPU)
        self.ending: list[int] = []  # host threads (idents) of the last threads that ended, maybe on their way out
        self.timers = Timers()  # POSIX timers (timer_create)
        self.aio = None  # syscalls/aio.py: the AIO contexts (io_setup), ring address -> Context
        # (st_dev, st_ino) -> the thread F_SETOWN_EX named, and the signal thread the host signals instead
        self.sigio_owners: dict[tuple[int, int], tuple[int, int]] = {}
        # the program asked for signals its own calls cause (F_NOTIFY, leases, O_ASYNC,
        # F_SETSIG, F_SETOWN): from then on every call collects the host's signals before
        # it returns (syscalls/dispatch.invoke), as Linux queues them before it returns
        self.own_signals = False
        # bumped at every call a handler serves (syscalls/dispatch.invoke): while it holds,
        # no descriptor of a single-threaded program changed (nativepoll.c ``here``)
        self.epoch_buf = bytearray(8)
        self.epoch = memoryview(self.epoch_buf).cast("Q")
        self._signalfds = None  # kernel/signalfd.py, at the first signalfd
        self._procfs = None  # kernel/procfs.py, at the first look at /proc
        self._opener = None  # kernel/paths.py, at the first open
        self.procfd = -1  # the monitor's own descriptor of /proc (kernel/paths.py)
        self.stack_info = (0, 0, 0, 0, 0)  # start_stack, arg_start, arg_end, env_start, env_end
        self.confinement = Confinement()
        self.zap = False  # exec: every other thread must end
        self.forked = False  # a child of a fork of this km
        self.vfork_fd = -1  # a vfork child: its parent waits until this closes
        self.vfork_shares = False  # ... and gives back what it wrote then (kernel/vforkmem.py)
        self.vfork_keeper = None  # ... told by the memory as it was at the fork, another thread of the parent running
        self.keepers: list[int] = []  # such keepers told to end and not reaped yet
        self.running = 0  # the program's file, mapped and locked as running (loader/textbusy.py)
        self.children: dict[int, int] = {}  # pid -> its record in link_region (kernel/fork.py)
        self.link_region = 0  # the shared region of this process's children's records
        self.link_free = bytearray()  # records of it not in use (kernel/fork.py)
        self.parent_link = 0  # this process's record in its parent's region, for a forked child
        self.parent_region = 0  # that region
        self.sys_gpa, self.sys_size = L.SYS_BASE, L.SYS_SIZE
        self.next_vcpu_id = 1
        self.report = None  # see finish
        self.gdb = None  # the gdb stub (kernel/gdbstub.py), with --gdb or --gdb-listen
        self.at_end = None  # called as the program ends, by whichever thread ends it (km --timings)
        self.ready_fd = None  # km --ready-fd (kernel/readyfd.py), until the program has started up

    def _mark(self, what: str) -> None:
        if self.spec.timings:
            self.timings.append((what, time.perf_counter()))

    def prepare(self) -> None:
        """The part of the start that does not depend on the program: the VM, its memory,
        vCPU 0, the platform probe.  (A km server's workers do it before they have a
        client, cli/server.py.)"""
        self._mark("start")
        # /dev/kvm goes to the top of the descriptor table (fds.floor) before the signal
        # thread exists: growing the table of a multi-threaded process waits for an RCU
        # grace period (~8 ms here), of a single-threaded one it does not
        self.fds = FdTable()
        self.kvm = Kvm(self.spec.kvm_device, fd_floor=self.fds.floor)
        self.procfd = _open_procfs(self.fds.floor)
        self.keep_messages()
        self.confinement.start()  # before km has a second thread (kontain/confine.py)
        # the signal mask and ignored signals the program starts with, before km changes them
        # (a server's worker replaces them with its client's)
        self.inherited = signals.inherited_state()
        self.host_signals = signals.HostSignals(self.post_host, self.fds.floor)
        self.host_signals.install()
        self.timers.host = self.shared_pending.host = self.host_signals
        self._create_vm()
        self._mark("vm")
        _lift_address_space_limit()
        self.mem = GuestMemory(self.spec.window)
        self.sys = cpu.SystemRegion(self.vm, self.spec.window)
        nslots = self.kvm.check_extension(k.KVM_CAP_NR_MEMSLOTS) or 509
        self.slots = SlotMap(self.vm.set_memory_region, self.mem.base, first=1, limit=nslots)
        self.mm = AddressSpace(self.mem, self.slots, mmap_top=0, mmap_min=L.MMAP_MIN, limit=self.spec.memory)
        self.mm.rlimits = self.rlimits  # (RLIMIT_AS and RLIMIT_DATA: the same dict, changed in place)
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
        if self.platform.user_stub and self.spec.poll != "off" and not self.spec.strace:
            self.poller = self.syscalls.poller(self)
            self.sys.install_poll_stubs(self.poller.map)
            vcpu.set_msrs([(k.MSR_LSTAR, self.lstar(0))])
        if self.platform.user_stub and self.spec.rewrite:
            self.rewriter = Rewriter(self, self._site_cache())
            cpu.set_segment_base(self.user_sregs, "gs", self.gs_base(0))
            vcpu.set_sregs(self.user_sregs)
        self.xstate_size = sigframe.xstate_size(self.cpuid, self.xcr0)
        self.init_xsave = _init_xsave(self.kvm.xsave_size)
        self.vcpu0 = vcpu
        self._mark("probe")

    def _site_cache(self):
        """The rewriter's proofs of earlier runs (kernel/sitecache.py), as the spec says."""
        if not self.spec.site_cache:
            return None
        from kontain.kernel.sitecache import SiteCache

        return SiteCache(self.spec.site_cache)

    def keep_messages(self) -> None:
        """km's messages go to its stderr as it is now, through a descriptor of the
        monitor's own: the program may close or redirect its descriptor 2."""
        fd = native.dup_at_least(2, self.fds.floor)
        if fd >= 0:
            old = messages_fd()
            messages_to(fd)
            if old != 2:
                os.close(old)

    def take(self, spec) -> None:
        """A prepared process (a km server's worker) takes on a client's spec, which
        fits the VM it has (Spec.fits)."""
        self.keep_messages()  # (the client's stderr now)
        self.spec = spec
        self.path = self.name = spec.program
        self.mm.limit = spec.memory
        if self.rewriter is not None:
            self.rewriter.cache = self._site_cache()
        self.timings = []
        self._mark("start")  # (the VM was built before the client came)

    def launch(self, prog) -> Task:
        """Load ``prog`` (loader/exec.py: the program's file, opened, and its argv) into
        the prepared VM, with the spec's environment; returns the main thread, ready."""
        self.slots.begin_batch()  # (its slots registered at once, neighbours merged: memory/slots.py)
        try:
            entry, sp = self._load(prog.path, prog.argv, list(self.spec.env), prog.fd, prog.head, prog.size)
        finally:
            self.slots.end_batch()
        self._mark("load")
        vcpu = self.vcpu0
        task = Task(self, vcpu, os.getpid(), _thread.get_ident())
        task.sigmask, ignored = self.inherited
        self.actions.inherit(ignored)
        self.tasks[task.tid] = task
        self.main_task = task
        cpu.enter(vcpu, entry, sp)
        task.on_syscall = self.syscalls.dispatcher(task)
        self.runner = VcpuRunner(vcpu, task)
        return task

    def new_vm(self):
        """A new VM over the memory this process has already, as a forked child needs (a
        VM belongs to the process that made it): the old VM and its vCPUs closed, the
        system region registered again and every memslot at its first touch
        (memory/slots.py ``rebind``), vCPU 0 made and set up as at the start; returns it
        (the threads are the caller's to make)."""
        for vcpu in [t.vcpu for t in self.tasks.values()] + self.idle_vcpus:
            vcpu.close()
        self.idle_vcpus, self.next_vcpu_id = [], 1
        self.vm.close()
        self._create_vm()
        self.vm.set_memory_region(self.sys.SLOT, 0, self.sys_gpa, self.sys_size, self.sys.host)
        self.slots.rebind(self.vm.set_memory_region)
        vcpu = self.vcpu0 = self.vm.create_vcpu(0)
        cpu.init_vcpu(vcpu, self.cpuid, self.xcr0, self.platform.fmask, self.lstar(0), self.gs_base(0))
        return vcpu

    def _create_vm(self) -> None:
        self.vm = self.kvm.create_vm()
        if self.kvm.check_extension(k.KVM_CAP_DISABLE_QUIRKS2) & k.KVM_X86_QUIRK_SLOT_ZAP_ALL:
            # deleting a memslot then zaps only that slot's shadow pages, not all of them
            self.vm.enable_cap(k.KVM_CAP_DISABLE_QUIRKS2, k.KVM_X86_QUIRK_SLOT_ZAP_ALL)

    def _load(self, path: str, argv: list[bytes], envp: list[bytes], fd: int | None, head: bytes | None,
              size: int, opener=None, comm: bytes | None = None) -> tuple[int, int]:
        """Load a program into the (empty) address space: (entry, initial stack pointer).
        ``opener``: how its interpreter is opened (the program's own exec: as its opens).
        ``comm``: the thread's new name (Linux's: the base name of the file as it was
        named, not of the ELF file a script or a symlink led to)."""
        self.layout = L.Layout(self.spec.window, _randomizer())
        self.mm.mmap_top = self.layout.mmap_top
        running = textbusy.hold(fd, self.fds.floor) if fd is not None else 0  # (the file is not for writing now)
        loaded = load.load_program(self.mm, path, pie_base=self.layout.pie_base, fd=fd, head=head, size=size,
                                   opener=opener)
        self.mm.set_brk_start(loaded.brk + self.layout.brk_offset)
        top = self.layout.stack_top
        self.mm.mmap(top - L.STACK_MAX, L.STACK_MAX, F.PROT_READ | F.PROT_WRITE,
                     F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_FIXED, -1, 0, name="[stack]")
        vdso_addr = vdso.map_into(self.mm) if self.spec.vdso and self.platform.user_stub else None
        auxv = ([(F.AT_SYSINFO_EHDR, vdso_addr)] if vdso_addr else []) + self._auxv(loaded)
        sp = load.build_stack(self.mm, top, argv, envp, os.fsencode(path), auxv, os.urandom(16))
        # the stack as Linux's counts at exec: what the arguments take, and 128 KiB below
        self.mm.stack_counted = ((top - sp + F.PAGE_SIZE - 1) & ~(F.PAGE_SIZE - 1)) + (128 << 10)
        self.path, self.argv, self.envp = path, argv, envp
        textbusy.release(self.running)  # the program it replaces (a forked child may still run it)
        self.running = running
        self.exe_path = os.fsencode(os.path.realpath(path))  # what /proc/self/exe names
        self.exe_path_buf = bytearray(self.exe_path + b"\0")
        self.auxv_bytes = load.read_auxv(self.mm, sp, len(argv), len(envp))
        self.stack_info = _stack_info(self.mm.mem, sp, argv, envp)
        self._procfs = None  # a new program: a new /proc/self
        _name_process(comm if comm is not None else os.fsencode(os.path.basename(self.name)), argv)
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
            # (HWCAP2_FSGSBASE off while km owns GS: a program then sets GS with arch_prctl, kernel/rewrite.py)
            (F.AT_HWCAP2, host.get(F.AT_HWCAP2, 0) & ~(2 if self.rewriter is not None else 0)),
        ]

    def run(self) -> ProcessExit:
        """Run the program until it exits or dies; returns how (to the main thread: the
        other threads end the process themselves, see ``finish``)."""
        self._mark("run")
        lazy.started()
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
                _stay()

    def finish(self, end: ProcessExit) -> None:
        """End km the way the program ended (never returns).  ``self.report``, if set, is
        told how, last (a km server's worker tells its client, which then ends the same
        way, cli/server.py).  Any thread may call it, and several at once (two threads
        dying together, one exit_group against a fatal signal): the first one ends km,
        the others wait for it to."""
        if not _ending.acquire(False):
            _ending.acquire()  # another thread is ending the process: never returns
        if self.at_end is not None and not self.forked:
            self.at_end()  # (km --timings: whichever thread ends the program)
        if end.signal and end.message and end.signal not in (S.SIGPIPE, S.SIGINT) and not self.forked:
            say(end.message)
        if self.gdb is not None:
            self.gdb.exit(end)  # (gdb is told how it ended: W or X)
        if self.report is not None:
            self.report(end)
        if self.vfork_fd >= 0:  # a vfork child: what it wrote is its parent's (kernel/vforkmem.py)
            from kontain.kernel import vforkmem

            vforkmem.send(self)
        if self.keepers:  # (of its days as a vfork child: kernel/vforkmem.py)
            from kontain.kernel import vforkmem

            vforkmem.reap(self, block=True)
        if end.signal:
            signals.die_by_signal(end.signal)
        os._exit(end.status)

    # -- signals -----------------------------------------------------------------------
    def _sigio_owner(self, fd: int) -> Task | None:
        try:
            st = os.fstat(fd)
        except OSError:
            return None
        owner = self.sigio_owners.get((st.st_dev, st.st_ino))
        return self.tasks.get(owner[0]) if owner else None

    def post(self, sig: int, info: bytes, task: Task | None = None, host: bool = False) -> int:
        """A signal for the program: to ``task`` (thread-directed), or to the process,
        which gives it to a thread that does not block it.  Called from any thread;
        ``host``: the signal thread's, from the host.  0, or -EAGAIN when the signal
        queue is full (signals.Pending.add)."""
        if sig == signals.SIG_KICK or not 1 <= sig <= S.NSIG:
            return 0
        if not host and sig >= S.SIGRTMIN and self.host_signals.holds(sig):
            self.host_signals.flush(sig)  # (what came before it, left on the host behind a timer's)
        if sig == S.SIGURG and info[8:12] == _SI_QUEUE and task is None:  # `km snapshot PID`?
            from kontain.kernel import snapshot

            if snapshot.is_request(info):
                _thread.start_new_thread(snapshot.serve_request, (self,))
                return 0
        if task is None and self.timers.targets and info[8:12] == _SI_TIMER:  # SIGEV_THREAD_ID?
            tid = self.timers.target(int.from_bytes(info[16:20], "little", signed=True))
            task = self.tasks.get(tid) if tid else None
        if task is None and self.sigio_owners and S.POLL_IN <= int.from_bytes(info[8:12], "little", signed=True) <= \
                S.POLL_HUP:  # O_ASYNC, F_SETSIG: to the thread F_SETOWN_EX named (syscalls/fs.py)?
            task = self._sigio_owner(int.from_bytes(info[24:28], "little", signed=True))
        with self.lock:
            discarded = self.actions.ignored(sig) or (self.actions.handler(sig) == S.SIG_DFL and signals.namespace_init())
            if discarded and not self._held(sig, task):
                return 0  # discarded now, as Linux does for an ignored signal (or one a namespace's init has no handler for)
            if info[8:12] == _SI_TIMER:  # a timer's signal pending already takes this one as an overrun
                info = self.timers.arrived(info)
                if info is None:
                    return 0
            pending = task.pending if task is not None else self.shared_pending
            if host and sig < S.SIGRTMIN and pending.mask & signals.sigbit(sig) and task is None:
                pending.hold_standard(sig)  # (one signal with the pending one: the next ones wait on the host)
            if not pending.add(sig, info):
                return -EAGAIN
            if type(info) is TimerInfo and info.where is None:
                # one with a standard signal pending already (from kill, say): the
                # timer's is not, and its next expiration queues again (its signals
                # stopped for good: each one counted as an overrun of a signal never taken)
                info.timer.queued = None
            if task is not None:
                target = task
            else:
                bit = signals.sigbit(sig)  # to a thread that takes it: unblocked, or waited for
                target = None
                if host and (sig == S.SIGPROF or sig == S.SIGVTALRM) and info[8:12] == _SI_KERNEL:
                    target = self._spender(bit)  # (an itimer's)
                if target is None:
                    target = next((t for t in self.tasks.values() if not t.sigmask & bit or t.waiting & bit), None)
        if self._signalfds is not None and self._signalfds.files:
            self._signalfds.update()
        if target is not None and target.ident != _thread.get_ident():
            self.kick(target)
        return 0

    def _spender(self, bit: int) -> Task | None:
        """The thread an ITIMER_PROF or ITIMER_VIRTUAL signal goes to: Linux sends it to
        the thread running when the process's CPU time reached the timer, which a
        profiler relies on to sample the thread that spends the time (Go's pprof,
        gperftools).  The host sends it to km, so km wakes the thread (of those that take
        the signal) whose host thread ran longest since the last such signal; None when
        none ran (the time was km's own).  The signal stays the process's, as on Linux:
        made the thread's own, it met a per-thread CPU timer's SIGPROF in the thread's
        pending set, and one of the two was lost (Go's pprof, which has both, lost ~40%
        of its samples)."""
        best, most = None, 0
        for t in self.tasks.values():
            now = _cpu_time(t.tid)
            spent, t.cpu_seen = now - t.cpu_seen, now
            if spent > most and (not t.sigmask & bit or t.waiting & bit):
                best, most = t, spent
        return best

    def cpu_timer_set(self) -> None:
        """ITIMER_PROF or ITIMER_VIRTUAL was set: each thread's CPU time counts from now
        for ``_spender`` (the time the main thread spent starting up is not a sample's)."""
        with self.lock:
            for t in self.tasks.values():
                t.cpu_seen = _cpu_time(t.tid)

    def post_host(self, sig: int, info: bytes) -> int:
        """A signal the host gave km for the program (the signal thread's ``post``).  A
        child's SIGCHLD says CLD_DUMPED where the child wrote its core file: its km died
        without one (kernel/fork.py keeps the mark)."""
        if sig == S.SIGCHLD and info[8:12] == _CLD_KILLED and self.children:
            from kontain.kernel import fork

            if fork.child_dumped_core(self, int.from_bytes(info[16:20], "little")):
                info = info[:8] + _CLD_DUMPED + info[12:]
        return self.post(sig, info, host=True)

    def _held(self, sig: int, task: Task | None) -> bool:
        """Is ``sig``, ignored, kept pending all the same?  Linux's sig_ignored: yes when
        the thread it is sent to blocks it (a process-directed one: the thread group's
        leader, which kill() names), for sigwaitinfo may take it."""
        if task is None:
            main = self.main_task  # (None before the program is loaded: nothing holds a signal then)
            task = (self.tasks.get(main.tid) if main is not None else None) or next(iter(self.tasks.values()), None)
        return task is not None and bool(task.sigmask & signals.sigbit(sig))

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
        task.in_wait = True
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
                if not task.kicked:  # (a kick that came before SIG_KICK was blocked here was taken
                    # by its handler: only the flag says so, and the wait would miss it)
                    native.syscall(128, native.address_of(kick_set), 0, ts, 8)  # rt_sigtimedwait
                task.kicked = False
                task.vcpu.set_immediate_exit(False)
                task.mid_call = True  # (a snapshot makes the call again: kernel/snapshot.py)
                try:
                    task.checkpoint()  # (parked here, in the call, when the program is paused)
                finally:
                    task.mid_call = False
            return True
        finally:
            task.in_wait = False
            signals.block_kick(False)

    def discard_pending(self, sig: int) -> None:
        with self.lock:
            self.shared_pending.discard(sig)
            for t in self.tasks.values():
                t.pending.discard(sig)

    def kick(self, task: Task) -> None:
        """Make ``task`` look at its signals now: out of KVM_RUN, or out of a host call.
        The flags first, then the signal: see kernel/signals.py."""
        task.kicked = True
        task.vcpu.set_immediate_exit(True)
        signals.kick(task.ident)

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
        cpu.init_vcpu(vcpu, self.cpuid, self.xcr0, self.platform.fmask, self.lstar(vcpu_id), self.gs_base(vcpu_id))
        return vcpu

    def lstar(self, vcpu_id: int) -> int:
        """Where `syscall` enters on vCPU ``vcpu_id``: its poll stub, or the plain one."""
        if self.poller is not None and vcpu_id < L.POLL_VCPUS:
            return L.poll_stub(vcpu_id) + guest_code.POLL_ENTRY
        return L.STUB + guest_code.SYSCALL_ENTRY

    def gs_base(self, vcpu_id: int) -> int | None:
        """vCPU ``vcpu_id``'s GS base while km owns it (rewritten syscall sites enter the
        stub through ``jmp *%gs:GS_ENTRY``, layout.py): its poll stub copy, or the plain
        stub; None when the program's own GS base stands (no rewriting, or the program
        set GS itself: kernel/rewrite.py gave up then)."""
        if self.rewriter is None or not self.rewriter.owns_gs:
            return None
        if self.poller is not None and vcpu_id < L.POLL_VCPUS:
            return L.poll_stub(vcpu_id)
        return L.STUB

    def retire_vcpu(self, task: Task) -> None:
        """``task`` ended: its vCPU waits for the next thread (call with the lock held)."""
        if self.poller is not None:
            self.poller.detach(task)
        self.idle_vcpus.append(task.vcpu)
        task.state = GONE
        self.changed.notify_all()  # (an exec or a pause waiting for the others)

    # -- run states (kernel/runstate.py) ---------------------------------------------------
    def pause_all(self) -> list[Task]:
        """Stop every thread of the program at a safe point (from a monitor thread, never a
        program thread); returns them, PAUSED: their registers, memory and state may be
        read and changed until ``resume_all``."""
        with self.lock:
            self.pause_requests += 1
            others = list(self.tasks.values())
        for t in others:
            self.kick(t)
        with self.lock:
            # (and no program thread in the middle of its own pause_others section: what it
            # changes, another thread's registers included, must not race with ours)
            while self.exiting or self.pausing_others or any(t.state == RUNNING for t in self.tasks.values()):
                self.changed.wait()
            return list(self.tasks.values())

    def stop_others(self, task: Task) -> list[Task]:
        """From a program thread (``task``, which is about to end the process: a core
        file): every other thread stopped at a safe point, for good; returns them."""
        with self.lock:
            task.state = PAUSED  # (so that two threads doing this at once do not wait for each other)
            self.pause_requests += 1
            others = [t for t in self.tasks.values() if t is not task]
        for t in others:
            self.kick(t)
        with self.lock:
            while self.pausing_others or any(t.state == RUNNING for t in self.tasks.values() if t is not task):
                self.changed.wait()
            task.state = RUNNING
            return [t for t in self.tasks.values() if t is not task]

    def read_memory(self, addr: int, length: int) -> bytes:
        """The program's memory as its own code had it: what a debugger, a snapshot or a
        core file reads (rewritten syscall sites show their original bytes,
        kernel/rewrite.py).  GuestError (EFAULT) where nothing is mapped."""
        data = self.mem.read(addr, length)
        return self.rewriter.original(addr, data) if self.rewriter is not None else data

    def pause_others(self, me: Task) -> bool:
        """pause_all from a program thread (``me``, in a call: its registers are final
        for the time being): every other thread stopped at a safe point, for changes no
        vCPU may watch half-done (kernel/rewrite.py patching code).  One such section at a
        time; False (nothing paused) when an exec ends the threads meanwhile."""
        with self.lock:
            me.state = PAUSED
            self.changed.notify_all()
            # one such section at a time, and none while another pauser (a snapshot, a
            # debugger, --pause-check) holds the program: it may be reading or writing the
            # registers this section reads and writes
            while (self.pausing_others or self.pause_requests) and not self.zap:
                self.changed.wait()
            if self.zap:
                me.state = RUNNING
                return False
            self.pausing_others = True
            self.pause_requests += 1
            others = [t for t in self.tasks.values() if t is not me]
        for t in others:
            if not t.in_host_wait:  # (one in a host wait stays there: Task.blocking)
                self.kick(t)
        with self.lock:
            while not self.zap and any(t.state == RUNNING and not t.in_host_wait
                                       for t in self.tasks.values() if t is not me):
                self.changed.wait()
            if self.zap:
                self._end_pause_others()
                me.state = RUNNING
                return False
        return True

    def sit_out_pause(self, task: Task) -> None:
        """``task`` came back from a host wait (Task.blocking) during a pause_others:
        it waits, still counted as away, until that pause ends (or an exec ends it)."""
        with self.lock:
            task.in_host_wait = True
            self.changed.notify_all()
            while self.pausing_others and not self.zap:
                self.changed.wait()
            task.in_host_wait = False

    def resume_others(self, me: Task) -> None:
        with self.lock:
            self._end_pause_others()
            while self.pause_requests and not self.zap:  # (someone else's pause: still PAUSED)
                self.changed.wait()
            me.state = RUNNING

    def _end_pause_others(self) -> None:
        self.pause_requests -= 1
        self.pausing_others = False
        self.changed.notify_all()

    def resume_all(self) -> None:
        with self.lock:
            self.pause_requests -= 1
            self.changed.notify_all()

    # -- save / restore (Firecracker's Persist: each component's state as plain data) -----
    def save(self) -> dict:
        """The program's state as km keeps it, while it is paused (``pause_all``): every
        thread (registers, FPU, signal state), the address space and its memory slots,
        signal actions and the process's pending signals, timers, the descriptor table,
        and what the program was started as.  Not the guest's memory itself: that is a
        snapshot's to write."""
        with self.lock:
            if any(t.state == RUNNING for t in self.tasks.values()):
                raise RuntimeError("Process.save of a program that is not paused")
            return {
                "program": {"path": self.path, "name": self.name, "argv": list(self.argv), "envp": list(self.envp),
                            "personality": self.personality, "rlimits": dict(self.rlimits),
                            "stack_info": self.stack_info},
                "tasks": [t.save() for t in self.tasks.values()],
                "mm": self.mm.save(), "slots": self.slots.save(), "actions": self.actions.save(),
                "shared_pending": self.shared_pending.save(), "timers": self.timers.save(), "fds": self.fds.save(),
            }

    def restore(self, state: dict) -> None:
        """Take ``save()``'s data back into this paused program: the same threads, the
        same mappings in place (a restore into a new VM builds those first).  Signals
        posted since the save (km's signal thread, a timer) stay pending."""
        with self.lock:
            saved = {t["tid"]: t for t in state["tasks"]}
            if saved.keys() != self.tasks.keys():
                raise RuntimeError("Process.restore: the threads are not the ones saved")
            since = [(self.shared_pending, self.shared_pending.since(state["shared_pending"]))]
            since += [(t.pending, t.pending.since(saved[tid]["pending"])) for tid, t in self.tasks.items()]
            self.fds.restore(state["fds"])
            self.slots.restore(state["slots"])
            self.mm.restore(state["mm"])
            self.actions.restore(state["actions"])
            self.timers.restore(state["timers"])
            self.shared_pending.restore(state["shared_pending"], self.timers)
            for tid, t in self.tasks.items():
                t.restore(saved[tid])
            for pending, posted in since:
                for sig, info in posted:
                    pending.add(sig, info)
            program = state["program"]
            self.path, self.name = program["path"], program["name"]
            self.argv, self.envp = list(program["argv"]), list(program["envp"])
            self.personality = program["personality"]
            self.rlimits.clear()  # (in place: the address space holds the same dict)
            self.rlimits.update(program["rlimits"])
            self.stack_info = program["stack_info"]

    def clone_thread(self, parent: Task, flags: int, stack: int, ptid: int, ctid: int, tls: int) -> int:
        """A new guest thread on a vCPU of its own, run by a host thread of its own; it
        starts where the parent returns from clone, with RAX = 0 (returns its tid)."""
        if not self.threaded:
            lazy.threaded()
            self.threaded = True
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
        sregs = cpu.child_sregs(parent.vcpu.get_sregs(), vcpu.id, self.gs_base(vcpu.id))
        if flags & F.CLONE_SETTLS:
            cpu.set_segment_base(sregs, "fs", tls)
        vcpu.set_sregs(sregs)
        vcpu.set_xsave(parent.vcpu.get_xsave())
        hostcode.inherit_tsc(vcpu, parent.vcpu)
        task = Task(self, vcpu, 0)
        task.altstack = (0, S.SS_DISABLE, 0)  # a thread sharing the memory: none (Linux's sas_ss_reset)
        task.sigmask = parent.sigmask
        task.creds = parent.creds  # (its host thread is the parent's child: the same credentials)
        task.fs_own = parent.fs_own  # (and the same file-system context: pthread_create shares it)
        task.gs_own = parent.gs_own
        task.on_syscall = self.syscalls.dispatcher(task)
        go = self._host_thread(task)
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

    def _host_thread(self, task: Task):
        """Start the host thread that will run ``task``; returns once the thread knows
        its tid (task.tid), the lock that lets it go."""
        started = _thread.allocate_lock()
        started.acquire()
        go = _thread.allocate_lock()
        go.acquire()
        try:
            _thread.start_new_thread(self._thread_main, (task, started, go))
        except RuntimeError:  # no host thread (RLIMIT_NPROC, memory): EAGAIN, as Linux's clone
            with self.lock:
                self.idle_vcpus.append(task.vcpu)
            raise GuestError(EAGAIN) from None
        started.acquire()  # the host thread knows its tid now
        return go

    def start_thread(self, task: Task) -> None:
        """A restored thread (kernel/snapshot.py): its host thread, running at once."""
        go = self._host_thread(task)
        with self.lock:
            self.tasks[task.tid] = task
        go.release()

    def _thread_main(self, task: Task, started, go) -> None:
        signals.block_forwarded()
        if not task.tid:  # (a thread resumed from a snapshot keeps the id the program knows it by)
            task.tid = native.syscall(186)  # gettid: guest tid = host tid
        task.ident = _thread.get_ident()
        started.release()
        go.acquire()
        runner = VcpuRunner(task.vcpu, task)
        first = True
        while True:
            try:
                if first:  # an exec or a pause that began while it was being made
                    first = False
                    task.checkpoint()
                runner.run()
            except ThreadExit:
                if native.syscall(186) == os.getpid():  # gettid: the host's thread group leader (this
                    _stay()  # thread forked, and is its child's): as km's main thread
                self.ending.append(task.ident)  # (kernel/fork.py may wait for it to be gone)
                del self.ending[:-ENDING_KEPT]
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
        self.changed = Condition(self.lock)
        self.pause_requests = 0
        # another thread's pause_others may have begun while the fork waited for the
        # address space: that pauser is the parent's, and a child keeping the flag would
        # sit out its first blocking call forever (Task.blocking; Go's runtime
        # TestSignalDuringExec hung so)
        self.pausing_others = False
        self.exiting = 0
        self.shared_pending = signals.Pending()
        self.tasks = {}
        self.ending = []
        self.timers = Timers()  # a child has no timers
        self.posix_locked = set()  # nor its parent's POSIX locks
        self.zap = False
        self._procfs = None  # /proc/<pid> is the child's now
        self._opener = None

    def adopt_forked(self, task: Task) -> None:
        stub = self.gdb
        if stub is not None:  # gdb stays with the parent; the child runs free, or waits for a gdb of its own
            stub.forked_child()
            self.gdb = None
        self.forked = True  # its parent is a guest program: it, not km, reports how this one ends
        self.tasks = {task.tid: task}
        self.main_task = task
        task.on_syscall = self.syscalls.dispatcher(task)
        self.host_signals = signals.HostSignals(self.post_host, self.fds.floor)
        self.host_signals.install()
        self.timers.host = self.shared_pending.host = self.host_signals
        if stub is not None and self.spec.gdb_fork_wait:
            stub.child_waits(task)

    def execve(self, task: Task, path: str, argv: int, envp: int, comm: bytes, nofollow: bool = False) -> None:
        from kontain.kernel import exec as exec_

        exec_.execve(self, task, path, argv, envp, comm, nofollow)
        if self.gdb is not None:
            self.gdb.execed(task)  # (kernel/gdbstub.py: gdb loads the new program)

    def fork(self, task: Task, flags: int, exit_signal: int, stack: int, ptid: int, ctid: int) -> int:
        # A process that forks tends to fork again (shells, servers, build tools), and
        # every child would import on its own what the parent had not: import it all
        # once here, and let the children inherit it (kontain/lazy.py)
        lazy.preload()
        from kontain.kernel import fork as fork_

        pid = fork_.fork(self, task, flags, exit_signal, stack, ptid, ctid)
        if self.gdb is not None and not flags & F.CLONE_VFORK:
            self.gdb.forked(task, pid)  # (kernel/gdbstub.py: catch fork)
        return pid

    def take_own_signals(self) -> None:
        """The program asked for signals its own calls cause (``own_signals``): from now
        on every call collects the host's signals before it returns (syscalls/dispatch.invoke),
        so the polling tier leaves reads and writes to the handlers (a write to a socket
        whose peer has O_ASYNC queues SIGIO as it is made)."""
        self.own_signals = True
        if self.poller is not None:
            self.poller.own_signals()

    # imported at first use (kontain/lazy.py): many programs never look at either
    @property
    def procfs(self):
        """/proc as this program sees it (kernel/procfs.py)."""
        if self._procfs is None:
            from kontain.kernel.procfs import ProcFs

            self._procfs = ProcFs(self, self.procfd)
            if self.poller is not None:
                self._procfs.on_plain = self.poller.plain_dev
        return self._procfs

    @property
    def procfs_made(self):
        """/proc as this program sees it if something looked at it already, else None
        (``procfs`` would make it)."""
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
        """exec: every thread but ``task`` ends (Linux's de_thread), each at its next safe
        point (kernel/runstate.py), a thread being made meanwhile before it starts."""
        with self.lock:
            self.zapper = task
            self.zap = True
            self.changed.notify_all()  # (paused threads end too)
            others = [t for t in self.tasks.values() if t is not task]
        for t in others:
            self.kick(t)
        with self.lock:
            while len(self.tasks) > 1:
                self.changed.wait()
            self.zap = False

    def exit_thread(self, task: Task, status: int) -> None:
        """exit(2): the thread ends; the last one ends the process with its status."""
        with self.lock:
            if len(self.tasks) == 1:
                last = True
            else:
                last = False
                del self.tasks[task.tid]
                self.exiting += 1
        if last:
            raise ProcessExit(status=status & 0xFF)
        try:
            # (a pause waits for this: the program's memory changes here, the
            # clear-child-tid word that musl's thread list lock is)
            task.exit_thread()
            vcpu = task.vcpu
            vcpu.set_immediate_exit(False)
        finally:
            with self.lock:
                self.exiting -= 1
                self.retire_vcpu(task)
        raise ThreadExit()

    def describe_death(self, sig: int, code: int | None, addr: int | None) -> str:
        return f"{self.name}: killed by {signals.describe(sig, code, addr)}"


_ending = _thread.allocate_lock()  # held by the thread that ends km (Process.finish)


def _stay() -> None:
    """The host thread group's leader never ends before the process: once it has, the
    host shows no /proc/<pid>/maps and process_vm_readv/writev of the pid (km's guest
    memory copies, native.read_mem) fail, as when the program's other threads exec."""
    never = _thread.allocate_lock()
    never.acquire()
    never.acquire()


def _cpu_time(tid: int) -> int:
    """Host thread ``tid``'s CPU time in ns (its CPU clock: CPUCLOCK_SCHED | CPUCLOCK_PERTHREAD
    by tid); 0 once it has ended."""
    try:
        return time.clock_gettime_ns(~tid << 3 | 6)
    except OSError:
        return 0


_SI_TIMER = S.SI_TIMER.to_bytes(4, "little", signed=True)  # si_code of a POSIX timer signal
_SI_QUEUE = (-1).to_bytes(4, "little", signed=True)  # si_code of sigqueue
_SI_KERNEL = S.SI_KERNEL.to_bytes(4, "little", signed=True)  # si_code of an itimer's signal (SEND_SIG_PRIV)
_CLD_KILLED, _CLD_DUMPED = S.CLD_KILLED.to_bytes(4, "little"), S.CLD_DUMPED.to_bytes(4, "little")
ENDING_KEPT = 64  # ending threads remembered (older ones are long gone)

ADDR_NO_RANDOMIZE = 0x0040000


def _randomizer():
    """Random page-aligned offsets, or none when km runs with ASLR off (setarch -R),
    which is what the program would have got natively."""
    if native.syscall(135, 0xFFFFFFFF) & ADDR_NO_RANDOMIZE:  # personality(query)
        return lambda limit: 0
    return lambda limit: int.from_bytes(os.urandom(4), "little") % (limit // L.PAGE) * L.PAGE


_ARGS_AREA: list = []  # (start, end) of km's own argv area, or None: read once


def _name_process(name: bytes, argv: list[bytes]) -> None:
    """ps, top and /proc/<pid>/comm show the program, not python: the thread's name, and
    as much of the program's argv as fits in km's own argv area (what /proc/<pid>/cmdline
    reads, for `ps aux`)."""
    buf = bytearray(name[:F.TASK_COMM_LEN - 1] + b"\0")
    native.syscall(157, 15, native.address_of(buf), 0, 0, 0)  # prctl(PR_SET_NAME)
    if not _ARGS_AREA:  # (once: km's argv area stays where it is, and a fork's child has its parent's)
        try:
            with open("/proc/self/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            _ARGS_AREA.append((int(fields[45]), int(fields[46])))  # arg_start, arg_end (fields 48 and 49)
        except (OSError, IndexError, ValueError):
            _ARGS_AREA.append(None)
    if _ARGS_AREA[0] is None:
        return
    start, end = _ARGS_AREA[0]
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


def _lift_address_space_limit() -> None:
    """RLIMIT_AS bounds the program, which km holds to it (self.rlimits, syscalls/sysinfo.py);
    km's own process holds the whole guest window and its guard (~70 GiB of reserved
    address space): its soft limit goes up to the hard one, or km could not start under a
    `ulimit -v` at all."""
    import resource as r

    soft, hard = r.getrlimit(r.RLIMIT_AS)
    if soft != hard:
        try:
            r.setrlimit(r.RLIMIT_AS, (hard, hard))
        except (ValueError, OSError):
            pass


def _host_rlimit(resource: int) -> tuple[int, int]:
    import resource as r

    soft, hard = r.getrlimit(resource)
    inf = F.RLIM_INFINITY
    return (inf if soft == r.RLIM_INFINITY else soft, inf if hard == r.RLIM_INFINITY else hard)


_AUXV: list = []  # host_auxv's answer, once (a fork's child has its parent's)


def host_auxv() -> dict[int, int]:
    """km's own auxiliary vector: the same CPU and kernel, so the same hardware caps."""
    if not _AUXV:
        _AUXV.append(_read_auxv())
    return _AUXV[0]


def _read_auxv() -> dict[int, int]:
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
