"""The monitor's only door to C: raw host system calls, ioctls and memory by address.

Why not ``import ctypes``?  ``km`` starts on every container start, and the ``ctypes``
package costs about 2.5 ms to import (it defines ~40 classes and loads ``struct`` and
``ctypes._endian``), while its C core ``_ctypes`` costs about 0.5 ms.  We need only a
handful of scalar types and function pointers, so we build them here on ``_ctypes``
directly.  Everything else in the project talks to the host through this module.

Calls return the kernel convention: a non-negative result, or ``-errno``.  ctypes
releases the GIL around each foreign call, so a vCPU thread blocked in ``KVM_RUN`` or in
a host ``read`` never holds up the others.
"""

from __future__ import annotations

import _ctypes

__all__ = [
    "c_int",
    "c_long",
    "c_ulong",
    "c_char",
    "syscall",
    "ioctl",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "read_mem",
    "write_mem",
    "string_at",
    "memmove",
    "buffer_at",
]


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class _Lib:
    """What ``CFuncPtr((name, lib))`` expects: an object with a ``_handle``."""

    def __init__(self) -> None:
        # dlopen(NULL): the global namespace of the process, which holds libc.
        self._handle = _ctypes.dlopen(None, _ctypes.RTLD_GLOBAL)


_libc = _Lib()


class _CFunc(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


def _fn(name: str, restype: type, *argtypes: type) -> _CFunc:
    f = _CFunc((name, _libc))
    f.restype = restype
    f.argtypes = argtypes
    return f


get_errno = _ctypes.get_errno

# syscall(2) with a fixed number of arguments: ctypes converts each argument, so fewer
# declared arguments make a cheaper call (about 0.3 us per argument).
_sc = [_fn("syscall", c_long, *([c_long] * (n + 1))) for n in range(7)]
sc0, sc1, sc2, sc3, sc4, sc5, sc6 = _sc


def syscall(nr: int, *args: int) -> int:
    """Host system call ``nr``; returns the result or ``-errno``."""
    r = _sc[len(args)](nr, *args)
    if r == -1:
        return -get_errno()
    return r


def capable(cap: int) -> bool:
    """Has the calling thread capability ``cap`` in its effective set?  (Linux's
    capable(), for a call km answers itself: the host thread's credentials are the
    program thread's.)"""
    head = bytearray((0x20080522).to_bytes(8, "little"))  # _LINUX_CAPABILITY_VERSION_3, pid 0
    data = bytearray(24)
    if syscall(125, address_of(head), address_of(data)) != 0:  # capget
        return False
    word = int.from_bytes(data[12 * (cap // 32):12 * (cap // 32) + 4], "little")  # that half's effective set
    return bool(word >> (cap % 32) & 1)


def dup_at_least(fd: int, lowest: int) -> int:
    """fcntl(F_DUPFD_CLOEXEC): a close-on-exec copy of ``fd`` at ``lowest`` or above (how
    km keeps its own descriptors out of the guest's range); -errno on failure."""
    return syscall(72, fd, 1030, lowest)


def name_thread(name: bytes) -> None:
    """prctl(PR_SET_NAME) for the calling thread: km's own helper threads say what they
    are (``top -H``, /proc/PID/task/TID/comm), the guest's threads carry its name."""
    buf = bytearray(name[:15] + b"\0")
    syscall(157, 15, address_of(buf), 0, 0, 0)


def syscall1(nr: int, a: int) -> int:
    r = sc1(nr, a)
    return -get_errno() if r == -1 else r


def syscall3(nr: int, a: int, b: int, c: int) -> int:
    r = sc3(nr, a, b, c)
    return -get_errno() if r == -1 else r


def syscall6(nr: int, a: int, b: int, c: int, d: int, e: int, f: int) -> int:
    r = sc6(nr, a, b, c, d, e, f)
    return -get_errno() if r == -1 else r


_ioctl = _fn("ioctl", c_int, c_int, c_ulong, c_ulong)


def ioctl(fd: int, request: int, arg: int = 0) -> int:
    """ioctl(2) with an integer or address argument; releases the GIL (KVM_RUN)."""
    r = _ioctl(fd, request, arg)
    return -get_errno() if r == -1 else r


_mmap = _fn("mmap", c_long, c_ulong, c_ulong, c_int, c_int, c_int, c_long)
_munmap = _fn("munmap", c_int, c_ulong, c_ulong)
_mprotect = _fn("mprotect", c_int, c_ulong, c_ulong, c_int)
_madvise = _fn("madvise", c_int, c_ulong, c_ulong, c_int)

MAP_FAILED = -1


def mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1, offset: int = 0) -> int:
    """mmap(2); returns the address or ``-errno``."""
    r = _mmap(addr, length, prot, flags, fd, offset)
    return -get_errno() if r == -1 else r & 0xFFFFFFFFFFFFFFFF


def munmap(addr: int, length: int) -> int:
    r = _munmap(addr, length)
    return -get_errno() if r == -1 else r


def mprotect(addr: int, length: int, prot: int) -> int:
    r = _mprotect(addr, length, prot)
    return -get_errno() if r == -1 else r


def madvise(addr: int, length: int, advice: int) -> int:
    r = _madvise(addr, length, advice)
    return -get_errno() if r == -1 else r


class _PyFunc(_ctypes.CFuncPtr):
    """A C function called with the GIL held (ctypes's PYFUNCTYPE)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI
    _restype_ = c_long


def python_api(name: str) -> int:
    """The address of a function of the Python interpreter's C API."""
    return _ctypes.dlsym(_libc._handle, name)


def library_function(path: str, name: str, restype: type, *argtypes: type) -> _CFunc:
    """Function ``name`` of the shared library at ``path`` (loaded once, never unloaded),
    called like every foreign call here: with the GIL released.  OSError if it cannot
    be loaded."""
    handle = _ctypes.dlopen(path, _ctypes.RTLD_LOCAL)
    f = _CFunc(_ctypes.dlsym(handle, name))
    f.restype = restype
    f.argtypes = argtypes
    return f


def python_call(name: str) -> _PyFunc:
    """``name()``, a void function of the C API, callable with the GIL held."""
    f = _PyFunc(python_api(name))
    f.restype = None
    f.argtypes = ()
    return f


def machine_code(code: bytes, restype: type, *argtypes: type, keep_gil: bool = False) -> _CFunc:
    """A C function made of ``code`` (position-independent x86-64 machine code), in pages
    of its own that are never writable again.  Like every foreign call here, a call
    releases the GIL for its whole length, unless ``keep_gil``."""
    size = (len(code) + 4095) & ~4095
    addr = mmap(0, size, 3, 0x22)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
    if addr < 0:
        raise OSError(-addr, "mmap")
    buffer_at(addr, len(code))[:] = code
    r = mprotect(addr, size, 5)  # PROT_READ|PROT_EXEC
    if r < 0:
        raise OSError(-r, "mprotect")
    f = (_PyFunc if keep_gil else _CFunc)(addr)
    f.restype = restype
    f.argtypes = argtypes
    return f


# -- memory by address -------------------------------------------------------------
#
# Monitor-side reads and writes of *guest* memory go through process_vm_readv/writev on
# our own pid: the kernel checks every page, so a hostile address (a hole, a truncated
# file mapping) gives EFAULT instead of crashing the monitor with SIGSEGV or SIGBUS.

_SYS_process_vm_readv = 310
_SYS_process_vm_writev = 311
_PID = syscall(39)  # getpid; refreshed after fork by reset_pid()


def reset_pid() -> None:
    """Call in a forked child: process_vm_* address the current process by pid."""
    global _PID
    _PID = syscall(39)


_copy_code: bytes | None = None  # the platform's machine code for one copy (use_copy_code)


def use_copy_code(code: bytes) -> None:
    """Make guest memory copies with ``code`` from the next one on: the platform's
    process_vm_readv/writev of one range, ``f(pid, local, remote, length, nr)``, called
    with the GIL held (arch/x86_64/hostcode.py VM_COPY says why)."""
    global _copy_code
    _copy_code = code


def _vm_copy(pid: int, local: int | bytes, remote: int, length: int, nr: int) -> int:
    """One copy between the monitor's memory (``local``: an address, or bytes to write)
    and guest memory.  Once the platform's code is known (``use_copy_code``), the
    function made of it replaces this one at the first copy; before, syscall() with two
    iovec structures does it."""
    global _vm_copy
    if _copy_code is not None:
        _vm_copy = machine_code(_copy_code, c_long, c_long, c_void_p, c_ulong, c_ulong, c_long, keep_gil=True)
        return _vm_copy(pid, local, remote, length, nr)
    keep = bytearray(local) if type(local) is bytes else None
    if keep is not None:
        local = _ctypes.addressof(_Byte.from_buffer(keep))
    iov = bytearray(b"".join(x.to_bytes(8, "little") for x in (local, length, remote, length)))
    a = _ctypes.addressof(_Byte.from_buffer(iov))
    r = sc6(nr, pid, a, 1, a + 16, 1, 0)
    return -get_errno() if r == -1 else r


def read_mem(host_addr: int, length: int) -> bytes | int:
    """Copy ``length`` bytes from host address; ``-EFAULT`` if any page is bad."""
    if length <= 0:
        return b""
    buf = bytearray(length)
    if _vm_copy(_PID, _ctypes.addressof(_Byte.from_buffer(buf)), host_addr, length, _SYS_process_vm_readv) != length:
        return -14  # EFAULT: a short copy means a bad page inside the range
    return bytes(buf)


# A ctypes array type costs ~8 us to make (one per length: the cache below holds 256), and a
# buffer's address needs none: a one-byte view of its start (``_Byte.from_buffer``, ~0.5 us).
# Made anew for every path and string of a new length, the types cost a forked child ~0.9 ms
# of a fork+exec and python3 -c 'import json' ~4 ms.
_char_arrays: dict[int, type] = {}


def _char_array(n: int) -> type:
    t = _char_arrays.get(n)
    if t is None:
        t = type(f"c_char_Array_{n}", (_ctypes.Array,), {"_type_": c_char, "_length_": n})
        if len(_char_arrays) < 256:
            _char_arrays[n] = t
    return t


_Byte = _char_array(1)


def write_mem(host_addr: int, data: bytes) -> int:
    """Copy ``data`` to host address; 0, or ``-EFAULT`` if any page is bad or read-only."""
    n = len(data)
    if not n:
        return 0
    if type(data) is bytes:  # (passed as the address of its contents, which the kernel only reads)
        r = _vm_copy(_PID, data, host_addr, n, _SYS_process_vm_writev)
    else:
        src = data if type(data) is bytearray else bytearray(data)
        r = _vm_copy(_PID, _ctypes.addressof(_Byte.from_buffer(src)), host_addr, n, _SYS_process_vm_writev)
    return 0 if r == n else -14


def string_at(addr: int, length: int) -> bytes:
    """Read monitor-owned memory (never guest memory: use read_mem for that)."""
    return _char_array(length).from_address(addr).raw


def buffer_at(addr: int, length: int) -> memoryview:
    """A writable memoryview over monitor-owned memory at ``addr``."""
    return memoryview(_char_array(length).from_address(addr)).cast("B")


_memmove = _CFunc(_ctypes._memmove_addr)
_memmove.restype = c_ulong
_memmove.argtypes = (c_ulong, c_ulong, c_ulong)


def memmove(dst: int, src: int, n: int) -> None:
    """memmove between monitor-owned addresses."""
    _memmove(dst, src, n)


def address_of(buf: object) -> int:
    """Address of a writable buffer (bytearray, ctypes object)."""
    if isinstance(buf, bytearray):
        return _ctypes.addressof((_Byte if buf else _char_array(0)).from_buffer(buf))
    return _ctypes.addressof(buf)


class _PyFunc(_ctypes.CFuncPtr):
    """A C function called with the GIL held (for a few instructions, releasing and
    re-taking the GIL would cost more than the call)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI


_cas32_fn: _PyFunc | None = None
# cas32(ptr, expected, new) -> the old value:  mov %esi,%eax; lock cmpxchg %edx,(%rdi); ret
_CAS32_CODE = bytes.fromhex("89f0f00fb117c3")


def cas32(addr: int, expected: int, new: int) -> int:
    """Atomic compare-and-swap of the 32-bit word at monitor-owned ``addr`` (a word that
    guest code changes with locked instructions too: Python has no atomic operation on
    memory).  Returns the value found; the swap happened if it equals ``expected``."""
    global _cas32_fn
    if _cas32_fn is None:
        page = mmap(0, 4096, 3, 0x22)  # RW, MAP_PRIVATE|MAP_ANONYMOUS
        if page < 0:
            raise MemoryError("cannot map a page for cas32")
        buffer_at(page, len(_CAS32_CODE))[:] = _CAS32_CODE
        r = mprotect(page, 4096, 5)  # R+X
        if r < 0:
            raise OSError(-r, "mprotect for cas32")
        f = _PyFunc(page)
        f.restype = c_uint
        f.argtypes = (c_ulong, c_uint, c_uint)
        _cas32_fn = f
    return _cas32_fn(addr, expected, new)


# -- interruptible host calls ------------------------------------------------------
#
# A vCPU thread is made to look at a new signal by a kick (kernel/signals.py): a flag
# byte of its own is set, then SIG_KICK is sent to it.  A blocking host call must not
# miss a kick that lands just before it starts: ``blocking`` makes the call through the
# machine code below, which reads the flag right before `syscall`, and the handler of
# SIG_KICK moves a thread interrupted between that read and the `syscall` instruction
# to the same exit.  Either way the call is not made and returns -ERESTARTNOINTR, which
# the monitor turns into a restart of the guest's call once the signal is delivered; a
# kick during the call interrupts it (EINTR), one after it finds the flag set.  So no
# kick needs repeating, and none is lost (glibc and musl cancel threads the same way).
#
#   blocking_call(flag, nr, a1..a6):      kick_handler(sig, info, uc):
#     mov %rsi,%rax; mov %rdi,%r11          mov 168(%rdx),%rax     (uc_mcontext.rip)
#     mov %rdx,%rdi; mov %rcx,%rsi          lea window(%rip),%rcx; cmp %rcx,%rax; jb 1f
#     mov %r8,%rdx;  mov %r9,%r10           lea after(%rip),%rcx;  cmp %rcx,%rax; jae 1f
#     mov 8(%rsp),%r8; mov 16(%rsp),%r9     lea not_made(%rip),%rcx; mov %rcx,168(%rdx)
#   window: cmpb $0,(%r11); jne not_made  1: ret
#     syscall                             restorer:
#   after: ret                              mov $15,%eax; syscall   (rt_sigreturn)
#   not_made: mov $-513,%rax; ret
_CODE = bytes.fromhex(
    "4889f04989fb4889d74889ce4c89c24d89ca4c8b4424084c8b4c241041803b007503"
    "0f05c348c7c0fffdffffc3488b82a8000000488d0de1ffffff4839c8721a488d0ddd"
    "ffffff4839c8730e488d0dd2ffffff48898aa8000000c3b80f0000000f05")
KICK_HANDLER, KICK_RESTORER = 0x2D, 0x5B  # offsets in _CODE
UC_RIP = 168  # offsetof(struct ucontext, uc_mcontext.rip), what kick_handler moves
ERESTARTNOINTR = 513  # what a call not made returns (negated)
_code = mmap(0, 4096, 3, 0x22)  # PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
_src = _char_array(len(_CODE)).from_buffer_copy(_CODE)
memmove(_code, _ctypes.addressof(_src), len(_CODE))
del _src
mprotect(_code, 4096, 5)  # PROT_READ|PROT_EXEC


class _RawFunc(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = c_long


def _raw(n: int) -> _RawFunc:
    f = _RawFunc(_code)
    f.restype = c_long
    f.argtypes = (c_ulong,) + (c_long,) * (n + 1)
    return f


_bc = [_raw(n) for n in range(7)]


def blocking(flag: int, nr: int, *args: int) -> int:
    """Host system call ``nr`` that may block, made unless the byte at ``flag`` (the
    calling task's kick flag) is set: the result, -errno, or -ERESTARTNOINTR when a
    kick came first and the call was not made."""
    return _bc[len(args)](flag, nr, *args)


def install_code_handler(sig: int, code: bytes, restorer: int) -> None:
    """``sig``'s host action: ``code`` (machine code: its handler first, its rt_sigreturn at
    ``restorer``), SA_SIGINFO | SA_RESTORER | SA_RESTART, every signal blocked while it runs."""
    page = mmap(0, 4096, 3, 0x22)  # RW, MAP_PRIVATE|MAP_ANONYMOUS
    if page < 0:
        raise MemoryError("cannot map a page for a signal handler")
    buffer_at(page, len(code))[:] = code
    mprotect(page, 4096, 5)  # R+X
    fields = (page, 0x14000004, page + restorer, (1 << 64) - 1)
    act = bytearray(b"".join(v.to_bytes(8, "little") for v in fields))  # struct kernel_sigaction
    syscall(13, sig, address_of(act), 0, 8)  # rt_sigaction


def install_kick_handler(sig: int) -> None:
    """SIG_KICK's action: kick_handler above, with its own rt_sigreturn (no SA_RESTART:
    a kicked host call fails with EINTR)."""
    fields = (_code + KICK_HANDLER, 0x04000004, _code + KICK_RESTORER, 0)  # flags: SA_SIGINFO | SA_RESTORER
    act = bytearray(b"".join(v.to_bytes(8, "little") for v in fields))  # struct kernel_sigaction
    syscall(13, sig, address_of(act), 0, 8)  # rt_sigaction
