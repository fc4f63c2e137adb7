"""Syscall sites that jump instead of trapping (PVM only; ``--no-rewrite`` turns it off).

On PVM a CPL3 `syscall` costs tens of microseconds before km's stub runs at all, while a
jump into the stub costs nothing.  So a hot site of the program's code of the form

    mov $nr,%eax        b8 imm32     <- becomes  jmp rel32 (e9, 5 bytes) to a trampoline
    syscall             0f 05        <- stays: a jump that lands here still works

is rewritten once it has been called HOT times, trapped or polled (so is any other
single instruction of 5 to 17 bytes right before a `syscall` that does the same wherever it runs, such as glibc's
``mov 0x8(%rsp),%r9`` in syscall()): its trampoline (arch/x86_64/trampoline.py) runs the
instruction, sets RCX and R11 as `syscall` would and enters this vCPU's stub through
``jmp *%gs:GS_ENTRY`` (km owns the GS base while rewriting is on: the program's is 0,
and a program that sets its own makes km give up, ``gs_taken``).  The polled path and
the exit path are the same as for `syscall`; a call that must run again (a signal, a
restart) runs again from the original `syscall`, which RCX - 2 still points at, with RAX
the number.

What is proven before a byte changes (``_examine``):

* the bytes in guest memory are the file's;
* they lie in a private, read-only, executable mapping of a file (never MAP_SHARED:
  writing would write the file), in a range the program never made writable or moved;
* decoding forward with iced-x86 from a known instruction boundary (the start of the
  function that holds the site, from the file's symbols or its .eh_frame_hdr table,
  loader/funcstarts.py) reaches the `syscall` at an instruction boundary, and the one
  instruction before it is 5 to 17 bytes long and position-independent (no other
  instruction boundary lies under the jump: nothing can branch, return or sigreturn
  into it).

A *short* site (the instruction before the `syscall` is 3 or 4 bytes: musl's ``mov
%rdi,%rax``, ``mov 0x18(%rdx),%rdx``) has the jump cover the `syscall` too, so the
`syscall` is an instruction boundary under the jump, where nothing may ever land:

* branches: the whole function is decoded (``decode.covered_with_syscall``): no direct
  branch to the `syscall`, no indirect jump, no transaction;
* a thread stopped there (a kick between the two instructions): the patch waits
  (``LATER``) while one is; a thread in km's stub on its way back to make a call again
  from there (pausing it interrupted its call) goes to the entry below instead;
* a call made again (a restart, a call the poll stub did not post, a thread settled out
  of a trampoline) enters the trampoline past the site's instruction (``again``) instead;
* a signal frame: never returns under a jump or into km's code (``framed``): a `syscall`
  a frame returned to is never covered, and a frame at a short site's entry returns to
  the `syscall` while the site is put back at the next exit (``put_back_soon``).

Anything else keeps the slow path, and the verdict is remembered (``seen``).  A proof
depends only on the file's bytes: where the user or a km server keeps them
(kernel/sitecache.py), a later run of the same file takes it from there (``_examine``,
checked against memory the same way) and rewrites the site at its HOT_PROVEN-th call,
before the warm-up's end and without the decoder.  iced-x86
is imported only when a site turns hot (15-25 ms): a short program never pays it.

Other vCPUs must not execute code while it changes: km pauses them (``Process.pause_others``)
around the write, which goes through km's own host mapping of the page (a private copy
of the file's page once written).  Trampolines live in pages km maps into the program's
address space near the sites ("[km-syscalls]", read+exec for the program).

The original bytes stay known (``original``): core files show them.  The program itself
reading its own code sees the jump (docs/known-issues.md).
"""

from __future__ import annotations

import _thread
import bisect
import os

from kontain.abi import flags as F
from kontain.arch.x86_64 import layout as L
from kontain.arch.x86_64 import trampoline as T
from kontain.errors import GuestError
from kontain.kvm import abi as k

HOT = 8  # traps of a site before it is examined
HOT_PROVEN = 4  # calls of a site an earlier run proved (kernel/sitecache.py) before it is rewritten, warm-up or not
# No site is examined before the program has made Spec.rewrite_after calls, trapped or polled (km
# --rewrite-after, 200 by default).  The decoder (~2.5 ms: decode._core) loads on a thread of its
# own from half-way through (``warm_up_left``), so the first proof and patch of a run costs its
# vCPU ~1.5 ms (the file read, the pause; later ones ~0.4 ms); a short program pays nothing.
# Until the decoder loaded alone it cost ~20 ms and the default was 1000; file I/O 64 MiB (~2000
# calls) took 96 ms with 1000, 81 with 250.
MAX_SEEN = 1 << 16  # sites remembered at most (a program calling the stub from everywhere)
MAX_FROZEN = 1024  # code ranges made writable or moved, remembered at most (then no more rewriting)
MAX_FUNCTION = 1 << 18  # bytes decoded at most from a function's start to its site
REACH = (1 << 31) - 2 * L.PAGE
SYSCALL = b"\x0f\x05"
REFUSED = -1
PATCHED = -2
UNPROVEN = 1  # (_rewrite with proven_only: no earlier run proved the site)
LATER = 0  # (_rewrite: not now, a thread stands where the jump would go; examined again at its next trap)
SHORT_LEAST = 3  # the shortest instruction before a `syscall` that a jump covers with it
SHORT_MOST = 4  # (5 and more: the jump covers that instruction alone)
MAX_FRAMED = 4096  # signal frames at a `syscall` remembered at most (then no more short sites)
NAME = "[km-syscalls]"
_PAGE = L.PAGE


class Rewriter:
    """The rewritten sites of one process (its address space)."""

    def __init__(self, process, cache=None) -> None:
        self.p = process
        self.cache = cache  # kernel/sitecache.py: proofs of earlier runs (None: none kept)
        self.unproven: set[int] = set()  # return addresses of sites the cache had no proof of (warm-up)
        self.owns_gs = True  # False once the program set its own GS base
        self.lock = _thread.allocate_lock()  # handing out trampolines
        self.enabled = True  # False: no more sites are rewritten
        self.seen: dict[int, int] = {}  # return address (after the syscall) -> traps so far, REFUSED or PATCHED
        self.patched: dict[int, tuple[bytes, int]] = {}  # site -> (its original 5 bytes, trampoline)
        self._sorted: list[int] = []  # the patched sites, sorted
        self.tramps: dict[int, tuple[int, int, int]] = {}  # trampoline -> (site, its instruction's length, syscall)
        self.by_syscall: dict[int, int] = {}  # a rewritten site's `syscall` -> its trampoline
        # short sites (the jump covers the `syscall` too) -> where a call made there again
        # enters: the trampoline past the site's instruction, which does what `syscall` does
        self.short: dict[int, int] = {}  # the `syscall` of a short site -> that entry
        self.entries: dict[int, int] = {}  # the entries -> their `syscall`
        self.framed_at: set[int] = set()  # `syscall` instructions a signal frame km wrote returns to
        self.short_ok = True  # False once ``framed`` overflowed
        self.put_back_soon: set[int] = set()  # short sites a signal frame returns into (``framed``)
        self.pages: list[list[int]] = []  # [start, trampolines used] of each trampoline page
        self.frozen: list[tuple[int, int]] = []  # ranges made writable or moved: never patched again
        self.files: dict[tuple, object] = {}  # (dev, ino, size, mtime) -> FunctionStarts or None
        self.sites = 0  # sites rewritten
        self.short_sites = 0  # of them short ones
        self.put_back = 0  # sites given their bytes back (code made writable, GS taken, a frame)
        self.refused = 0
        self.trapped = 0  # calls by `syscall` at sites not rewritten
        self.exited = 0  # calls by a rewritten site that exited to km
        self.polled = 0  # calls by a rewritten site the poller answered (kernel/poll.py)
        self.preloading = False  # the decoder's load begun (``warm_up_left``)

    # -- the exit path (syscalls/dispatch.py) ------------------------------------------------
    def trap(self, task, ret: int) -> None:
        """A call exited with return address ``ret`` (RCX) that is not rewritten."""
        if self.put_back_soon:
            self._put_back(task)
        n = self.seen.get(ret, 0)
        if n < 0:
            if n == PATCHED:
                self.exited += 1
            else:
                self.trapped += 1
            return
        self.trapped += 1
        if n + 1 < HOT or self.trapped < self.p.spec.rewrite_after and self._calls() < self.p.spec.rewrite_after:
            if n + 1 >= HOT_PROVEN and self.cache is not None and ret not in self.unproven and \
                    self._proven(task, ret):
                if self.seen[ret] == PATCHED and self.p.poller is not None:
                    self.p.poller.proven_hot(task)  # (RAX: the call's number, at this trap)
                return
            if not self.preloading:
                self.warm_up_left()
            if n or len(self.seen) < MAX_SEEN:
                self.seen[ret] = min(n + 1, HOT)
            return
        self._decide(task, ret)

    def _decide(self, task, ret: int) -> None:
        done = self._rewrite(task, ret - 2)
        self.seen[ret] = REFUSED if done is None else HOT - 1 if done == LATER else PATCHED

    def _proven(self, task, ret: int) -> bool:
        """Before the warm-up's end: rewrite the site if an earlier run proved it (True),
        else remember that none did (it waits for the warm-up, and its proof)."""
        done = self._rewrite(task, ret - 2, proven_only=True)
        if done == UNPROVEN:
            if len(self.unproven) < MAX_SEEN:
                self.unproven.add(ret)
            return False
        self.seen[ret] = REFUSED if done is None else HOT - 1 if done == LATER else PATCHED
        return True

    def answered(self, ret: int) -> bool:
        """The poller answered a call from return address ``ret`` (the slot's RCX, which the
        program could have scribbled on: it only decides what is examined, never what is
        patched).  Called on the poller's thread.  Sites the poller answers from their first
        call never trap, so they are counted here as ``trap`` counts trapped ones; True once
        such a site is hot: the poller then makes the stub exit after this answer, and the
        vCPU's own thread examines the site there (``hot``), as the write needs it."""
        n = self.seen.get(ret, 0)
        if n < 0:
            if n == PATCHED:
                self.polled += 1
            return False
        if n + 1 < HOT or self._calls() < self.p.spec.rewrite_after:
            if n + 1 >= HOT_PROVEN and self.cache is not None and ret not in self.unproven and \
                    self.enabled and self.owns_gs:
                self.seen[ret] = HOT  # (``hot``, on the vCPU's thread, looks for a proof)
                return True
            if not self.preloading:
                self.warm_up_left()
            if n or len(self.seen) < MAX_SEEN:
                self.seen[ret] = min(n + 1, HOT)
            return False
        if not (self.enabled and self.owns_gs):
            return False
        self.seen[ret] = HOT  # (what ``hot`` looks for: a site that reached HOT - 1 here had not)
        return True

    def hot(self, task, ret: int) -> None:
        """On the vCPU's thread, after a polled call from ``ret`` that ``answered`` found hot."""
        n = self.seen.get(ret, 0)
        if n < HOT:
            return
        if self._calls() >= self.p.spec.rewrite_after:
            self._decide(task, ret)
        elif not self._proven(task, ret):
            self.seen[ret] = HOT_PROVEN  # (counted again; examined after the warm-up)

    def warm_up_left(self) -> int:
        """How many more calls the program makes before the rewriter looks again (the
        native poller then hands a call of a site not settled to Python: kernel/poll.py):
        half-way through the warm-up, where the decoder begins to load on a thread of its
        own (decode.load_soon: the first site's proof then finds it loaded, instead of
        stalling the program ~2.5 ms), then the warm-up's end, where sites are examined."""
        after = self.p.spec.rewrite_after
        left = max(0, after - self._calls())
        if not self.preloading:
            if left > after // 2:
                return left - after // 2
            self.preloading = True
            # (not when every site hot so far was rewritten from an earlier run's proof:
            # its load would only take a CPU from the program, ~2.5 ms)
            if self.enabled and self.owns_gs and (self.cache is None or self.unproven):
                from kontain.arch.x86_64 import decode

                decode.load_soon()
        return left

    def _calls(self) -> int:
        """The program's calls so far, trapped or answered by the poller (the warm-up's
        measure: a program the poller serves may trap only rarely)."""
        poller = self.p.poller
        return self.trapped + (poller.served if poller is not None else 0)

    def _rewrite(self, task, syscall_at: int, proven_only: bool = False):
        # The proof (the file opened and read) and the trampoline (a page mapped) come
        # first, while this thread still counts as running: a pause_all meanwhile (a
        # snapshot, --pause-check) waits for it, and sees no descriptor or mapping come
        # and go.  Only the write itself happens with the other threads paused.
        found = None
        if self.enabled and self.owns_gs and self._quick(syscall_at):
            found = self._examine(syscall_at, proven_only)
            if found == UNPROVEN:
                return UNPROVEN
        elif proven_only:
            return UNPROVEN
        at = None
        if found is not None:
            with self.lock:
                at = self._trampoline(found[0])
        if at is None:
            self.refused += 1
            return None
        p = self.p
        alone = len(p.tasks) == 1 and not p.pause_requests
        if not alone and not p.pause_others(task):
            return None
        try:
            done = self._patch(task, syscall_at, found[0], found[1], at)
        finally:
            if not alone:
                p.resume_others(task)
        if done is None:
            self.refused += 1
        elif done == LATER:
            with self.lock:  # (the trampoline is handed out again next time)
                self._give_back(at)
        return done

    # -- proof -----------------------------------------------------------------------------
    def _quick(self, syscall_at: int) -> bool:
        """The checks that need no decoding: a `syscall` there, and the mapping."""
        mm = self.p.mm
        lo = syscall_at - T.MOST
        if not L.MMAP_MIN <= lo or syscall_at + 2 > mm.window:
            return False
        v = mm.find(syscall_at)
        if v is None or v.start > syscall_at - SHORT_LEAST or v.end < syscall_at + 2 or v.anonymous or v.shared or \
                not v.prot & F.PROT_EXEC or v.prot & F.PROT_WRITE or not v.ino or type(v).__name__ != "Vma":
            return False
        if any(s < syscall_at + 2 and lo < e for s, e in self.frozen):
            return False
        try:
            return self.p.mem.read(syscall_at, 2) == SYSCALL
        except GuestError:
            return False

    def _examine(self, syscall_at: int, proven_only: bool = False):
        """(site, its instruction's bytes) if rewriting the instruction before the
        `syscall` at ``syscall_at`` is proven safe (module doc), by an earlier run of the
        same file (kernel/sitecache.py) or now; ``proven_only``: UNPROVEN rather than a
        proof now."""
        from kontain.loader import funcstarts

        v = self.p.mm.find(syscall_at)
        if v is None or not self._quick(syscall_at):
            return UNPROVEN if proven_only else None
        opened = funcstarts.open_mapped(v, self.p.posix_locked)
        if opened is None:
            return UNPROVEN if proven_only else None
        fd, key = opened
        offset = v.offset + (syscall_at - v.start)
        cache = self.cache
        if cache is not None:
            insn = cache.proof(key, offset)
            if insn is not None and self._holds(v, syscall_at - len(insn), insn):
                os.close(fd)
                cache.hits += 1
                return syscall_at - len(insn), insn
        if proven_only:
            os.close(fd)
            return UNPROVEN
        from kontain.arch.x86_64 import decode

        try:
            starts = funcstarts.cached(fd, key, self.files)
            if starts is None:
                return None
            vaddr = starts.to_vaddr(offset)
            if vaddr is None:
                return None
            fstart = starts.containing(vaddr, MAX_FUNCTION)
            if fstart is None:
                return None
            foff = starts.to_offset(fstart)
            if foff is None or foff > offset - SHORT_LEAST or foff < v.offset or offset - foff > MAX_FUNCTION:
                return None
            code = os.pread(fd, offset - foff + 2, foff)
            if len(code) != offset - foff + 2:
                return None
            here = syscall_at - (offset - foff)  # the function's start in the program's memory
            site = decode.displaced_before_syscall(code, here, syscall_at, 5, T.MOST)
            if site is None and self.short_ok and syscall_at not in self.framed_at:
                # the whole function, to prove that nothing in it lands on the `syscall`
                # the jump would cover (the file's bytes, in the same mapping)
                size = starts.end_of(fstart) - fstart
                if offset - foff + 2 <= size <= MAX_FUNCTION and foff + size <= v.offset + (v.end - v.start):
                    code = os.pread(fd, size, foff)
                    if len(code) == size:
                        site = decode.covered_with_syscall(code, here, syscall_at, SHORT_LEAST, SHORT_MOST)
        except OSError:
            return None
        finally:
            os.close(fd)
        if site is None:
            return None
        insn = code[site - here:syscall_at - here]
        if not self._holds(v, site, insn):
            return None  # (the program's memory is not the file's here)
        if cache is not None:
            cache.keep(key, offset, insn)
        return site, insn

    def _holds(self, v, site: int, insn: bytes) -> bool:
        """Are ``insn`` and a `syscall` what the program's memory has at ``site``, within
        the mapping ``v``?"""
        if site < v.start:
            return False
        try:
            return self.p.mem.read(site, len(insn) + 2) == insn + SYSCALL
        except GuestError:
            return False

    # -- the change ------------------------------------------------------------------------
    def _patch(self, task, syscall_at: int, site: int, insn: bytes, at: int):
        """With the other threads paused: the trampoline at ``at``, then the jump.  A jump
        that covers the `syscall` too (a short site) waits while a thread stands on that
        `syscall` (stopped between the two instructions: it would resume inside the
        jump), and never comes where a signal frame km wrote returns to it (``framed``):
        nothing else puts a thread there (``covered_with_syscall``)."""
        done = self.by_syscall.get(syscall_at)
        if done is not None:  # (another thread that trapped there at the same time did it)
            return done
        mem = self.p.mem
        try:
            if not self._quick(syscall_at) or mem.read(site, len(insn) + 2) != insn + SYSCALL:
                return None  # (changed meanwhile)
        except GuestError:
            return None
        short = site + 5 > syscall_at
        again = []  # threads in km's stub, on their way back to make a call again from this `syscall`
        if short:
            if syscall_at in self.framed_at or not self.short_ok:
                return None
            for t in list(self.p.tasks.values()):
                if t is task:
                    continue
                if t.q[k.RIP] == syscall_at:
                    return LATER
                if t.q[k.RCX] == syscall_at and t.q[k.RIP] >= L.SYS_BASE:
                    again.append(t)  # (a call a kick interrupted, to run again: the kick was ours)
        jmp = T.jump(site, at)
        mem.write(at, T.code(at, insn, syscall_at))  # (km's host mapping of its page is writable)
        original = mem.read(site, 5)
        if not self._poke(site, jmp):
            return None
        self.patched[site] = (original, at)
        self.tramps[at] = (site, len(insn), syscall_at)
        self.by_syscall[syscall_at] = at
        if short:
            self.short[syscall_at] = at + len(insn)
            self.entries[at + len(insn)] = syscall_at
            self.short_sites += 1
            for t in again:
                t.q[k.RCX] = at + len(insn)
                t.vcpu.mark_regs_dirty()
        bisect.insort(self._sorted, site)
        self.sites += 1
        return at

    def _poke(self, addr: int, data: bytes) -> bool:
        """Write ``data`` over read-only code through km's host mapping: made writable for
        the moment (a private mapping: the page becomes km's private copy)."""
        from kontain import native

        base = self.p.mem.base
        lo = addr & ~(_PAGE - 1)
        hi = (addr + len(data) + _PAGE - 1) & ~(_PAGE - 1)
        if native.mprotect(base + lo, hi - lo, F.PROT_READ | F.PROT_WRITE) < 0:
            return False
        try:
            self.p.mem.write(addr, data)
        finally:
            native.mprotect(base + lo, hi - lo, F.PROT_READ)
        return True

    def _give_back(self, at: int) -> None:
        """The trampoline ``at`` was not used after all: the last one handed out of its page."""
        for page in self.pages:
            if page[1] and page[0] + (page[1] - 1) * T.SIZE == at:
                page[1] -= 1
                return

    def _trampoline(self, site: int) -> int | None:
        """A free trampoline within reach of ``site``: in a page km has, or a new one."""
        for page in self.pages:
            if page[1] < _PAGE // T.SIZE and T.reaches(site, page[0] + page[1] * T.SIZE) and \
                    T.reaches(site, page[0] + _PAGE):
                at = page[0] + page[1] * T.SIZE
                page[1] += 1
                return at
        mm = self.p.mm
        try:
            start = mm.find_free(_PAGE, top=site & ~(_PAGE - 1), bottom=max(site - REACH, 0))
            if not T.reaches(site, start):
                start = mm.find_free(_PAGE, top=min(site + REACH, mm.window), bottom=site)
            if not T.reaches(site, start):
                return None
            mm.map_km(start, _PAGE, NAME)
        except GuestError:
            return None
        self.pages.append([start, 1])
        return start

    # -- what changes the code's mappings (syscalls/mm.py calls it before the change) ----------
    def changing(self, task, start: int, end: int, *, keeps: bool) -> None:
        """[start, end) is about to be unmapped, replaced, made writable or moved.  Sites
        there are given their original bytes back first if the memory stays (``keeps``:
        made writable, moved) and the range is never patched again; sites whose
        trampoline page goes are put back too."""
        if keeps and any(v.prot & F.PROT_EXEC for v in self.p.mm.overlapping(start, end)):
            if len(self.frozen) < MAX_FROZEN:
                self.frozen.append((start, end))
            else:
                self.enabled = False  # (too many to remember: no more sites are rewritten)
        if not self.patched:
            return
        revert = []
        i = bisect.bisect_left(self._sorted, start - 5)
        while i < len(self._sorted) and self._sorted[i] < end:
            site = self._sorted[i]
            if site + 5 > start:
                revert.append(site)
            i += 1
        # (trampoline pages refuse mprotect and mremap: only an unmap or a replacement takes one)
        pages = [] if keeps else [pg[0] for pg in self.pages if pg[0] < end and start < pg[0] + _PAGE]
        if pages:
            revert += [s for s, (_o, at) in self.patched.items() if (at & ~(_PAGE - 1)) in pages]
        if revert:
            # (memory that goes needs nothing written back)
            self._revert(task, {s: keeps or not start <= s < end for s in revert})
        self.pages = [pg for pg in self.pages if pg[0] not in pages]

    def _put_back(self, task) -> None:
        """The short sites a signal frame returns into get their bytes back (``framed``),
        before this thread goes back to the program.  A site leaves ``put_back_soon`` only
        once it is back: a thread that found the set emptied by another thread's
        ``_put_back``, which had yet to pause the others, went on to its rt_sigreturn and
        into the jump's middle (in rewrite.c's rawthreads signal storm, with both CPUs
        busy: "killed by SIGSEGV at 0xffffffffe907b440", the `incl disp32(%rip)` that
        the jump's last byte and the next instructions' bytes make).  Now it puts the
        site back itself, or waits in ``_revert``'s pause for the thread that does."""
        with self.lock:  # (another thread's ``framed`` adds to it meanwhile: a set iterated as it grew
            # failed with "Set changed size during iteration" in a signal storm)
            soon = set(self.put_back_soon)
        sites = {s: True for s in soon if s in self.patched}
        if sites:
            self._revert(task, sites)
        with self.lock:
            self.put_back_soon -= soon

    def _revert(self, task, sites: dict[int, bool]) -> None:
        """Forget ``sites``, writing back the original bytes of those marked True, with
        the other threads paused; none is rewritten again."""
        p = self.p
        alone = len(p.tasks) == 1 and not p.pause_requests
        paused = alone or p.pause_others(task)
        try:
            for site, write in sites.items():
                if site not in self.patched:
                    continue  # (another thread's ``_put_back`` took it back while this one waited for the pause)
                original, at = self.patched.pop(site)
                self._sorted.remove(site)
                _site, _n, syscall_at = self.tramps.pop(at)
                del self.by_syscall[syscall_at]
                entry = self.short.pop(syscall_at, None)
                if entry is not None:
                    # (a call made again there meanwhile enters the trampoline, which stays
                    # while its page does: a thread may be on its way in)
                    del self.entries[entry]
                if write:
                    self.put_back += 1
                    self.seen[syscall_at + 2] = REFUSED  # (never again here)
                    self._poke(site, original)
                else:
                    self.seen.pop(syscall_at + 2, None)  # (the code is gone: what comes there is new)
        finally:
            if not alone and paused:
                p.resume_others(task)

    # -- what the program is shown ---------------------------------------------------------
    def original(self, addr: int, data: bytes) -> bytes:
        """``data``, guest memory read at ``addr``, with every rewritten site in it shown
        as it was (core files; a debugger's memory reads)."""
        if not self._sorted:
            return data
        i = bisect.bisect_left(self._sorted, addr - 4)
        out = None
        end = addr + len(data)
        while i < len(self._sorted) and self._sorted[i] < end:
            site = self._sorted[i]
            orig = self.patched[site][0]
            for j in range(5):
                if addr <= site + j < end:
                    if out is None:
                        out = bytearray(data)
                    out[site + j - addr] = orig[j]
            i += 1
        return data if out is None else bytes(out)

    def settle(self, task) -> bool:
        """A thread stopped inside a trampoline goes back to the program's code: before
        the site's instruction ran, to the site; after, to the `syscall` with RAX the
        number (trampoline.resume_point): a signal handler sees the program's own code
        address, and the call is made as the program made it.  A short site's `syscall`
        is under its jump: there the thread goes to the trampoline's entry instead
        (``again``), which a signal handler sees as the interrupted address.  True if it
        was in one."""
        q = task.q
        rip = q[k.RIP]
        at = rip - rip % T.SIZE
        where = self.tramps.get(at)
        if where is None:
            return False
        site, n, syscall_at = where
        point = T.resume_point(rip - at, n)
        if point is None:
            return False
        if point[0] == "site":
            q[k.RIP] = site
        else:
            if point[1]:
                q[k.RAX] = q[k.R11]
            q[k.RIP] = self.again(syscall_at)
        task.vcpu.mark_regs_dirty()
        return True

    # -- short sites: where a call is made again, what a signal frame returns to -----------
    def again(self, syscall_at: int) -> int:
        """Where a call from the `syscall` at ``syscall_at`` is made again (a restart, a
        call the poller did not take): there, unless a short site's jump covers it, then
        its trampoline's entry (with RAX the number, as at the `syscall`)."""
        return self.short.get(syscall_at, syscall_at) if self.short else syscall_at

    def as_program(self, addr: int) -> int:
        """``addr`` as the program's code has it: a short site's trampoline entry is its
        `syscall` (a snapshot, which saves the code as it was and no trampoline)."""
        return self.entries.get(addr, addr) if self.entries else addr

    def framed(self, rip: int) -> int:
        """km is about to write a signal frame that returns to ``rip``; returns where it
        returns to instead.  A signal frame never returns into km's code or a jump's
        middle: the handler may keep it, or a copy of it, as long as it likes (Go's
        preemption resumes from a copy), and a snapshot saves neither trampolines nor
        jumps.  So at a short site's trampoline entry (a call made again after a handler)
        the frame returns to the site's `syscall`, and the site gets its bytes back at the
        next exit to km, with the other threads paused (``put_back_soon``: the handler's
        rt_sigreturn at the latest, or the sigprocmask of a setcontext); and a `syscall`
        a frame returns to is never covered by a jump."""
        rip = self.entries.get(rip, rip) if self.entries else rip
        if rip in self.short:
            # (at a short site's entry, or at its `syscall` itself, which a jump covers now:
            # a thread that stood on that `syscall` in km while another made the jump, which
            # then reads as no `syscall` below, would return into the jump's middle)
            where = self.tramps.get(self.by_syscall.get(rip, -1))
            if where is not None:  # (else another thread has just taken the site back)
                with self.lock:  # (``_put_back`` copies the set, and takes out what it put back)
                    self.put_back_soon.add(where[0])
            return rip
        if rip in self.framed_at or not self.short_ok:
            return rip
        try:
            if self.p.mem.read(rip, 2) != SYSCALL:
                return rip
        except GuestError:
            return rip
        if len(self.framed_at) >= MAX_FRAMED:
            self.short_ok = False  # (too many to remember: no more short sites)
        else:
            self.framed_at.add(rip)
        return rip

    # -- GS ----------------------------------------------------------------------------------
    def gs_taken(self, task) -> None:
        """The program sets its own GS base (arch_prctl): trampolines could no longer find
        the stub on that thread, so every site gets its original bytes back and no more
        are rewritten (the threads still inside a trampoline keep km's GS and finish)."""
        self.owns_gs = False
        if self.patched:
            self._revert(task, dict.fromkeys(self.patched, True))

    def reset(self) -> None:
        """exec: a new program in an empty address space (whose sites the native poller
        must not take for the old program's)."""
        self.__init__(self.p, self.cache)
        poller = self.p.poller
        if poller is not None and poller.ctl is not None:
            poller.ctl.forget_sites()

    def report(self) -> str:
        poller = self.p.poller
        polled = self.polled + (poller.native_patched if poller is not None else 0)
        return (f"{self.sites} syscall sites rewritten ({self.short_sites} short, {self.refused} refused, "
                f"{self.put_back} put back); calls: {self.trapped} trapped, "
                f"{polled} rewritten and polled, {self.exited} rewritten and exited"
                + (f"; {self.cache.hits} proofs from earlier runs, {self.cache.kept} kept" if self.cache else ""))
