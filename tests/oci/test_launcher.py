"""krun-native (src/kontain/oci/launcher.c) against the Python krun: for the verbs it
passes to crun it must hand crun exactly what krun would (arguments, state directory,
signal dispositions), and everything else must be the Python krun's answer, errors and
log lines included.  A fake crun ($KRUN_CRUN) shows what each was given."""

import os
import subprocess
import sys
from pathlib import Path

import kit
import pytest

PYTHON_KRUN = kit.installed("krun") or [sys.executable, "-c", "import sys; from kontain.oci.cli import main; sys.exit(main())"]


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> str:
    """A krun-native built for this test (krun launcher -o)."""
    d = tmp_path_factory.mktemp("launcher")
    os.chmod(d, 0o755)  # (user nobody runs it too)
    for parent in d.parents:
        if parent.stat().st_mode & 0o001 == 0:
            os.chmod(parent, parent.stat().st_mode | 0o001)
    out = d / "krun-native"
    r = subprocess.run([*PYTHON_KRUN, "launcher", "-o", str(out)], capture_output=True, text=True, timeout=kit.TIMEOUT)
    assert r.returncode == 0 and r.stdout.strip() == str(out), r.stderr
    return str(out)


@pytest.fixture
def fake_crun(tmp):
    fake = tmp / "crun"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done; echo; grep SigIgn /proc/self/status\n'
                    "exit 7\n")
    fake.chmod(0o755)
    return fake


def both(native, argv, env=None):
    out = []
    for command in ([native], PYTHON_KRUN):
        r = subprocess.run([*command, *argv], capture_output=True, text=True, env=env, timeout=kit.TIMEOUT)
        out.append((r.returncode, r.stdout, r.stderr))
    assert out[0] == out[1], f"krun-native {argv}: {out[0]}\n  krun: {out[1]}"
    return out[0]


@pytest.mark.parametrize("argv", [
    ["state", "x"],
    ["start", "x"],
    ["delete", "--force", "x"],
    ["kill", "--all", "x", "9"],
    ["--root", "/tmp/r", "--log", "/tmp/l.json", "--log-format=json", "--systemd-cgroup", "kill", "x", "15"],
    ["--root=", "ps", "--format", "json", "x"],
    ["--criu", "c", "--cgroup-manager=cgroupfs", "--rootless", "false", "list", "-q"],
    ["pause", "x"], ["resume", "x"], ["update", "--memory", "1000000", "x"], ["spec", "--rootless"],
    ["checkpoint", "x"], ["restore", "x"],
])
def test_passed_verbs_reach_crun_as_from_krun(native, fake_crun, argv):
    env = {**os.environ, "KRUN_CRUN": str(fake_crun)}
    status, out, _ = both(native, argv, env)
    assert status == 7 and out.startswith("[--root="), out


def test_crun_found_on_path_as_krun_finds_it(native, fake_crun):
    env = {k: v for k, v in os.environ.items() if k != "KRUN_CRUN"}
    env["PATH"] = f"{fake_crun.parent}:{env.get('PATH', '')}"
    assert both(native, ["state", "x"], env)[0] == 7


def test_default_state_directory_for_another_user(native, fake_crun, tmp):
    """As user nobody: $XDG_RUNTIME_DIR/krun, else /run/user/UID/krun, as krun says."""
    for xdg in (str(tmp), None):
        env = {"PATH": "/usr/bin:/bin", "KRUN_CRUN": str(fake_crun), **({"XDG_RUNTIME_DIR": xdg} if xdg else {})}
        r = [subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *c, "state", "x"],
                            capture_output=True, text=True, env=env, cwd="/", timeout=kit.TIMEOUT)
             for c in ([native], PYTHON_KRUN)]
        assert (r[0].returncode, r[0].stdout) == (r[1].returncode, r[1].stdout), (r[0], r[1])
        want = f"{xdg}/krun" if xdg else "/run/user/65534/krun"
        assert r[0].stdout.startswith(f"[--root={want}]"), r[0].stdout


@pytest.mark.parametrize("argv", [
    ["features"], ["--version"], ["-h"], ["--help"], [],
    ["--bogus", "state", "x"], ["--root"], ["frobnicate", "x"],
    ["--debug", "state", "x"],
    ["create", "--bundle", "/nonexistent", "c"],
    ["exec", "nosuch", "true"],
])
def test_other_verbs_are_the_python_krun(native, fake_crun, argv):
    env = {**os.environ, "KRUN_CRUN": str(fake_crun)}
    both(native, argv, env)


def test_errors_reach_the_engine_log_alike(native, tmp):
    logs = []
    for name, command in (("native", [native]), ("python", PYTHON_KRUN)):
        log = tmp / f"{name}.log"
        r = subprocess.run([*command, "--log", str(log), "--log-format", "json", "create", "--bundle", "/nonexistent",
                            "c"], capture_output=True, text=True, timeout=kit.TIMEOUT)
        assert r.returncode == 1
        logs.append(log.read_text().split('"time"')[0])
    assert logs[0] == logs[1] and "/nonexistent/config.json" in logs[0]


def test_crun_that_cannot_run(native, tmp):
    """crun missing where $KRUN_CRUN says: the Python krun's one-line error."""
    env = {**os.environ, "KRUN_CRUN": str(tmp / "nonexistent")}
    status, out, err = both(native, ["state", "x"], env)
    assert status == 1 and err.startswith("krun: cannot run") and "Traceback" not in err


def test_without_a_compiler(tmp):
    r = subprocess.run([*PYTHON_KRUN, "launcher", "-o", str(tmp / "k")], capture_output=True, text=True,
                       env={**os.environ, "CC": str(tmp / "no-cc")}, timeout=kit.TIMEOUT)
    assert r.returncode == 2 and r.stderr.startswith("krun: cannot run the C compiler") and "Traceback" not in r.stderr
    assert not Path(tmp / "k").exists() and os.listdir(tmp) == []
