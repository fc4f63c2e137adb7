"""The host's vDSO, shared with the guest.

clock_gettime and gettimeofday are the calls programs make most (Python's GIL waits, Go's
scheduler), and each exit to the monitor costs tens of microseconds.  The host kernel's
vDSO answers them from its [vvar] pages with RDTSC, and on PVM (and on hardware KVM with
a zero TSC offset) the guest's RDTSC is the host's.  So the guest gets the host's own
[vvar], [vvar_vclock] and [vdso] pages, read-only, through memslots on the host's
mappings of them: the kernel keeps the data current, the code is the kernel's, nothing is
copied.  A vDSO call the host would answer with a syscall makes that syscall from the
guest, which km serves like any other.
"""

from __future__ import annotations

from kontain import native
from kontain.abi import flags as F
from kontain.memory.mm import VM_SPECIAL, AddressSpace, Vma

PARTS = ("[vvar]", "[vvar_vclock]", "[vdso]")


_LAYOUT: list = []  # host_layout's answer, once: a process's vDSO never moves, and a fork's child has its parent's


def host_layout() -> list[tuple[str, int, int, int]] | None:
    """[(name, start, end, prot)] of the host's vDSO mappings in this process, contiguous
    and ending with [vdso]; None if it is not laid out that way."""
    if not _LAYOUT:
        _LAYOUT.append(_read_layout())
    return _LAYOUT[0]


def _read_layout() -> list[tuple[str, int, int, int]] | None:
    parts = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 6 and fields[5] in PARTS:
                    lo, hi = (int(x, 16) for x in fields[0].split("-"))
                    prot = (F.PROT_READ if "r" in fields[1] else 0) | (F.PROT_EXEC if "x" in fields[1] else 0)
                    parts.append((fields[5], lo, hi, prot))
    except OSError:
        return None
    parts.sort(key=lambda p: p[1])
    if not parts or parts[-1][0] != "[vdso]":
        return None
    for a, b in zip(parts, parts[1:]):
        if a[2] != b[1]:
            return None
    return parts


def map_into(mm: AddressSpace) -> int | None:
    """Map the host's vDSO into the guest's mmap area; returns the guest address of the
    vDSO's ELF image (AT_SYSINFO_EHDR), or None when there is none to share."""
    parts = host_layout()
    if parts is None:
        return None
    size = parts[-1][2] - parts[0][1]
    start = mm.find_free(size)
    delta = start - parts[0][1]
    for name, lo, hi, prot in parts:
        mm.map_special(Vma(lo + delta, hi + delta, prot, F.MAP_PRIVATE | F.MAP_ANONYMOUS | VM_SPECIAL, name), hva=lo)
    name, lo, hi, _prot = parts[-1]
    _host_copy(mm, lo + delta, lo, hi - lo)
    return parts[-1][1] + delta


def _host_copy(mm: AddressSpace, start: int, hva: int, size: int) -> None:
    """The host kernel reads the program's memory in the window (base + address), and
    there the vDSO's memslots have nothing: a system call given an address in the vDSO
    failed with EFAULT (on Linux, write(fd, vdso, n) works; the fuzzer found it).  So the
    window gets a read-only copy of the [vdso] image, which never changes.  ([vvar]'s pages
    are data the kernel keeps current: a system call given one still fails with EFAULT,
    docs/known-issues.md.)"""
    base = mm.mem.base + start
    if native.mmap(base, size, F.PROT_READ | F.PROT_WRITE, F.MAP_PRIVATE | F.MAP_ANONYMOUS | F.MAP_FIXED) < 0:
        return  # (the reservation stays: EFAULT, as before)
    native.memmove(base, hva, size)  # (km's own [vdso], always readable)
    native.mprotect(base, size, F.PROT_READ)
