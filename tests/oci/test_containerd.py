"""containerd with krun: `ctr run --runtime io.containerd.runc.v2 --runc-binary krun`,
the runc shim driving krun as it drives runc (--root, --log, --log-format json on every
call, kill --all, ps --format json, the pid file reaped as the shim's own descendant);
every case side by side with crun as the shim's binary.

The tests start a containerd of their own (its root, state and socket in a temporary
directory, with the configuration docs/containers.md gives for the CRI runtime
`kontain`), and import images made by `km image` with `ctr images import`.
"""

import os
import shutil
import subprocess

import kit
import pytest

from kt import build

RUNTIMES = ("crun", "krun")


@pytest.fixture(scope="session")
def containerd(tmp_path_factory):
    if not shutil.which("containerd"):
        pytest.fail("containerd is not installed (make deps installs it)", pytrace=False)
    root = tmp_path_factory.mktemp("containerd")
    c = kit.Containerd(root)
    c.start()
    try:
        c.import_images(dict((("hello", build("hello", "musl")), ("busybox", "/bin/busybox"))))
        yield c
    finally:
        c.stop()


def each(fn):
    return {rt: fn(rt) for rt in RUNTIMES}


def same(results, what="result"):
    assert results["crun"] == results["krun"], f"{what} differs:\n  crun: {results['crun']}\n  krun: {results['krun']}"
    return results["krun"]


@pytest.mark.parametrize("options, image, command", [
    ([], "hello", []),
    ([], "busybox", ["/busybox", "sh", "-c", "echo $$; /busybox id; exit 3"]),
    (["--seccomp"], "busybox", ["/busybox", "sh", "-c", "/busybox grep Seccomp /proc/self/status; echo done"]),
    ([], "busybox", ["/nonexist"]),
])
def test_run(containerd, options, image, command):
    """ctr run --rm: output and exit status; containerd's default seccomp profile too."""
    def case(rt):
        r = containerd.run(rt, "--rm", *options, f"localhost/kt-{image}:latest", f"c-{rt}", *command)
        return r.returncode, r.stdout, "executable file `/nonexist` not found" in r.stderr
    results = each(case)
    if results["crun"] != results["krun"]:
        # ctr run (containerd 1.6) may end its copy of the task's stdout before the last write
        # of a container that exits at once (seen once under crun, on a fully loaded machine,
        # the final "done" lost): a real difference is there again on a second run
        results = each(case)
    same(results, "ctr run")


def test_exec_ps_kill_delete(containerd):
    """A detached task: exec into it, ps (the shim's ps --format json), SIGKILL to all
    (the shim's kill --all), the exit status the shim reaped from the pid file, delete."""
    def case(rt):
        cid = f"d-{rt}"
        r = containerd.run(rt, "-d", "localhost/kt-busybox:latest", cid, "/busybox", "sh", "-c",
                           "/busybox sleep 1000 & /busybox sleep 1000")
        assert r.returncode == 0, r.stderr
        seen = []
        ex = containerd.ctr("task", "exec", "--exec-id", "e1", cid, "/busybox", "sh", "-c", "echo $((6*7)); exit 4")
        seen.append(("exec", ex.returncode, ex.stdout))
        kit.wait_for(lambda: len(containerd.ctr("task", "ps", cid).stdout.splitlines()) == 3, what="2 processes")
        containerd.ctr("task", "kill", "--all", "--signal", "SIGKILL", cid)
        kit.wait_for(lambda: _status(containerd, cid) == "STOPPED", what="the task's end")
        r = containerd.ctr("task", "delete", cid)
        seen.append(("delete", r.returncode, r.stdout.strip()))
        containerd.ctr("container", "delete", cid)
        return seen
    same(each(case), "a detached task")


def _status(c, cid):
    for line in c.ctr("task", "ls").stdout.splitlines()[1:]:
        parts = line.split()
        if parts and parts[0] == cid:
            return parts[-1]
    return "gone"


def test_the_tasks_process_is_km(containerd):
    r = containerd.run("krun", "-d", "localhost/kt-busybox:latest", "km-pid", "/busybox", "sleep", "1000")
    assert r.returncode == 0, r.stderr
    try:
        pid = int(containerd.ctr("task", "ls").stdout.split("km-pid")[1].split()[0])
        kit.wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith(".so.2"), what="the exec")
        assert os.readlink(f"/proc/{pid}/exe").endswith("/.kontain/lib/ld-linux-x86-64.so.2")
    finally:
        containerd.ctr("task", "kill", "--signal", "SIGKILL", "km-pid")
        kit.wait_for(lambda: _status(containerd, "km-pid") == "STOPPED", what="the end")
        containerd.ctr("task", "delete", "km-pid")
        containerd.ctr("container", "delete", "km-pid")


def test_the_cri_runtime_kontain_is_configured(containerd):
    """The RuntimeClass handler `kontain` is containerd's CRI runtime running krun."""
    r = subprocess.run(["containerd", "--config", str(containerd.root / "config.toml"), "config", "dump"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("runtimes.kontain]", 1)[1]
    assert 'runtime_type = "io.containerd.runc.v2"' in section.split("[plugins", 1)[0]
    assert f'BinaryName = "{kit.KRUN[0]}"' in section
    plugins = containerd.ctr("plugins", "ls").stdout
    assert any(line.split()[1:2] == ["cri"] and line.split()[-1] == "ok" for line in plugins.splitlines()[1:])


DEBIAN_CONFIG = """version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
"""  # (Debian 12's /etc/containerd/config.toml, as the package ships it)


@pytest.mark.parametrize("base", ["debian", "default"])
def test_the_installer_adds_the_runtime_to_containerds_configuration(tmp_path, base):
    """deploy/kubernetes/install.sh's edit of /etc/containerd/config.toml (the DaemonSet's
    installer): on Debian's configuration and on `containerd config default`'s, once even
    when run twice, and containerd then has the runtime `kontain` and a CRI plugin that loads."""
    config = tmp_path / "config.toml"
    if base == "debian":
        config.write_text(DEBIAN_CONFIG)
    else:
        config.write_text(subprocess.run(["containerd", "config", "default"], capture_output=True, text=True,
                                         check=True).stdout)
    for _ in range(2):
        subprocess.run(["sh", str(kit.SNIPPET.parent / "install.sh"), "--configure", str(config)], check=True)
    assert config.read_text().count("runtimes.kontain]") == config.read_text().count("runtimes.runc]") == 1
    dump = subprocess.run(["containerd", "--config", str(config), "config", "dump"], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    assert 'BinaryName = "/opt/kontain/bin/krun"' in dump.stdout.split("runtimes.kontain.options]", 1)[1]
    address = str(tmp_path / "containerd.sock")
    with open(tmp_path / "containerd.log", "w") as log:
        daemon = subprocess.Popen(["containerd", "--config", str(config), "--root", str(tmp_path / "root"), "--state",
                                   str(tmp_path / "state"), "--address", address], stdout=log, stderr=log)
    try:
        def plugins():
            r = subprocess.run(["ctr", "--address", address, "plugins", "ls"], capture_output=True, text=True)
            return r.stdout if r.returncode == 0 else ""
        kit.wait_for(plugins, what="containerd")
        cri = [line.split() for line in plugins().splitlines() if line.split()[1:2] == ["cri"]]
        assert cri and cri[0][-1] == "ok", (tmp_path / "containerd.log").read_text()[-2000:]
    finally:
        daemon.terminate()
        daemon.wait(timeout=kit.TIMEOUT)
