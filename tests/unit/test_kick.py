"""native.blocking and SIG_KICK's handler (machine code in native.py): a host call that
may wait is not made once the calling thread's kick flag is set, and a kick while it
waits interrupts it.  (The window between the flag's check and `syscall` cannot be hit
on purpose; its bounds are checked against the code.)"""

import _signal
import _thread
import os
import time

from kontain import native
from kontain.abi.structs import SIGCONTEXT_REGS, ucontext
from kontain.kernel.signals import SIG_KICK

EINTR, SYS_read, SYS_getpid = 4, 0, 39


def test_a_call_is_made_unless_the_flag_is_set():
    flag = bytearray(1)
    assert native.blocking(native.address_of(flag), SYS_getpid) == os.getpid()
    flag[0] = 1
    assert native.blocking(native.address_of(flag), SYS_getpid) == -native.ERESTARTNOINTR


def test_a_kick_interrupts_a_waiting_call():
    native.install_kick_handler(SIG_KICK)
    flag = bytearray(1)
    r, w = os.pipe()
    buf = bytearray(1)
    out = []
    started = _thread.allocate_lock()
    started.acquire()

    def reader():
        out.append(_thread.get_ident())
        started.release()
        out.append(native.blocking(native.address_of(flag), SYS_read, r, native.address_of(buf), 1))

    _thread.start_new_thread(reader, ())
    started.acquire()
    while len(out) < 2:  # kicked until the read reports it (the first kick may come before the read)
        flag[0] = 1
        _signal.pthread_kill(out[0], SIG_KICK)
        time.sleep(0.01)
    assert out[1] in (-EINTR, -native.ERESTARTNOINTR)
    os.close(r)
    os.close(w)


def test_the_handler_reads_rip_where_the_kernel_writes_it():
    mcontext = ucontext.offsets["uc_mcontext"]
    assert native.UC_RIP == mcontext + 8 * SIGCONTEXT_REGS.index("rip")
    code = native._CODE
    assert code[native.KICK_RESTORER:] == bytes.fromhex("b80f0000000f05")  # mov $15,%eax; syscall
    assert code[0x22:0x24] == b"\x0f\x05"  # the `syscall` the window ends at
