"""km image SNAPSHOT through Podman with krun: an image whose entry point is a km
snapshot resumes the warm program instead of starting it cold, and prints what a cold
run prints.  The program is Debian's python3 warmed with heavy imports and holding a
data file open (which the image carries, checked unchanged); the snapshot is taken on
the host with the limits the container gets (a resume cannot raise a hard limit)."""

import os
import shutil
import subprocess
from pathlib import Path

import kit
import pytest

from kt import KM

LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
GUEST = Path(__file__).resolve().parents[2] / "src" / "kontain" / "guest" / "__init__.py"
WARM = """\
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json, decimal, email.parser, http.client, xml.dom.minidom, argparse, logging  # the warm-up
data = open("data.txt")
first = data.readline()
if os.environ.get("SNAP"):
    import kguest
    kguest.snapshot(os.environ["SNAP"], exit=True)
print(json.dumps({"first": first, "rest": data.read(), "seventh": str(decimal.Decimal(1) / 7),
                  "modules": "email.parser" in sys.modules, "cwd": os.getcwd()}))
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The program's directory, and its snapshot taken on the host under km."""
    d = tmp_path_factory.mktemp("snapapp")
    os.chmod(d, 0o755)
    for parent in d.parents:
        if parent.stat().st_mode & 0o001 == 0:
            os.chmod(parent, parent.stat().st_mode | 0o001)
    (d / "warm.py").write_text(WARM)
    (d / "data.txt").write_text("line one\nline two\nline three\n")
    shutil.copy(GUEST, d / "kguest.py")
    snap = d / "warm.snap"
    r = subprocess.run(["prlimit", "--nproc=4096:4096", "--nofile=1024:1024", *KM, "/usr/bin/python3", "warm.py"],
                       cwd=d, env={**os.environ, "SNAP": str(snap)}, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=kit.TIMEOUT)
    assert r.returncode == 0 and snap.exists(), r.stderr
    return d


@pytest.fixture(scope="module")
def podman(tmp_path_factory, app):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed (make deps installs it)", pytrace=False)
    root = tmp_path_factory.mktemp("podman")
    base = ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run")]
    try:
        yield base, root
    finally:
        subprocess.run([*base, "rm", "--all", "--force"], capture_output=True)
        subprocess.run([*base, "system", "reset", "--force"], capture_output=True)


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=kit.TIMEOUT, **kw)


def test_snapshot_image_resumes_as_a_cold_run_prints(app, podman):
    base, root = podman
    image = root / "warm.tar"
    r = run([*KM, "image", "-t", "localhost/kt-warm", "-o", str(image), str(app / "warm.snap")])
    assert r.returncode == 0, r.stderr
    assert run([*base, "load", "-i", str(image)]).returncode == 0
    # the cold run to compare with: Debian's python3 image holding the same program
    rootfs = kit.python_rootfs(root / "python")
    shutil.copytree(app, rootfs / str(app).lstrip("/"), ignore=shutil.ignore_patterns("*.snap"))
    r = run([*base, "import", "--change", f"WORKDIR={app}", "-", "localhost/kt-python-warm"],
            input=None, stdin=subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE).stdout)
    assert r.returncode == 0, r.stderr
    native = run(["/usr/bin/python3", "warm.py"], cwd=app)
    cold = run([*base, "run", "--rm", "--runtime", kit.KRUN[0], *LIMITS, "localhost/kt-python-warm", "python3",
                "warm.py"])
    resumed = run([*base, "run", "--rm", "--runtime", kit.KRUN[0], *LIMITS, "localhost/kt-warm"])
    assert (cold.returncode, cold.stdout) == (0, native.stdout), cold.stderr
    assert (resumed.returncode, resumed.stdout, resumed.stderr) == (0, native.stdout, ""), resumed.stderr
    assert '"first": "line one\\n", "rest": "line two\\nline three\\n"' in resumed.stdout


def test_image_contents(app, tmp):
    """What km image puts in: the snapshot (executable: the container's program), its
    working directory, the data file with its modification time, the shared read-only
    mapping glibc made of gconv-modules.cache (if any), and no program or library."""
    import io
    import json
    import tarfile

    image = tmp / "w.tar"
    r = run([*KM, "image", "-o", str(image), str(app / "warm.snap")])
    assert r.returncode == 0, r.stderr
    with tarfile.open(image) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]
        config = json.load(t.extractfile(manifest["Config"]))
        import gzip

        layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(t.extractfile(manifest["Layers"][0]).read())))
        members = {m.name: m for m in layer.getmembers()}
    assert config["config"]["Entrypoint"] == ["/warm.snap"] and config["config"]["WorkingDir"] == str(app)
    assert members["warm.snap"].mode == 0o755
    data = members[f"{str(app).lstrip('/')}/data.txt"]
    ns = os.stat(app / "data.txt").st_mtime_ns
    assert data.pax_headers["mtime"] == f"{ns // 10**9}.{ns % 10**9:09d}"  # (what the resume checks, to the ns)
    assert not [n for n in members if n.endswith(("python3", ".py")) or "libc.so" in n], sorted(members)


def _warm_copy(app, tmp):
    """A copy of the app directory and a snapshot of its warm program taken there:
    (the copy, the snapshot)."""
    copy = tmp / "app"
    shutil.copytree(app, copy)
    snap = copy / "warm.snap"
    r = subprocess.run(["prlimit", "--nproc=4096:4096", *KM, "/usr/bin/python3", "warm.py"], cwd=copy,
                       env={**os.environ, "SNAP": str(snap)}, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=kit.TIMEOUT)
    assert r.returncode == 0, r.stderr
    return copy, snap


def test_changed_file_is_refused(app, tmp):
    """A file the snapshot re-opens that changed since: km image says so (the resume would)."""
    copy, snap = _warm_copy(app, tmp)
    with open(copy / "data.txt", "a") as f:
        f.write("more\n")
    r = run([*KM, "image", "-o", str(tmp / "x.tar"), str(snap)])
    assert r.returncode == 1 and "data.txt, which has changed since the snapshot" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp / "x.tar").exists()
    r = run([*KM, "image", "-o", str(tmp / "x.tar"), str(snap), "arg"])
    assert r.returncode == 1 and "takes no arguments" in r.stderr


def test_image_files_option(app, tmp):
    """--image-files (what krun gives km): a file the snapshot re-opens may be another
    inode with the same size and modification time (an image's copy); without it the
    resume refuses that, and with it a changed size or time is still refused."""
    copy, snap = _warm_copy(app, tmp)
    data = copy / "data.txt"
    shutil.copy2(data, tmp / "other")  # (same size and time, another inode)
    os.replace(tmp / "other", data)
    plain = run(["prlimit", "--nproc=4096:4096", *KM, str(snap)], stdin=subprocess.DEVNULL)
    assert plain.returncode == 126 and "data.txt, which has changed since the snapshot" in plain.stderr, plain.stderr
    moved = run(["prlimit", "--nproc=4096:4096", *KM, "--image-files", str(snap)], stdin=subprocess.DEVNULL)
    assert moved.returncode == 0 and '"rest": "line two\\nline three\\n"' in moved.stdout, moved.stderr
    os.utime(data, ns=(0, os.stat(data).st_mtime_ns + 1))
    touched = run(["prlimit", "--nproc=4096:4096", *KM, "--image-files", str(snap)], stdin=subprocess.DEVNULL)
    assert touched.returncode == 126 and "has changed since the snapshot" in touched.stderr, touched.stderr
