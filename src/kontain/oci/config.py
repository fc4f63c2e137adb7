"""A container's configuration made to run under km.

krun never edits the bundle: it reads config.json (or exec's process.json), changes a
copy, and hands crun the copy (oci/cli.py).  For a container (``container``):

* /dev/kvm is added to ``linux.devices`` and allowed in the device cgroup: the only
  device, and the only privilege, km needs;
* the km runtime (oci/runtime.py) is bind-mounted read-only at ``/dev/.kontain``: under
  /dev, a tmpfs crun makes for every container, so the image's own root is never
  written (a read-only root, ``podman diff`` and committed images see nothing of km);
  at ``/.kontain`` for the rare configuration without its own /dev;
* nothing else: no annotation (the container's state, and its hooks' stdin, must show the
  configuration's own), so ``exec`` reads km's command line back from the first
  process's arguments (``km_command``);
* the seccomp profile, if any, allows what km needs for itself (``seccomp``);
* the process is wrapped (``process``).

For a process (the container's first, or one ``exec`` adds): its arguments become km's
command line in front of the original ones; the variables the runtime's dynamic loader
reads (LD_PRELOAD, LD_LIBRARY_PATH, ...) move from the environment to km's ``-e``
options, so that they reach the program and not the interpreter that runs km; and
RLIMIT_NOFILE's hard limit is raised by what km keeps for its own descriptors above the
program's (kernel/fdtable.py), where crun will be allowed to, so that the program sees
the limit it was given; RLIMIT_AS goes to km's --rlimit (km holds the program to it, and
its own process needs room for the guest window), crun setting krun's own.
"""

from __future__ import annotations

import os
import resource

from kontain.oci import KrunError

DEST = "/dev/.kontain"
DEST_NO_DEV = "/.kontain"
KVM = "/dev/kvm"
ALLOW, ENOSYS = "SCMP_ACT_ALLOW", "ENOSYS"
# what km itself needs of the host that a seccomp profile may deny, and what the host
# answers km instead (``seccomp``)
KM_NEEDS = {"process_vm_readv": ALLOW, "process_vm_writev": ALLOW, "openat2": ALLOW, "clone3": ENOSYS,
            "faccessat2": ENOSYS}
KM_SERVES = ("openat2", "clone3", "faccessat2")  # those of them the program may call too (km's syscall table)


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
    if linux.get("seccomp"):
        command = [*command, *seccomp(linux["seccomp"])]
    if "process" in config:
        config["process"] = process(config["process"], command)
    return config


def km_command(config: dict) -> list[str] | None:
    """km's command line in a krun container's configuration (as crun stored it), for the
    processes krun exec adds; None for a container krun did not make.  Read back from the
    first process's arguments (km's command and options, "--", the program's), less that
    process's own -e, --rlimit and --ready-fd options (``process``)."""
    config = config or {}
    args = (config.get("process") or {}).get("args") or []
    km = f"{mount_point(config)}/km"
    if km not in args or "--" not in args[args.index(km):]:
        return None
    start = args.index(km) + 1
    end = args.index("--", start)
    out, i = args[:start], start
    while i < end:
        if args[i] in ("-e", "--rlimit", "--ready-fd"):  # (that process's own)
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def seccomp(profile: dict) -> list[str]:
    """The container's seccomp profile, with what km needs of the host for its own work
    let through (changed in place); returns km's ``--deny`` options, which give the
    program the profile's own verdict on those calls.

    The profile filters km's host calls, which are what the program's calls become; km
    needs a few of its own besides (KM_NEEDS), which older or stricter profiles deny:
    process_vm_readv/writev (every copy to and from guest memory; containerd's default
    profile allows them only with CAP_SYS_PTRACE), openat2 (every path km opens for the
    program, with RESOLVE_NO_MAGICLINKS), and clone3 and faccessat2, which the C library
    under km's Python tries first and replaces by clone and faccessat only when they are
    ENOSYS (an EPERM from the profile left km unable to start a thread: "can't start new
    thread").  Each such call that the profile denies outright is let through (the first
    two) or made ENOSYS (the last two, as Docker's own profile does for clone3, so that
    clone's namespace flags stay filtered), and the program meets the profile's answer
    from km instead (km --deny).  A call the profile decides by its arguments is left as
    it is.  Letting process_vm_readv/writev through adds nothing the program can use: km
    has no such calls for it (ENOSYS), and code running in km's place still meets km's
    Landlock domain, which refuses ptrace-class access outside km's tree."""
    default = profile.get("defaultAction")
    changed: dict[str, str] = {}  # name -> the host's answer to km (ALLOW, or ENOSYS)
    options: list[str] = []
    for name, host in KM_NEEDS.items():
        verdict = _verdict(profile, name)
        if verdict is None:
            continue
        changed[name] = host
        if name in KM_SERVES:
            options += ["--deny", f"{name}={verdict}"]
    if not changed:
        return options
    rules = []
    for rule in profile.get("syscalls") or []:
        names = [n for n in rule.get("names", []) if n not in changed]
        if names or not rule.get("names"):
            rules.append(dict(rule, names=names) if rule.get("names") else rule)
    allow = [n for n, host in changed.items() if host == ALLOW]
    if allow and default != ALLOW:
        rules.append({"names": allow, "action": ALLOW})
    enosys = [n for n, host in changed.items() if host == ENOSYS]
    if enosys:
        rules.append({"names": enosys, "action": "SCMP_ACT_ERRNO", "errnoRet": 38})
    profile["syscalls"] = rules
    return options


def _verdict(profile: dict, name: str) -> str | None:
    """What ``profile`` does to every call of ``name``, as km --deny's value (an errno, or
    kill): None when it lets the call through or decides by the call's arguments."""
    rules = [r for r in profile.get("syscalls") or [] if name in (r.get("names") or [])]
    if any(r.get("args") for r in rules):
        return None
    rule = rules[0] if rules else {"action": profile.get("defaultAction"), "errnoRet": profile.get("defaultErrnoRet")}
    action = rule.get("action")
    if action == "SCMP_ACT_ERRNO":
        return str(rule.get("errnoRet") or 1)  # (EPERM unless the profile says)
    if action == "SCMP_ACT_TRACE":
        return "38"  # (no tracer: ENOSYS, as seccomp(2) says)
    if action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"):
        return "kill"
    return None  # ALLOW, LOG, NOTIFY (a supervisor decides: left to it)


def mount_point(config: dict) -> str:
    """Where the runtime goes: under the container's own /dev when it has one."""
    if any(m.get("destination", "").rstrip("/") == "/dev" and m.get("type") == "tmpfs"
           for m in config.get("mounts", [])):
        return DEST
    return DEST_NO_DEV


def process(proc: dict, command: list[str]) -> dict:
    """A process object (config.json's ``process``, or exec's process.json) whose
    program runs under km; changed in place and returned."""
    own: list[str] = []
    for r in proc.get("rlimits") or []:
        if r.get("type") == "RLIMIT_NOFILE":
            r["hard"] = nofile_hard(r.get("hard", 0))
        elif r.get("type") == "RLIMIT_AS" and proc.get("args"):
            # km holds the program to it; km's own process needs room for the guest window
            own += ["--rlimit", f"AS={r.get('soft', 0)}:{r.get('hard', 0)}"]
            r["soft"] = r["hard"] = _own_limit(resource.RLIMIT_AS)
    if proc.get("args"):
        proc["args"] = [*command, *own, *km_env_options(proc), "--", *proc["args"]]
    return proc


def _own_limit(which: int) -> int:
    """krun's own hard limit (as high as crun may set it without CAP_SYS_RESOURCE)."""
    hard = resource.getrlimit(which)[1]
    return (1 << 64) - 1 if hard == resource.RLIM_INFINITY else hard


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
