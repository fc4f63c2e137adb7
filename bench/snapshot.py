#!/usr/bin/env python3
"""Snapshots, side by side in one run (kernel/snapshot.py):

1. CPython after importing a heavy set of modules: a cold start under km (command to
   the first output after the imports) against a resume of a snapshot taken right
   there (command to the same output), and the same cold start natively; and a resume
   whose program ends at its first instruction after the resume (os._exit), which is
   what km's own resume costs.  Through a km server, side by side: a plain worker (it
   reads the file and maps its memory once the client comes) and a worker warm for the
   snapshot (``km --serve PATH --warm FILE``: mapped before), each also timed from the
   command to the program's first instruction (the moment km lets the vCPUs run, as
   ``--timings`` reports it on CLOCK_MONOTONIC).
2. A program with 500 MiB of data: how long the snapshot takes, the file's size on
   disk, and the memory (PSS, summed) of 10 resumes running at once, each having read
   all of its memory, against one.

    python3 bench/snapshot.py [--rounds N] [--write]

Rounds are interleaved so that machine noise hits every row alike; medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kt import KM, build  # noqa: E402

PYTHON = "/usr/bin/python3"
SRC = str(ROOT / "src")
HEAVY = ("import asyncio, email.mime.multipart, http.server, json, decimal, sqlite3, ssl, xml.etree.ElementTree, "
         "urllib.request, argparse, logging, unittest, csv, hashlib, zipfile, tarfile, concurrent.futures\n")


def first_line(argv: list[str]) -> float:
    """Seconds from the command to its first line of output (then it is killed)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    t = time.perf_counter() - t0
    p.kill()
    p.wait()
    if not line:
        raise RuntimeError(f"no output from {argv}")
    return t


def to_first_instruction(argv: list[str]) -> float:
    """Seconds from the command to the moment the resumed program ran (km --timings)."""
    import re

    t0 = time.perf_counter()
    r = subprocess.run(argv[:1] + ["--timings"] + argv[1:], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    m = re.search(r"ran from CLOCK_MONOTONIC ([0-9.]+) s", r.stderr)
    if r.returncode or not m:
        raise RuntimeError(f"{argv}: status {r.returncode}, {r.stderr.strip()[-300:]}")
    return float(m.group(1)) - t0


def _server(sock: str, *extra: str):
    server = subprocess.Popen(KM + ["--serve", sock, *extra], stderr=subprocess.DEVNULL)
    client = Path(os.path.dirname(sock), "km")  # the server's native client (cli/kmc.c)
    for _ in range(200):
        if client.exists() and Path(sock).exists():
            break
        time.sleep(0.05)
    return server, client


def whole(argv: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    if r.returncode:
        raise RuntimeError(f"{argv}: status {r.returncode}")
    return time.perf_counter() - t0


def python_rows(tmp: str, rounds: int) -> list[tuple[str, float]]:
    cold = Path(tmp, "cold.py")
    cold.write_text(HEAVY + "print('ready', flush=True)\n")
    warm = Path(tmp, "warm.py")
    warm.write_text(HEAVY + f"import sys, os\nsys.path.insert(0, {SRC!r})\nfrom kontain.guest import snapshot\n"
                    "resumed = snapshot(sys.argv[1], exit=True)\n"
                    "if sys.argv[2] == 'exit':\n    os._exit(0)\nprint('ready', flush=True)\n")
    snap, snap_exit = Path(tmp, "py.snap"), Path(tmp, "py-exit.snap")
    subprocess.run(KM + [PYTHON, str(warm), str(snap), "print"], check=True)
    subprocess.run(KM + [PYTHON, str(warm), str(snap_exit), "exit"], check=True)
    runs = {
        "python3 natively, cold (heavy imports, to first output)": lambda: first_line([PYTHON, str(cold)]),
        "km python3, cold (heavy imports, to first output)": lambda: first_line(KM + [PYTHON, str(cold)]),
        "km SNAPSHOT, resumed (to the same output)": lambda: first_line(KM + [str(snap)]),
        "km SNAPSHOT, resumed, program exits at once (whole command)": lambda: whole(KM + [str(snap_exit)]),
    }
    servers = []
    for d in ("plain", "warm", "warm-exit"):
        os.mkdir(Path(tmp, d))
    plain, client = _server(f"{tmp}/plain/km.sock")
    warm, wclient = _server(f"{tmp}/warm/km.sock", "--warm", str(snap))
    warm_exit, weclient = _server(f"{tmp}/warm-exit/km.sock", "--warm", str(snap_exit))
    servers = [plain, warm, warm_exit]
    c, w, we = str(client), str(wclient), str(weclient)
    runs.update({
        "km server's client, plain worker: SNAPSHOT resumed (to the same output)": lambda: first_line([c, str(snap)]),
        "km server's client, plain worker: SNAPSHOT resumed, program exits at once (whole command)":
            lambda: whole([c, str(snap_exit)]),
        "km server's client, plain worker: to the program's first instruction after the resume":
            lambda: to_first_instruction([c, str(snap_exit)]),
        "km server's client, warm worker (--warm): SNAPSHOT resumed (to the same output)":
            lambda: first_line([w, str(snap)]),
        "km server's client, warm worker (--warm): SNAPSHOT resumed, program exits at once (whole command)":
            lambda: whole([we, str(snap_exit)]),
        "km server's client, warm worker (--warm): to the program's first instruction after the resume":
            lambda: to_first_instruction([we, str(snap_exit)]),
    })
    times: dict[str, list[float]] = {k: [] for k in runs}
    try:
        for _ in range(rounds):
            for name, f in runs.items():
                time.sleep(0.3)  # (the server's workers ready again, as between a user's commands)
                times[name].append(f())
    finally:
        for server in servers:
            server.terminate()
            server.wait()
    return [(name, statistics.median(v)) for name, v in times.items()]


def pss(pid: int) -> int:
    """Proportional set size (bytes) of a process, from smaps_rollup."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def first_answer(argv: list[str], port: int) -> float:
    """Seconds from the command to its first answered HTTP request."""
    import http.client

    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("GET", "/x")
                c.getresponse().read()
                return time.perf_counter() - t0
            except ConnectionRefusedError:
                if p.poll() is not None:
                    raise RuntimeError(f"{argv} ended") from None
                time.sleep(0.001)
    finally:
        p.kill()
        p.wait()


def go_rows(tmp: str, rounds: int) -> list[tuple[str, float]]:
    from kt import build_go

    prog = str(build_go())
    port = 18000 + os.getpid() % 1000
    snap = Path(tmp, "go.snap")
    subprocess.run(KM + ["--snapshot-on-listen", str(snap), prog, "serve-on", str(port)], check=True)
    runs = {
        "Go HTTP server natively, cold (to its first answer)": [prog, "serve-on", str(port)],
        "km Go HTTP server, cold (to its first answer)": KM + [prog, "serve-on", str(port)],
        "km SNAPSHOT (taken on listen), resumed (to its first answer)": KM + [str(snap)],
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for name, argv in runs.items():
            times[name].append(first_answer(argv, port))
    return [(name, statistics.median(v)) for name, v in times.items()]


def big_rows(tmp: str, mib: int = 500, copies: int = 10) -> list[tuple[str, str]]:
    prog = build("bigsnap", "musl", ("-I", str(ROOT / "src" / "kontain" / "guest")))
    snap = Path(tmp, "big.snap")
    r = subprocess.run(KM + [str(prog), str(mib), str(snap)], capture_output=True, text=True, check=True)
    took = r.stderr.strip().rsplit(" ", 2)[-2]
    st = os.stat(snap)
    out = [(f"snapshot of a {mib} MiB program", f"{took} ms"),
           ("its file: size, on disk", f"{st.st_size >> 20} MiB, {st.st_blocks * 512 >> 20} MiB")]
    for n in (1, copies):
        procs = [subprocess.Popen(KM + [str(snap)], stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(n)]
        try:
            for p in procs:
                p.stdout.readline()  # each has read all of its memory
            total = sum(pss(p.pid) for p in procs)
        finally:
            for p in procs:
                p.stdin.close()
                p.wait()
        out.append((f"{n} resume{'s' if n > 1 else ''} at once, each having read all its memory: PSS summed",
                    f"{total >> 20} MiB"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--write", action="store_true", help="put the tables in docs/performance.md")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        py = python_rows(tmp, a.rounds)
        go = go_rows(tmp, a.rounds)
        big = big_rows(tmp)
    load = os.getloadavg()[0]
    lines = [f"{time.strftime('%Y-%m-%d')}, Linux {os.uname().release}, {os.cpu_count()} CPUs (load average "
             f"{load:.1f} when it ended), median of {a.rounds} interleaved rounds", ""]
    for title, rows_ in (("CPython with heavy imports", py), ("a Go HTTP server", go)):
        cold = rows_[1][1]
        lines += [f"| {title} | median | km cold / this |", "|---|---:|---:|"]
        lines += [f"| {name} | {t * 1e3:.1f} ms | {cold / t:.1f}x |" for name, t in rows_]
        lines.append("")
    lines += ["| a 500 MiB program | |", "|---|---:|"]
    lines += [f"| {name} | {value} |" for name, value in big]
    table = "\n".join(lines)
    print(table)
    if a.write:
        doc = ROOT / "docs" / "performance.md"
        text = doc.read_text()
        start, end = "<!-- snapshot-bench -->", "<!-- /snapshot-bench -->"
        block = f"{start}\n{table}\n{end}"
        if start in text:
            text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text += "\n" + block + "\n"
        doc.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
