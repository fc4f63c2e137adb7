"""``km image``: a minimal OCI image made from one program.

    km image [-t NAME] [--at PATH] -o IMAGE.tar PROGRAM [ARGS...]

The image holds the program and exactly what it needs to load: nothing more for a
static program; for a dynamic one its ELF interpreter (at its PT_INTERP path) and the
shared libraries it loads, each at the path where the host's loader found it (which the
same loader searches in the image: its default directories, or the program's RUNPATH).
The program itself goes to ``/NAME`` (its file name), or ``--at PATH`` (for a program
that finds its libraries relative to itself, $ORIGIN: its own path).  ENTRYPOINT is the
program, CMD the ARGS.  Such an image runs under krun (km brings its own runtime, and
the image needs no libc, shell or Python of its own) and, just as well, under any
runtime.

The file is an OCI image layout in a tar (oci-layout, index.json, blobs/) that also
holds a Docker-style manifest.json: ``podman load`` and ``docker load`` read it, and
``ctr images import`` (the index names the image for containerd with
io.containerd.image.name).  It is reproducible: the same program and libraries give
the same bytes (files' times are zero, entries sorted; the image's date is its newest
file's, or $SOURCE_DATE_EPOCH).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

USAGE = """\
usage: km image [-t NAME] [--at PATH] -o IMAGE.tar PROGRAM [ARGS...]
       km image [-t NAME] [--at PATH] -o IMAGE.tar SNAPSHOT

Write a minimal OCI image (a tar for podman load, docker load or ctr images import)
holding PROGRAM and what it needs to load (its interpreter and shared libraries, none
for a static program).  ENTRYPOINT is PROGRAM, CMD the ARGS.  From a km snapshot file:
an image that resumes it under krun (the snapshot, its working directory and the files
it re-opens).

options:
  -o, --output FILE   the image file to write
  -t, --tag NAME      the image's name (default: localhost/PROGRAM:latest)
      --at PATH       where PROGRAM goes in the image (default: /PROGRAM's file name)
  -h, --help
"""
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageError(Exception):
    pass


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except ImageError as e:
        os.write(2, f"km image: {e}\n".encode("utf-8", "surrogateescape"))
        return 2 if str(e).startswith(("usage", "option", "no ", "unknown")) else 1


def _main(argv: list[str]) -> int:
    output = tag = at = None
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        a = argv[i]
        name, eq, value = a.partition("=")
        if name in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if a == "--":
            i += 1
            break
        if name not in ("-o", "--output", "-t", "--tag", "--at"):
            raise ImageError(f"unknown option {a} (see km image --help)")
        if not eq:
            if i + 1 >= len(argv):
                raise ImageError(f"option {a} needs a value")
            i += 1
            value = argv[i]
        if name in ("-o", "--output"):
            output = value
        elif name in ("-t", "--tag"):
            tag = value
        else:
            at = value
        i += 1
    if i >= len(argv):
        raise ImageError("no program (usage: km image [-t NAME] [--at PATH] -o IMAGE.tar PROGRAM [ARGS...])")
    if not output:
        raise ImageError("no output file (-o IMAGE.tar)")
    program, args = argv[i], argv[i + 1:]
    from kontain.cli.main import _is_snapshot

    snapshot = os.path.isfile(program) and _is_snapshot(program)  # (a km snapshot: an image that resumes it)
    path = os.path.abspath(program) if snapshot else _find(program)
    base = os.path.basename(path)
    at = at or "/" + base
    if not at.startswith("/"):
        raise ImageError(f"--at {at}: expected an absolute path in the image")
    name = tag or f"localhost/{base.lower()}:latest"
    if snapshot:
        if args:
            raise ImageError(f"{program} is a snapshot: it takes no arguments")
        from kontain.oci import snapimage

        files, workdir = snapimage.contents(path, at)
        write(output, files, name, [at], [], workdir=workdir, snapshot=True)
    else:
        files = contents(path, at)
        write(output, files, name, [at], args)
    os.write(1, f"{output}: {name} ({len(files)} files)\n".encode())
    return 0


def _find(program: str) -> str:
    import shutil

    found = program if "/" in program else shutil.which(program)
    if not found or not os.path.isfile(found):
        raise ImageError(f"{program}: not found")
    if not os.access(found, os.X_OK):
        raise ImageError(f"{program}: not executable")
    return os.path.abspath(found)


def contents(program: str, at: str) -> dict[str, str]:
    """{path in the image: host file} for ``program`` placed at ``at``."""
    from kontain.oci import elfdeps

    try:
        interp = elfdeps.interpreter(program)
        files = {at: program}
        if interp:
            if not os.path.exists(interp):
                raise ImageError(f"{program}: its interpreter {interp} is not on this host")
            files[interp] = interp
            for lib in elfdeps.libraries(program, interp).values():
                files[lib] = lib
    except elfdeps.DepsError as e:
        raise ImageError(str(e)) from None
    return files


def _layer(files: dict[str, str | None], snapshot: str | None = None) -> bytes:
    """The image's one layer: an uncompressed tar, reproducible (sorted, no times, root's).
    ``files``' None values are directories.  In a snapshot's image (``snapshot``: its path
    in the image) the files the snapshot re-opens keep their modification time, which the
    resume checks, and the snapshot itself is executable (the container's program)."""
    buf = io.BytesIO()
    dirs = sorted({p for path in files for p in _parents(path)} | {p for p, h in files.items() if h is None})
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in dirs:
            info = tarfile.TarInfo(d.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for path in sorted(p for p, h in files.items() if h is not None):
            host = os.path.realpath(files[path])
            st = os.stat(host)
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = st.st_size, st.st_mode & 0o7777 | 0o444, 0
            if snapshot is not None:
                if path == snapshot:
                    info.mode = 0o755
                else:  # (to the nanosecond: a PAX record)
                    info.mtime = st.st_mtime_ns // 10**9
                    info.pax_headers = {"mtime": f"{st.st_mtime_ns // 10**9}.{st.st_mtime_ns % 10**9:09d}"}
            with open(host, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


def _stamp(t: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _parents(path: str) -> list[str]:
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:n]) for n in range(1, len(parts) + 1)]


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def write(output: str, files: dict[str, str | None], name: str, entrypoint: list[str], cmd: list[str],
          workdir: str = "/", snapshot: bool = False) -> None:
    """Write the image of ``files`` as an OCI layout tar (with Docker's manifest.json)."""
    layer = _layer(files, entrypoint[0] if snapshot else None)
    newest = max(int(os.stat(os.path.realpath(f)).st_mtime) for f in files.values() if f)  # (reproducible)
    created = _stamp(int(os.environ.get("SOURCE_DATE_EPOCH", newest)))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    layer_digest, layer_gz = _blob(gzip.compress(layer, mtime=0))
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Cmd": cmd or None, "Env": [PATH_ENV], "WorkingDir": workdir,
                   "Labels": {"io.kontain.image": "km image snapshot" if snapshot else "km image"}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": f"km image {entrypoint[0]}"}],
    }
    if not cmd:
        del config["config"]["Cmd"]
    config_digest, config_data = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": len(config_data)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": len(layer_gz)}],
    }
    manifest_digest, manifest_data = _blob(json.dumps(manifest, sort_keys=True).encode())
    ref = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                       "size": len(manifest_data), "platform": {"architecture": "amd64", "os": "linux"},
                       "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": ref}}],
    }
    docker = [{"Config": f"blobs/sha256/{config_digest[7:]}", "RepoTags": [name],
               "Layers": [f"blobs/sha256/{layer_digest[7:]}"]}]
    entries = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        "manifest.json": json.dumps(docker).encode(),
        f"blobs/sha256/{config_digest[7:]}": config_data,
        f"blobs/sha256/{layer_digest[7:]}": layer_gz,
        f"blobs/sha256/{manifest_digest[7:]}": manifest_data,
    }
    tmp = f"{output}.{os.getpid()}.tmp"
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for d in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(d)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(info)
            for entry in sorted(entries):
                info = tarfile.TarInfo(entry)
                info.size, info.mode, info.mtime = len(entries[entry]), 0o644, 0
                tar.addfile(info, io.BytesIO(entries[entry]))
        os.replace(tmp, output)
    except OSError as e:
        raise ImageError(f"{output}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
