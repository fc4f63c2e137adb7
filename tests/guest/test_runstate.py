"""Run states (kernel/runstate.py): a program with many threads paused at arbitrary
moments, every thread's registers read while it is paused, and resumed, a thousand
times (km --pause-check): no hang, and the program notices nothing (the same output as
natively)."""

import subprocess

from kt import KM, build, run

PAUSES = 1000


def test_a_thousand_pauses_go_unnoticed():
    prog = build("pausecheck", "musl", ("-lpthread",))
    native = run([prog], stdin=b"")
    p = subprocess.Popen(KM + ["--pause-check", str(PAUSES), str(prog)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    before = b""
    try:
        while True:  # the program works until km has paused it PAUSES times (it says so)...
            line = p.stderr.readline()
            before += line
            if not line or b"paused the program" in line:
                break
        out, err = p.communicate(b"", timeout=300)  # (...then its input ends)
    finally:
        p.kill()
    err = (before + err).decode()  # (with the program's own word on any wrong answer)
    assert f"paused the program {PAUSES} times" in line.decode() and line.decode().endswith(" 0 odd\n"), err
    assert (p.returncode, out) == (native.returncode, native.stdout), err


def test_exec_while_threads_are_being_made():
    """exec ends every other thread first, including one being made at that moment: ten
    runs, each as natively (no 'cannot map the program', no stray vCPU running on)."""
    from kt import compare

    prog = build("execrace", "musl", ("-lpthread", "-O1"))
    for _ in range(10):
        compare([prog])
