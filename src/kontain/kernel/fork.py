"""fork, vfork and clone without CLONE_VM: the monitor forks itself.

The guest's memory is the host process's memory, so the host's fork gives the child a
copy-on-write copy of it (and MAP_SHARED mappings stay shared), at the same addresses,
with the same descriptors.  What does not survive a fork is KVM: a VM belongs to the
process that made it.  So the child makes a new VM over the inherited memory (the same
memslots, the same system region), a vCPU with the forking thread's registers and
RAX = 0, and goes on as the only thread of the new process.  Guest pid = host pid.

vfork (CLONE_VFORK) is a fork whose parent waits until the child execs or exits: the
child holds the write end of a pipe that its exec or exit closes.  The child does not
share the parent's memory, which only matters to programs that do more than exec or
exit in a vfork child (POSIX leaves that undefined).
"""

from __future__ import annotations

import _thread
import os
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.arch.x86_64 import cpu
from kontain.errors import ForkedChild, GuestError
from kontain.kernel.task import Task
from kontain.kvm import abi as k


def fork(p, parent: Task, flags: int, stack: int, ptid: int, ctid: int) -> int:
    """The parent's side: returns the child's pid.  In the child, raises ForkedChild."""
    q = parent.q
    regs = [q[i] for i in range(k.Q_REGS, k.Q_REGS + 18)]
    sregs = parent.vcpu.get_sregs()
    xsave = parent.vcpu.get_xsave()
    vfork = bool(flags & F.CLONE_VFORK)
    rfd = wfd = -1
    try:
        if vfork:
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            rfd, wfd = _above(p, rfd), _above(p, wfd)
            if min(rfd, wfd) < 0:
                raise OSError(-min(rfd, wfd), "no descriptor above the program's")
        pid = os.fork()
    except OSError as e:  # the host's limits are the program's (RLIMIT_NPROC: EAGAIN), and so is the error
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        raise GuestError(e.errno) from None
    if pid == 0:
        if vfork:
            os.close(rfd)
        task = _become_child(p, parent, regs, sregs, xsave, flags, stack, ctid)
        p.vfork_fd = wfd
        raise ForkedChild(task)
    if flags & F.CLONE_PARENT_SETTID:
        try:
            p.mem.write(ptid, struct.pack("<i", pid))
        except GuestError:
            pass
    if vfork:
        os.close(wfd)
        p.wait_for_fd(parent, rfd)
        os.close(rfd)
    return pid


def _above(p, fd: int) -> int:
    """A monitor descriptor belongs above the guest's range."""
    new = native.dup_at_least(fd, p.fds.floor)
    os.close(fd)
    return new


def _become_child(p, parent: Task, regs: list[int], sregs: bytearray, xsave: bytearray, flags: int, stack: int,
                  ctid: int) -> Task:
    """In the child: a new VM over the inherited memory, and the forking thread again."""
    native.reset_pid()
    old_vcpus = [t.vcpu for t in p.tasks.values()] + list(p.idle_vcpus)
    for vcpu in old_vcpus:
        native.munmap(vcpu.run_addr, vcpu.run_size)
        os.close(vcpu.fd)
    p.vm.close()
    p._create_vm()
    p.vm.set_memory_region(p.sys.SLOT, 0, p.sys_gpa, p.sys_size, p.sys.host)
    p.slots.rebind(p.vm.set_memory_region)
    p.reset_after_fork()
    p.mm.lock = _thread.RLock()  # another thread may have held it at the fork
    if p.poller is not None:
        p.poller.reset()  # the poller thread did not come along
    vcpu = p.vm.create_vcpu(0)
    cpu.init_vcpu(vcpu, p.cpuid, p.xcr0, p.platform.fmask, p.lstar(0))
    vcpu.set_sregs(cpu.child_sregs(sregs, 0))
    vcpu.set_xsave(xsave)
    cq = vcpu.q
    for i, v in enumerate(regs):
        cq[k.Q_REGS + i] = v
    cq[k.RAX] = 0
    cq[k.RIP] = regs[k.RCX - k.Q_REGS]  # where the parent's `syscall` returns
    cq[k.RFLAGS] = regs[k.R11 - k.Q_REGS] | cpu.RFLAGS_INIT
    if stack:
        cq[k.RSP] = stack
    vcpu.mark_regs_dirty()
    pid = os.getpid()
    task = Task(p, vcpu, pid, _thread.get_ident())
    task.sigmask = parent.sigmask
    task.altstack = parent.altstack
    if flags & F.CLONE_CHILD_SETTID:
        try:
            p.mem.write(ctid, struct.pack("<i", pid))
        except GuestError:
            pass
    if flags & F.CLONE_CHILD_CLEARTID:
        task.clear_child_tid = ctid
    p.adopt_forked(task)
    return task
