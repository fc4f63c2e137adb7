"""Machine code the monitor runs on the host (not in the guest): functions that must
make several calls without returning to Python in between.

``RUN_NOTSC``: KVM_RUN with the time-stamp counter disabled for the calling host thread
while the guest runs.  A program's prctl(PR_SET_TSC, PR_TSC_SIGSEGV) makes its RDTSC
fault; on PVM the guest's CPL3 code runs with the host's CR4, whose TSD bit Linux sets
for a thread that disabled its TSC, so the guest's RDTSC raises #GP (the program's
SIGSEGV, as natively).  But km's own code on that thread must keep its TSC: the vDSO's
clock_gettime, which CPython calls when it waits for the GIL, executes RDTSC, and a
fault there would kill km.  So the thread disables its TSC only around KVM_RUN, in one
call that Python does not interrupt: prctl(PR_SET_TSC, PR_TSC_SIGSEGV), ioctl(KVM_RUN),
prctl(PR_SET_TSC, PR_TSC_ENABLE).  The result is the ioctl's, as the kernel returns it
(``-errno`` on failure).

``CLONE``: the host's clone with flags os.fork cannot give (an exit signal other than
SIGCHLD, CLONE_PARENT: kernel/fork.py), made as os.fork makes fork(): with the GIL held,
and in the child CPython's PyOS_AfterFork_Child, passed as the second argument, called
before any Python code runs there (the interpreter could otherwise give the GIL to a
thread that the child does not have, and wait for it forever).  Returns the child's pid
in the parent, 0 in the child, -errno.

``RESERVED``: the host's action for signals 32 and 33, which the C library reserves:
glibc's pthread_create leaves 32 unblocked in every thread it makes (and the thread that
made it may see 33 so too), so until a new km thread has blocked the signals km forwards
(signals.block_forwarded, its first line), a 32 or 33 sent to the process can land on it.
At their default action that ended km (the program's kill(0, 32)); at this one the
signal is queued to the process again, as it came (rt_sigqueueinfo to km's own pid keeps
its siginfo), and stays blocked in that thread after the handler returns, so that the
signal thread's signalfd takes it, as it takes every other.

``VM_COPY``: process_vm_readv or process_vm_writev (the fifth argument) of one range
between the monitor's memory and guest memory, in our own process (the first argument,
our pid), its two iovecs built on the stack: ``vm_copy(pid, local, remote, length, nr)``
returns the bytes copied or -errno.  Every monitor-side read and write of guest memory
is one (native.read_mem, write_mem: the kernel checks every page of a hostile address).
Made with ctypes's syscall() and two iovec structures it cost ~5.4 us a copy, of which
~1.5 us building the structures and ~0.3 us per converted argument; this is ~3.1.  It is
called with the GIL held: a copy waits for nothing another thread of km does (guest memory
is anonymous memory or files km mapped, and km offers no userfaultfd; at worst a page is
read from disk), and a thread that gave the GIL up for it had to win it
back from the others, which under km took 9 us a copy at the median and up to 3.5 ms
(``python3 -c 'import json'``: 550 copies, 10 ms before, 3.5 ms since).

The bytes are committed (km needs no assembler at run time); tests/unit/test_hostcode.py
assembles each ``*_SOURCE`` again and checks that they are what it says.
"""

from __future__ import annotations

import struct

from kontain.arch.x86_64 import cpu
from kontain.kvm import abi as k

RUN_NOTSC_SOURCE = """
    push %rbx
    push %r12
    push %r13
    mov %rdi, %r12          # fd
    mov %rsi, %r13          # request
    mov $157, %eax          # prctl(PR_SET_TSC, PR_TSC_SIGSEGV, 0, 0, 0)
    mov $26, %edi
    mov $2, %esi
    xor %edx, %edx
    xor %r10d, %r10d
    xor %r8d, %r8d
    syscall
    mov %r12, %rdi          # ioctl(fd, request, 0)
    mov %r13, %rsi
    xor %edx, %edx
    mov $16, %eax
    syscall
    mov %rax, %rbx
    mov $157, %eax          # prctl(PR_SET_TSC, PR_TSC_ENABLE, 0, 0, 0)
    mov $26, %edi
    mov $1, %esi
    xor %edx, %edx
    xor %r10d, %r10d
    xor %r8d, %r8d
    syscall
    mov %rbx, %rax
    pop %r13
    pop %r12
    pop %rbx
    ret
"""

RUN_NOTSC = bytes.fromhex(
    "5341544155"
    "4989fc"
    "4989f5"
    "b89d000000"
    "bf1a000000"
    "be02000000"
    "31d2"
    "4531d2"
    "4531c0"
    "0f05"
    "4c89e7"
    "4c89ee"
    "31d2"
    "b810000000"
    "0f05"
    "4889c3"
    "b89d000000"
    "bf1a000000"
    "be01000000"
    "31d2"
    "4531d2"
    "4531c0"
    "0f05"
    "4889d8"
    "415d"
    "415c"
    "5b"
    "c3"
)

CLONE_SOURCE = """
    push %rbx
    mov %rsi, %rbx          # after_child
    mov $56, %eax           # clone(flags, 0, 0, 0, 0)
    xor %esi, %esi
    xor %edx, %edx
    xor %r10d, %r10d
    xor %r8d, %r8d
    syscall
    test %rax, %rax
    jnz 1f
    call *%rbx              # the child: after_child()
    xor %eax, %eax
1:  pop %rbx
    ret
"""

CLONE = bytes.fromhex(
    "53"
    "4889f3"
    "b838000000"
    "31f6"
    "31d2"
    "4531d2"
    "4531c0"
    "0f05"
    "4885c0"
    "7504"
    "ffd3"
    "31c0"
    "5b"
    "c3"
)

RESERVED_SOURCE = """
    movabs $0x180000000, %rax
    or %rax, 296(%rdx)      # uc_sigmask: 32 and 33 blocked in this thread once the handler returns
    mov %rdi, %r8           # sig
    mov %rsi, %r9           # info
    mov $39, %eax           # getpid()
    syscall
    mov %rax, %rdi
    mov %r8, %rsi
    mov %r9, %rdx
    mov $129, %eax          # rt_sigqueueinfo(getpid(), sig, info): the process's again, as it came
    syscall
    ret
    mov $15, %eax           # (the restorer: rt_sigreturn)
    syscall
"""

RESERVED = bytes.fromhex(
    "48b80000008001000000"
    "48098228010000"
    "4989f8"
    "4989f1"
    "b827000000"
    "0f05"
    "4889c7"
    "4c89c6"
    "4c89ca"
    "b881000000"
    "0f05"
    "c3"
    "b80f000000"
    "0f05"
)
RESERVED_RESTORER = 0x2F  # offset of the restorer in RESERVED

VM_COPY_SOURCE = """
    mov %r8d, %eax          # nr: process_vm_readv (310) or process_vm_writev (311)
    sub $32, %rsp
    mov %rsi, (%rsp)        # the local iovec: local, length
    mov %rcx, 8(%rsp)
    mov %rdx, 16(%rsp)      # the remote one: remote, length
    mov %rcx, 24(%rsp)
    mov %rsp, %rsi          # nr(pid, &local, 1, &remote, 1, 0)
    mov $1, %edx
    lea 16(%rsp), %r10
    mov $1, %r8d
    xor %r9d, %r9d
    syscall
    add $32, %rsp
    ret
"""

VM_COPY = bytes.fromhex(
    "4489c0"
    "4883ec20"
    "48893424"
    "48894c2408"
    "4889542410"
    "48894c2418"
    "4889e6"
    "ba01000000"
    "4c8d542410"
    "41b801000000"
    "4531c9"
    "0f05"
    "4883c420"
    "c3"
)

SOURCES = {"RUN_NOTSC": (RUN_NOTSC_SOURCE, RUN_NOTSC), "CLONE": (CLONE_SOURCE, CLONE),
           "RESERVED": (RESERVED_SOURCE, RESERVED), "VM_COPY": (VM_COPY_SOURCE, VM_COPY)}

_run_notsc = None  # RUN_NOTSC as a function, made at the first PR_SET_TSC


def set_tsc(vcpu, sigsegv: bool) -> None:
    """PR_SET_TSC for the guest thread that runs on ``vcpu``: PR_TSC_SIGSEGV (its RDTSC
    faults) or PR_TSC_ENABLE.  The guest's CR4.TSD says so, which hardware KVM obeys
    and PVM looks at when the host's CR4.TSD, set around KVM_RUN, made the instruction
    trap to it (without the host's bit PVM never sees RDTSC; without the guest's it
    emulates it)."""
    global _run_notsc
    if sigsegv and _run_notsc is None:
        from kontain import native

        _run_notsc = native.machine_code(RUN_NOTSC, native.c_long, native.c_long, native.c_ulong)
    sregs = vcpu.get_sregs()
    off = k.sregs.offsets["cr4"]
    cr4 = struct.unpack_from("<Q", sregs, off)[0]
    struct.pack_into("<Q", sregs, off, cr4 | cpu.CR4_TSD if sigsegv else cr4 & ~cpu.CR4_TSD)
    vcpu.set_sregs(sregs)
    vcpu.run_through(_run_notsc if sigsegv else None)


def tsc_sigsegv(vcpu) -> bool:
    """PR_GET_TSC: is RDTSC disabled for the guest thread on ``vcpu``?"""
    return vcpu.run_fn is not None and vcpu.run_fn is _run_notsc


def inherit_tsc(vcpu, parent_vcpu) -> None:
    """A new thread or a forked child keeps its creator's TSC mode (Linux copies the
    thread flag; the guest's CR4 came with the parent's sregs, cpu.child_sregs); a
    reused vCPU forgets its previous thread's."""
    if tsc_sigsegv(parent_vcpu) != tsc_sigsegv(vcpu):
        vcpu.run_through(parent_vcpu.run_fn)
