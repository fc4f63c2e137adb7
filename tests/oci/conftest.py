"""krun tests run real containers (crun's namespaces and cgroups) whose processes are
real KVM virtual machines.  Without root, crun or /dev/kvm they fail with a message
that says what is missing: they never skip silently."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kit  # noqa: E402

_READY: list[bool] = []


@pytest.fixture(autouse=True)
def require_host():
    problem = kit.host_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    if not _READY:
        kit.host_ready()
        _READY.append(True)


@pytest.fixture(autouse=True)
def host_dev_null():
    """crun 1.8 gives a non-terminal standard descriptor to the container process's user,
    the host's /dev/null included (docs/known-issues.md): after each test, /dev/null is put
    back (root's, 0666), so the suite never leaves the host changed."""
    yield
    kit.mend_dev_null()


@pytest.fixture
def tmp(tmp_path):
    os.chmod(tmp_path, 0o755)  # (containers running as another user reach their bundle)
    for parent in tmp_path.parents:
        if parent.stat().st_mode & 0o001 == 0:
            os.chmod(parent, parent.stat().st_mode | 0o001)
    return tmp_path


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory):
    """busybox's root file system, shared (containers get it read-only)."""
    d = tmp_path_factory.mktemp("busybox")
    os.chmod(d, 0o755)
    return kit.busybox_rootfs(d / "rootfs")


@pytest.fixture
def runtimes(tmp):
    """crun and krun, each with a state directory of its own."""
    pair = [kit.Runtime("crun", tmp / "crun-state"), kit.Runtime("krun", tmp / "krun-state")]
    yield pair
    for rt in pair:
        rt.cleanup()
