"""fork, vfork and clone without CLONE_VM: the monitor forks itself.

The guest's memory is the host process's memory, so the host's fork gives the child a
copy-on-write copy of it (and MAP_SHARED mappings stay shared), at the same addresses,
with the same descriptors.  What does not survive a fork is KVM: a VM belongs to the
process that made it.  So the child makes a new VM over the inherited memory (the same
memslots, the same system region), a vCPU with the forking thread's registers and
RAX = 0, and goes on as the only thread of the new process.  Guest pid = host pid.

vfork (CLONE_VFORK) is a fork whose parent waits until the child execs or exits: the
child holds the write end of a pipe that its exec or exit closes.  The child does not
share the parent's memory while it runs, but the pages it wrote go back to the parent
through that pipe when it lets the parent go (kernel/vforkmem.py): glibc's posix_spawn
reports a failed exec that way.

The host's fork is os.fork, unless the program asked for what only the host's clone
gives: an exit signal other than SIGCHLD (the parent is told of the child's end by that
signal, and only its __WALL and __WCLONE waits see the child), CLONE_PARENT (the
child's parent is the caller's) or new network, UTS or IPC namespaces (the host makes
them, and checks the caller's privilege: syscalls/ns.py).  The host kernel then keeps Linux's rules for the
program, since the guest's parent and child are the host's.  That clone is made as
os.fork makes fork() (arch/x86_64/hostcode.py), but without glibc's fork, which takes
its allocator's locks first: it waits for the threads that are ending, the one kind of
km thread that runs the C library without the GIL (guest threads' host calls use no
lock of it), and then mends glibc's record of the thread's id.
"""

from __future__ import annotations

import _imp
import _thread
import gc
import os
import struct
import sys
import time

from kontain import native
from kontain.abi import flags as F
from kontain.abi import signals as S
from kontain.abi.errno import EAGAIN, EPERM
from kontain.arch.x86_64 import cpu, hostcode
from kontain.errors import ForkedChild, GuestError
from kontain.kernel.task import Task
from kontain.kvm import abi as k


def fork(p, parent: Task, flags: int, exit_signal: int, stack: int, ptid: int, ctid: int) -> int:
    """The parent's side: returns the child's pid.  In the child, raises ForkedChild."""
    q = parent.q
    regs = [q[i] for i in range(k.Q_REGS, k.Q_REGS + 18)]
    sregs = parent.vcpu.get_sregs()
    xsave = parent.vcpu.get_xsave()
    vfork = bool(flags & F.CLONE_VFORK)
    # Linux's child of CLONE_VM | CLONE_VFORK writes into its parent's memory: km's gives
    # what it wrote back when it lets the parent go (kernel/vforkmem.py): whole pages when
    # the caller is the process's one thread; when other threads of the parent run
    # meanwhile, the bytes it changed (told by a keeper of the memory as it was at the
    # fork), if it runs on a stack of its own (clone's form, glibc's posix_spawn)
    shares = vfork and bool(flags & F.CLONE_VM)
    alone = len(p.tasks) == 1
    if shares and not alone:
        _tid_offset(p, probe=True)  # (the child's keeper needs it: found here, with the other threads)
    rfd = wfd = -1
    pid = -1
    link = _new_link(p)
    try:
        if vfork:
            rfd, wfd = os.pipe2(os.O_CLOEXEC)
            rfd, wfd = _above(p, rfd), _above(p, wfd)
        # The monitor's objects are frozen for the fork: the child's garbage collector then
        # never walks them, which wrote to (so copied) hundreds of pages of the parent's
        # heap shared copy-on-write: ~2.4 ms of each fork+exec child's ~15 ms here.  The
        # parent takes them back at once; the child at its exec (exec.py).
        gc.freeze()
        try:
            with p.mm.lock:  # as Linux's fork holds mmap_lock: no mapping is half made in the child
                _imports_quiet()
                try:
                    pid = _host_fork(p, flags, exit_signal)  # (a shmat's attachment outside the window, a VMA list mid-change)
                finally:
                    _imp.release_lock()  # (in the child too: it holds the lock after the fork)
        finally:
            if pid != 0:
                gc.unfreeze()
    except OSError as e:  # no process (RLIMIT_NPROC: EAGAIN; memory: ENOMEM), as Linux's fork
        for fd in (rfd, wfd):
            if fd >= 0:
                os.close(fd)
        if link:
            _free_link(p, link)
        raise GuestError(e.errno or EAGAIN) from None
    if pid == 0:
        native.reset_pid()  # (process_vm_* name this process)
        if vfork:
            os.close(rfd)
        if p.vfork_fd >= 0:  # this process is a vfork child: its parent waits for it, not for its children
            os.close(p.vfork_fd)
            p.vfork_fd = -1
        if p.vfork_keeper is not None:  # (... and its keeper is not this one's)
            p.vfork_keeper.drop()
            p.vfork_keeper = None
        p.keepers = []
        if shares and not alone:  # (first: before anything writes the child's copy)
            from kontain.kernel import vforkmem

            p.vfork_keeper = vforkmem.Keeper.start(p) if stack else None
            shares = p.vfork_keeper is not None
        _links_in_child(p, link)
        task = _become_child(p, parent, regs, sregs, xsave, flags, stack, ctid)
        p.vfork_fd, p.vfork_shares = wfd, shares
        if shares and flags & F.CLONE_PARENT_SETTID:
            try:  # (the parent writes it after the fork: the child's copy must have it too)
                p.mem.write(ptid, struct.pack("<i", os.getpid()))
            except GuestError:
                pass
        if flags & F.CLONE_NEW_SERVED:
            task.credentials_changed()  # (new namespaces: as a thread that unshared them)
        raise ForkedChild(task)
    if link:
        p.children[pid] = link
    if flags & F.CLONE_PARENT_SETTID:
        try:
            p.mem.write(ptid, struct.pack("<i", pid))
        except GuestError:
            pass
    if vfork:
        os.close(wfd)
        from kontain.kernel import vforkmem

        try:
            vforkmem.receive(p, parent, rfd)  # (what a sharing child wrote, once it execs or ends)
        finally:
            os.close(rfd)
    return pid


def _imports_quiet() -> None:
    """Take the import system's lock once no other thread of km is inside an import.
    km imports its modules lazily (kontain/lazy.py), on whichever thread first needs
    one; a fork while another thread executes a module's code gives the child that
    module half made in sys.modules with its import lock held by a thread the child does
    not have, and the child's first use of it waits forever (a fork racing the
    rewriter's first import of kontain.loader.funcstarts hung so).  Held through the
    fork, the lock keeps a new import from starting (each takes it first to find its
    module lock); released after it in parent and child alike."""
    bootstrap = sys.modules.get("_frozen_importlib")
    locks = getattr(bootstrap, "_module_locks", {})
    me = _thread.get_ident()
    while True:
        _imp.acquire_lock()
        busy = None
        for ref in list(locks.values()):
            lock = ref()
            if getattr(lock, "owner", None) not in (None, me):
                busy = lock
                break
        if busy is None:
            return
        _imp.release_lock()  # (that import may need it to go on)
        try:
            busy.acquire()  # (waits for its end)
            busy.release()
        except RuntimeError:  # (importlib's _DeadlockError: that thread waits for an import of ours)
            _imp.acquire_lock()
            return


def _host_fork(p, flags: int, exit_signal: int) -> int:
    host_flags = flags & (F.CLONE_PARENT | F.CLONE_NEW_SERVED)
    if exit_signal == S.SIGCHLD and not host_flags:
        return os.fork()
    offset = _tid_offset(p, probe=True)
    if offset is None:  # (a C library km does not know: the exit signal is SIGCHLD, no namespace)
        if flags & F.CLONE_NEW_SERVED:
            raise OSError(EPERM, "namespaces need the host's clone")
        return os.fork()
    _settle(p, offset)
    return _clone(exit_signal | host_flags, offset)


def quiet_fork(p) -> int:
    """A copy of this process that no plain wait sees and whose end sends no signal (the
    host's clone with exit signal 0: only __WALL and __WCLONE waits see it), made by a
    process with one thread; -1 when km cannot make one (a C library it does not know).
    kernel/vforkmem.py's keeper is one: the program, which waits for its own children,
    must not meet it.  (No thread is made here to find glibc's tid field: the parent
    found it before the fork, ``fork``.)"""
    offset = _tid_offset(p)
    return -1 if offset is None else _clone(0, offset)


def _clone(flags: int, offset: int) -> int:
    """The host's clone with ``flags`` (an exit signal and CLONE_* bits), as os.fork makes
    fork(): 0 in the child, the child's pid in the parent."""
    global _cloner
    if _cloner is None:
        _cloner = (native.python_call("PyOS_BeforeFork"), native.python_call("PyOS_AfterFork_Parent"),
                   native.machine_code(hostcode.CLONE, native.c_long, native.c_ulong, native.c_ulong, keep_gil=True),
                   native.python_api("PyOS_AfterFork_Child"))
    before, after_parent, clone, after_child = _cloner
    before()
    pid = clone(flags, after_child)
    if pid == 0:
        # glibc's own record of the thread's id (pthread_kill uses it) is still the
        # parent thread's: the child's kicks must reach this one
        native.buffer_at(_thread.get_ident() + offset, 4)[:] = struct.pack("<i", native.syscall(SYS_gettid))
        return 0
    after_parent()
    if pid < 0:
        raise OSError(-pid, os.strerror(-pid))
    return pid


_cloner = None  # what _host_fork calls, made at its first use
_TID: list[int | None] = []
SYS_gettid = 186
SETTLE_NS = 200_000_000


def _tid_offset(p, probe: bool = False) -> int | None:
    """Where glibc's struct pthread (at pthread_self(), Python's thread ident) keeps the
    thread's id: the one place that holds the id of each thread looked at.  One thread's
    struct alone can hold its id more than once: the struct keeps pointers into the stack
    (0x00007ffc...) and into mmap'd memory (0x00007f29...), whose upper halves are words
    equal to a tid between 0x7f00 and 0x7fff, which a host with pid_max 32768 hands out
    (a vfork child with pid 32764 found two places, made no keeper, and the writes it was
    to give back were lost: vforkmem.c, 1 run in ~1000).  So the program's other threads'
    structs narrow the places down, and if there are none, one made for it (``probe``:
    not in a vfork child before its keeper, which must be made with one thread).  Known
    once, kept (children inherit it); an ambiguity that remains is not kept."""
    if _TID:
        return _TID[0]
    me = _thread.get_ident()
    # (a forked child's own struct holds its new id, not its task's)
    found = _places([(me, native.syscall(SYS_gettid))] +
                    [(task.ident, task.tid) for task in list(p.tasks.values()) if task.ident != me])
    if len(found) > 1 and probe:
        found = _narrowed(found, _probe(p))
    if len(found) > 1:
        return None
    _TID.append(found.pop() if found else None)
    return _TID[0]


def _tid_words(ident: int, tid: int) -> set[int]:
    """The offsets of the 4-byte words equal to ``tid`` in the first 2 KiB of the struct
    pthread at ``ident`` (glibc's is at 720)."""
    data = native.read_mem(ident, 2048)
    if not isinstance(data, bytes):
        return set()
    want = struct.pack("<i", tid)
    out = set()
    i = data.find(want)
    while i >= 0:
        if not i % 4:
            out.add(i)
        i = data.find(want, i + 1)
    return out


def _places(structs: list[tuple[int, int]]) -> set[int]:
    """The places of the id in the first (ident, tid) struct that hold the id in each
    other one too, as far as they narrow them down (``_narrowed``)."""
    found: set[int] = set()
    for n, (ident, tid) in enumerate(structs):
        words = _tid_words(ident, tid)
        found = _narrowed(found, words) if n else words
        if len(found) < 2:
            break
    return found


def _narrowed(found: set[int], other: set[int]) -> set[int]:
    """The places in both (another struct, whose pointers and id differ), unless none:
    a struct read at the wrong moment must not take the right place away."""
    return (found & other) or found


def _probe(p) -> set[int]:
    """The tid's places in the struct of a thread made to be looked at, which then ends
    (a host clone waits for it to be gone: ``_settle``)."""
    got: list[set[int]] = []
    done = _thread.allocate_lock()
    done.acquire()

    def look() -> None:
        try:
            got.append(_tid_words(_thread.get_ident(), native.syscall(SYS_gettid)))
            p.ending.append(_thread.get_ident())
        finally:
            done.release()

    try:
        _thread.start_new_thread(look, ())
    except RuntimeError:
        return set()
    done.acquire()
    return got[0] if got else set()


def _settle(p, offset: int) -> None:
    """Wait (briefly) until the host threads of ended guest threads are gone: one might
    hold a lock of the C library's allocator, which the child would find held forever.
    The kernel zeroes a thread's id word when it is gone (CLONE_CHILD_CLEARTID)."""
    deadline = time.monotonic_ns() + SETTLE_NS
    for ident in list(p.ending):
        while time.monotonic_ns() < deadline:
            word = native.read_mem(ident + offset, 4)
            if not isinstance(word, bytes) or word == b"\0\0\0\0":
                break
            time.sleep(0.0002)
    p.ending.clear()


# -- what a parent knows of its child ------------------------------------------------
#
# Linux's setpgid refuses (EACCES) to move a child that has exec'd, and a parent's wait
# sees whether its child dumped core; the host sees neither of a km.  So each child has a
# record in a region its parent shares with its children (made at the first fork), where
# its exec and its core leave a mark.
LINK_SIZE = 64  # one child's record in its parent's region of them
EXECED = 0  # the byte that says so
CORE_DUMPED = 1  # the child's end by a signal wrote a core file: its parent's wait says so (WCOREDUMP)
MAX_LINKS = 4096  # children remembered (one record each); past it, older gone ones are let go


def _new_link(p) -> int:
    """A zeroed record for the next child, in the region of them this process maps once
    (MAP_SHARED, inherited by the children: a fork costs no mapping, and a child has
    nothing to unmap of its siblings'); 0 when none is left."""
    if not p.link_region:
        addr = native.mmap(0, MAX_LINKS * LINK_SIZE, F.PROT_READ | F.PROT_WRITE, F.MAP_SHARED | F.MAP_ANONYMOUS)
        if addr <= 0:
            return 0
        # (their addresses packed in a bytearray, a stack: not a list of 4096 ints, as a
        # child drops its parent's, and freeing that many objects wrote to as many pages
        # shared copy-on-write, ~0.2 ms of each fork; nor an array.array, as the array
        # module imports collections, ~4.5 ms)
        p.link_region = addr
        p.link_free = bytearray(struct.pack(f"<{MAX_LINKS}Q", *range(addr + (MAX_LINKS - 1) * LINK_SIZE, addr - 1,
                                                                      -LINK_SIZE)))
    if not p.link_free:
        for pid in list(p.children):
            if native.syscall(62, pid, 0) == -3:  # kill(pid, 0): ESRCH, gone (and reaped)
                _free_link(p, p.children.pop(pid))
        if not p.link_free:
            return 0
    link = int.from_bytes(p.link_free[-8:], "little")
    del p.link_free[-8:]
    native.buffer_at(link, LINK_SIZE)[:] = bytes(LINK_SIZE)
    return link


def _free_link(p, link: int) -> None:
    """A record given back (its fork failed, or its child is gone)."""
    p.link_free += link.to_bytes(8, "little")


def _links_in_child(p, link: int) -> None:
    """The child: its record in its parent's region is ``link``; its parent's other
    children are not its own, and its own children get a region of their own (the
    parent's stays mapped: the child's record is in it; the grandparent's goes)."""
    p.children = {}
    if p.parent_link and p.parent_region and p.parent_region != p.link_region:
        native.munmap(p.parent_region, MAX_LINKS * LINK_SIZE)
    p.parent_link, p.parent_region = link, p.link_region
    p.link_region, p.link_free = 0, bytearray()


def child_execed(p, pid: int) -> bool:
    """Has the program's child ``pid`` exec'd since it was forked?"""
    link = p.children.get(pid)
    return bool(link) and native.buffer_at(link, LINK_SIZE)[EXECED] == 1


def execed(p) -> None:
    """This process execs: its parent's page says so."""
    if p.parent_link:
        native.buffer_at(p.parent_link, LINK_SIZE)[EXECED] = 1


def dumped_core(p) -> None:
    """This process wrote its core file and is about to die of the signal: its parent's
    page says so, for the core bit the host cannot give (km itself dies without a core,
    kernel/signals.die_by_signal)."""
    if p.parent_link:
        native.buffer_at(p.parent_link, LINK_SIZE)[CORE_DUMPED] = 1


def child_dumped_core(p, pid: int) -> bool:
    """Did the program's child ``pid`` write a core file as it died?"""
    link = p.children.get(pid)
    return bool(link) and native.buffer_at(link, LINK_SIZE)[CORE_DUMPED] == 1


def _above(p, fd: int) -> int:
    """A monitor descriptor belongs above the guest's range."""
    new = native.dup_at_least(fd, p.fds.floor)
    os.close(fd)
    if new < 0:
        raise OSError(-new, os.strerror(-new))
    return new


def _become_child(p, parent: Task, regs: list[int], sregs: bytearray, xsave: bytearray, flags: int, stack: int,
                  ctid: int) -> Task:
    """In the child: a new VM over the inherited memory, and the forking thread again."""
    vcpu = p.new_vm()
    for addr in (regs[k.RCX - k.Q_REGS], stack or regs[k.RSP - k.Q_REGS]):
        p.slots.ensure(addr)  # (the code it returns to and its stack: touched at once, so registered now)
    p.reset_after_fork()
    if p.ready_fd is not None:  # (only the engine's own process says when it runs: kernel/readyfd.py)
        p.ready_fd.close()
        p.ready_fd = None
    p.confinement.forked()  # (before the child has a second thread)
    p.mm.lock = _thread.RLock()  # another thread may have held it at the fork
    if p.rewriter is not None:
        # and the rewriter's: a thread handing out a trampoline holds it while it waits
        # for the address space (a new trampoline page) that this fork held; the page is
        # not the child's, and a site turning hot in the child would wait forever
        p.rewriter.lock = _thread.allocate_lock()
    if p.poller is not None:
        p.poller.reset()  # the poller thread did not come along
    if p.aio:
        from kontain.kernel import aio

        aio.forget_in_child(p)  # (after the address space's lock, which munmap takes)
    vcpu.set_sregs(cpu.child_sregs(sregs, 0, p.gs_base(0)))
    vcpu.set_xsave(xsave)
    hostcode.inherit_tsc(vcpu, parent.vcpu)
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
    if flags & F.CLONE_CLEAR_SIGHAND:
        p.actions.reset_for_exec()  # caught signals back to SIG_DFL, ignored ones stay ignored
    task.creds = parent.creds
    task.fs_own = parent.fs_own
    if flags & F.CLONE_CHILD_SETTID:
        try:
            p.mem.write(ctid, struct.pack("<i", pid))
        except GuestError:
            pass
    if flags & F.CLONE_CHILD_CLEARTID:
        task.clear_child_tid = ctid
    p.adopt_forked(task)
    return task
