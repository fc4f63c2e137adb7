#!/usr/bin/env python3
"""Containers side by side: `podman run --rm --runtime R IMAGE /hello` and `... PYTHON-IMAGE
python3 -c 'import json'` with crun, krun (kontain: krun-native when it is built, and
kontain-py, the Python krun alone, to show what the launcher saves) and gVisor's runsc
(ptrace platform), interleaved round by round; the memory of one idle container under
each (PSS of conmon and everything under it: the container's processes, and runsc's
sandbox and gofer); and a Python program warmed with heavy imports, started cold (crun,
kontain) against resumed from its snapshot (an image made by km image SNAPSHOT, kontain).
--write puts the tables in docs/performance.md.

    python3 bench/containers.py [--rounds N] [--write]

Needs root, podman, crun and /dev/kvm (make deps); runsc from make deps-bench.  Podman
runs with a storage of its own, no network (runsc's ptrace platform wants none), and the
limits this host allows (see tests/oci/test_podman.py).  The runtimes are named to podman
by path (nothing is registered in /etc/containers).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "oci"))

import kit  # noqa: E402
from bench import mend_devnull, write_doc  # noqa: E402

from kt import KM, build, installed  # noqa: E402

COMMON = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
KONTAIN = (installed("krun-native") or installed("krun"))[0]
RUNTIMES = {
    "crun": ["--runtime", "crun"],
    "kontain": ["--runtime", KONTAIN],
    "kontain-py": ["--runtime", installed("krun")[0]],
    "runsc": ["--runtime", str(shutil.which("runsc")), "--runtime-flag", "platform=ptrace", "--runtime-flag",
              "ignore-cgroups", "--runtime-flag", "network=none"],
}
GUEST = ROOT / "src" / "kontain" / "guest" / "__init__.py"
WARM = """\
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json, decimal, email.parser, http.client, xml.dom.minidom, argparse, logging, asyncio, unittest
if os.environ.get("SNAP"):
    import kguest
    kguest.snapshot(os.environ["SNAP"], exit=True)
print(json.dumps({"seventh": str(decimal.Decimal(1) / 7), "modules": len(sys.modules) > 100}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    problem = kit.host_problem()
    if problem:
        sys.exit(f"containers.py: {problem}")
    kit.host_ready()  # (crun refuses a hybrid cgroup layout until it is mended, as the tests do)
    runtimes = [r for r in RUNTIMES if (r != "runsc" or shutil.which("runsc"))
                and (r != "kontain-py" or RUNTIMES["kontain"] != RUNTIMES["kontain-py"])]
    try:
        with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
            podman = ["podman", "--root", f"{tmp}/storage", "--runroot", f"{tmp}/run"]
            try:
                for name, program in (("hello", build("hello")), ("busybox", "/bin/busybox")):
                    subprocess.run([*KM, "image", "-t", f"localhost/{name}", "-o", f"{tmp}/{name}.tar", str(program)],
                                   check=True, capture_output=True)
                    must([*podman, "load", "-i", f"{tmp}/{name}.tar"])
                root = kit.python_rootfs(Path(tmp) / "python", bytecode=True)
                subprocess.run(["tar", "-C", str(root), "-cf", f"{tmp}/python.tar", "."], check=True)
                must([*podman, "import", f"{tmp}/python.tar", "localhost/python"])
                warm_images(podman, Path(tmp), root)
                times = start_times(podman, runtimes, args.rounds)
                memory = {r: idle_memory(podman, r) for r in runtimes if r != "kontain-py"}  # (krun leaves nothing)
            finally:  # (the storage's layers unmounted, or the directory cannot go)
                subprocess.run([*podman, "rm", "--all", "--force"], capture_output=True)
                subprocess.run([*podman, "system", "reset", "--force"], capture_output=True)
    finally:
        mend_devnull()
    text = render(runtimes, times, memory, args.rounds)
    print(text)
    if args.write:
        write_doc(text, "containers")
    return 0


CASES = {  # name: (image and command, what its output holds)
    "hello": (["localhost/hello", "/hello"], "hello"),
    "python": (["localhost/python", "python3", "-c", "import json; print(json.dumps([1]))"], "[1]"),
}


WARM_CASES = {  # the warm program: (runtime, image and command), cold and resumed
    "cold, crun": ("crun", ["localhost/python-warm", "python3", "warm.py"]),
    "cold, kontain": ("kontain", ["localhost/python-warm", "python3", "warm.py"]),
    "resumed, kontain": ("kontain", ["localhost/warm-snapshot"]),
}


def warm_images(podman: list[str], tmp: Path, python_root: Path) -> None:
    """The warm program in the Python image (cold), and its snapshot as an image (km
    image SNAPSHOT), taken on this host under km with the container's limits."""
    app = tmp / "app"
    app.mkdir()
    (app / "warm.py").write_text(WARM)
    shutil.copy(GUEST, app / "kguest.py")
    snap = tmp / "warm.snap"
    must(["prlimit", "--nproc=4096:4096", "--nofile=1024:1024", *KM, "/usr/bin/python3", "warm.py"], cwd=app,
         env={**os.environ, "SNAP": str(snap)}, stdin=subprocess.DEVNULL)
    must([*KM, "image", "-t", "localhost/warm-snapshot", "-o", f"{tmp}/warm.tar", str(snap)])
    must([*podman, "load", "-i", f"{tmp}/warm.tar"])
    shutil.copytree(app, python_root / str(app).lstrip("/"))
    subprocess.run(["tar", "-C", str(python_root), "-cf", f"{tmp}/python-warm.tar", "."], check=True)
    must([*podman, "import", "--change", f"WORKDIR={app}", f"{tmp}/python-warm.tar", "localhost/python-warm"])
    expected = subprocess.run(["/usr/bin/python3", "warm.py"], cwd=app, capture_output=True, text=True).stdout
    for name in WARM_CASES:
        CASES[name] = (WARM_CASES[name][1], expected.strip())


def must(argv: list[str], **kw) -> None:
    """Run ``argv``; its error output in the exception when it fails."""
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))}: status {r.returncode}: {r.stderr[-1000:]}")


def start_times(podman: list[str], runtimes: list[str], rounds: int) -> dict[tuple[str, str], list[float]]:
    plan = [(c, r) for c in CASES if c not in WARM_CASES for r in runtimes]
    plan += [(c, r) for c, (r, _) in WARM_CASES.items()]
    times: dict[tuple[str, str], list[float]] = {k: [] for k in plan}
    for c, r in plan:  # once each first: the km runtime is assembled, caches are warm
        run_case(podman, r, c)
    for n in range(rounds):
        for c, r in plan:
            times[c, r].append(run_case(podman, r, c))
        print(f"round {n + 1}/{rounds} done", file=sys.stderr)
    return times


def run_case(podman: list[str], runtime: str, case: str) -> float:
    command, expected = CASES[case]
    argv = [*podman, "run", "--rm", *RUNTIMES[runtime], *COMMON, *command]
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0 or expected not in r.stdout:
        raise RuntimeError(f"{' '.join(argv)}: {r.returncode} {r.stderr[-500:]}")
    return dt


def idle_memory(podman: list[str], runtime: str) -> float:
    """MiB of PSS of one container sleeping: conmon and all below it."""
    cid = subprocess.run([*podman, "run", "-d", *RUNTIMES[runtime], *COMMON, "localhost/busybox", "/busybox",
                          "sleep", "1000"], check=True, capture_output=True, text=True).stdout.strip()
    try:
        conmon = int(subprocess.run([*podman, "inspect", "--format", "{{.State.ConmonPid}}", cid], check=True,
                                    capture_output=True, text=True).stdout)
        deadline = time.monotonic() + 60
        while len(tree(conmon)) < 2 and time.monotonic() < deadline:  # (the container's process is there)
            time.sleep(0.1)
        time.sleep(2)  # (idle: let start-up settle; a measurement, not a test)
        return sum(pss(p) for p in tree(conmon)) / 1024
    finally:
        subprocess.run([*podman, "rm", "-f", cid], capture_output=True)


def tree(pid: int) -> list[int]:
    out = [pid]
    for p in out:
        for task in os.listdir(f"/proc/{p}/task"):
            try:
                out += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
            except OSError:
                pass
    return out


def pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def render(runtimes, times, memory, rounds) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    warm = ["| warm Python program (heavy imports) | podman run --rm (ms) | / cold under crun |", "|---|---|---|"]
    for c, (r, _) in WARM_CASES.items():
        warm.append(f"| {c} | {med[c, r] * 1e3:.0f} | {med[c, r] / med['cold, crun', 'crun']:.2f} |")
    lines = ["| runtime | podman run --rm IMAGE /hello (ms) | / crun | / runsc | python3 -c 'import json' (ms) "
             "| / crun | / runsc | idle container, PSS (MiB) |", "|---|---|---|---|---|---|---|---|"]
    for r in runtimes:
        row = [r]
        for c in ("hello", "python"):
            row += [f"{med[c, r] * 1e3:.0f}", f"{med[c, r] / med[c, 'crun']:.2f}",
                    f"{med[c, r] / med[c, 'runsc']:.2f}" if (c, "runsc") in med else "-"]
        lines.append("| " + " | ".join(row) + (f" | {memory[r]:.1f} |" if r in memory else " | (as kontain) |"))
    info = (f"{time.strftime('%Y-%m-%d')}, {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
            f"podman {podman_version()}, median of {rounds} interleaved rounds, wall-clock time of the whole command")
    return info + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(warm)


def podman_version() -> str:
    return subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.split()[-1]


if __name__ == "__main__":
    sys.exit(main())
