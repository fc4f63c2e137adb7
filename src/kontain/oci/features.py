"""``krun features``: what krun supports, in the runtime-spec's features.md format.

crun 1.8 has no ``features`` command, so krun says it: what crun implements (krun
hands it every namespace, mount, cgroup and seccomp setting unchanged), and the
annotations of its own.  Engines read this to decide what they may ask for.
"""

from __future__ import annotations

import json

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
MOUNT_OPTIONS = sorted(
    "acl async atime bind defaults dev diratime dirsync exec iversion lazytime loud mand noacl noatime nodev "
    "nodiratime noexec noiversion nolazytime nomand norelatime nostrictatime nosuid nosymfollow private ratime rbind "
    "rdev rdiratime relatime remount rexec rnoatime rnodev rnodiratime rnoexec rnorelatime rnostrictatime rnosuid "
    "rnosymfollow ro rprivate rrelatime rro rrw rshared rslave rstrictatime rsuid rsymfollow runbindable rw shared "
    "silent slave strictatime suid symfollow sync tmpcopyup unbindable idmap".split())
NAMESPACES = ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"]
CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN",
    "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE"]
SECCOMP_ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                   "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
SECCOMP_OPERATORS = ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
                     "SCMP_CMP_NE"]


def features() -> dict:
    from kontain import __version__

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.0.2",
        "hooks": HOOKS,
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": CAPABILITIES,
            "cgroup": {"v1": True, "v2": True, "systemd": True, "systemdUser": True},
            "seccomp": {"enabled": True, "actions": SECCOMP_ACTIONS, "operators": SECCOMP_OPERATORS,
                        "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]},
            "apparmor": {"enabled": True},
            "selinux": {"enabled": True},
        },
        "annotations": {
            "io.kontain.km.version": __version__,
            "io.kontain.km.isolation": "every process of the container in a KVM virtual machine of its own",
        },
    }


def text() -> str:
    return json.dumps(features(), indent=4) + "\n"
