"""The system call fuzzer in its short form: tests/programs/fuzz.c issues random system
calls with hostile arguments, as user nobody, natively and under km, for a few fixed
seeds.  km must never print an internal error or a traceback, hang, leave processes
behind, or end the program differently from the native run.

The long form is ``make fuzz`` (tools/fuzz.py: 200 seeds x 20000 calls by default); a
failure there or here is reproduced with the command line the assertion prints (-t
traces every call, with its arguments and result, natively and under km alike)."""

import pytest

from kt import fuzz_seed

SEEDS = (1, 2, 3, 4, 5, 6)
CALLS = 3000
TIMEOUT = 300  # for the km run of one seed (a few seconds when the machine is idle)


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz(seed, tmp):
    v = fuzz_seed(seed, CALLS, tmp, TIMEOUT)
    if v.problems or v.fuzzer_problems:
        tail = v.guest.stderr[-2000:].decode(errors="replace")
        raise AssertionError(f"fuzz seed {seed} ({CALLS} calls): " + "; ".join(v.problems + v.fuzzer_problems) +
                             f"\nto reproduce: {v.reproduce}\nend of km's stderr:\n{tail}")
