#!/usr/bin/env python3
"""The long form of the system call fuzzer (``make fuzz``; tests/guest/test_fuzz.py is
the short one): many seeds of tests/programs/fuzz.c, as user nobody, natively and under
km, two at a time, then a summary of every seed where km did something wrong.

    python tools/fuzz.py [--seeds 200] [--first 1] [--calls 20000] [--jobs 2] [--timeout 1200] [--out DIR]
    python tools/fuzz.py --traces [--seeds 8] [--first 1] [--calls 4000]

The stderr of both runs of each failing seed is kept in --out (a new temporary
directory by default), for the traceback or the internal error's line.

--traces runs each seed with -t instead, natively and under km, and lists the calls whose
results differ, by system call, most first, with the first call of each (where km and
Linux answer differently: an error Linux gives in another order, a call km refuses).
Results that are both values (descriptors, pids, times) and km's ENOSYS for a call it
does not serve are left out; what is left still includes what follows from an earlier
difference (a descriptor open in one run only) and what follows from the two runs'
different addresses (a length that passes the top of the native address space)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import kt  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=200, help="how many seeds (default 200)")
    ap.add_argument("--first", type=int, default=1, help="the first seed (default 1)")
    ap.add_argument("--calls", type=int, default=20000, help="calls per seed (default 20000)")
    ap.add_argument("--jobs", type=int, default=2, help="seeds run at a time (default 2)")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds before a km run counts as hung (default 1200)")
    ap.add_argument("--out", type=Path, help="where to keep the stderr of failing seeds (default: a new temporary directory)")
    ap.add_argument("--traces", action="store_true", help="compare the results of every call (see above)")
    a = ap.parse_args()
    if a.traces:
        return traces(range(a.first, a.first + a.seeds), a.calls, a.timeout)
    out = a.out or Path(tempfile.mkdtemp(prefix="km-fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o755)  # user nobody runs the program copied there
    seeds = range(a.first, a.first + a.seeds)
    program = out / "fuzz"  # a copy: the run's program even if its source changes meanwhile
    shutil.copy2(kt.build("fuzz"), program)
    program.chmod(0o755)
    print(f"fuzz: seeds {seeds.start}..{seeds.stop - 1}, {a.calls} calls each, {a.jobs} at a time; failures kept in {out}",
          flush=True)
    start = time.monotonic()
    failed: list[kt.FuzzVerdict] = []
    bad_fuzzer: list[kt.FuzzVerdict] = []

    def one(seed: int) -> kt.FuzzVerdict:
        with tempfile.TemporaryDirectory(prefix=f"km-fuzz-{seed}-") as tmp:
            return kt.fuzz_seed(seed, a.calls, Path(tmp), a.timeout, program)

    done = 0
    with ThreadPoolExecutor(a.jobs) as pool:
        for v in pool.map(one, seeds):
            done += 1
            status = "ok"
            if v.problems or v.fuzzer_problems:
                (failed if v.problems else bad_fuzzer).append(v)
                status = "; ".join(v.problems + v.fuzzer_problems)
                (out / f"seed-{v.seed}.native.err").write_bytes(v.native.stderr)
                (out / f"seed-{v.seed}.km.err").write_bytes(v.guest.stderr)
            print(f"fuzz: [{done}/{len(seeds)}] seed {v.seed}: native {v.native.seconds:.1f} s, "
                  f"km {v.guest.seconds:.1f} s: {status}", flush=True)
    minutes = (time.monotonic() - start) / 60
    print(f"\nfuzz: {len(seeds)} seeds x {a.calls} calls in {minutes:.1f} min: "
          f"{len(failed)} where km failed, {len(bad_fuzzer)} where the fuzzer's own native run failed")
    for v in failed + bad_fuzzer:
        print(f"  seed {v.seed}: " + "; ".join(v.problems + v.fuzzer_problems))
        print(f"    reproduce: {v.reproduce}")
    if failed or bad_fuzzer:
        print(f"  (their stderr: {out}/seed-N.native.err, seed-N.km.err)")
    return 1 if failed or bad_fuzzer else 0


_CALL = re.compile(r"#(\d+) (\S+?)\[(-?\d+)\]\((.*)\)$")


def _calls(trace: bytes, scratch: str) -> dict[int, tuple[str, int, str, str]]:
    """call number -> (name, nr, arguments, result) from a -t trace."""
    calls: dict[int, tuple[str, int, str, str]] = {}
    last = None
    for line in trace.decode(errors="replace").replace(scratch, "DIR").splitlines():
        m = _CALL.match(line)
        if m:
            last = int(m.group(1))
            calls[last] = (m.group(2), int(m.group(3)), m.group(4), "")
        elif line.startswith("  = ") and last is not None:
            name, nr, args, _ = calls[last]
            calls[last] = (name, nr, args, line[4:].strip())
    return calls


def traces(seeds: range, calls: int, timeout: float) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from kontain.syscalls.table import TABLE

    served = {e.nr for e in TABLE}
    program = kt.build("fuzz")
    found: dict[str, list[tuple[int, int, str, str, str]]] = {}
    for seed in seeds:
        runs = []
        with tempfile.TemporaryDirectory(prefix=f"km-fuzz-{seed}-") as tmp:
            for name, runner in (("native", []), ("km", kt.KM)):
                scratch = kt.user_dir(Path(tmp)) / f"{name}-{seed}"
                scratch.mkdir()
                if os.geteuid() == 0:
                    os.chown(scratch, kt.UNPRIVILEGED_UID, kt.UNPRIVILEGED_UID)
                argv = kt.as_user(runner + [program, "-t", str(seed), str(calls), scratch])
                end = kt.run_session(argv, scratch, timeout)
                runs.append(_calls(end.stderr, str(scratch)))
        native, guest = runs
        for n, (name, nr, args, res) in native.items():
            other = guest.get(n)
            if other is None or other[3] == res or not res.startswith("-") and not other[3].startswith("-"):
                continue
            if other[3] == "-38" and nr not in served:
                continue
            found.setdefault(name, []).append((seed, n, args, res, other[3]))
        print(f"fuzz: seed {seed}: {sum(len(v) for v in found.values())} differing results so far", flush=True)
    for name, rows in sorted(found.items(), key=lambda kv: -len(kv[1])):
        pairs = Counter((r[3], r[4]) for r in rows).most_common(4)
        print(f"{name}: {len(rows)}  " + ", ".join(f"native {a} km {b} x{c}" for (a, b), c in pairs))
        seed, n, args, res, other = rows[0]
        print(f"    seed {seed} #{n}: {name}({args[:140]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
