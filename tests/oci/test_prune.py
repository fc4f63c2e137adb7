"""Pruning km runtimes (oci/prune.py): what goes, what stays, and that a runtime a
container has mounted stays.  Every test uses a cache directory of its own
(KONTAIN_CACHE): the host's /var/cache/kontain is never pruned here."""

import os
import subprocess
import time

import kit
import pytest

from kontain.oci import prune, runtime

DAYS = 24 * 3600


def fake(cache, name: str, age: float) -> str:
    """A runtime directory ``name`` last used ``age`` seconds ago."""
    root = cache / name
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "big").write_bytes(b"x" * 100_000)
    (root / "LOADER").write_text("ld-linux-x86-64.so.2\n")
    (root / runtime.USED).write_text("")
    then = time.time() - age
    os.utime(root / runtime.USED, (then, then))
    os.utime(root, (then, then))
    return str(root)


@pytest.fixture
def cache(tmp, monkeypatch):
    d = tmp / "cache"
    d.mkdir()
    monkeypatch.setenv("KONTAIN_CACHE", str(d))
    return d


def names(cache) -> set:
    return {n for n in os.listdir(cache) if n != prune.LOCK}


def test_old_unused_goes_current_and_recent_stay(cache):
    current = f"runtime-{runtime.key()}"
    fake(cache, current, 3 * DAYS)  # (the runtime of this km: never pruned, however old)
    fake(cache, "runtime-0000000000000001", 3 * DAYS)
    fake(cache, "runtime-0000000000000002", 3600)  # (used an hour ago: stays)
    fake(cache, ".runtime-leftover", 2 * 3600)  # (an interrupted assembly)
    fake(cache, ".runtime-building", 60)  # (an assembly under way)
    removed = prune.prune(str(cache))
    assert sorted(n for n, _ in removed) == [".runtime-leftover", "runtime-0000000000000001"]
    assert all(size >= 100_000 for _, size in removed)
    assert names(cache) == {current, "runtime-0000000000000002", ".runtime-building"}


def test_dry_run_removes_nothing(cache):
    fake(cache, "runtime-0000000000000001", 3 * DAYS)
    assert [n for n, _ in prune.prune(str(cache), dry_run=True)] == ["runtime-0000000000000001"]
    assert names(cache) == {"runtime-0000000000000001"}


def test_a_mounted_runtime_stays(cache, tmp):
    """A bind mount of the runtime in another mount namespace (as a container has it)
    keeps it, however old; once the namespace is gone, it goes."""
    old = fake(cache, "runtime-0000000000000003", 3 * DAYS)
    target = tmp / "mnt"
    target.mkdir()
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount --bind -o ro {old} {target} && echo mounted && exec sleep 600"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "mounted"
        assert "runtime-0000000000000003" in prune.mounted(str(cache))
        assert prune.prune(str(cache)) == []
        assert names(cache) == {"runtime-0000000000000003"}
    finally:
        holder.kill()
        holder.wait()
    assert [n for n, _ in prune.prune(str(cache))] == ["runtime-0000000000000003"]
    assert names(cache) == set()


def test_ensure_marks_use_once_an_hour(cache):
    """ensure() touches USED when it is older than an hour, and does not write otherwise."""
    current = fake(cache, f"runtime-{runtime.key()}", 2 * 3600)
    used = os.path.join(current, runtime.USED)
    runtime.ensure(str(cache))
    first = os.stat(used).st_mtime
    assert time.time() - first < 60
    then = time.time() - 600
    os.utime(used, (then, then))
    runtime.ensure(str(cache))
    assert os.stat(used).st_mtime == then


def test_create_assembles_and_prunes_the_old(cache, tmp, rootfs):
    """krun create in a cache without this km's runtime assembles it, which prunes the
    others in the background; a container of krun has its runtime mounted (what prune
    looks for) from create until delete."""
    fake(cache, "runtime-0000000000000004", 3 * DAYS)
    env = {**os.environ, "KONTAIN_CACHE": str(cache)}
    rt = kit.Runtime("krun", tmp / "state")
    b = kit.bundle(tmp / "b", ["/bin/sleep", "600"], rootfs)
    try:
        r = rt("create", "--bundle", b, "c", env=env)
        assert r.returncode == 0, r.stderr
        current = f"runtime-{runtime.key()}"
        assert os.path.isfile(cache / current / "LOADER")
        kit.wait_for(lambda: "runtime-0000000000000004" not in names(cache), what="the old runtime pruned")
        assert current in prune.mounted(str(cache))
    finally:
        rt("delete", "--force", "c")
    assert current not in prune.mounted(str(cache))


def test_the_lock_orders_prune_and_use(cache):
    """A prune waits for (or, after an assembly, skips) a krun marking a runtime used; a
    runtime a prune renamed away is not marked used (ensure then assembles it again)."""
    fake(cache, "runtime-0000000000000006", 3 * DAYS)
    held = prune.lock(str(cache), exclusive=False)
    try:
        assert prune.prune(str(cache), wait=False) is None
        assert names(cache) == {"runtime-0000000000000006"}
    finally:
        os.close(held)
    assert [n for n, _ in prune.prune(str(cache), wait=False)] == ["runtime-0000000000000006"]
    assert runtime._touch(str(cache), str(cache / "runtime-0000000000000006")) is False


def test_command_output(cache):
    fake(cache, "runtime-0000000000000005", 3 * DAYS)
    krun = [*kit.KRUN, "prune-runtimes"]
    r = subprocess.run([*krun, "--dry-run"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"would remove {cache}/runtime-0000000000000005 (")
    assert r.stdout.splitlines()[-1].startswith("would free ") and r.stdout.rstrip().endswith("(1 entry)")
    assert names(cache) == {"runtime-0000000000000005"}
    r = subprocess.run(krun, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"removed {cache}/runtime-0000000000000005 (")
    assert r.stdout.splitlines()[-1].startswith("freed ")
    assert names(cache) == set()
    r = subprocess.run([*krun, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 1 and "prune-runtimes: unexpected argument --bogus" in r.stderr
