"""The monitor confines itself, so that a way out that the checks in front of the host
calls missed is still not a way into the host (docs/security.md, layer 4).

km and the program are one host process; what km may do, the program may try to make
it do.  Three kernel mechanisms narrow that, each set up at start-up before km has a
second thread (all three are per thread, inherited by the threads and processes it
makes):

* ``PR_SET_DUMPABLE`` 0: another process of the same user (another km, a km's own child
  or parent, any program of the user's) cannot open this one's /proc/<pid>/mem, fd/,
  maps, environ, or ptrace it, without CAP_SYS_PTRACE.  The program's own view of the
  flag is km's (``Confinement.dumpable``): Linux's prctl(PR_GET/SET_DUMPABLE).
* A Landlock domain (no file access restricted: the program may open what the user
  may), whose ptrace scope means: no process of this km's tree reaches a process
  outside it through ptrace-class access (/proc/<pid>/mem, pidfd_getfd,
  process_vm_readv...), whatever its credentials; a forked child enters a domain of
  its own below its parent's, so it cannot reach its parent either.  Landlock needs
  no_new_privs, which km sets on the host and keeps as the program's own flag.
* a seccomp filter (``monitor_filter``): the system calls km never makes for itself or
  for the program fail with ENOSYS, so that code running in km's place (a bug in the
  checks above exploited) meets a smaller kernel.
"""

from __future__ import annotations

import os
import struct

from kontain import native

SYS_prctl, SYS_capget, SYS_capset, SYS_seccomp = 157, 125, 126, 317
SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self = 444, 445, 446
PR_SET_DUMPABLE, PR_GET_SECCOMP, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 21, 24, 38
CAP_SYS_PTRACE = 19
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11
LANDLOCK_ACCESS_FS_REFER = 1 << 13  # (ABI 2)


class Confinement:
    """What the monitor set up for itself, and what the program believes of it."""

    def __init__(self) -> None:
        self.landlock = 0  # the Landlock ABI version in force, 0 if none
        self.dumpable = 1  # the program's PR_GET_DUMPABLE (the host's is 0)
        self.no_new_privs = 0  # the program's PR_GET_NO_NEW_PRIVS (the host's is 1 under Landlock)
        self.seccomp = False  # the monitor's filter is in force
        self.inherited_seccomp = (0, 0)  # the program's PR_GET_SECCOMP and filter count: the container's, as given

    def start(self) -> None:
        """At start-up, in the only thread.  Every step is best effort: a kernel without
        Landlock still gets the rest (``km --timings`` and docs/security.md say which
        layers a host has)."""
        self.no_new_privs = native.syscall(SYS_prctl, 39, 0, 0, 0, 0) == 1  # PR_GET_NO_NEW_PRIVS, as given
        if not _FILTERED and native.syscall(SYS_prctl, PR_GET_SECCOMP, 0, 0, 0, 0) == 2:
            self.inherited_seccomp = (2, _filter_count())  # a container's profile (krun): it filters the program too
        native.syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0)
        _drop_ptrace()
        self.landlock = _landlock_domain()
        if not _FILTERED:  # (a km server's worker has its server's already)
            self.seccomp = install_filter(monitor_filter())
            _FILTERED.append(self.seccomp)
        else:
            self.seccomp = _FILTERED[0]

    def forked(self) -> None:
        """In a forked child, before it has a second thread: a domain of its own, below
        the parent's (Landlock allows 16 levels; deeper children keep their parent's)."""
        if self.landlock:
            _landlock_domain()


# -- the monitor's seccomp filter ---------------------------------------------------------
#
# System calls km makes neither for itself nor for the program: what code running in
# km's place could use against the host kernel (module loading, mounts, namespaces,
# io_uring and bpf, userfaultfd, keyrings, another process's descriptors and memory).
# The program gets ENOSYS for most of them from the syscall table; mount, umount2,
# pivot_root km answers itself (syscalls/ns.py: EPERM, as for an unprivileged caller),
# never passing them to the host (tests/unit/test_confine.py checks that no handler
# does).  unshare is allowed for CLONE_FILES, which km's /proc reader uses
# (kernel/procfs.py), CLONE_FS (a program thread's own cwd, syscalls/ns.py), and for the
# namespaces km serves through the host
# (NS_SERVED: network, UTS, IPC, which the host makes per thread); setns only for
# those types, named.
DENIED = ("ptrace", "syslog", "uselib", "sysfs", "vhangup", "modify_ldt", "pivot_root", "_sysctl", "acct", "mount",
          "umount2", "swapon", "swapoff", "reboot", "iopl", "ioperm", "init_module", "delete_module", "quotactl",
          "nfsservctl", "lookup_dcookie", "mbind", "set_mempolicy", "get_mempolicy", "kexec_load", "add_key",
          "request_key", "keyctl", "migrate_pages", "move_pages", "perf_event_open", "fanotify_init", "fanotify_mark",
          "open_by_handle_at", "kcmp", "finit_module", "kexec_file_load", "bpf",
          "userfaultfd", "pkey_mprotect", "io_uring_setup", "io_uring_enter", "io_uring_register", "open_tree",
          "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "pidfd_getfd", "process_madvise", "mount_setattr",
          "quotactl_fd", "open_tree_attr")
CLONE_FILES = 0x400
CLONE_FS = 0x200
NS_SERVED = 0x40000000 | 0x04000000 | 0x08000000  # CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC
_FILTERED: list[bool] = []  # the filter is installed in this process (and so in what it forks)
AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
SECCOMP_SET_MODE_FILTER, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 1, 0x7FFF0000, 0x00050000
_ENOSYS = 38
# classic BPF: ld [k], jeq k, jge k, jset k, ret k
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_SECCOMP_DATA_NR, _SECCOMP_DATA_ARCH, _SECCOMP_DATA_ARG0, _SECCOMP_DATA_ARG1, _SECCOMP_DATA_ARG2 = 0, 4, 16, 24, 32


def monitor_filter() -> bytes:
    """The filter's BPF program: allow everything but ``DENIED`` (ENOSYS), madvise's
    MADV_HWPOISON and MADV_SOFT_OFFLINE (ENOSYS), unshare
    other than of the descriptor table, the file-system context and the namespaces km serves, setns other than
    into one of those (ENOSYS), and any other ABI than x86-64's.  (Flags are checked in
    their low 32 bits: Linux refuses the others with EINVAL.)"""
    from kontain.abi.flags import MADV_HWPOISON, MADV_SOFT_OFFLINE
    from kontain.abi.syscalls import NR

    denied = sorted({NR[name] for name in DENIED if name in NR})
    insns: list[tuple[int, int, int, int]] = []
    errno = SECCOMP_RET_ERRNO | _ENOSYS
    # (a jump's offsets count the instructions after it; the two returns are at the end)
    n = len(denied)
    insns.append((_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARCH))
    insns.append((_JEQ_K, 1, 0, AUDIT_ARCH_X86_64))  # else: the x32 ABI or int 0x80: refused
    insns.append((_RET_K, 0, 0, errno))
    insns.append((_LD_W_ABS, 0, 0, _SECCOMP_DATA_NR))
    insns.append((_JGE_K, 0, 1, _X32_BIT))
    insns.append((_RET_K, 0, 0, errno))
    for i, nr in enumerate(denied):
        insns.append((_JEQ_K, n - i + 10, 0, nr))  # to "ret errno" past the three checks below
    # madvise: no memory-failure injection, which acts on the host's physical pages (km never
    # makes it, memory/mm.py refuses the program's, nor may code running in km's place)
    insns.append((_JEQ_K, 0, 3, NR["madvise"]))
    insns.append((_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARG2))
    insns.append((_JEQ_K, 8, 0, MADV_HWPOISON))
    insns.append((_JEQ_K, 7, 8, MADV_SOFT_OFFLINE))
    insns.append((_JEQ_K, 0, 2, NR["unshare"]))  # unshare: CLONE_FILES and served namespaces only
    insns.append((_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARG0))
    insns.append((_JSET_K, 4, 5, ~(CLONE_FILES | CLONE_FS | NS_SERVED) & 0xFFFFFFFF))
    insns.append((_JEQ_K, 0, 4, NR["setns"]))  # setns: into served namespaces, named
    insns.append((_LD_W_ABS, 0, 0, _SECCOMP_DATA_ARG1))
    insns.append((_JEQ_K, 1, 0, 0))
    insns.append((_JSET_K, 0, 1, ~NS_SERVED & 0xFFFFFFFF))
    insns.append((_RET_K, 0, 0, errno))
    insns.append((_RET_K, 0, 0, SECCOMP_RET_ALLOW))
    return b"".join(struct.pack("<HBBI", *insn) for insn in insns)


def install_filter(program: bytes) -> bool:
    """Install a seccomp filter on the calling thread (and what it creates later).
    Needs no_new_privs (set here if Landlock did not)."""
    if native.syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False
    code = bytearray(program)
    fprog = bytearray(struct.pack("<HxxxxxxQ", len(code) // 8, native.address_of(code)))
    return native.syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, native.address_of(fprog)) == 0


def _filter_count() -> int:
    """How many seccomp filters this thread has (before km adds its own)."""
    try:
        with open("/proc/thread-self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Seccomp_filters:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 1


def _drop_ptrace() -> None:
    """No CAP_SYS_PTRACE in any set: with it (root) a km could open the memory of
    another, dumpable or not (a parent km its child's, below it in Landlock's tree).  The
    program cannot ptrace under km anyway (ENOSYS); what it loses is reading other
    users' /proc/<pid>/environ, fd/ and the like as root."""
    head = bytearray(struct.pack("<Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = bytearray(24)  # two of {effective, permitted, inheritable}
    if native.syscall(SYS_capget, native.address_of(head), native.address_of(data)) != 0:
        return
    caps = list(struct.unpack("<6I", data))
    if not any(c & (1 << CAP_SYS_PTRACE) for c in caps[:3]):
        native.syscall(SYS_prctl, PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0)  # (fails without CAP_SETPCAP)
        return
    native.syscall(SYS_prctl, PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0)
    for i in range(3):
        caps[i] &= ~(1 << CAP_SYS_PTRACE)
    data[:] = struct.pack("<6I", *caps)
    native.syscall(SYS_capset, native.address_of(head), native.address_of(data))


def _landlock_domain() -> int:
    """Enter a new Landlock domain that restricts no file access; returns the ABI
    version, or 0 when this kernel has no Landlock (or refuses a domain here).

    Every domain restricts moving a file to another directory (rename, link: EXDEV)
    unless it handles LANDLOCK_ACCESS_FS_REFER and grants it, which ABI 1 cannot: on
    such a kernel km enters no domain (programs rename across directories)."""
    abi = native.syscall(SYS_landlock_create_ruleset, 0, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 2:
        return 0
    handled = LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_REFER
    attr = bytearray(struct.pack("<Q", handled))
    ruleset = native.syscall(SYS_landlock_create_ruleset, native.address_of(attr), len(attr), 0)
    if ruleset < 0:
        return 0
    try:
        try:
            root = os.open("/", os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return 0
        try:
            # everything the domain handles is allowed beneath /: no file access is
            # restricted, but the domain exists (and with it the ptrace scope)
            rule = bytearray(struct.pack("<Qi", handled, root))
            if native.syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, native.address_of(rule), 0):
                return 0
        finally:
            os.close(root)
        if native.syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return 0
        if native.syscall(SYS_landlock_restrict_self, ruleset, 0) != 0:
            return 0
        return abi
    finally:
        os.close(ruleset)
