"""A guest process: one VM, its address space, descriptors, dispositions and threads.

``Process.start`` is the monitor's start-up sequence (docs/ARCHITECTURE.md numbers it):

1. reset the host's signal dispositions; set aside descriptors for the monitor
2. open /dev/kvm and create the VM (without zapping all shadow pages on slot changes)
3. reserve the guest window; build the system region (page tables, GDT, IDT, stub)
4. create vCPU 0 in 64-bit user mode (CPUID, XCR0, segments, MSRs)
5. probe how `syscall` behaves here (PVM or hardware KVM) and patch the stub
6. load the program (and its interpreter) and build the initial stack
7. set the entry registers and run
"""

from __future__ import annotations

import os
import time

from kontain import native
from kontain.abi import flags as F
from kontain.arch.x86_64 import cpu, guest_code, platform
from kontain.arch.x86_64 import layout as L
from kontain.errors import ProcessExit
from kontain.kernel import signals
from kontain.kernel.fdtable import FdTable
from kontain.kernel.procfs import ProcSelf
from kontain.kernel.task import Task
from kontain.kvm import abi as k
from kontain.kvm.api import Kvm
from kontain.loader import load
from kontain.memory.mm import AddressSpace
from kontain.memory.slots import SlotMap
from kontain.memory.window import GuestMemory
from kontain.syscalls import dispatch
from kontain.vcpu import VcpuRunner


class Config:
    """What the user chose on km's command line."""

    def __init__(self, *, window: int = L.DEFAULT_WINDOW, memory: int | None = None, strace: bool = False,
                 core: bool = False, timings: bool = False, kvm_device: str = "/dev/kvm"):
        self.window = window  # guest address space
        self.memory = memory  # cap on accessible guest memory (--memory)
        self.strace = strace
        self.core = core  # leave a core file when the program dies of a core-dumping signal
        self.timings = timings
        self.kvm_device = kvm_device


class Process:
    """The guest process this km runs."""

    def __init__(self, config: Config, path: str, argv: list[bytes], envp: list[bytes]):
        self.config = config
        self.path = path
        self.name = path
        self.argv = argv
        self.envp = envp
        self.timings: list[tuple[str, float]] = []
        self.exe_path = os.fsencode(os.path.realpath(path))  # what /proc/self/exe names
        self.exe_path_buf = bytearray(self.exe_path + b"\0")
        self.personality = F.PER_LINUX
        self.actions = signals.SignalActions()
        self.rlimits: dict[int, tuple[int, int]] = {r: _host_rlimit(r) for r in (F.RLIMIT_AS, F.RLIMIT_DATA)}
        self.tasks: dict[int, Task] = {}

    def _mark(self, what: str) -> None:
        if self.config.timings:
            self.timings.append((what, time.perf_counter()))

    def start(self, exe_fd: int | None = None, head: bytes | None = None, size: int = 0) -> Task:
        """Build the VM and load the program; returns the main thread, ready to run."""
        config = self.config
        self._mark("start")
        signals.reset_host_dispositions()
        self.fds = FdTable()
        self.kvm = Kvm(config.kvm_device, fd_floor=self.fds.floor)
        self.vm = self.kvm.create_vm()
        if self.kvm.check_extension(k.KVM_CAP_DISABLE_QUIRKS2) & k.KVM_X86_QUIRK_SLOT_ZAP_ALL:
            # deleting a memslot then zaps only that slot's shadow pages, not all of them
            self.vm.enable_cap(k.KVM_CAP_DISABLE_QUIRKS2, k.KVM_X86_QUIRK_SLOT_ZAP_ALL)
        self._mark("vm")
        self.mem = GuestMemory(config.window)
        self.sys = cpu.SystemRegion(self.vm, config.window)
        nslots = self.kvm.check_extension(k.KVM_CAP_NR_MEMSLOTS) or 509
        self.slots = SlotMap(self.vm.set_memory_region, self.mem.base, first=1, limit=nslots)
        self.layout = L.Layout(config.window, _randomizer())
        self.mm = AddressSpace(self.mem, self.slots, mmap_top=self.layout.mmap_top, mmap_min=L.MMAP_MIN,
                               limit=config.memory)
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
        self._mark("probe")
        loaded = load.load_program(self.mm, self.path, pie_base=self.layout.pie_base,
                                   fd=exe_fd, head=head, size=size)
        self.mm.set_brk_start(loaded.brk + self.layout.brk_offset)
        top = self.layout.stack_top
        self.mm.mmap(top - L.STACK_MAX, L.STACK_MAX, F.PROT_READ | F.PROT_WRITE,
                     F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_FIXED, -1, 0, name="[stack]")
        auxv = self._auxv(loaded)
        sp = load.build_stack(self.mm, top, self.argv, self.envp, self.path.encode(), auxv, os.urandom(16))
        self.auxv_bytes = load.read_auxv(self.mm, sp, len(self.argv), len(self.envp))
        self.procfs = ProcSelf(self)
        _name_thread(os.path.basename(self.path))
        self._mark("load")
        task = Task(self, vcpu, os.getpid())
        self.tasks[task.tid] = task
        q = vcpu.q
        for i in range(k.Q_REGS, k.Q_REGS + 18):
            q[i] = 0
        q[k.RIP] = loaded.entry
        q[k.RSP] = sp
        q[k.RFLAGS] = cpu.RFLAGS_INIT
        vcpu.mark_regs_dirty()
        task.on_syscall = dispatch.make_dispatcher(task, strace=config.strace)
        self.runner = VcpuRunner(vcpu, task)
        return task

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
        """Run the program until it exits or dies; returns how."""
        self._mark("run")
        try:
            self.runner.run()
        except ProcessExit as e:
            return e
        raise AssertionError("the vCPU loop returned")

    def describe_death(self, sig: int, code: int | None, addr: int | None) -> str:
        return f"{self.name}: killed by {signals.describe(sig, code, addr)}"


ADDR_NO_RANDOMIZE = 0x0040000


def _randomizer():
    """Random page-aligned offsets, or none when km runs with ASLR off (setarch -R),
    which is what the program would have got natively."""
    if native.syscall(135, 0xFFFFFFFF) & ADDR_NO_RANDOMIZE:  # personality(query)
        return lambda limit: 0
    return lambda limit: int.from_bytes(os.urandom(4), "little") % (limit // L.PAGE) * L.PAGE


def _name_thread(name: str) -> None:
    """ps, top and /proc/self/comm show the program's name, not python's."""
    buf = bytearray(os.fsencode(name)[:15] + b"\0")
    native.syscall(157, 15, native.address_of(buf), 0, 0, 0)  # prctl(PR_SET_NAME)


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
