"""What to run, and how: one description, whoever asks (km's options, a km server's
client, and later a snapshot or an OCI bundle).  kontain/lifecycle.py drives a VM from it.

Part of it decides how the VM is built (``vm()``: the polling tier, --strace, which KVM
device, the window's size): a VM prepared ahead of time (a server's worker) can run a
spec only when that part is the one it was prepared with (``fits``).  The rest is the
program's: what to run, its environment, and the launch options.
"""

from __future__ import annotations

from kontain.arch.x86_64.layout import DEFAULT_WINDOW


class Spec:
    __slots__ = ("program", "args", "env", "memory", "core", "timings", "vdso", "poll", "strace", "kvm_device",
                 "window", "pause_check", "poller", "gdb", "gdb_wait", "gdb_fork_wait", "rewrite", "rewrite_after",
                 "snapshot_on_listen", "leave_running", "deny", "rlimits", "site_cache")

    def __init__(self, program: str = "", args: list[bytes] | tuple = (), env: list[bytes] | tuple = (), *,
                 memory: int | None = None, core: bool = False, timings: bool = False, vdso: bool = True,
                 poll: str = "auto", strace: bool = False, kvm_device: str = "/dev/kvm", window: int = DEFAULT_WINDOW,
                 pause_check: int = 0, gdb: int = 0, gdb_wait: bool = True, gdb_fork_wait: bool = False,
                 rewrite: bool = True, rewrite_after: int = 200, snapshot_on_listen: str = "",
                 leave_running: bool = False, deny: tuple[tuple[int, int], ...] = (),
                 rlimits: dict[int, tuple[int, int]] | None = None, poller: str = "native", site_cache: str = ""):
        self.program = program  # as the user named it (looked up in PATH by lifecycle.run_program)
        self.args = list(args)  # argv, argv[0] included
        self.env = list(env)  # NAME=VALUE
        self.memory = memory  # cap on the program's accessible memory (--memory)
        self.core = core  # --core: a core file (core.PID) whatever RLIMIT_CORE says
        self.timings = timings
        self.vdso = vdso  # share the host's vDSO (clock_gettime without an exit)
        self.pause_check = pause_check  # --pause-check N (lifecycle.pause_check)
        self.snapshot_on_listen = snapshot_on_listen  # --snapshot-on-listen FILE (kernel/snapshot.py)
        self.leave_running = leave_running  # --leave-running: the program goes on after that snapshot
        self.gdb = gdb  # --gdb / --gdb-listen PORT: the gdb stub's TCP port (kernel/gdbstub.py); 0 none, -1 any
        self.gdb_wait = gdb_wait  # --gdb: stopped before the first instruction until gdb comes
        self.gdb_fork_wait = gdb_fork_wait  # --gdb-fork-wait: a forked child waits for a gdb of its own
        # how the VM is built
        self.poll = poll  # the polling tier (kernel/poll.py), where the platform has it: auto, always, off
        self.poller = poller  # --poller: native (kernel/nativepoll.py, where built) or python
        self.strace = strace
        self.kvm_device = kvm_device
        self.window = window  # the guest address space
        self.rewrite = rewrite  # syscall sites that jump to the stub (kernel/rewrite.py), where the platform has it
        self.rewrite_after = rewrite_after  # --rewrite-after: trapped calls before any site is rewritten
        self.site_cache = site_cache  # --site-cache: where proofs of rewritable sites are kept ("": nowhere)
        self.deny = deny  # --deny: ((syscall number, errno or 0 for SIGSYS), ...): syscalls/table.deny
        self.rlimits = rlimits or {}  # --rlimit: {resource: (soft, hard)}, the program's instead of km's own

    def vm(self) -> tuple:
        """What building a VM depends on."""
        return (self.poll, self.strace, self.kvm_device, self.window, self.rewrite, self.deny)

    def fits(self, prepared: Spec) -> bool:
        """Can a VM prepared for ``prepared`` run this spec?"""
        return self.vm() == prepared.vm()
