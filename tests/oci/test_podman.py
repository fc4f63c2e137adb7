"""Podman with krun: `podman run --runtime kontain`, registered in containers.conf as
docs/containers.md says, every case side by side with Podman's own crun.

The tests keep their images and containers in a storage of their own (podman --root,
--runroot), and register krun the documented way, a drop-in in
/etc/containers/containers.conf.d, for the session.  Images are made here, with no
registry: busybox's root imported as a directory tree, `km image` programs loaded
(static, glibc and musl), a Debian-like Python image (Debian's python3 and its
standard library), and Debian bookworm's minbase made by debootstrap.  Root here lacks
CAP_SYS_RESOURCE, and Podman asks for limits past the host's by default: every run
states its limits (LIMITS).
"""

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import kit
import pytest

from kt import BUILD, KM, build

DROP_IN = Path("/etc/containers/containers.conf.d/kontain.conf")
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
RUNTIMES = ("crun", "kontain")


class Podman:
    def __init__(self, root: Path):
        self.base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run")]

    def __call__(self, *args, stdin: bytes | None = None, timeout: float = kit.TIMEOUT) -> kit.Result:
        r = subprocess.run(self.base + [str(a) for a in args], input=stdin or b"", capture_output=True,
                           timeout=timeout)
        return kit.Result(self.base + list(args), r.returncode, r.stdout.decode(errors="replace"),
                          r.stderr.decode(errors="replace"))

    def ok(self, *args, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"podman {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout

    def run(self, runtime: str, *args, **kw) -> kit.Result:
        return self("run", "--runtime", runtime, *LIMITS, *args, **kw)


@pytest.fixture(scope="session")
def podman(tmp_path_factory):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed (make deps installs it)", pytrace=False)
    root = tmp_path_factory.mktemp("podman")
    os.chmod(root, 0o755)
    saved = DROP_IN.read_text() if DROP_IN.exists() else None
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    DROP_IN.write_text(f'[engine.runtimes]\nkontain = ["{kit.KRUN[0]}"]\n')
    p = Podman(root)
    try:
        _images(p, root)
        yield p
    finally:
        p("rm", "--all", "--force")
        p("system", "reset", "--force")  # (unmounts the storage's layers: pytest removes the directory later)
        if saved is None:
            DROP_IN.unlink(missing_ok=True)
        else:
            DROP_IN.write_text(saved)


def _images(p: Podman, root: Path) -> None:
    bb = kit.busybox_rootfs(root / "busybox")
    (bb / "www").mkdir()
    (bb / "www" / "index.html").write_text("served from a VM\n")
    _import(p, bb, "localhost/kt-busybox")
    for name, program in (("hello", build("hello", "musl")), ("sqlite3", Path("/usr/bin/sqlite3"))):
        out = root / f"{name}.tar"
        subprocess.run([*KM, "image", "-t", f"localhost/kt-{name}", "-o", str(out), str(program)], check=True,
                       capture_output=True)
        p.ok("load", "-i", out)
    _import(p, kit.python_rootfs(root / "python"), "localhost/kt-python")
    p.ok("import", _debian_root(root), "localhost/kt-debian")


def _debian_root(root: Path) -> Path:
    """Debian bookworm's minbase (debootstrap from Debian's archive), as a tar: cached in
    tests/programs/build, it takes a minute to make."""
    cached = BUILD / "debian-bookworm-minbase.tar"
    if not cached.exists():
        tree = root / "debian"
        r = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(tree), *_mirror()], capture_output=True,
                           text=True)
        assert r.returncode == 0, f"debootstrap: {r.stdout[-2000:]}{r.stderr[-2000:]}"
        tmp = cached.with_suffix(".tmp")
        with tarfile.open(tmp, "w") as t:
            t.add(tree, arcname=".")
        tmp.rename(cached)
    return cached


def _mirror() -> list[str]:
    """The Debian mirror this host's apt uses for bookworm (a CI machine may reach no
    other), or none: debootstrap's default then."""
    for f in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[:1].isalpha())
            suites, uris = fields.get("Suites", "").split(), fields.get("URIs", "").split()
            if "bookworm" in suites and uris and uris[0].endswith("/debian"):
                return [uris[0]]
    sources = Path("/etc/apt/sources.list")
    for line in sources.read_text().splitlines() if sources.exists() else []:
        words = line.split()  # deb [options] URI SUITE COMPONENTS...
        uris = [i for i, w in enumerate(words) if w.startswith(("http://", "https://"))]
        if words[:1] == ["deb"] and uris and words[uris[0] + 1:uris[0] + 2] == ["bookworm"]:
            return [words[uris[0]]]
    return []


def _import(p: Podman, rootfs: Path, name: str) -> None:
    tar = rootfs.parent / f"{rootfs.name}.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    p.ok("import", tar, name)


def each(fn):
    return {rt: fn(rt) for rt in RUNTIMES}


def same(results, what="result"):
    assert results["crun"] == results["kontain"], (f"{what} differs:\n  crun:    {results['crun']}\n"
                                                   f"  kontain: {results['kontain']}")
    return results["kontain"]


def out(r: kit.Result):
    return r.returncode, r.stdout


def is_km(pid: int) -> bool:
    return os.readlink(f"/proc/{pid}/exe").endswith("/.kontain/lib/ld-linux-x86-64.so.2")


# -- podman run ----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["kt-busybox", "/bin/sh", "-c", "echo hello; exit 3"],
    ["kt-busybox", "sh", "-c", "id; hostname | wc -c; echo $$; ulimit -n; ls /; env | sort | grep -v HOSTNAME"],
    ["--user", "1000:1000", "-w", "/tmp", "--env", "A=from podman", "kt-busybox", "sh", "-c", "id; pwd; echo $A"],
    ["--read-only", "kt-busybox", "sh", "-c", "touch /x; echo $?; touch /tmp/x; echo $?"],
    ["kt-hello"],
    ["kt-sqlite3", ":memory:", "select 6*7"],
    ["kt-python", "python3", "-c", "import sys, json; print(json.dumps(sys.version_info[:2]), sys.argv)"],
    ["kt-debian", "bash", "-c", "cat /etc/debian_version; dpkg -l | wc -l; apt-get --version | head -1; "
                                "perl -e 'print 6*7, qq(\\n)'; id; ls /; sort /etc/passwd | head -2; exit 5"],
    ["kt-busybox", "/nonexist"],
    ["kt-busybox", "nonexist"],
    ["kt-busybox", "/etc/passwd"],
])
def test_run(podman, args):
    same(each(lambda rt: out(podman.run(rt, "--rm", *args))), "podman run")


def test_every_process_is_km(podman):
    def case(rt):
        cid = podman.ok("run", "--runtime", rt, *LIMITS, "-d", "kt-busybox", "sh", "-c",
                        "sleep 1000 & sleep 1000 & wait").strip()
        init = int(podman.ok("inspect", "--format", "{{.State.Pid}}", cid))
        children = Path(f"/proc/{init}/task/{init}/children")
        kit.wait_for(lambda: len(children.read_text().split()) == 2 and all(
            os.readlink(f"/proc/{c}/exe").endswith(("busybox", ".so.2")) for c in children.read_text().split()),
            what="the two children, exec'd")
        pids = [init, *map(int, children.read_text().split())]
        seen = [is_km(p) for p in pids], len(podman.ok("top", cid, "pid").split())
        podman("rm", "-f", cid)
        return seen
    r = each(case)
    assert r["kontain"] == ([True] * 3, 4) and r["crun"] == ([False] * 3, 4)  # (podman top: a header, 3 processes)


def test_stdin_and_terminal(podman):
    same(each(lambda rt: out(podman.run(rt, "--rm", "-i", "kt-busybox", "sh", "-c", "cat; echo end",
                                        stdin=b"piped in\n"))), "-i")
    same(each(lambda rt: out(podman.run(rt, "--rm", "-t", "kt-busybox", "sh", "-c",
                                        "tty; [ -t 0 ] && echo a terminal; stty size"))), "-t")


def test_detach_logs_stop_and_exit_codes(podman, pid1_image):
    """`podman stop`: a PID 1 without a SIGTERM handler ignores it, and Podman kills it
    after the timeout (137); one with a handler ends as it chooses (7)."""
    def case(rt):
        seen = []
        for args in ([], ["term"]):
            cid = podman.ok("run", "--runtime", rt, *LIMITS, "-d", "-e", "MARKS=/tmp", "kt-pid1", "/pid1",
                            *args).strip()
            kit.wait_for(lambda cid=cid: podman("exec", cid, "test", "-e", "/tmp/ready").returncode == 0, what="/pid1")
            podman.ok("stop", "-t", "2", cid)
            seen.append(podman.ok("inspect", "--format", "{{.State.ExitCode}}", cid).strip())
            podman("rm", cid)
        cid = podman.ok("run", "--runtime", rt, *LIMITS, "-d", "kt-busybox", "sh", "-c", "echo to the log; sleep 1000")
        cid = cid.strip()
        kit.wait_for(lambda: "to the log" in podman.ok("logs", cid), what="the log")
        podman.ok("kill", cid)
        podman("wait", cid)
        seen.append(podman.ok("inspect", "--format", "{{.State.ExitCode}}", cid).strip())
        podman("rm", cid)
        return seen
    assert same(each(case), "stop and kill") == ["137", "7", "137"]


@pytest.fixture(scope="session")
def pid1_image(podman, tmp_path_factory):
    root = tmp_path_factory.mktemp("pid1") / "rootfs"
    kit.busybox_rootfs(root)
    shutil.copy2(build("pid1", "musl"), root / "pid1")
    _import(podman, root, "localhost/kt-pid1")


def test_exec(podman):
    def case(rt):
        cid = podman.ok("run", "--runtime", rt, *LIMITS, "-d", "kt-busybox", "sleep", "1000").strip()
        seen = [out(podman("exec", cid, "sh", "-c", "echo in the container; exit 5")),
                out(podman("exec", "-i", cid, "cat", stdin=b"to exec\n")),
                out(podman("exec", "-u", "1000", "-w", "/tmp", "-e", "B=2", cid, "sh", "-c", "id; pwd; echo $B")),
                out(podman("exec", cid, "nonexist"))]
        podman("rm", "-f", cid)
        return seen
    same(each(case), "exec")


def test_exec_as_a_user_leaves_the_hosts_dev_null(podman):
    """conmon gives `podman exec` the host's /dev/null as stdin, and crun 1.8 gives an
    exec's standard descriptors to its user: under crun, `podman exec -u 1000` hands the
    host's /dev/null to uid 1000 (the suite puts it back: conftest.py).  Under krun the
    exec's stdin is a private node of the same device (oci/stdio.py): not the host's
    inode, still EOF to read.  (The test looks at which inode the exec got, not at the
    host's /dev/null afterwards, which other work on this machine may change meanwhile;
    a user no other test uses: krun leaves a node that is already the user's as it is.)"""
    host = os.stat("/dev/null")

    def case(rt):  # (krun named by its path: the drop-in is one file that other test sessions here rewrite)
        runtime = kit.KRUN[0] if rt == "kontain" else rt
        cid = podman.ok("run", "--runtime", runtime, *LIMITS, "-d", "kt-busybox", "sleep", "1000").strip()
        r = podman("exec", "-u", "4321:4321", cid, "sh", "-c", "stat -L -c '%d %i %t:%T' /proc/self/fd/0; cat; echo $?")
        podman("rm", "-f", cid)
        kit.mend_dev_null()  # (crun's exec gave it away: the next case starts from the same host)
        assert r.returncode == 0, r.stderr
        dev, ino, rdev, status = r.stdout.split()
        return (int(dev), int(ino)) == (host.st_dev, host.st_ino), rdev, status
    assert each(case) == {"crun": (True, "1:3", "0"), "kontain": (False, "1:3", "0")}


def test_volume_and_port(podman, tmp_path):
    """A volume, read and written; a published port served from inside the VM."""
    import urllib.request

    def case(rt):
        vol = tmp_path / rt
        vol.mkdir()
        (vol / "in").write_text("from the host\n")
        port = kit.free_port()
        seen = [out(podman.run(rt, "--rm", "-v", f"{vol}:/data", "kt-busybox", "sh", "-c",
                               "cat /data/in; echo from the container > /data/out")), (vol / "out").read_text()]
        cid = podman.ok("run", "--runtime", rt, *LIMITS, "-d", "-p", f"{port}:8080", "kt-busybox", "httpd", "-f",
                        "-p", "8080", "-h", "/www").strip()
        body = []

        def served():
            try:
                body.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read().decode())
                return True
            except OSError:
                return False
        kit.wait_for(served, what="the web server")
        podman("rm", "-f", cid)
        return seen, body[0]
    same(each(case), "volume and port")


def test_rm_leaves_nothing(podman):
    def case(rt):
        podman.run(rt, "--rm", "--name", f"gone-{rt}", "kt-busybox", "true")
        return [c["Names"] for c in json.loads(podman.ok("ps", "-a", "--format", "json"))
                if f"gone-{rt}" in c["Names"]]
    assert same(each(case), "--rm") == []
