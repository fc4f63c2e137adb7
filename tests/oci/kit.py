"""Test support for krun: bundles, the host's setup, and crun and krun side by side.

Every krun test runs the same case under crun and under krun and compares what an
engine would see (exit statuses, output, state, errors).  The host needs crun (make
deps installs it), root, and a cgroup layout crun accepts: on a hybrid layout (v1
hierarchies plus a v2 one) crun refuses to run until no controller is left on v2, so
``host_ready`` mounts the ones that are (hugetlb, here) as v1 hierarchies, once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kt import free_port, installed, wait_for  # noqa: F401  (kit.free_port, kit.wait_for)

ROOT = Path(__file__).resolve().parent.parent.parent
TIMEOUT = 120


# krun-native when it is built (make bytecode): what engines run; it runs the Python krun for
# create, run and exec (test_launcher.py compares the two on the verbs it does itself)
KRUN = (installed("krun-native") or installed("krun")
        or [sys.executable, "-c", "import sys; from kontain.oci.cli import main; sys.exit(main())"])


def host_problem() -> str | None:
    """What keeps containers from running here, or None."""
    if os.geteuid() != 0:
        return "the krun tests run containers: they need root"
    if not shutil.which("crun"):
        return "crun is not installed (make deps installs it)"
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist: krun tests need KVM"
    return None


def host_ready() -> None:
    """Make the host's cgroups acceptable to crun (idempotent)."""
    unified = Path("/sys/fs/cgroup/unified")
    if not (unified / "cgroup.controllers").exists():
        return  # pure v1 or pure v2: crun is happy
    for controller in (unified / "cgroup.controllers").read_text().split():
        target = Path("/sys/fs/cgroup") / controller
        target.mkdir(exist_ok=True)
        r = subprocess.run(["mount", "-t", "cgroup", "-o", controller, "cgroup", str(target)], capture_output=True,
                           text=True)
        if r.returncode != 0 and controller in (unified / "cgroup.controllers").read_text().split():
            raise RuntimeError(f"cannot move cgroup controller {controller} to v1 for crun: {r.stderr.strip()}")


def mend_dev_null() -> None:
    """Put the host's /dev/null back to what it is on every Linux system (root's, 0666) if a
    crun run gave it away (crun 1.8 fchowns an exec's standard descriptors to its user; runsc
    does too).  Not "as it was before the test": another test run on the machine may have
    changed it meanwhile, and this one would then keep that."""
    now = os.stat("/dev/null")
    if (now.st_uid, now.st_gid, now.st_mode & 0o7777) != (0, 0, 0o666):
        os.chown("/dev/null", 0, 0)
        os.chmod("/dev/null", 0o666)


BASE_CONFIG = {
    "ociVersion": "1.0.0",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for k in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "kt",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
        "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def busybox_rootfs(rootfs: Path) -> Path:
    """A root file system of Debian's busybox-static and its applets (a static glibc
    program: no libc, no Python in the image)."""
    bin_ = rootfs / "bin"
    bin_.mkdir(parents=True, exist_ok=True)
    shutil.copy2("/bin/busybox", bin_ / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (bin_ / a).exists():
            (bin_ / a).symlink_to("busybox")
    for d in ("etc", "root", "tmp", "proc", "sys", "dev"):
        (rootfs / d).mkdir(exist_ok=True)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    return rootfs


def python_rootfs(rootfs: Path, bytecode: bool = False) -> Path:
    """An image's root of Debian's python3 with its standard library, loader and libraries:
    no busybox (tests/oci/test_podman.py, bench/containers.py).  ``bytecode``: with the
    standard library's compiled modules too, as Debian installs them."""
    from kontain.oci import elfdeps

    exe = os.path.realpath("/usr/bin/python3")
    stdlib = Path(f"/usr/lib/{Path(exe).name}")
    interp = elfdeps.interpreter(exe)
    shutil.copytree(stdlib, rootfs / stdlib.relative_to("/"), symlinks=True,
                    ignore=shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "*-packages",
                                                  *(() if bytecode else ("__pycache__",))))
    extensions = [str(f) for f in (stdlib / "lib-dynload").glob("*.so")]
    for f in [exe, interp, *elfdeps.closure([exe, *extensions], interp).values()]:
        (rootfs / f.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(f), rootfs / f.lstrip("/"))
    (rootfs / "usr/bin/python3").symlink_to(Path(exe).name)
    for d in ("proc", "sys", "dev", "tmp", "etc"):
        (rootfs / d).mkdir(exist_ok=True)
    return rootfs


def bundle(path: Path, args: list[str], rootfs: Path | None = None, **changes) -> Path:
    """A bundle at ``path`` running ``args``; ``rootfs`` (default: busybox's) is used in
    place (root.path absolute).  ``changes``: dotted keys of the config to set, e.g.
    ``{"process.terminal": True}`` given as process__terminal=True."""
    path.mkdir(parents=True, exist_ok=True)
    cfg = copy.deepcopy(BASE_CONFIG)
    cfg["process"]["args"] = list(args)
    if rootfs is None:
        rootfs = busybox_rootfs(path / "rootfs")
    cfg["root"]["path"] = str(rootfs)
    # a cgroup of its own: crun names one after the container's id otherwise, so two test
    # runs on one machine (in other --root directories) shared the cgroup of their
    # container "x", and one's kill or delete ended the other's container
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    cfg["linux"]["cgroupsPath"] = f"/kt-{os.getpid()}-{digest}"
    for key, value in changes.items():
        *parents, last = key.split("__")
        d = cfg
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value
    (path / "config.json").write_text(json.dumps(cfg, indent=1))
    return path


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class Runtime:
    """crun or krun, with a state directory of the test's own."""

    def __init__(self, name: str, root: Path):
        self.name = name
        self.root = root
        self.command = (["crun"] if name == "crun" else KRUN) + [f"--root={root}"]

    def __call__(self, *args, timeout: float = TIMEOUT, env=None, **kw) -> Result:
        """Run the runtime; its output is read from files, not pipes: a container it
        creates keeps the runtime's standard descriptors, and would hold a pipe open."""
        argv = self.command + [str(a) for a in args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout, env=env, **kw)
            out.seek(0)
            err.seek(0)
            return Result(argv, r.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"))

    def state(self, cid: str) -> dict:
        r = self("state", cid)
        assert r.returncode == 0, f"{self.name} state {cid}: {r.stderr}"
        return json.loads(r.stdout)

    def status(self, cid: str) -> str:
        r = self("state", cid)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else "gone"

    def wait_status(self, cid: str, want: str, timeout: float = TIMEOUT) -> str:
        """Wait for the container to reach ``want`` (never a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status(cid)
            if s == want or time.monotonic() > deadline:
                return s
            time.sleep(0.05)

    def cleanup(self) -> None:
        r = self("list", "-q")
        for cid in r.stdout.split():
            self("delete", "--force", cid)


# -- containerd ----------------------------------------------------------------------------

SNIPPET = ROOT / "deploy" / "kubernetes" / "containerd.toml"


def config(root, krun: str) -> str:
    """containerd's configuration: its own root, state and socket, and the CRI runtime
    `kontain` as deploy/kubernetes/containerd.toml (docs/containers.md) gives it."""
    snippet = SNIPPET.read_text().replace("/opt/kontain/bin/krun", krun)
    return f'''version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{root}/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/kt-pause:latest"
  restrict_oom_score_adj = true  # (root lacks CAP_SYS_RESOURCE on some hosts)
[plugins."io.containerd.grpc.v1.cri".cni]
  conf_dir = "{root}/cni"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]  # (without it the CRI plugin fails to load)
  runtime_type = "io.containerd.runc.v2"
{snippet}'''


class Containerd:
    """A containerd of the tests' own: its root, state and socket under ``root``."""

    def __init__(self, root, namespace: str = "kt"):
        self.root = root
        self.namespace = namespace
        self.address = str(root / "containerd.sock")
        self.daemon = None

    def start(self):
        (self.root / "config.toml").write_text(config(self.root, KRUN[0]))
        log = open(self.root / "containerd.log", "w")
        self.daemon = subprocess.Popen(["containerd", "--config", str(self.root / "config.toml")], stdout=log,
                                       stderr=log)
        wait_for(lambda: self.ctr("version").returncode == 0, what="containerd")

    def stop(self):
        if self.daemon:
            self.daemon.terminate()
            self.daemon.wait(timeout=60)

    def import_images(self, programs: dict) -> None:
        """`km image` of each program, imported as localhost/kt-NAME:latest."""
        from kt import KM

        for name, program in programs.items():
            out = self.root / f"{name}.tar"
            subprocess.run([*KM, "image", "-t", f"localhost/kt-{name}:latest", "-o", str(out), str(program)],
                           check=True, capture_output=True)
            r = self.ctr("images", "import", out)
            assert r.returncode == 0, r.stderr

    def ctr(self, *args, stdin: bytes = b"", timeout: float = TIMEOUT) -> Result:
        argv = ["ctr", "--address", self.address, "--namespace", self.namespace, *map(str, args)]
        r = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
        return Result(argv, r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"))

    def run(self, runtime: str, *args, **kw) -> Result:
        binary = "crun" if runtime == "crun" else KRUN[0]
        return self.ctr("run", "--runtime", "io.containerd.runc.v2", "--runc-binary", binary, *args, **kw)
