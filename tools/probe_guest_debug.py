#!/usr/bin/env python3
"""What KVM's debugging interface does for code at CPL3 on this host (docs/debugging.md
has the answer for the PVM host; re-run it after a kernel or KVM update).

    .venv/bin/python tools/probe_guest_debug.py

Builds a tiny static program (int3; TF set by popf; a store to a variable), loads it with
km's own start-up (lifecycle.prepare, Process.launch) and runs its vCPU by hand, once per
mode, printing each exit: KVM_EXIT_DEBUG (KVM intercepted it) or an exception through the
guest's IDT (km's vector stubs, port 0x11).
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from kontain import lifecycle, native
from kontain.arch.x86_64 import layout as L
from kontain.kvm import abi as k
from kontain.loader.exec import resolve
from kontain.spec import Spec

PROGRAM = """
.globl _start
_start:
  nop
  int3
  nop
  pushf
  orq $0x100, (%rsp)
  popf
  nop
  nop
  andq $0x0, %rax
  movq $var, %rbx
  movq $1, (%rbx)
  mov $60, %eax
  xor %edi, %edi
  syscall
.data
.balign 8
var: .quad 0
"""
ENABLE, SINGLESTEP, USE_SW_BP, USE_HW_BP = 1, 2, 0x10000, 0x20000


def _iow(nr: int, size: int) -> int:
    return (1 << 30) | (size << 16) | (0xAE << 8) | nr


def _ior(nr: int, size: int) -> int:
    return (2 << 30) | (size << 16) | (0xAE << 8) | nr


SET_GUEST_DEBUG, SET_DEBUGREGS, GET_DEBUGREGS = _iow(0x9B, 72), _iow(0xA2, 128), _ior(0xA1, 128)
DR7_W8 = 1 | (1 << 16) | (3 << 18)  # DR0 enabled, on writes, 8 bytes


def probe(prog: str, var: int, mode: str) -> None:
    spec = Spec(prog, [b"probe"], [], poll="off")
    p = lifecycle.prepare(spec)
    task = p.launch(resolve(spec.program, spec.args))
    v = task.vcpu
    control = {"none": 0, "sw_bp": ENABLE | USE_SW_BP, "singlestep": ENABLE | SINGLESTEP,
               "hw_bp": ENABLE | USE_HW_BP, "debugregs": 0}[mode]
    dr = [var, 0, 0, 0, 0, 0, 0, DR7_W8] if mode == "hw_bp" else [0] * 8
    buf = bytearray(struct.pack("<II8Q", control, 0, *dr))
    print(f"== {mode}: KVM_SET_GUEST_DEBUG -> {native.ioctl(v.fd, SET_GUEST_DEBUG, native.address_of(buf))}")
    if mode == "debugregs":
        regs = bytearray(struct.pack("<4QQQQ9Q", var, 0, 0, 0, 0xFFFF0FF0, DR7_W8 | 0x400, 0, *[0] * 9))
        print(f"   KVM_SET_DEBUGREGS -> {native.ioctl(v.fd, SET_DEBUGREGS, native.address_of(regs))}")
    for _ in range(16):
        r = v.run()
        reason = v.exit_reason
        rip = v.q[k.RIP] & (2**64 - 1)
        line = f"   run={r} exit={k.EXIT_NAMES.get(reason, reason)} rip={rip:#x}"
        if reason == k.KVM_EXIT_DEBUG:
            exc, _pad, dr6, dr7 = struct.unpack_from("<IIQQ", v.page, k.RUN_EXIT_UNION)
            line += f" exception={exc} dr6={dr6:#x}"
        port = v.io_exit()[2] if reason == k.KVM_EXIT_IO else None
        if port == L.EXC_PORT:
            vector, _err, at, _cs, rflags, rsp, _ss = p.sys.exception_frame(v.q[k.RSP])
            line += f" guest IDT vector {vector} at {at:#x}"
            p.sys.write_exception_frame(v.q[k.RSP], at, rflags & ~0x100, rsp)  # TF off, go on
            v.mark_regs_dirty()
        print(line)
        if port == L.SYS_PORT or reason not in (k.KVM_EXIT_DEBUG, k.KVM_EXIT_IO):
            break  # (the program's exit call, or something unexpected)


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        src, prog = Path(d) / "probe.S", Path(d) / "probe"
        src.write_text(PROGRAM)
        subprocess.run(["gcc", "-nostdlib", "-static", "-o", str(prog), str(src)], check=True)
        nm = subprocess.run(["nm", str(prog)], capture_output=True, text=True, check=True).stdout
        var = int(next(line.split()[0] for line in nm.splitlines() if line.endswith(" var")), 16)
        for mode in ("none", "sw_bp", "singlestep", "hw_bp", "debugregs"):
            # each mode in a process of its own (a km process runs one program)
            r = subprocess.run([sys.executable, __file__, "--one", str(prog), hex(var), mode], capture_output=True,
                               text=True, timeout=60)
            print(r.stdout + r.stderr, end="")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        probe(sys.argv[2], int(sys.argv[3], 16), sys.argv[4])
        sys.exit(0)
    sys.exit(main())
