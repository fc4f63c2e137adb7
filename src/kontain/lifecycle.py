"""The life of a guest process, in one place.

Every caller drives a VM through these steps, and through nothing else: km's command
line (cli/main.py), a km server's workers (cli/server.py), and later snapshots, the gdb
stub and krun.  (fork and exec are steps of a running process: kernel/fork.py builds a
new VM over the memory it inherits, kernel/exec.py loads a new program into the same VM.)

::

    Spec ──prepare──▶ Process ──launch──▶ main Task ──run──▶ ProcessExit ──finish──▶ km ends as the program did
    (spec.py)        (the VM, its memory,    (the program,          │
                      vCPU 0, the probe:       its stack)            ├─ Process.pause_all / resume_all
                      a server's worker                              │  (every vCPU parked at a boundary)
                      does it ahead)                                 └─ save / restore of each component

The syscall layer is wired in here (``Syscalls``): the process model (kernel/) knows
nothing of the table or the dispatcher, it asks this object for a task's dispatcher and
for the polling tier.
"""

from __future__ import annotations

import os
import time

from kontain.errors import KmError, say
from kontain.kernel.process import Process
from kontain.spec import Spec
from kontain.syscalls import dispatch, table


class Syscalls:
    """What serves the program's system calls (syscalls/), for the process model."""

    def __init__(self, spec: Spec):
        self.strace = spec.strace
        for nr, errno in spec.deny:
            table.deny(nr, errno)

    def dispatcher(self, task):
        return dispatch.make_dispatcher(task, strace=self.strace, poller=task.process.poller)

    def poller(self, process):
        from kontain.kernel.poll import Poller

        return Poller(process, dispatch.invoke, table.POLLABLE, dispatch.invoke_own)


def prepare(spec: Spec):
    """A process with its VM built (no program yet): what a server's worker keeps ready."""
    p = Process(spec, Syscalls(spec))
    p.prepare()
    return p


def ready(proc, fd: int, *, resumed: bool = False) -> None:
    """The program is about to run: ``fd`` (km --ready-fd, moved out of the guest's range
    by ``_keep_ready``) is the write end of the FIFO ``krun start`` waits on (oci/ready.py),
    closed when the program waits, ends or has run a while (kernel/readyfd.py); a resumed
    program is past its start-up: at once."""
    if fd >= 0:
        # The families of the calls a program makes first are imported now, not at those
        # calls: a shell's way to its `trap` is shorter (kontain/lazy.py defers them for
        # programs that never call them)
        from kontain import lazy
        from kontain.kernel.readyfd import ReadyFd

        for family in lazy.FIRST_CALLS:
            __import__(family)
        r = ReadyFd(fd)
        if resumed:
            r.close()
        else:
            proc.ready_fd = r
            r.watch(proc)


def _keep_ready(proc, fd: int) -> int:
    """km --ready-fd's descriptor made km's own: moved above the guest's descriptors
    (kernel/fdtable.py) as soon as the process has its table.  It came as one of the
    guest's numbers (the first past the ones crun preserves): left there, a snapshot's
    restore would put the program's own descriptor at that number, and ``ready`` would
    then close the program's; and the program must see exactly the descriptors crun
    gives it."""
    if fd < 0:
        return fd
    from kontain import native

    high = native.dup_at_least(fd, proc.fds.floor)
    try:
        os.close(fd)
    except OSError:
        return -1  # (not open: nothing to close later)
    return high if high >= 0 else -1


def run_program(spec: Spec, *, prepared=None, report=None, started: tuple[float, float] | None = None,
                snapshot=None, ready_fd: int = -1) -> int:
    """Run what ``spec`` says to its end; returns km's exit status (when the program
    dies of a signal, km dies of it instead).  ``prepared``: a process whose VM is built
    (``prepare``) for a spec this one fits.  ``report``: told how the program ended,
    before km ends the same way (a server's worker tells its client).  ``started``:
    (perf_counter, process_time) at km's first line, for --timings.  ``snapshot``: the
    snapshot file ``spec.program`` is, read already (a km server checked it)."""
    from kontain.loader.exec import resolve

    if prepared is not None and (snapshot is not None or _snapshot_file(spec.program)):  # km FILE, a km server
        return resume(spec.program, prepared=prepared, report=report, timings=spec.timings, snap=snapshot,
                      ready_fd=ready_fd)
    try:
        prog = resolve(spec.program, spec.args)
        if prepared is None:
            proc = prepare(spec)
        else:
            proc = prepared
            proc.take(spec)
        ready_fd = _keep_ready(proc, ready_fd)
        proc.launch(prog)
    except KmError as e:  # the program cannot be run (ExecError), /dev/kvm (KvmError)...
        say(f"{spec.program}: {e}" if e.about_program else str(e))
        return e.status
    except MemoryError as e:
        say(f"out of memory: {e}")
        return 1
    proc.report = report  # before the run: another thread may end the process (Process.finish)
    if spec.timings:
        proc.at_end = lambda: report_timings(proc, started)
    if spec.gdb:
        from kontain.kernel import gdbstub

        try:
            stub = gdbstub.start(proc, max(spec.gdb, 0), wait=spec.gdb_wait)
        except OSError as e:
            say(f"{e} (choose another port)")
            return 1
        if spec.gdb_wait:
            stub.initial(proc.main_task)  # stopped before the first instruction until gdb continues it
    if spec.pause_check:
        import _thread

        _thread.start_new_thread(pause_check, (proc, spec.pause_check))
    ready(proc, ready_fd)
    end = proc.run()
    if proc.ready_fd is not None:
        proc.ready_fd.close()  # (the program ended: ready, if it had not started up yet)
    proc.finish(end)
    return end.status


def pause_check(proc, count: int) -> None:
    """--pause-check: pause the program ``count`` times at arbitrary moments (0-2 ms
    apart), save its whole state (Process.save: every thread's registers, general, system
    and FPU, and the rest) and restore it while it is paused, resume it; then say how it
    went (a check of Process.pause_all, save and restore, which debuggers and snapshots
    rely on: the program must not notice)."""
    import random

    from kontain import native
    from kontain.kernel import signals
    from kontain.kvm import abi as k

    rip_at = 8 * k.REG_NAMES.index("rip")
    signals.block_forwarded()
    native.name_thread(b"km-pausecheck")
    threads = odd = 0
    for _ in range(count):
        time.sleep(random.random() * 0.002)
        tasks = proc.pause_all()
        try:
            state = proc.save()
            for t in state["tasks"]:
                rip = int.from_bytes(t["vcpu"]["regs"][rip_at:rip_at + 8], "little")
                # every parked thread is in user mode or in km's own guest code
                odd += not (rip < proc.mem.size or rip >= proc.sys_gpa)
            proc.restore(state)
            odd += proc.save() != state  # the round trip changes nothing
            threads += len(tasks)
        finally:
            proc.resume_all()
    say(f"pause check: paused the program {count} times, {threads} threads read, {odd} odd")


def kvm_counters(proc) -> list[str]:
    """KVM's own counters for the program, every vCPU's summed, then the VM's (nonzero
    ones, by KVM's names: exits, pf_taken, tlb_flush...): where the time inside KVM_RUN
    went, which km's own clocks cannot split (docs/debugging.md)."""
    from kontain.kvm.api import read_stats

    total: dict[str, int] = {}
    for vcpu in [t.vcpu for t in proc.tasks.values() if t.vcpu is not None] + proc.idle_vcpus:
        for name, value in read_stats(vcpu.fd).items():
            total[name] = total.get(name, 0) + value
    lines = []
    for what, counts in (("vCPUs", total), ("VM", read_stats(proc.vm.fd))):
        shown = " ".join(f"{n}={v}" for n, v in counts.items() if v)
        if shown:
            lines.append(f"km: timings: KVM's counters, {what}: {shown}")
    return lines


def report_timings(proc, started: tuple[float, float] | None) -> None:
    """Where start-up time went, each step's end relative to km's first line (or, run
    as ``python -m kontain``, to the start of the VM's preparation)."""
    marks = proc.timings + [("exit", time.perf_counter())]
    lines = []
    if started is not None:
        t0 = started[0]
        lines.append(f"km: timings: the interpreter's start-up took {started[1] * 1e3:.2f} ms of CPU before km's "
                     "first line")
        lines.append(f"km: timings: {'imports':<8} +{(marks[0][1] - t0) * 1e3:8.2f} ms")
    else:
        t0 = marks[0][1]
    lines += [f"km: timings: {name:<8} +{(t - t0) * 1e3:8.2f} ms" for name, t in marks[1:]]
    run = [t for name, t in marks if name == "run"]
    if run:  # (CLOCK_MONOTONIC, as another process's perf_counter: bench/snapshot.py measures from its command)
        lines.append(f"km: timings: the program ran from CLOCK_MONOTONIC {run[0]:.6f} s")
    if proc.poller is not None:
        poller = proc.poller
        by_vcpu = ", ".join(f"{vid}: {n}" for vid, n in enumerate(poller.by_vcpu) if n)
        lines.append(f"km: timings: {poller.served} system calls served by polling, without an exit (by vCPU: {by_vcpu}; "
                     f"{poller.served_natively} by the native poller; {poller.carried} writes it began "
                     f"finished by their thread)")
        lines.append(f"km: timings: polling: slots switched on {poller.switched_on} times, backed off "
                     f"{poller.backed_off} times; the poller parked {poller.parked} times, slept idle {poller.idled} times; "
                     f"{poller.proven_on} switched on at a site an earlier run proved")
    if proc.rewriter is not None:
        lines.append(f"km: timings: {proc.rewriter.report()}")
    lines += kvm_counters(proc)
    os.write(2, ("\n".join(lines) + "\n").encode())


def _snapshot_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    from kontain.kernel import snapfile

    return snapfile.is_snapshot(head)


def resume(path: str, *, timings: bool = False, kvm_device: str = "/dev/kvm",
           started: tuple[float, float] | None = None, prepared=None, report=None, snap=None,
           scale_to_zero: bool = False, image_files: bool = False, ready_fd: int = -1) -> int:
    """``km resume FILE`` (and ``km FILE`` for a snapshot): run the program of a
    snapshot file (kernel/snapshot.py) from where it was taken, to its end.
    ``prepared``, ``report``: as for run_program (a km server's worker: its VM must fit
    the snapshot's, which the server checked before taking the client); ``snap``: the
    file, read already (snapfile.read).  ``scale_to_zero``: the program's listening
    sockets first, alone, and the rest (the VM too) once a connection comes to one of
    them (kernel/snapfds.py ``listen_first``)."""
    from kontain.arch.x86_64.layout import WINDOW_LIMIT
    from kontain.kernel import resume as resuming
    from kontain.kernel import snapfile
    from kontain.vcpu import VcpuRunner

    began = time.perf_counter()
    try:
        if snap is None:
            snap = snapfile.read(path)
        read = time.perf_counter()
        head = resuming.need(snap.state, "head", dict)
        poll, window = head.get("poll"), head.get("window")
        if poll not in ("auto", "always", "off") or type(window) is not int or not 0 < window <= WINDOW_LIMIT \
                or window % (1 << 30):
            raise snapfile.SnapshotError(f"{path}: not a km snapshot, or a damaged one (bad VM settings)")
        spec = Spec(path, [], [], poll=poll, window=window, timings=timings, kvm_device=kvm_device)
        if scale_to_zero:
            from kontain.kernel import snapfds

            resuming.check_state(snap.state, path)
            snapfds.listen_first(snap, path)
            began = time.perf_counter()  # (--timings: from the first connection)
        if prepared is None:
            proc = prepare(spec)
        else:
            if not spec.fits(prepared.spec):
                raise snapfile.SnapshotError(f"{path}: taken with other VM options than this km server's")
            proc = prepared
            proc.take(spec)
        ready_fd = _keep_ready(proc, ready_fd)
        if timings:  # (the file was read before the process took the spec: first in its timings)
            proc.timings[:0] = [("resume", began), ("read", read)]
        if getattr(snap, "warm", False):  # (a km server's warm worker: its memory is in place)
            task = resuming.restore_process(proc, snap, path, image_files)
        else:
            resuming.check_host(proc, snap, path)
            task = resuming.restore(proc, snap, path, image_files=image_files)
        proc.runner = VcpuRunner(task.vcpu, task)
    except KmError as e:
        say(str(e))
        return e.status
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError) as e:
        say(f"{path}: not a km snapshot, or a damaged one ({type(e).__name__}: {e})")
        return 126
    except OSError as e:  # (a value of the file the host refused: an offset, a descriptor...)
        say(f"{path}: cannot be resumed ({e.strerror or e})")
        return 126
    except MemoryError as e:
        say(f"out of memory: {e}")
        return 1
    finally:
        if snap is not None:
            os.close(snap.fd)  # (the memory is mapped: the mappings keep the file)
    proc._mark("resumed")
    proc.report = report
    ready(proc, ready_fd, resumed=True)
    end = proc.run()
    if timings:
        report_timings(proc, started)
    proc.finish(end)
    return end.status
