"""The polling tier: system calls served without an exit to the monitor.

On PVM an exit to the monitor costs 25-125 us, while a `syscall` that stays in the guest
costs one redirect into the stub (3-30 us).  So for the calls that never block and need
none of the vCPU's registers (ids, time, stat, lseek, memory management, reads and
writes of regular files), the stub (guest.S, ``.poll``) posts
the call to its vCPU's slot and spins, and a monitor thread here polls the slots and
answers.  Every other call, and any call the poller declines, exits with `out` as
before.

Adaptive, so that no core burns for nothing: a vCPU's slot is switched on when its
thread has made BURST pollable calls before as many others (``consider``, from the
dispatcher: counted calls, never the clock, so that whether the tier is used does not
depend on how loaded the machine is); the poller parks while every thread it polls is
in a call that exits (which may block: ``away``), and switches every slot off and sleeps
once no request came for IDLE_NS.  The stub spins a bounded time, then takes its request
back and exits.

The guest can write its slot at will; it then only lies to itself: the poller re-checks
the number (the stub's map is a hint), takes a request with an atomic
compare-and-swap (as the stub takes it back), and checks every argument as the handler
always does.

A vCPU stopped by a kick while inside its stub (a signal to deliver, the process
ending) is brought by ``settle`` to one of the two points where Linux would deliver a
signal: before its syscall (which then runs again after the handler: it had not begun)
or after it (its result in RAX).
"""

from __future__ import annotations

import _thread
import os
import struct
import sys
import time

from kontain import native
from kontain.abi.errno import EFBIG, ENOSYS, EPIPE
from kontain.arch.x86_64 import guest_code as G
from kontain.arch.x86_64 import layout as L
from kontain.errors import OwnThread, ProcessExit
from kontain.kernel import nativepoll
from kontain.kernel.fdtable import posix_locked
from kontain.kvm import abi as k

# a slot's fields (arch/x86_64/layout.py) as indices of its u32 view, then of its signed u64 view
STATE, ON = L.SLOT_STATE // 4, L.SLOT_ON // 4
NR, ARG0, RESULT, RCX = L.SLOT_NR // 8, L.SLOT_ARGS // 8, L.SLOT_RESULT // 8, L.SLOT_RCX // 8
IDLE, POSTED, TAKEN, DONE, DONE_EXIT, DECLINED = (L.SLOT_IDLE, L.SLOT_POSTED, L.SLOT_TAKEN, L.SLOT_DONE,
                                                  L.SLOT_DONE_EXIT, L.SLOT_DECLINED)

MISSES = 8  # pollable calls that exited while the slot was on: look again whether it pays; it does
# not if, since it was switched on, at least 32 exited and more than half as many as were answered
BURST = 16  # pollable exits before as many other exits switch the slot on (64 cost file I/O 64 MiB
# ~3.5 ms of its ~22 ms of writes: 48 more exits before the tier, ~75 us each; python3 and Go's
# hello, which switch it on sooner now, did not change measurably)
SPIN = 20_000  # pause rounds the stub waits for an answer (~14 ns each here: ~0.3 ms)
SPIN_EAGER = L.POLL_SPIN_MAX  # with --poll always: as long as the stub spins at all ...
SPIN_FLOOR = 20_000  # ... unless calls time out: then down to about an exit's cost (``consider``)
# a slot that did not pay stays off for this many of its thread's pollable exits, doubling
BACKOFF_MIN, BACKOFF_MAX = 4 * BURST, 256 * BURST
PARK_ROUNDS = 32  # poller rounds with every polled thread away before the poller parks
DECLINES = 8  # a call declined this often on a vCPU is no longer posted there ...
RETRY_NS = 1_000_000_000  # ... for this long
# A socket's or a pipe's read that would wait, while its thread's slot is the only one on: the native
# poller waits this long for data (the stub spinning meanwhile) before it declines, as an
# exit costs ~50-100 us and puts the reply behind the thread's trip through the monitor.
# TCP echo 10k x64B, interleaved: 3.02 s without, 2.08 with 1 ms, 2.02 with 2 ms, 2.05 with
# 5 ms.  A read that waits longer costs this much spin before its exit; DECLINES of them
# clear the call's bit for RETRY_NS (at most ~1.6% of a CPU).
READ_WAIT_NS = 2_000_000
IDLE_NS = 3_000_000  # no request for this long: every slot off, the poller sleeps
NATIVE_ROUNDS = 32  # rounds of the native poller without a request before it returns to Python
PLACE_WAIT = 0.005  # seconds a vCPU thread that started the poller waits at most for it to leave its CPU
SWITCH_INTERVAL = 20e-6  # seconds: the longest a vCPU thread waits for the GIL while the poller runs

_S_IFMT, _S_IFREG, _S_IFSOCK, _S_IFIFO = 0o170000, 0o100000, 0o140000, 0o010000
# read, write, pread64, pwrite64, readv, writev: pollable only for a regular file (or, but
# pread64 and pwrite64, a socket or a pipe when the native poller runs: ``regular``)
RW = frozenset((0, 1, 17, 18, 19, 20))
# sendto, recvfrom: pollable only as a socket's send or recv, which the native poller makes
# (nativepoll.c plain_message), never the Python one
MESSAGES = frozenset((44, 45))
BY_FILE = RW | MESSAGES  # pollable or not by the descriptor's kind of file (``regular``)
_SYS_getcpu, _SYS_gettid = 309, 186


# clocks a thread may read from another thread with the same answer (not THREAD_CPUTIME)
_SHARED_CLOCKS = frozenset((0, 1, 2, 4, 5, 6, 7, 8, 9, 11))


class Slot:
    __slots__ = ("task", "addr", "u32", "q", "count", "others", "last", "declines", "cleared", "banned",
                 "backoff", "good", "recent", "misses", "on_since", "away", "declined", "native_seen")

    def __init__(self, task, addr: int, view: memoryview):
        self.task = task
        self.addr = addr  # of the state word, for cas32
        self.last = 0  # when the poller last answered it
        self.banned = 0  # pollable exits to go before it may be switched on again (it did not pay)
        self.backoff = BACKOFF_MIN
        self.away = False  # its thread is in a call that exited (it may block): nothing to poll
        self.declined = False  # the poller declined its last call (the exit that follows counts as another)
        self.good = 0  # calls answered since it was last switched off for not paying
        self.recent = 0  # calls answered since it was switched on
        self.misses = 0  # pollable calls that exited meanwhile
        self.on_since = 0  # when it was last switched on
        self.declines: dict[int, int] = {}  # syscall -> times declined since last cleared
        self.cleared: dict[int, int] = {}  # syscall -> when its bit was cleared in this vCPU's map
        self.u32 = view.cast("I")
        self.q = view.cast("q")
        self.count = 0  # pollable exits since the last look (``consider``)
        self.others = 0  # other exits meanwhile
        self.native_seen = 0  # the native poller's count of its answers, when last folded in (Poller._sync)


class Poller:
    """The slots of one process and the thread that serves them."""

    def __init__(self, process, invoke, pollable: list[int], invoke_own) -> None:
        """``invoke(task, nr, *args)`` calls a handler (syscalls/dispatch.py); ``pollable``:
        the calls the syscall table marks POLL (never blocking, needing no register);
        ``invoke_own(task, nr, own, a1, a2, a3)`` makes a read or write family call of a
        regular file on the poller's own duplicate of its descriptor."""
        self.p = process
        # --poll always: every slot on from the first pollable call, never backed off,
        # however many there are, and a longer spin (tests and measurements: the tier's
        # behaviour then does not depend on the machine's load)
        self.eager = process.spec.poll == "always"
        self.burst = 1 if self.eager else BURST
        # the syscall table itself, whose entries become the functions once their family
        # is imported (syscalls/table.py, Deferred)
        self.invoke = invoke
        self.invoke_own = invoke_own
        # (reads and writes only of regular files, per-thread clocks not at all: _run)
        self.pollable = [False] * 512
        for nr in pollable:
            self.pollable[nr] = True
        # the stub's map: bit n for syscall n (a copy in each vCPU's stub, see _decline)
        self.map = sum(1 << nr for nr in pollable).to_bytes(64, "little")
        self.lock = _thread.allocate_lock()  # switching slots on and off, the poller's sleep
        self.slots: dict[int, Slot] = {}  # vCPU id -> slot of the task on it
        self.active: dict[int, Slot] = {}
        # one CPU for the poller, one per spinning slot (the stub spins while it waits)
        try:
            cpus = len(os.sched_getaffinity(0))
        except OSError:
            cpus = os.cpu_count() or 1
        self.max_active = max(1, cpus - 1)
        self._wake = _thread.allocate_lock()  # released to wake the current poller thread
        self._wake.acquire()
        self._sleeping = False
        self._started = False
        # The poller thread acts with its own host credentials, which are those of the
        # vCPU thread that started it; it serves only threads whose credentials are
        # the same (Task.creds: None for km's own at start).  A thread that changes its
        # credentials starts a new poller thread, which takes over (``creds_changed``).
        self.creds = None
        self._gen = 0  # the current poller thread's generation; an older one ends
        self._running = _thread.allocate_lock()  # held by the poller thread that runs
        self.poller_tid = 0  # the current poller thread's (``_unshare``)
        self.serving: Slot | None = None  # the slot whose call the poller is running
        self.served_here = 0  # calls answered by Python without an exit ...
        self.by_vcpu_here = [0] * L.POLL_VCPUS  # ... and on which vCPU (thread)
        # the native poller (kernel/nativepoll.py): its km_poll and this process's
        # control block, made when the poller thread first starts (None: Python alone)
        self.native_poll = None
        self.ctl = None
        self.threads = 0  # threads attached and not detached: 1, the program's calls are its alone (nativepoll.C_SOLO)
        self.switched_on = self.backed_off = self.parked = self.idled = 0  # (km --timings too)
        self.proven_on = 0  # slots switched on where a site an earlier run proved was rewritten (``proven_hot``)
        self._streams: bool | None = None  # (``streams``)
        self.carried = 0  # socket and pipe writes the native poller began and their thread finished (km --timings)
        self._stat = bytearray(144)
        self._stat_addr = native.address_of(self._stat)


    @property
    def served(self) -> int:
        """Calls answered without an exit, natively or by Python (km --timings)."""
        return self.served_here + self.served_natively

    @property
    def served_natively(self) -> int:
        ctl = self.ctl
        return ctl.w[nativepoll.C_SERVED] if ctl is not None else 0

    @property
    def native_patched(self) -> int:
        """Calls of rewritten sites the native poller answered (Rewriter.report)."""
        ctl = self.ctl
        return ctl.w[nativepoll.C_PATCHED] if ctl is not None else 0

    @property
    def by_vcpu(self) -> list[int]:
        ctl = self.ctl
        if ctl is None:
            return self.by_vcpu_here
        return [n + ctl.answered(vid)[0] for vid, n in enumerate(self.by_vcpu_here)]

    def _native(self) -> None:
        """Load the native poller and make the control block, once (on the vCPU thread
        that starts the poller thread, under ``lock``)."""
        if self.ctl is not None or self.native_poll is False:
            return
        poll = nativepoll.load() if self.p.spec.poller == "native" else None
        if poll is None:
            self.native_poll = False
            return
        ctl = nativepoll.Control(self.p.mem, self.p.fds.floor, self.pollable, self.eager, self.p.epoch_buf)
        ctl.w[nativepoll.C_OWN_SIGNALS] = int(self.p.own_signals)
        ctl.signals(*self.p.host_signals.in_flight_words())
        for vid, slot in self.slots.items():
            ctl.attach(vid, slot.addr, slot.task)
        ctl.locked(list(self.p.posix_locked))
        procfs = self.p.procfs_made  # (not made for this: Process.procfs wires a later one to plain_dev)
        if procfs is not None:
            procfs.on_plain = self.plain_dev  # (a ProcFs made before this poller has none)
            for dev in procfs.plain_devs():
                ctl.plain(dev)
        self.native_poll, self.ctl = poll, ctl

    def plain_dev(self, dev: int) -> None:
        """File system ``dev`` was found not to be procfs (ProcFs.on_plain): the native
        poller may answer stats of paths on it."""
        if self.ctl is not None:
            self.ctl.plain(dev)

    def _sync(self, slot: Slot) -> None:
        """Fold the calls the native poller answered for ``slot`` into its counts."""
        if self.ctl is not None:
            n, last = self.ctl.answered(slot.task.vcpu.id)
            more = n - slot.native_seen
            if more:
                slot.native_seen = n
                slot.good += more
                slot.recent += more
                slot.last = max(slot.last, last)

    # -- tasks ----------------------------------------------------------------------------
    def attach(self, task) -> Slot | None:
        vid = task.vcpu.id
        with self.lock:  # (another thread may run once this returns: not alone, ``_native_round``)
            self.threads += 1
            if self.ctl is not None:
                self.ctl.w[nativepoll.C_SOLO] = 0
        if vid >= L.POLL_VCPUS:
            return None
        view = self.p.sys.poll_slot(vid)
        view[:] = bytes(len(view))
        o = L.poll_stub(vid) + G.POLL_MAP - L.SYS_BASE  # the map as it started (see _decline)
        self.p.sys.buf[o:o + 64] = self.map
        slot = Slot(task, self.p.sys.host + (L.POLL_SLOTS - L.SYS_BASE) + vid * L.POLL_COPY, view)
        self.slots[vid] = slot
        if self.ctl is not None:
            slot.native_seen = self.ctl.answered(vid)[0]
            self.ctl.attach(vid, slot.addr, task)
        return slot

    def detach(self, task) -> None:
        vid = task.vcpu.id
        with self.lock:
            self.threads -= 1
        slot = self.slots.get(vid)
        if slot is not None and slot.task is task:
            slot.u32[ON] = 0
            self.active.pop(vid, None)
            del self.slots[vid]
            if self.ctl is not None:
                self.ctl.detach(vid)

    def reset(self) -> None:
        """After fork: no poller thread here; every slot off and empty."""
        self.slots.clear()
        self.active.clear()
        self.threads = 0  # (the child's thread attaches again)
        self._started = False
        self._sleeping = False
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        self._running = _thread.allocate_lock()
        self.poller_tid = 0  # (the parent's thread: not this process's)
        self.lock = _thread.allocate_lock()
        self.ctl = None  # (the parent's block: made again if this process polls)
        self.p.sys.clear_poll_slots()

    def creds_changed(self, task) -> None:
        """``task``'s thread (the calling one) has new credentials: unless the poller has
        the same, a new poller thread, started from here so that it has exactly these,
        takes over; the old one ends (and serves meanwhile only the threads whose
        credentials are its own)."""
        if not self._started or task.creds == self.creds:
            return
        with self.lock:
            if self.ctl is not None:  # its calls go to Python, which checks whose they are
                self.ctl.native(task.vcpu.id, False)
            self._gen += 1
            old_wake, sleeping = self._wake, self._sleeping
            self._wake = _thread.allocate_lock()
            self._wake.acquire()
            self._sleeping = False
            self.creds = task.creds
            gen, wake = self._gen, self._wake
        self._start(gen, wake, task.creds)
        if sleeping:
            old_wake.release()  # (it sees that it is not the current one, and ends)

    def consider(self, slot: Slot) -> None:
        """``burst`` pollable exits of one thread happened before as many other exits
        (or MISSES while its slot was on): switch its slot on, unless it is banned or
        no CPU is free for it.  Counted, not timed: a loaded machine makes every exit
        slower, which must not decide whether the tier is used."""
        now = time.monotonic_ns()
        vid = slot.task.vcpu.id
        self._sync(slot)
        if self.eager:
            if self.active.get(vid) is not slot:
                self._switch_on(slot, vid, now, SPIN_EAGER)
            else:
                # MISSES calls exited with the slot on: the stub gave up waiting, the poller
                # is not keeping up (more busy threads than CPUs: the spin itself takes the
                # CPU the poller needs, and a long one made each call cost milliseconds).
                # Spin shorter; answers lengthen it again (_answer).  The slot stays on.
                slot.u32[ON] = max(SPIN_FLOOR, slot.u32[ON] >> 1)
                self._unshare()
        elif self.active.get(vid) is slot:
            # MISSES calls the poller could serve exited although the slot was on; if it
            # answered few meanwhile it answers too late (the stub gave up), e.g. with
            # more busy threads than CPUs: the exits are cheaper then
            self._unshare()
            slot.misses += MISSES
            if slot.recent == 0:
                # not one answered since it was switched on: the poller thread has had no
                # CPU (other processes keep both busy).  Each try costs the program tens of
                # milliseconds there (its thread waits for the GIL the unscheduled poller
                # thread is handed: streams 300 x64B through a pipe, two `yes` running,
                # 212 ms against 90 with --no-poll, three tries): off for as long as a slot
                # is ever banned
                self._back_off(slot)
                slot.banned = BACKOFF_MAX
            elif slot.misses >= 4 * MISSES and 2 * slot.misses > slot.recent:
                self._back_off(slot)
        elif slot.banned > 0:
            slot.banned -= BURST
        elif self._room(now):
            self._switch_on(slot, vid, now, SPIN)
        if slot.cleared:
            for nr, when in list(slot.cleared.items()):
                if now - when > RETRY_NS:  # worth another try
                    del slot.cleared[nr]
                    self._map_bit(vid, nr, True)

    def proven_hot(self, task) -> None:
        """A site of ``task``'s that an earlier run proved hot was rewritten from its
        proof at a trap (kernel/rewrite.py ``trap``: RAX is the call's number), in a call
        the poller could serve: its calls are about to come in numbers, so its slot is
        considered now rather than after ``burst`` more exits (~100 us each: file I/O
        64 MiB through a km server made 9 of them between the two).  Not for a call it
        would hand back (a pipe's read: an echo through pipes' one site is as hot), as the
        dispatcher counts none of those (the same tests as its ``on_syscall``)."""
        slot = self.slots.get(task.vcpu.id)
        nr = task.q[k.RAX]
        if slot is None or slot.task is not task or self.active.get(task.vcpu.id) is slot or slot.banned > 0 or \
                not (0 <= nr < 512 and self.pollable[nr]) or nr in slot.cleared or \
                nr in BY_FILE and not self.regular(task.q[k.RDI]):
            return
        slot.count = slot.others = 0
        self.consider(slot)
        if self.active.get(task.vcpu.id) is slot:
            self.proven_on += 1

    def _switch_on(self, slot: Slot, vid: int, now: int, spin: int) -> None:
        slot.last = slot.on_since = now
        slot.recent = slot.misses = 0
        self.switched_on += 1
        with self.lock:
            slot.u32[ON] = spin
            self.active[vid] = slot
            wake = self._sleeping
            self._sleeping = False
            start = not self._started
            self._started = True
            if start:  # the poller thread starts from this vCPU thread, with its credentials
                self.creds = slot.task.creds
                self._native()
            gen, wake_lock, creds = self._gen, self._wake, self.creds
        if start:
            self._start(gen, wake_lock, creds)
        elif wake:
            wake_lock.release()

    def _start(self, gen: int, wake, creds) -> None:
        """Start poller thread ``gen`` from this (vCPU) thread, which waits, off the CPU,
        until the new one has moved to another CPU (``_move_off``)."""
        placed = _thread.allocate_lock()
        placed.acquire()
        try:
            _thread.start_new_thread(self._loop, (gen, wake, creds, _this_cpu(), placed))
        except RuntimeError:  # no thread to be had (the program set RLIMIT_NPROC to what it has)
            self._no_thread()
            return
        placed.acquire(True, PLACE_WAIT)

    def _no_thread(self) -> None:
        """No poller thread could be started: every slot off, and banned as long as a slot
        can be (each later try may fail alike); the next switch-on tries again."""
        with self.lock:
            for slot in self.active.values():
                slot.u32[ON] = 0
                slot.banned = BACKOFF_MAX
            self.active.clear()
            self._started = False

    def _unshare(self) -> None:
        """Calls exited although the poller was on: often because Linux woke the poller
        thread (a hand-over of the GIL, a wake-up from its park) on this vCPU thread's CPU,
        where the vCPU spinning in the guest leaves it no time, and left it there for tens
        of milliseconds with the other CPU idle (fileio: 30 calls in a row at ~330 us,
        the stub's spin, against ~15 us).  Move it off this CPU (``_move_off``)."""
        if self.poller_tid:
            _move_off(_this_cpu(), self.poller_tid)

    def _back_off(self, slot: Slot) -> None:
        with self.lock:
            slot.u32[ON] = 0
            self.active.pop(slot.task.vcpu.id, None)
        slot.banned = slot.backoff
        slot.backoff = min(slot.backoff * 2, BACKOFF_MAX)
        slot.good = 0
        self.backed_off += 1

    # -- threads in calls that exit -----------------------------------------------------------
    def back(self, slot: Slot) -> None:
        """``slot``'s thread is back from a call that exited (dispatch, which set
        ``slot.away`` for it): wake the poller if it parked meanwhile."""
        slot.away = False
        if slot.u32[ON]:
            # Under the lock even when the poller looks awake: ``_park`` decides to sleep
            # under it, from ``away``.  Looking at ``_sleeping`` first, without the lock,
            # could miss a poller that had seen this thread away and not yet said it
            # sleeps: it slept then while this thread's next calls spun to their end in
            # the stub, until some other thread came back.
            with self.lock:
                wake = self._sleeping and self.active.get(slot.task.vcpu.id) is slot
                if wake:
                    self._sleeping = False
                    self._wake.release()

    def _park(self, gen: int) -> bool:
        """Every polled thread is away (in a call that may block): sleep, slots left on,
        until one comes back (``back``) or another is switched on.  Under the lock, as
        ``back`` looks: it sees either a slot away or the poller asleep."""
        with self.lock:
            if self._gen != gen:
                return True
            if not self.active or not all(s.away and s.u32[STATE] != POSTED for s in self.active.values()):
                return False
            self._sleeping = True
            self.parked += 1
            return True

    def _room(self, now: int) -> bool:
        """Is there a CPU for one more spinning slot?  Slots that spin beyond the CPUs
        there are take them from the poller and from each other (four threads on two
        CPUs ran 3x slower polled than not); a slot idle for IDLE_NS gives way.  (Not a
        slot whose thread is away in a call: with four threads taking turns, slots handed
        to each other at every exit ran a test 9x slower.)"""
        if len(self.active) < self.max_active:
            return True
        for vid, other in list(self.active.items()):
            self._sync(other)
            if now - other.last > IDLE_NS:
                with self.lock:
                    other.u32[ON] = 0
                    self.active.pop(vid, None)
                other.banned = BACKOFF_MIN  # (or threads taking turns hand the CPU on at every count)
                return True
        return False

    # -- the poller thread ------------------------------------------------------------
    def _loop(self, gen: int, wake, creds, starter_cpu: int, placed) -> None:
        from kontain.kernel import signals

        try:
            self.poller_tid = native.syscall(_SYS_gettid)
            _move_off(starter_cpu)
        finally:
            placed.release()
        signals.block_forwarded()
        signals.block_kick(True)
        native.name_thread(b"km-poller")
        self._running.acquire()  # (after the previous poller thread has ended)
        try:
            self._poll(gen, wake, creds)
        finally:
            self._running.release()

    def _poll(self, gen: int, wake, creds) -> None:
        default_interval = sys.getswitchinterval()
        while self._gen == gen:
            # The poller gives up the GIL every round, but takes it back at once: a vCPU
            # thread waiting for it would wait out the switch interval (5 ms) meanwhile.
            sys.setswitchinterval(SWITCH_INTERVAL)
            idle_since = time.monotonic_ns()
            rounds = away = 0
            while self.active and self._gen == gen:
                if self.ctl is not None:
                    served, here, n = self._native_round(creds)
                else:
                    served, here, n = self._round(creds), False, 1
                    if not served:
                        here = any(not slot.away for slot in list(self.active.values()))
                rounds += n
                if served or here:
                    away = 0
                else:
                    away += n
                    if away >= PARK_ROUNDS and self._park(gen):
                        break  # (woken by ``back`` or a switch-on: polls again)
                if served:
                    rounds = 0
                    idle_since = 0
                elif rounds >= 256:
                    rounds = 0
                    now = time.monotonic_ns()
                    if not idle_since:
                        idle_since = now
                    elif now - idle_since > IDLE_NS and self._all_off(gen):
                        break
                if self.ctl is None:
                    native.syscall(24)  # sched_yield: lets the GIL go to the vCPU threads
            sys.setswitchinterval(default_interval)
            # Asleep only as ``_switch_on`` and ``back`` can see it (``_sleeping``, under the
            # lock): a loop that ended because its last slot was backed off, given way or
            # detached went to sleep unseen before, and no switch-on woke it again: the tier
            # stayed off for the rest of the run (50k getppid: 5.3 s against 1.3 s)
            with self.lock:
                if not self._sleeping and not self.active:
                    self._sleeping = True
                sleep = self._sleeping
            if self._gen == gen:
                wake.acquire(sleep)  # (not asleep: only takes a wake-up already given)

    def _round(self, creds) -> bool:
        """One look at every polled slot, serving what was posted; was anything?"""
        served = False
        for slot in list(self.active.values()):
            if slot.u32[STATE] == POSTED:
                self._take_posted(slot, creds)
                served = True
        return served

    @staticmethod
    def _mine(slot: Slot, creds) -> bool:
        """Does ``slot``'s thread act with the poller thread's credentials ``creds``?"""
        return slot.task.creds is creds or slot.task.creds == creds

    def _take_posted(self, slot: Slot, creds) -> None:
        """Serve ``slot``'s posted call, or decline it when its thread's credentials are
        not the poller's (its own thread makes the call)."""
        if self._mine(slot, creds):
            self._serve(slot)
        else:
            native.cas32(slot.addr, POSTED, DECLINED)

    def _native_round(self, creds) -> tuple[bool, bool, int]:
        """Rounds of the native poller (GIL released) until a call needs Python, which
        serves or answers it here, or until NATIVE_ROUNDS rounds (or TICK_NS) saw nothing
        posted: (anything served, a polled thread running the program, rounds done: a
        TICK counts as NATIVE_ROUNDS, so that it may park the poller)."""
        ctl, w = self.ctl, self.ctl.w
        rw = self.p.rewriter
        w[nativepoll.C_REWRITING] = int(rw is not None and rw.enabled and rw.owns_gs)
        if rw is not None:  # (no site answered natively goes to Python before the warm-up's end)
            w[nativepoll.C_WARM] = w[nativepoll.C_SERVED] + rw.warm_up_left()
        with self.lock:  # (as creds_changed clears a thread's flag: nativepoll.Control.native)
            for vid, slot in list(self.active.items()):
                ctl.native(vid, self._mine(slot, creds))
            # a new thread's ``attach`` clears it, under the lock, before the thread runs
            w[nativepoll.C_SOLO] = int(self.threads == 1 and len(self.p.tasks) == 1)
            # (with more slots on, the poller waiting for one would keep the others waiting)
            w[nativepoll.C_READ_WAIT_NS] = READ_WAIT_NS if len(self.active) == 1 else 0
        before = w[nativepoll.C_SERVED]
        r = self.native_poll(ctl.addr, NATIVE_ROUNDS)
        served = r >= 0 or w[nativepoll.C_SERVED] != before
        if r >= 0:
            slot = self.slots.get(r >> 2)
            if r & 3 == nativepoll.ANSWER:
                try:
                    if slot is not None:
                        self._answer_made(slot)
                finally:
                    w[nativepoll.C_SERVING] = 0
            elif r & 3 == nativepoll.DECLINED:
                if slot is not None:
                    self._count_decline(slot, ctl.declined_nr(r >> 2))
            elif slot is not None and slot.u32[STATE] == POSTED:
                self._take_posted(slot, creds)
        here = any(not slot.away for slot in list(self.active.values()))
        return served, here, 1 if r >= 0 else NATIVE_ROUNDS

    def _answer_made(self, slot: Slot) -> None:
        """The native poller made ``slot``'s call and left the answer to Python: a site
        the rewriter still counts (then, once it is done with the site, its calls stay
        native), or a write past RLIMIT_FSIZE.  (A host signal on its way to the program
        is its first, as at a stream's call answered natively: nativepoll.c signals_in_flight.)"""
        self.p.host_signals.after_wait()
        self._answer(slot, slot.q[RESULT])
        rw = self.p.rewriter
        if rw is not None:
            ret = slot.q[RCX]
            n = rw.seen.get(ret, 0)
            if n < 0:
                from kontain.kernel.rewrite import PATCHED

                self.ctl.settle(ret, n == PATCHED)

    def _all_off(self, gen: int) -> bool:
        """Switch every slot off and go to sleep, unless one is waiting for an answer.
        (Under the lock: ``consider`` sees either the poller awake or the sleep.)"""
        with self.lock:
            if self._gen != gen:
                return True  # another poller thread took over: this one ends
            if any(slot.u32[STATE] == POSTED for slot in self.active.values()):
                return False
            for slot in self.active.values():
                slot.u32[ON] = 0
            self.active.clear()
            self._sleeping = True
            self.idled += 1
            return True

    def serving_now(self, slot: Slot) -> bool:
        """Is a poller (Python's or the native one) making ``slot``'s call?"""
        ctl = self.ctl
        return self.serving is slot or (ctl is not None and ctl.w[nativepoll.C_SERVING] == slot.task.vcpu.id + 1)

    def _serve(self, slot: Slot) -> None:
        # atomically: the stub may be taking the request back (lock cmpxchg) right now.
        # ``serving`` first: settle() waits for a TAKEN request only while it is set.
        self.serving = slot
        if native.cas32(slot.addr, POSTED, TAKEN) != POSTED:
            self.serving = None
            return
        try:
            self._run(slot)
        finally:
            self.serving = None

    def _run(self, slot: Slot) -> None:
        q = slot.q
        task = slot.task
        nr = q[NR]
        if not (0 <= nr < 512 and self.pollable[nr]):
            res = -ENOSYS  # the stub posts only what its map allows: a scribbled slot
        else:
            a0 = q[ARG0]
            if (nr == 228 or nr == 229) and a0 not in _SHARED_CLOCKS:
                self._decline(slot, nr)
                return
            own = -1
            if nr in MESSAGES or nr in RW and self.p.own_signals:  # (MESSAGES; ``own_signals``)
                self._decline(slot, nr)
                return
            if nr <= 1 or 17 <= nr <= 20:
                # made on a duplicate of the descriptor, at the floor: another thread of the
                # program may close or dup2 over its number (a pipe's, whose read would block
                # this thread) between the look at the file and the call, never over this one
                own = self._own_regular(a0)
                if own < 0:
                    # pipes, sockets, terminals, devices may block: the vCPU's own thread does
                    # it.  (Socket writes were tried with MSG_DONTWAIT: a request/response
                    # exchange between two threads then ran 1.5x slower, three busy threads on
                    # two CPUs; with the poller parked while both threads wait in their reads,
                    # and woken as one comes back, 6-9x slower with --poll always.  Tried again
                    # with RWF_NOWAIT reads and writes of sockets and pipes, partial writes
                    # finished by the vCPU's thread: 3000 echoes took 9-12 s against 1.5 s
                    # with --poll always, and the default backed off as before: every thread
                    # that comes back from its blocking read waits for the GIL the spinning
                    # poller holds; docs/performance.md.  The native poller makes them,
                    # GIL released: nativepoll.c ``stream_call``.)
                    self._decline(slot, nr)
                    return
            try:
                if own >= 0:
                    res = self.invoke_own(task, nr, own, q[ARG0 + 1], q[ARG0 + 2], q[ARG0 + 3])
                else:
                    res = self.invoke(task, nr, a0, q[ARG0 + 1], q[ARG0 + 2], q[ARG0 + 3], q[ARG0 + 4], q[ARG0 + 5])
            except OwnThread:  # its answer depends on the asking thread: the vCPU's thread asks
                self._decline(slot, nr)
                return
            except ProcessExit as end:  # a bug in km (dispatch.internal_error): the program ends, from here
                self.p.finish(end)
            finally:
                if own >= 0:
                    native.syscall(3, own)  # close
        self._answer(slot, res)

    def _decline(self, slot: Slot, nr: int) -> None:
        """Let the stub exit for this call.  A call declined again and again on a vCPU
        (reads of a socket that has no data yet, of a pipe...) costs a trip through
        the poller for nothing: after DECLINES of them its bit is cleared in that vCPU's
        map, so that the stub exits at once, until ``consider`` sets it back later."""
        slot.declined = True  # (the exit that follows is not a missed call: dispatch)
        slot.u32[STATE] = DECLINED
        self._count_decline(slot, nr)

    def _count_decline(self, slot: Slot, nr: int) -> None:
        """``slot``'s call ``nr`` was declined (by ``_decline``, or by the native poller:
        a socket's or a pipe's read that would wait)."""
        if not 0 <= nr < 512:
            return
        n = slot.declines.get(nr, 0) + 1
        slot.declines[nr] = n
        if n >= DECLINES:
            self._map_bit(slot.task.vcpu.id, nr, False)
            slot.cleared[nr] = time.monotonic_ns()
            slot.declines[nr] = 0

    def _map_bit(self, vid: int, nr: int, on: bool) -> None:
        o = L.poll_stub(vid) + G.POLL_MAP + nr // 8 - L.SYS_BASE
        buf = self.p.sys.buf
        buf[o] = buf[o] | (1 << nr % 8) if on else buf[o] & ~(1 << nr % 8)

    def _answer(self, slot: Slot, res: int) -> None:
        slot.q[RESULT] = res
        task = slot.task
        if res == -EFBIG:  # past RLIMIT_FSIZE: the host's SIGXFSZ came to this thread (Task.take_xfsz)
            task.take_xfsz()
        # (EPIPE: SIGPIPE, raised at the exit by dispatch.finish, as the call's row says)
        exit_wanted = self.p.zap or task.has_signals() or task.kicked or res == -EPIPE
        rw = self.p.rewriter
        if rw is not None and rw.answered(slot.q[RCX]):
            exit_wanted = True  # a hot site: the vCPU's thread rewrites it at that exit (dispatch)
        slot.u32[STATE] = DONE_EXIT if exit_wanted else DONE
        if self.eager and slot.u32[ON] < SPIN_EAGER:
            slot.u32[ON] = min(SPIN_EAGER, slot.u32[ON] << 1)
        slot.last = time.monotonic_ns()
        slot.good += 1
        slot.recent += 1
        if slot.good > 4096:
            slot.backoff = BACKOFF_MIN  # it works here: a later failure backs off briefly
        self.served_here += 1
        self.by_vcpu_here[task.vcpu.id] += 1  # (a polled vCPU's id is below POLL_VCPUS: attach)

    def regular(self, fd: int) -> bool:
        """Is ``fd`` a descriptor whose reads and writes the poller makes: a regular file,
        or a socket or a pipe when the native poller runs (it makes their reads and writes
        that need not wait)?  The dispatcher asks at a read's or write's exit, so that the
        calls the poller would only hand back do not switch the slot on: a thread reading
        and writing sockets switched it on and backed off ~10 times in 3000 TCP echoes when
        the poller handed those back, taking the GIL and a CPU from the program's threads
        each time."""
        fd &= 0xFFFFFFFF
        if fd >= self.p.fds.floor:
            return False
        # (a buffer of its own: the poller's thread uses _stat; EBADF and the like: False,
        # the vCPU's thread reports it)
        kind = _kind(fd, bytearray(144))
        if kind == _S_IFSOCK or kind == _S_IFIFO:
            return self.streams()
        return kind == _S_IFREG and not (self.p.posix_locked and posix_locked(self.p, fd))  # (_own_regular declines those)

    def streams(self) -> bool:
        """Does the native poller serve this process (it makes reads and writes of sockets
        and pipes)?"""
        if self._streams is None:
            self._streams = self.native_poll is not False and self.p.spec.poller == "native" and \
                nativepoll.load() is not None
        return self._streams

    def own_signals(self) -> None:
        """The program asked for the signals its calls cause (Process.take_own_signals):
        no read or write is made by a poller from now on, natively or not (their handlers
        collect the host's signals before the call returns)."""
        if self.ctl is not None:
            self.ctl.w[nativepoll.C_OWN_SIGNALS] = 1

    def declined_natively(self, slot: Slot) -> tuple[bool, int]:
        """Did the native poller decline ``slot``'s last call (the exit now is its), and how
        many bytes of it did a socket or pipe take (a write the vCPU's thread is to finish)?"""
        ctl = self.ctl
        if ctl is None:
            return False, 0
        declined, carry = ctl.declined(slot.task.vcpu.id)
        if carry:
            self.carried += 1
        return declined, carry

    def _own_regular(self, fd: int) -> int:
        """A close-on-exec duplicate of the program's descriptor ``fd`` at or above the
        floor if it is a regular file the program holds no POSIX lock on (closing the
        duplicate would drop them: ``posix_locking``), else -1 (its own thread makes the
        call)."""
        fd &= 0xFFFFFFFF
        if fd >= self.p.fds.floor or self.p.posix_locked and posix_locked(self.p, fd):
            return -1
        own = native.dup_at_least(fd, self.p.fds.floor)
        if own < 0:
            return -1  # EBADF and the like: let the vCPU's thread report it
        if not _is_regular(own, self._stat, self._stat_addr):
            native.syscall(3, own)
            return -1
        return own

    def posix_locking(self, key: tuple[int, int]) -> None:
        """The program is about to take a POSIX lock on file ``key`` (st_dev, st_ino), now in
        Process.posix_locked: the native poller learns it, and a read or write the poller
        may be making on a duplicate it made before (its close to come would drop the
        lock) ends first.  (The flag is set before ``serving`` is read, as the poller sets
        ``serving`` before it looks at the file: one of the two sees the other.)"""
        if self.ctl is not None:
            self.ctl.locked(list(self.p.posix_locked))
        while self.serving is not None or self.ctl is not None and self.ctl.w[nativepoll.C_SERVING]:
            time.sleep(0)  # (the calls it makes do not block)

    # -- the vCPU's side ----------------------------------------------------------------
    def settle(self, task) -> tuple[int, int] | None:
        """The vCPU stopped inside its poll stub: move it to before its syscall (RIP at
        the `syscall` instruction, the call not begun) or after it (RIP at the return
        address, RAX the result).  Returns (nr, result) if the call completed."""
        q = task.q
        vid = task.vcpu.id
        off = q[k.RIP] - L.poll_stub(vid)
        slot = self.slots.get(vid)
        if slot is None or not 0 <= off < G.POLL_END:
            return None
        u32, sq = slot.u32, slot.q
        done = False
        if off < G.POLL_POSTED or off == G.POLL_EXIT:
            # not posted (or, at the `out`, taken back with RAX reloaded): the registers
            # hold the call.  (At poll_exit straight from poll_entry, a call the map does
            # not poll, the slot holds an older call: taking RAX and RDX from it made
            # that one instead, an rt_sigprocmask a getppid: --pause-check, two hogs)
            state = IDLE
            sq[NR] = q[k.RAX]
            sq[ARG0 + 2] = q[k.RDX]
        elif off < G.POLL_WITHDRAWN:
            looked = False
            while True:
                state = native.cas32(slot.addr, POSTED, IDLE)
                if state == POSTED:
                    state = IDLE  # taken back here
                elif state == TAKEN and self.serving_now(slot):
                    # the poller is on it (these calls do not block): it answers, or (the
                    # native poller, for a call it does not make) posts it again for Python,
                    # which is then taken back here before Python can take it, never left
                    # to both (it would run twice)
                    time.sleep(0)
                    continue
                elif state == TAKEN and not looked:
                    # taken, and nobody serving it now: a poller may have answered between
                    # the two looks (it sets the state before it lets go of the slot), so
                    # the state once more.  Taken as it was read, the call ran again: a
                    # read made twice, the first one's bytes lost (Go's os tests, once)
                    looked = True
                    continue
                break
            if state == TAKEN:
                state = IDLE  # written by the program itself: nobody is serving it
            done = state in (DONE, DONE_EXIT)
        elif off < G.POLL_EXIT:
            state = IDLE  # taken back, at poll_withdrawn: RAX is about to be reloaded
        elif off < G.POLL_DONE:
            return None  # after the exit's `out`: at `jmp *%rcx`, the call is over
        elif off < G.POLL_DECLINED:
            state = u32[STATE]
            done = state != DECLINED  # DONE, DONE_EXIT, or IDLE once the stub consumed it
        elif off < G.POLL_DONE_EXIT:
            state = IDLE  # declined: on its way to the exit
        else:
            done = True  # DONE_EXIT: the result is in the slot
        if not done:
            carry = self.declined_natively(slot)[1]
            if carry:
                # the native poller declined a write a socket or pipe had taken part of, for this
                # thread to finish: that part is the call's result, as a blocking write's
                # that a signal interrupts (made again, the part would be sent twice)
                sq[RESULT] = carry
                done = True
        q[k.RFLAGS] = q[k.R11] & 0x8D5 | q[k.RFLAGS] & ~0x8D5  # (dispatch.ARITH)
        if done:
            res = sq[RESULT]
            q[k.RAX] = res
            q[k.RIP] = q[k.RCX]
            u32[STATE] = IDLE
            task.vcpu.mark_regs_dirty()
            return sq[NR], res
        u32[STATE] = IDLE
        q[k.RAX] = sq[NR]
        q[k.RDX] = sq[ARG0 + 2]
        rw = self.p.rewriter  # the `syscall` instruction: it runs again (a short site's: its trampoline)
        q[k.RIP] = q[k.RCX] - 2 if rw is None else rw.again(q[k.RCX] - 2)
        task.vcpu.mark_regs_dirty()
        return None


def _this_cpu() -> int:
    """The CPU the calling thread runs on (getcpu), or -1."""
    cpu = bytearray(4)
    if native.syscall(_SYS_getcpu, native.address_of(cpu), 0, 0) < 0:
        return -1
    return int.from_bytes(cpu, "little")


def _move_off(cpu: int, tid: int = 0) -> None:
    """Move the poller thread (``tid``, 0: the calling one) off ``cpu``, a vCPU thread's,
    which spins in the guest while it waits for an answer.  A new thread starts on its
    parent's CPU, and a woken one often comes to its waker's: Linux here left the poller
    there for tens of milliseconds beside the spinning vCPU with the other CPU idle, and
    each call waited out the stub's spin (~0.3 ms) and exited.  Excluding that CPU for a
    moment migrates the thread at once; its own mask then comes back, and Linux balances
    as usual."""
    try:
        mask = os.sched_getaffinity(tid)
        if cpu in mask and len(mask) > 1:
            os.sched_setaffinity(tid, mask - {cpu})
            os.sched_setaffinity(tid, mask)
    except OSError:  # (a mask changed meanwhile, or a filter that refuses it: placement only)
        pass


def _kind(fd: int, stat: bytearray, addr: int = 0) -> int:
    """Host descriptor ``fd``'s file type (S_IFMT bits), 0 if it has none (not open).
    (fstat into ``stat``; ``addr``: its address, when the caller keeps it at hand.)"""
    if native.syscall(5, fd, addr or native.address_of(stat)) != 0:  # fstat
        return 0
    return struct.unpack_from("<I", stat, 24)[0] & _S_IFMT


def _is_regular(fd: int, stat: bytearray, addr: int = 0) -> bool:
    """Is host descriptor ``fd`` a regular file?"""
    return _kind(fd, stat, addr) == _S_IFREG
