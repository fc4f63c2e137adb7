#!/usr/bin/env python3
"""Side-by-side benchmarks: the same programs natively, under km, under qemu-x86_64 and
under gVisor (runsc do, ptrace platform), interleaved round by round so that machine
noise hits every runner alike.  Prints medians and ratios; --write also puts the table
in docs/performance.md.

    python3 bench/bench.py [--rounds N] [--only ROW,...] [--runners native,km,...] [--write]
    python3 bench/bench.py --pss [--write]     km's memory (PSS), the guest's and the monitor's
    python3 bench/bench.py --km before=../old/.venv/bin/km --runners native,km,before
                                               another km (an older checkout) side by side
    python3 bench/bench.py --typed [--write]    `km hello` as a user types it: the native front end
                                               with no server, its first run (starting the user's
                                               server) and warm runs, against qemu-x86_64 and native

Timings on a shared 2-vCPU cloud VM are noisy: read the ratios, not the milliseconds.
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

from kt import KM, KM_PYTHON, build, build_go  # noqa: E402

RUNNERS = {
    "native": [],
    "km": KM,
    "km-norw": KM + ["--no-rewrite"],  # km without syscall-site rewriting (kernel/rewrite.py)
    "km-srv": [],  # km's native client of a warm km server (km --serve), started by the bench
    "qemu": ["qemu-x86_64"],
    "runsc": ["runsc", "--platform=ptrace", "--network=none", "--ignore-cgroups", "do"],
}
PEERS = ("qemu", "runsc")
OTHERS: list[str] = ["km-norw"]  # other kms (and --km ones), each compared with km


def rows(tmp: str) -> dict[str, tuple[list[str], int]]:
    """row name -> (argv, rounds weight)."""
    return {
        "hello (musl)": ([str(build("hello"))], 3),
        "hello (glibc)": ([str(build("hello", "glibc"))], 3),
        "compute": ([str(build("compute")), "400000000"], 1),
        "getppid x200k": ([str(build("syscall_loop")), "200000"], 1),
        # (glibc's syscall() site can be rewritten, musl's cannot: docs/ARCHITECTURE.md)
        "getppid x200k (glibc)": ([str(build("syscall_loop", "glibc")), "200000"], 1),
        "file I/O 64 MiB": ([str(build("fileio")), f"{tmp}/kt-bench-io.bin", "64", "64"], 1),
        "mmap churn 2000x16p": ([str(build("mmap_churn")), "2000", "16"], 1),
        # (timers of 1 ns and 1 us, their signals blocked: docs/performance.md)
        "blocked fast timers x3000": ([str(build("fastalarm")), "3000"], 1),
        "touch 256 MiB": ([str(build("touch")), "256"], 1),
        "fork+exec+wait x100": ([str(build("spawn")), "100", str(build("hello"))], 1),
        "python3 -c 'import json'": (["/usr/bin/python3", "-c", "import json"], 1),
        "Go hello": ([str(build_go()), "hello"], 1),
        "TCP echo 10k x64B": ([str(build("echo", extra=("-lpthread",))), "10000", "64"], 1),
        # (a Unix socket's writes and reads that never wait, as an event loop's: docs/performance.md)
        "socketpair 100k x64B": ([str(build("streams")), "100000", "64"], 1),
        # (the same with send and recv, as CPython's socket methods and libc's send() make them)
        "socketpair send/recv 100k x64B": ([str(build("streams")), "100000", "64", "messages"], 1),
    }


def available(runner: str) -> bool:
    if runner in ("native", "km", "km-norw", "km-srv"):
        return True
    return shutil.which(RUNNERS[runner][0]) is not None


def time_once(argv: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.decode()[-500:]}")
    return dt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="")
    ap.add_argument("--runners", default=",".join(RUNNERS))
    ap.add_argument("--write", action="store_true", help="update docs/performance.md")
    ap.add_argument("--km", action="append", default=[], metavar="NAME=PATH",
                    help="another km to run side by side as runner NAME (a checkout's .venv/bin/km)")
    ap.add_argument("--pss", action="store_true", help="only km's memory: PSS of a hello-sized and a 1 GiB program")
    ap.add_argument("--typed", action="store_true", help="only `km hello` as typed (the native front end, the user's server)")
    args = ap.parse_args()
    if args.typed:
        text = typed_table(args.rounds * 3, [o for o in args.only.split(",") if o])
        print(text)
        if args.write:
            write_doc(text, "typed")
        return 0
    if args.pss:
        text = pss_table()
        print(text)
        if args.write:
            write_doc(text, "pss")
        return 0
    for extra in args.km:
        name, _, path = extra.partition("=")
        RUNNERS[name] = [path]
        OTHERS.append(name)
    runners = [r for r in args.runners.split(",") if r]
    missing = [r for r in runners if not available(r)]
    for r in missing:
        print(f"bench: {r} is not installed (make deps-bench); skipping it", file=sys.stderr)
    runners = [r for r in runners if r not in missing]
    try:
        times, table = measure(args, runners)
    finally:
        if "runsc" in runners:
            mend_devnull()
    text = render(table, runners, times, args.rounds)
    print(text)
    if args.write:
        write_doc(text)
    return 0


def mend_devnull() -> None:
    """`runsc do` gives the host's /dev/null to the sandbox's user (nobody) on this host, and
    it stays so (then only root and nobody may write it): put it back as every Linux system
    has it (root's, 0666), whatever it was before (another run may have changed it)."""
    now = os.stat("/dev/null")
    if (now.st_uid, now.st_gid, now.st_mode & 0o7777) == (0, 0, 0o666):
        return
    print(f"bench: /dev/null was changed ({now.st_uid}:{now.st_gid} {now.st_mode & 0o7777:o}); putting back 0:0 666",
          file=sys.stderr)
    try:
        os.chown("/dev/null", 0, 0)
        os.chmod("/dev/null", 0o666)
    except OSError as e:
        print(f"bench: cannot: {e} (as root: chown root:root /dev/null; chmod 666 /dev/null)", file=sys.stderr)


def measure(args, runners: list[str]):
    """Every row under every runner, interleaved; returns (times, table)."""
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
        server = start_server(tmp) if "km-srv" in runners else None
        table = rows(tmp)
        if args.only:
            table = {k: v for k, v in table.items() if any(o in k for o in args.only.split(","))}
        times: dict[tuple[str, str], list[float]] = {}
        for argv, _ in table.values():  # warm the page cache and the build
            time_once(argv)
        turn = 0
        for rnd in range(args.rounds):
            for name, (argv, weight) in table.items():
                for _ in range(weight):
                    # each runner goes first in turn: the first run after another workload pays
                    # for what that one left behind (the host compacting memory for huge pages
                    # cost the first of two touch 256 MiB runs 5x here)
                    turn += 1
                    order = runners[turn % len(runners):] + runners[:turn % len(runners)]
                    if turn // len(runners) % 2:
                        # (every other cycle the other way round: in one fixed cyclic order km
                        # always ran right after native, itself right after runsc's 15 s
                        # getppid run, and read 1.2x slower there than without runsc)
                        order.reverse()
                    for runner in order:
                        times.setdefault((name, runner), []).append(time_once(RUNNERS[runner] + argv))
            print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
        if server is not None:
            server.terminate()
            server.wait()
    return times, table


def start_server(tmp: str) -> subprocess.Popen:
    """A km server for the km-srv runner; its native client becomes the runner."""
    sock = Path(tmp) / "srv" / "km.sock"
    client = sock.parent / "km"
    server = subprocess.Popen(KM + ["--serve", str(sock)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (sock.exists() and client.exists()):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("km --serve did not start (is a C compiler installed?)")
        time.sleep(0.05)
    RUNNERS["km-srv"] = [str(client)]
    return server


def render(table, runners, times, rounds) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    head = "| workload | " + " | ".join(f"{r} (ms)" for r in runners)
    ratios = [r for r in runners if r != "native"] if "native" in runners else []
    cross = [(m, p) for m in runners if m not in PEERS and m != "native" for p in runners if p in PEERS]
    cross += [("km", o) for o in runners if o in OTHERS and "km" in runners]  # --km: this checkout against another
    head += "".join(f" | {r}/native" for r in ratios) + "".join(f" | {m}/{p}" for m, p in cross)
    lines = [head + " |", "|" + "---|" * (head.count("|"))]
    for name in table:
        cells = [f"{med[(name, r)] * 1e3:.1f}" for r in runners]
        cells += [f"{med[(name, r)] / med[(name, 'native')]:.2f}" for r in ratios]
        cells += [f"{med[(name, m)] / med[(name, p)]:.2f}" for m, p in cross]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    info = (f"{time.strftime('%Y-%m-%d')}, {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
            f"median of {rounds} interleaved rounds (hello: {3 * rounds}), wall-clock time of the whole command")
    return info + "\n\n" + "\n".join(lines)


def typed_table(rounds: int, only: list[str]) -> str:
    """`km hello` as a user types it (km on PATH: the native front end, cli/kmc.c), in a
    runtime and configuration directory of the bench's own: with no server and no opt-in
    (it execs the Python km), its first run once opted in (it starts the user's server,
    stopped again, untimed, before each such run), and warm runs (the server running);
    the Python km itself (what km was before the front end), qemu-x86_64 and native
    alongside, interleaved round by round.  ``only``: the runners whose names contain one of
    these (native is always there: the ratios' base)."""
    hello = str(build("hello"))
    with tempfile.TemporaryDirectory(prefix="kt-bench-") as tmp:
        run_dir = Path(tmp) / "run"
        run_dir.mkdir(mode=0o700)
        off = {**os.environ, "XDG_RUNTIME_DIR": str(Path(tmp) / "none"), "XDG_CONFIG_HOME": str(Path(tmp) / "none")}
        on = {**os.environ, "XDG_RUNTIME_DIR": str(run_dir), "XDG_CONFIG_HOME": str(Path(tmp) / "config")}
        for env in (off, on):
            env.pop("KM_SERVER", None)
        if subprocess.run(KM + ["--server", "on"], env=on, capture_output=True).returncode != 0:
            raise RuntimeError("km --server on failed: km is not the native front end (make bytecode)")

        def server(what: str) -> None:
            subprocess.run(KM + ["--server", what], env=on, capture_output=True)

        def first() -> None:
            server("stop")

        # (warm runs find the server the previous first run or warm-up started: a status
        # check before each would cost the server a worker, rebuilt during the timed run)
        runners = {  # name: (argv, environment, what to do untimed before)
            "native": ([hello], off, None),
            "qemu-x86_64": (["qemu-x86_64", hello], off, None),
            "km-python (the Python km)": (KM_PYTHON + [hello], off, None),
            "km, no server (not opted in)": (KM + [hello], off, None),
            "km, first run (starts the server)": (KM + [hello], on, first),
            "km, warm (server running)": (KM + [hello], on, None),
        }
        if shutil.which("qemu-x86_64") is None:
            del runners["qemu-x86_64"]
        for name in list(runners):
            if only and name != "native" and not any(o in name for o in only):
                del runners[name]
        names = list(runners)
        times: dict[str, list[float]] = {n: [] for n in names}
        try:
            for argv, env, before in runners.values():  # the page cache, the build
                if before:
                    before()
                time_once(argv, env=env)
            for rnd in range(rounds):
                for name in names[rnd % len(names):] + names[:rnd % len(names)]:
                    argv, env, before = runners[name]
                    if before:
                        before()
                    times[name].append(time_once(argv, env=env))
            log = run_dir / "kontain" / "server.log"
            started = log.read_text().count("km: serving on") if log.exists() else 0
            firsts = sum(1 for n in names if "first run" in n) * (rounds + 1)
            if started != firsts + ("km, warm (server running)" in names and not firsts):
                raise RuntimeError(f"{started} servers started for {firsts} first runs: see {log}")
        finally:
            server("off")
    med = {n: statistics.median(v) for n, v in times.items()}
    q = med.get("qemu-x86_64")
    lines = ["| `km hello` as typed | median (ms) | /native" + (" | /qemu-x86_64 |" if q else " |"),
             "|---|---|---|" + ("---|" if q else "")]
    for n in names:
        cells = [f"{med[n] * 1e3:.1f}", f"{med[n] / med['native']:.2f}"] + ([f"{med[n] / q:.2f}"] if q else [])
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    info = (f"{time.strftime('%Y-%m-%d')}, {platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.1f}, median of {rounds} interleaved rounds, wall-clock time of the whole command")
    return info + "\n\n" + "\n".join(lines)


def pss_table() -> str:
    """km's proportional set size while a program sleeps, split into the guest's memory
    (the window: the run of adjacent mappings around the largest one, its reservation)
    and the monitor's own (everything else: the interpreter, km, KVM's run pages)."""
    lines = ["| program | km PSS (MiB) | guest memory (MiB) | monitor (MiB) |", "|---|---|---|---|"]
    for name, mib in (("hello-sized (touch 0 MiB)", 0), ("1 GiB heap (touch 1024 MiB)", 1024)):
        p = subprocess.Popen(KM + [str(build("touch")), str(mib), "30"], stdout=subprocess.PIPE)
        try:
            while p.stdout.readline() not in (b"ready\n", b""):
                pass
            maps = _smaps(p.pid)
        finally:
            p.kill()
            p.wait()
        total = sum(pss for _, _, pss in maps)
        big = max(range(len(maps)), key=lambda i: maps[i][1] - maps[i][0])
        lo = hi = big
        while lo > 0 and maps[lo - 1][1] == maps[lo][0]:
            lo -= 1
        while hi + 1 < len(maps) and maps[hi + 1][0] == maps[hi][1]:
            hi += 1
        guest = sum(pss for _, _, pss in maps[lo:hi + 1])
        lines.append(f"| {name} | {total / 1024:.1f} | {guest / 1024:.1f} | {(total - guest) / 1024:.1f} |")
    return "\n".join(lines)


def _smaps(pid: int) -> list[tuple[int, int, int]]:
    """(start, end, Pss in KiB) of every mapping of ``pid``."""
    out, cur = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(x, 16) for x in head.split("-"))
            cur = [lo, hi, 0]
            out.append(cur)
        elif head == "Pss:" and cur is not None:
            cur[2] = int(line.split()[1])
    return [tuple(m) for m in out]


def write_doc(table_text: str, section: str = "bench") -> None:
    doc = ROOT / "docs" / "performance.md"
    text = doc.read_text() if doc.exists() else "# Performance\n\n<!-- bench:start -->\n<!-- bench:end -->\n"
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    doc.write_text(f"{before}{start}\n{table_text}\n{end}{after}")
    print(f"wrote {doc.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
