#!/usr/bin/env python3
"""A breakpoint round trip under gdb: km's stub (``km --gdb PORT``) against qemu-user's
(``qemu-x86_64 -g PORT``), the same static program, the same gdb.

One round trip is what gdb does for every hit of a breakpoint it then continues from:
the stop (int3, reported), gdb's reads of registers and memory, the breakpoint taken
out, one single-step over it, the breakpoint put back, continue.  gdb runs it N times
without stopping the script (``ignore 1 N``); the time of a run with N hits minus one
with none, over N, is the round trip.  Interleaved runner by runner, median of rounds.

    python3 bench/gdb_roundtrip.py [--hits N] [--rounds R] [--write]

--write puts the table into docs/performance.md (between its gdb markers).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from kt import KM, build  # noqa: E402

BEGIN, END = "<!-- gdb-roundtrip:begin -->", "<!-- gdb-roundtrip:end -->"


def start_km(prog: str, hits: int) -> tuple[subprocess.Popen, int]:
    p = subprocess.Popen(KM + ["--gdb", "0", prog, "count", str(hits)], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL)
    line = p.stderr.readline().decode()
    return p, int(re.search(r":(\d+) ", line).group(1))


def start_qemu(prog: str, hits: int, port=[23456]) -> tuple[subprocess.Popen, int]:  # noqa: B006
    port[0] += 1
    p = subprocess.Popen(["qemu-x86_64", "-g", str(port[0]), prog, "count", str(hits)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    listening = f":{port[0]:04X} 00000000:0000 0A"  # (qemu says nothing when it listens: /proc/net/tcp does)
    for _ in range(1000):
        if listening in Path("/proc/net/tcp").read_text():
            break
        time.sleep(0.01)
    return p, port[0]


def one(start, prog: str, hits: int) -> float:
    """Seconds from gdb's continue to the program's exit, with ``hits`` breakpoint hits."""
    proc, port = start(prog, hits)
    script = ["set confirm off", f"target remote :{port}", "break square", f"ignore 1 {hits}",
              "python import time; t0 = time.perf_counter()", "continue",
              "python print('ELAPSED', time.perf_counter() - t0)"]
    argv = ["gdb", "-batch", "-nx"] + [a for c in script for a in ("-ex", c)] + [prog]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    proc.wait(timeout=60)
    m = re.search(r"ELAPSED ([0-9.e-]+)", out)
    if not m or "exited normally" not in out:
        raise RuntimeError(f"gdb run failed:\n{out}")
    return float(m.group(1))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    prog = str(build("debuggee", "musl", ("-g", "-O1", "-pthread")))
    runners = {"km": start_km}
    if shutil.which("qemu-x86_64"):
        runners["qemu"] = start_qemu
    per_hit: dict[str, list[float]] = {r: [] for r in runners}
    for _ in range(a.rounds):
        for name, start in runners.items():
            base = one(start, prog, 0)
            full = one(start, prog, a.hits)
            per_hit[name].append(max(full - base, 0) / a.hits)
    med = {r: statistics.median(v) for r, v in per_hit.items()}
    best = {r: min(v) for r, v in per_hit.items()}
    lines = [f"Breakpoint round trip under gdb 13 ({a.hits} hits, {a.rounds} rounds interleaved; "
             "stop, gdb's reads, step over the breakpoint, continue). The best round is the least disturbed "
             "by other load on this shared machine:", "",
             "| stub | per hit, median | per hit, best | best vs qemu-user |", "|---|---|---|---|"]
    for r, v in med.items():
        ratio = f"{best[r] / best['qemu']:.2f}x" if "qemu" in best and best["qemu"] else "-"
        label = {"km": "km --gdb (int3 and TF through the guest IDT, Python stub)",
                 "qemu": "qemu-x86_64 -g (TCG, C stub)"}[r]
        lines.append(f"| {label} | {v * 1e3:.2f} ms | {best[r] * 1e3:.2f} ms | {ratio} |")
    table = "\n".join(lines)
    print(table)
    if a.write:
        doc = ROOT / "docs" / "performance.md"
        text = doc.read_text()
        block = f"{BEGIN}\n{table}\n{END}"
        if BEGIN in text:
            text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _m: block, text, flags=re.S)
        else:
            text += f"\n## The gdb stub\n\n`python3 bench/gdb_roundtrip.py --write`\n\n{block}\n"
        doc.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
