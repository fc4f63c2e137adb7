"""Kvm -> Vm -> Vcpu: one method per ioctl, and nothing else.

These objects know the KVM API, not x86 long mode, not Linux, not the guest program.
Failures raise :class:`KvmError` with a message a user can act on.
"""

from __future__ import annotations

import os
import struct

from kontain import native
from kontain.abi.errno import EINTR
from kontain.errors import KmError
from kontain.kvm import abi as k

_O_CLOEXEC = os.O_CLOEXEC


class KvmError(KmError):
    """A failure of /dev/kvm itself; the message is one line for the user."""


def _check(r: int, what: str) -> int:
    if r < 0:
        raise KvmError(f"{what}: {os.strerror(-r)}")
    return r


def _ioctl_buf(fd: int, req: int, buf: bytearray) -> int:
    """ioctl with a pointer to ``buf`` (the kernel may write into it)."""
    return native.ioctl(fd, req, native.address_of(buf))


def read_stats(fd: int) -> dict[str, int]:
    """KVM's own counters for the VM or vCPU ``fd`` (KVM_GET_STATS_FD): name -> value,
    a histogram's buckets summed; {} where KVM has none.  For ``km --timings``: how many
    exits, page faults and TLB flushes the program cost KVM, which no other tool here can
    see (KVM's debugfs is closed to root under lockdown)."""
    sfd = native.ioctl(fd, k.KVM_GET_STATS_FD, 0)
    if sfd < 0:
        return {}
    try:
        head = k.stats_header.unpack(os.pread(sfd, k.stats_header.size, 0))
        _flags, name_size, num, _id, desc_off, data_off = head
        step = k.stats_desc.size + name_size
        descs = os.pread(sfd, step * num, desc_off)
        out = {}
        for i in range(num):
            _f, _exp, size, off, _bucket = k.stats_desc.unpack_from(descs, i * step)
            name = descs[i * step + k.stats_desc.size:(i + 1) * step].split(b"\0")[0].decode()
            values = struct.unpack(f"={size}Q", os.pread(sfd, 8 * size, data_off + off))
            out[name] = sum(values)
        return out
    finally:
        os.close(sfd)


class Kvm:
    """An open /dev/kvm."""

    def __init__(self, path: str = "/dev/kvm", *, fd_floor: int = 0):
        try:
            fd = os.open(path, os.O_RDWR | _O_CLOEXEC)
        except FileNotFoundError:
            raise KvmError(f"{path}: no such device (KVM is not available here: enable virtualization "
                           "or load the kvm module)") from None
        except PermissionError:
            raise KvmError(f"{path}: permission denied (add yourself to group kvm, "
                           f"or run: sudo setfacl -m u:$USER:rw {path})") from None
        except OSError as e:
            raise KvmError(f"{path}: {e.strerror}") from None
        self.fd_floor = fd_floor
        self.fd = self._high(fd)
        version = native.ioctl(self.fd, k.KVM_GET_API_VERSION)
        if version != k.KVM_API_VERSION:
            raise KvmError(f"{path}: unsupported KVM API version {version} (need {k.KVM_API_VERSION})")
        self._mmap_size = 0

    def _high(self, fd: int) -> int:
        """Move a monitor descriptor above the guest's descriptor range (see kernel.fdtable)."""
        if fd >= self.fd_floor:
            return fd
        new = native.dup_at_least(fd, self.fd_floor)
        os.close(fd)  # (whatever happens: never left in the program's range)
        return _check(new, "fcntl(F_DUPFD_CLOEXEC)")

    def check_extension(self, cap: int) -> int:
        r = native.ioctl(self.fd, k.KVM_CHECK_EXTENSION, cap)
        return max(r, 0)

    @property
    def xsave_size(self) -> int:
        if not hasattr(self, "_xsave_size"):
            self._xsave_size = max(self.check_extension(k.KVM_CAP_XSAVE2), k.XSAVE_SIZE)
        return self._xsave_size

    @property
    def vcpu_mmap_size(self) -> int:
        if not self._mmap_size:
            self._mmap_size = _check(native.ioctl(self.fd, k.KVM_GET_VCPU_MMAP_SIZE), "KVM_GET_VCPU_MMAP_SIZE")
        return self._mmap_size

    def supported_cpuid(self) -> list[tuple[int, ...]]:
        """KVM_GET_SUPPORTED_CPUID as a list of kvm_cpuid_entry2 tuples.  Asked at every
        start (~0.4 ms here, 1.5% of a start): a cache file would save that much, but
        would be km's own state in a place the program sees (a user's ~/.cache was one)
        and may write."""
        buf = self._get_supported_cpuid()
        nent = k.cpuid2_header.unpack_from(buf, 0)[0]
        size = k.cpuid_entry2.size
        return [k.cpuid_entry2.unpack_from(buf, 8 + i * size) for i in range(nent)]

    def _get_supported_cpuid(self) -> bytes:
        n = 256
        while True:
            buf = bytearray(k.cpuid2_header.size + n * k.cpuid_entry2.size)
            k.cpuid2_header.pack_into(buf, 0, n, 0)
            r = _ioctl_buf(self.fd, k.KVM_GET_SUPPORTED_CPUID, buf)
            if r == -7 and n < 4096:  # E2BIG
                n *= 2
                continue
            _check(r, "KVM_GET_SUPPORTED_CPUID")
            nent = k.cpuid2_header.unpack_from(buf, 0)[0]
            return bytes(buf[:8 + nent * k.cpuid_entry2.size])

    def create_vm(self) -> Vm:
        while True:  # a signal arriving meanwhile makes it fail with EINTR: nothing was created
            r = native.ioctl(self.fd, k.KVM_CREATE_VM, 0)
            if r != -EINTR:
                return Vm(self, self._high(_check(r, "KVM_CREATE_VM")))


class Vm:
    """One KVM virtual machine: memory slots and vCPUs."""

    def __init__(self, kvm: Kvm, fd: int):
        self.kvm = kvm
        self.fd = fd

    def set_memory_region(self, slot: int, flags: int, gpa: int, size: int, hva: int) -> None:
        buf = bytearray(k.userspace_memory_region.pack(slot, flags, gpa, size, hva))
        r = _ioctl_buf(self.fd, k.KVM_SET_USER_MEMORY_REGION, buf)
        if r < 0:
            raise KvmError(f"KVM_SET_USER_MEMORY_REGION(slot {slot}, {gpa:#x}+{size:#x}): {os.strerror(-r)}")

    def enable_cap(self, cap: int, *args: int) -> int:
        a = list(args) + [0] * (4 - len(args))
        buf = bytearray(k.enable_cap.pack(cap, 0, *a, b""))
        return _ioctl_buf(self.fd, k.KVM_ENABLE_CAP, buf)

    def create_vcpu(self, vcpu_id: int) -> Vcpu:
        fd = _check(native.ioctl(self.fd, k.KVM_CREATE_VCPU, vcpu_id), "KVM_CREATE_VCPU")
        return Vcpu(self, self.kvm._high(fd), vcpu_id)

    def close(self) -> None:
        os.close(self.fd)


class Vcpu:
    """One vCPU: its kvm_run page, registers through KVM_CAP_SYNC_REGS, and ioctls.

    ``q`` is a signed 64-bit view of the kvm_run page.  After KVM_RUN returns, the
    general registers are in ``q[k.RAX] .. q[k.RFLAGS]``; writing them and setting
    ``q[k.Q_DIRTY_REGS] = KVM_SYNC_X86_REGS`` hands them back to KVM on the next run,
    without the 3 us KVM_GET_REGS/KVM_SET_REGS ioctls.
    """

    def __init__(self, vm: Vm, fd: int, vcpu_id: int):
        self.vm = vm
        self.fd = fd
        self.id = vcpu_id
        size = vm.kvm.vcpu_mmap_size
        addr = native.mmap(0, size, 3, 1, fd, 0)  # PROT_READ|PROT_WRITE, MAP_SHARED
        if addr < 0:
            raise KvmError(f"mmap(kvm_run): {os.strerror(-addr)}")
        self.run_addr = addr
        self.run_size = size
        self.page = native.buffer_at(addr, size)
        self.q = self.page.cast("q")
        self.q[k.Q_VALID_REGS] = k.KVM_SYNC_X86_REGS
        self.run_fn = None  # see run_through

    # -- running -------------------------------------------------------------------
    def run(self) -> int:
        """KVM_RUN: 0, or -errno (-EINTR when a signal or immediate_exit stopped it)."""
        return native.ioctl(self.fd, k.KVM_RUN, 0)

    def run_through(self, fn) -> None:
        """From now on ``run`` makes KVM_RUN through ``fn(fd, request)``, which returns
        0 or -errno (a function of the monitor's own machine code around the ioctl,
        arch/x86_64/hostcode.py); with None, the plain ioctl again."""
        self.run_fn = fn
        if fn is None:
            self.__dict__.pop("run", None)
        else:
            fd = self.fd
            self.run = lambda: fn(fd, k.KVM_RUN)

    @property
    def exit_reason(self) -> int:
        return self.q[k.Q_EXIT_REASON] & 0xFFFFFFFF

    def set_immediate_exit(self, on: bool) -> None:
        self.page[k.RUN_IMMEDIATE_EXIT] = 1 if on else 0

    def io_exit(self) -> tuple[int, int, int, int]:
        """(direction, size, port, count) of a KVM_EXIT_IO."""
        return struct.unpack_from("=BBHI", self.page, k.RUN_EXIT_UNION)

    def io_data(self) -> int:
        """The value of a one-element KVM_EXIT_IO out."""
        direction, size, port, count = self.io_exit()
        off = struct.unpack_from("=Q", self.page, k.RUN_EXIT_UNION + 8)[0]
        return int.from_bytes(self.page[off:off + size], "little")

    def mmio_exit(self) -> tuple[int, int, bool]:
        """(guest physical address, length, is_write) of a KVM_EXIT_MMIO."""
        gpa, _data, length, is_write = struct.unpack_from("=Q8sIB", self.page, k.RUN_EXIT_UNION)
        return gpa, length, bool(is_write)

    def mmio_data(self, length: int) -> memoryview:
        """The data of a KVM_EXIT_MMIO (a write's, or where a read's answer goes)."""
        return self.page[k.RUN_EXIT_UNION + 8:k.RUN_EXIT_UNION + 8 + min(length, 8)]

    def internal_error(self) -> tuple[int, list[int]]:
        """(suberror, data) of a KVM_EXIT_INTERNAL_ERROR."""
        suberror, ndata = struct.unpack_from("=II", self.page, k.RUN_EXIT_UNION)
        data = list(struct.unpack_from(f"={min(ndata, 16)}Q", self.page, k.RUN_EXIT_UNION + 8))
        return suberror, data

    def regs_dict(self) -> dict[str, int]:
        """The synced general registers as a dict (for messages and debugging)."""
        return {n: self.q[k.Q_REGS + i] & 0xFFFFFFFFFFFFFFFF for i, n in enumerate(k.REG_NAMES)}

    def mark_regs_dirty(self) -> None:
        self.q[k.Q_DIRTY_REGS] = k.KVM_SYNC_X86_REGS

    # -- state ioctls (slow path: ~3 us each on PVM) ----------------------------------
    def get_sregs(self) -> bytearray:
        buf = bytearray(k.sregs.size)
        _check(_ioctl_buf(self.fd, k.KVM_GET_SREGS, buf), "KVM_GET_SREGS")
        return buf

    def set_sregs(self, buf: bytearray) -> None:
        _check(_ioctl_buf(self.fd, k.KVM_SET_SREGS, buf), "KVM_SET_SREGS")

    def get_regs(self) -> bytearray:
        buf = bytearray(k.regs.size)
        _check(_ioctl_buf(self.fd, k.KVM_GET_REGS, buf), "KVM_GET_REGS")
        return buf

    def set_regs(self, buf: bytearray) -> None:
        _check(_ioctl_buf(self.fd, k.KVM_SET_REGS, buf), "KVM_SET_REGS")

    def set_msrs(self, msrs: list[tuple[int, int]]) -> None:
        buf = bytearray(k.msrs_header.pack(len(msrs), 0))
        for index, value in msrs:
            buf += k.msr_entry.pack(index, 0, value & 0xFFFFFFFFFFFFFFFF)
        r = _check(_ioctl_buf(self.fd, k.KVM_SET_MSRS, buf), "KVM_SET_MSRS")
        if r != len(msrs):
            raise KvmError(f"KVM_SET_MSRS: MSR {msrs[r][0]:#x} was refused")

    def get_msrs(self, indices: list[int]) -> list[int]:
        buf = bytearray(k.msrs_header.pack(len(indices), 0))
        for index in indices:
            buf += k.msr_entry.pack(index, 0, 0)
        _check(_ioctl_buf(self.fd, k.KVM_GET_MSRS, buf), "KVM_GET_MSRS")
        return [k.msr_entry.unpack_from(buf, 8 + 16 * i)[2] for i in range(len(indices))]

    def set_cpuid2(self, entries: list[tuple[int, ...]]) -> None:
        buf = bytearray(k.cpuid2_header.pack(len(entries), 0))
        for e in entries:
            buf += k.cpuid_entry2.pack(*e)
        _check(_ioctl_buf(self.fd, k.KVM_SET_CPUID2, buf), "KVM_SET_CPUID2")

    def set_xcr0(self, value: int) -> int:
        buf = bytearray(k.xcrs.size)
        struct.pack_into("=IIIIQ", buf, 0, 1, 0, 0, 0, value)
        return _ioctl_buf(self.fd, k.KVM_SET_XCRS, buf)

    def get_xsave(self) -> bytearray:
        """The vCPU's x87/SSE/AVX... state in the standard XSAVE layout."""
        size = self.vm.kvm.xsave_size
        buf = bytearray(size)
        req = k.KVM_GET_XSAVE2 if size > k.XSAVE_SIZE else k.KVM_GET_XSAVE
        _check(_ioctl_buf(self.fd, req, buf), "KVM_GET_XSAVE")
        return buf

    def set_xsave(self, buf: bytearray) -> int:
        """0, or -errno when KVM refuses the state (a hostile or corrupt XSAVE header)."""
        return _ioctl_buf(self.fd, k.KVM_SET_XSAVE, buf)

    def get_fpu(self) -> bytearray:
        buf = bytearray(k.fpu.size)
        _check(_ioctl_buf(self.fd, k.KVM_GET_FPU, buf), "KVM_GET_FPU")
        return buf

    # -- save / restore (a paused vCPU: out of KVM_RUN, not to enter it meanwhile) --------
    def save(self) -> dict[str, bytes]:
        """The vCPU's state as plain data: general registers (the synced copy, final at a
        safe point), system registers, and the XSAVE area."""
        regs = bytes(self.page[8 * k.Q_REGS:8 * (k.Q_REGS + len(k.REG_NAMES))])
        return {"regs": regs, "sregs": bytes(self.get_sregs()), "xsave": bytes(self.get_xsave())}

    def restore(self, state: dict[str, bytes]) -> None:
        regs = state["regs"]
        self.page[8 * k.Q_REGS:8 * k.Q_REGS + len(regs)] = regs
        self.mark_regs_dirty()
        self.set_sregs(bytearray(state["sregs"]))
        r = self.set_xsave(bytearray(state["xsave"]))
        if r < 0:
            raise KvmError(f"KVM_SET_XSAVE: {os.strerror(-r)}")

    def close(self) -> None:
        native.munmap(self.run_addr, self.run_size)
        os.close(self.fd)
