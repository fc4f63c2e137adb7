"""A container's configuration made to run under km.

krun never edits the bundle: it reads config.json (or exec's process.json), changes a
copy, and hands crun the copy (oci/cli.py).  For a container (``container``):

* /dev/kvm is added to ``linux.devices`` and allowed in the device cgroup: the only
  device, and the only privilege, km needs;
* the km runtime (oci/runtime.py) is bind-mounted read-only at ``/dev/.kontain``: under
  /dev, a tmpfs crun makes for every container, so the image's own root is never
  written (a read-only root, ``podman diff`` and committed images see nothing of km);
  at ``/.kontain`` for the rare configuration without its own /dev;
* the annotation ``io.kontain.km`` records km's command line, for ``exec``;
* the seccomp profile, if any, allows what km needs for itself (``seccomp``);
* the process is wrapped (``process``).

For a process (the container's first, or one ``exec`` adds): its arguments become km's
command line in front of the original ones; the variables the runtime's dynamic loader
reads (LD_PRELOAD, LD_LIBRARY_PATH, ...) move from the environment to km's ``-e``
options, so that they reach the program and not the interpreter that runs km; and
RLIMIT_NOFILE's hard limit is raised by what km keeps for its own descriptors above the
program's (kernel/fdtable.py), where crun will be allowed to, so that the program sees
the limit it was given.
"""

from __future__ import annotations

import os
import resource

from kontain.oci import KrunError

ANNOTATION = "io.kontain.km"
DEST = "/dev/.kontain"
DEST_NO_DEV = "/.kontain"
KVM = "/dev/kvm"
KM_CALLS = ("process_vm_readv", "process_vm_writev")  # what km itself needs of a seccomp profile (``seccomp``)


def container(config: dict, command: list[str], runtime_root: str, dest: str) -> dict:
    """``config`` (a container's config.json, changed in place and returned) with km:
    ``command`` is the runtime's command line for km (Runtime.command) mounted at
    ``dest`` (``mount_point``)."""
    major, minor = kvm_device()
    linux = config.setdefault("linux", {})
    devices = linux.setdefault("devices", [])
    if not any(d.get("path") == KVM for d in devices):
        devices.append({"path": KVM, "type": "c", "major": major, "minor": minor, "fileMode": 0o666, "uid": 0,
                        "gid": 0})
    rules = linux.setdefault("resources", {}).setdefault("devices", [])
    rules.append({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"})
    config.setdefault("mounts", []).append({"destination": dest, "type": "bind", "source": runtime_root,
                                            "options": ["rbind", "ro", "nosuid", "nodev"]})
    config.setdefault("annotations", {})[ANNOTATION] = dest
    if linux.get("seccomp"):
        seccomp(linux["seccomp"])
    if "process" in config:
        config["process"] = process(config["process"], command)
    return config


def seccomp(profile: dict) -> dict:
    """The container's seccomp profile, with what km needs for its own work allowed
    (changed in place and returned).

    The profile filters km's host calls, which are what the program's calls become; km
    needs a few of its own besides.  The ones a common profile denies are
    process_vm_readv and process_vm_writev, which km uses on itself for every copy to
    and from guest memory (they fail with EFAULT instead of crashing km; containerd's default
    profile allows them only with CAP_SYS_PTRACE).  Allowing them adds
    nothing the program can use: its own calls of them are ENOSYS (km's syscall table has
    none), and code running in km's place still meets km's Landlock domain, which
    refuses ptrace-class access to any process outside km's tree (docs/security.md)."""
    rules = []
    for rule in profile.get("syscalls") or []:
        names = [n for n in rule.get("names", []) if n not in KM_CALLS]
        if names or not rule.get("names"):
            rules.append(dict(rule, names=names) if rule.get("names") else rule)
    if profile.get("defaultAction") != "SCMP_ACT_ALLOW":
        rules.append({"names": list(KM_CALLS), "action": "SCMP_ACT_ALLOW"})
    profile["syscalls"] = rules
    return profile


def mount_point(config: dict) -> str:
    """Where the runtime goes: under the container's own /dev when it has one."""
    if any(m.get("destination", "").rstrip("/") == "/dev" and m.get("type") == "tmpfs"
           for m in config.get("mounts", [])):
        return DEST
    return DEST_NO_DEV


def process(proc: dict, command: list[str]) -> dict:
    """A process object (config.json's ``process``, or exec's process.json) whose
    program runs under km; changed in place and returned."""
    if proc.get("args"):
        proc["args"] = [*command, *km_env_options(proc), "--", *proc["args"]]
    rlimits = proc.get("rlimits") or []
    for r in rlimits:
        if r.get("type") == "RLIMIT_NOFILE":
            r["hard"] = nofile_hard(r.get("hard", 0))
    return proc


def km_env_options(proc: dict) -> list[str]:
    """Take the dynamic loader's variables out of ``proc``'s environment: as km's ``-e``
    options.  (The loader that starts km's interpreter reads LD_PRELOAD, LD_AUDIT,
    LD_LIBRARY_PATH...: the container's would load its libraries into km.)"""
    env = proc.get("env") or []
    moved = [e for e in env if loader_variable(e.split("=", 1)[0])]
    if moved:
        proc["env"] = [e for e in env if e not in moved]
    return [opt for e in moved for opt in ("-e", e)]


def loader_variable(name: str) -> bool:
    return name.startswith("LD_") or name == "GLIBC_TUNABLES"


def exec_arguments(args: list[str], command: list[str]) -> list[str]:
    """``crun exec ID COMMAND...``'s COMMAND under km."""
    return [*command, "--", *args] if args else args


def nofile_hard(hard: int) -> int:
    """RLIMIT_NOFILE's hard limit for km's process so that the program sees ``hard``:
    km keeps the top of the descriptor table for itself (kernel/fdreserve.py).  Raised only
    as far as crun, which sets it from krun's own process, may: to krun's hard limit,
    or anywhere with CAP_SYS_RESOURCE."""
    from kontain.kernel.fdreserve import guest_limit

    top = hard
    while guest_limit(top) < hard and top < 1 << 16:
        top += 1
    if guest_limit(top) != hard:
        return hard
    own = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if own != resource.RLIM_INFINITY and top > own and not _has_sys_resource():
        return hard
    return top


def _has_sys_resource() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 24))  # CAP_SYS_RESOURCE
    except OSError:
        pass
    return False


def kvm_device() -> tuple[int, int]:
    """/dev/kvm's device number on this host."""
    try:
        st = os.stat(KVM)
    except OSError as e:
        raise KrunError(f"{KVM}: {e.strerror} (kontain needs KVM: load kvm_intel, kvm_amd or kvm_pvm)") from None
    return os.major(st.st_rdev), os.minor(st.st_rdev)
