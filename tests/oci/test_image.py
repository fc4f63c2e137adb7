"""km image: a minimal OCI image from one program, that runs under krun as under crun.

Programs of three kinds: a static one (the image is that one file), a dynamic glibc one
from Debian (its loader and libraries, nothing else), and a dynamic musl one (a libc
that is not the host's: the image holds musl's loader, and km's own runtime is glibc's).
The images are unpacked into bundles here; podman load and ctr images import read the
same files in test_podman.py and test_containerd.py.
"""

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import kit
import pytest

from kt import BUILD, KM, PROGRAMS, build


def image(tmp, program, *args, at=None):
    out = tmp / f"{Path(program).name}.tar"
    r = subprocess.run([*KM, "image", *(["--at", at] if at else []), "-o", str(out), str(program), *args],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def layout(path):
    """(index, manifest, config, {path in the layer: TarInfo}, docker manifest), each
    digest checked against its blob."""
    t = tarfile.open(path)

    def blob(desc):
        data = t.extractfile(f"blobs/sha256/{desc['digest'][7:]}").read()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"] and len(data) == desc["size"]
        return data
    assert json.load(t.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    index = json.load(t.extractfile("index.json"))
    manifest = json.loads(blob(index["manifests"][0]))
    config = json.loads(blob(manifest["config"]))
    layer = gzip.decompress(blob(manifest["layers"][0]))
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(layer)).getmembers()}
    return index, manifest, config, members, json.load(t.extractfile("manifest.json"))


def unpack(path, rootfs):
    t = tarfile.open(path)
    manifest = json.load(t.extractfile("manifest.json"))[0]
    layer = gzip.decompress(t.extractfile(manifest["Layers"][0]).read())
    rootfs.mkdir(parents=True)
    tarfile.open(fileobj=io.BytesIO(layer)).extractall(rootfs)
    config = json.loads(t.extractfile(manifest["Config"]).read())["config"]
    return config["Entrypoint"] + (config.get("Cmd") or [])


def musl_dynamic() -> Path:
    out = BUILD / "musl-dynamic" / "hello"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["musl-gcc", "-O2", "-o", str(out), str(PROGRAMS / "hello.c")], check=True)
    return out


def test_a_static_program_is_the_whole_image(tmp):
    index, manifest, config, members, docker = layout(image(tmp, build("hello", "musl")))
    assert sorted(members) == ["hello"] and members["hello"].mode & 0o111
    assert config["config"]["Entrypoint"] == ["/hello"] and config["architecture"] == "amd64"
    name = index["manifests"][0]["annotations"]["io.containerd.image.name"]
    assert name == "localhost/hello:latest" and docker[0]["RepoTags"] == [name]


def test_a_dynamic_program_brings_its_loader_and_libraries(tmp):
    _, _, config, members, _ = layout(image(tmp, "/usr/bin/sqlite3", "-version"))
    files = sorted(n for n, m in members.items() if m.isfile())
    assert "lib64/ld-linux-x86-64.so.2" in files and "sqlite3" in files
    libs = {n.split("/")[-1] for n in files}
    assert {"libc.so.6", "libsqlite3.so.0"} <= libs and len(files) < 12
    assert config["config"]["Cmd"] == ["-version"]


def test_the_image_is_reproducible(tmp):
    a = image(tmp, build("hello", "musl")).read_bytes()
    b = image(tmp, build("hello", "musl")).read_bytes()
    assert a == b


def test_errors_are_one_line(tmp):
    r = subprocess.run([*KM, "image", "-o", str(tmp / "x.tar"), "/nonexist"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr == "km image: /nonexist: not found\n"
    r = subprocess.run([*KM, "image", "/bin/true"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("km image: no output file")


@pytest.mark.parametrize("kind", ["static", "glibc", "musl"])
def test_the_image_runs_under_krun_as_under_crun(runtimes, tmp, kind):
    program, args = {"static": (build("hello", "musl"), []), "glibc": ("/usr/bin/sqlite3", [":memory:", "select 6*7"]),
                     "musl": (musl_dynamic(), [])}[kind]
    argv = unpack(image(tmp, program, *args), tmp / "rootfs")
    results = {}
    for rt in runtimes:
        r = rt("run", "--bundle", kit.bundle(tmp / f"b-{rt.name}", argv, tmp / "rootfs"), "img")
        results[rt.name] = (r.returncode, r.stdout, r.stderr)
    assert results["crun"] == results["krun"] and results["krun"][0] == 0 and results["krun"][1]
