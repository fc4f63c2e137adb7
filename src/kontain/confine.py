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

SYS_prctl, SYS_capget, SYS_capset = 157, 125, 126
SYS_landlock_create_ruleset, SYS_landlock_add_rule, SYS_landlock_restrict_self = 444, 445, 446
PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 4, 24, 38
CAP_SYS_PTRACE = 19
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
LANDLOCK_ACCESS_FS_MAKE_BLOCK = 1 << 11


class Confinement:
    """What the monitor set up for itself, and what the program believes of it."""

    def __init__(self) -> None:
        self.landlock = 0  # the Landlock ABI version in force, 0 if none
        self.dumpable = 1  # the program's PR_GET_DUMPABLE (the host's is 0)
        self.no_new_privs = 0  # the program's PR_GET_NO_NEW_PRIVS (the host's is 1 under Landlock)

    def start(self) -> None:
        """At start-up, in the only thread.  Every step is best effort: a kernel without
        Landlock still gets the rest (``km --timings`` and docs/security.md say which
        layers a host has)."""
        self.no_new_privs = native.syscall(SYS_prctl, 39, 0, 0, 0, 0) == 1  # PR_GET_NO_NEW_PRIVS, as given
        native.syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0)
        _drop_ptrace()
        self.landlock = _landlock_domain()

    def forked(self) -> None:
        """In a forked child, before it has a second thread: a domain of its own, below
        the parent's (Landlock allows 16 levels; deeper children keep their parent's)."""
        if self.landlock:
            _landlock_domain()


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
    version, or 0 when this kernel has no Landlock (or refuses a domain here)."""
    abi = native.syscall(SYS_landlock_create_ruleset, 0, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return 0
    attr = bytearray(struct.pack("<Q", LANDLOCK_ACCESS_FS_MAKE_BLOCK))
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
            rule = bytearray(struct.pack("<Qi", LANDLOCK_ACCESS_FS_MAKE_BLOCK, root))
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
