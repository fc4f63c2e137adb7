"""Python's process APIs under km: subprocess, os.fork, os.execv, os.posix_spawn and
multiprocessing with the fork start method.  Run natively and under km; the outputs must
match."""

import multiprocessing as mp
import os
import subprocess


def square(x: int) -> int:
    return x * x


def main() -> None:
    r = subprocess.run(["/bin/busybox", "echo", "from subprocess"], capture_output=True, text=True)
    print("subprocess:", r.stdout.strip(), r.returncode)
    r = subprocess.run("echo $((6*7)) | tr 4 X", shell=True, capture_output=True, text=True)
    print("shell:", r.stdout.strip())
    p = subprocess.Popen(["/bin/busybox", "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = p.communicate(b"through a pipe")
    print("communicate:", out, p.returncode)
    try:
        subprocess.run(["/nonexistent"])
    except FileNotFoundError as e:
        print("missing program:", e.errno)
    pid = os.fork()
    if pid == 0:
        os._exit(21)
    print("os.fork:", os.waitpid(pid, 0)[1] >> 8)
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/busybox", ["busybox", "true"])
    print("os.execv:", os.waitpid(pid, 0)[1])
    pid = os.posix_spawn("/bin/busybox", ["busybox", "sh", "-c", "exit 5"], os.environ)
    print("posix_spawn:", os.waitpid(pid, 0)[1] >> 8)
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        print("multiprocessing:", pool.map(square, range(8)))
    q = ctx.Queue()
    child = ctx.Process(target=q.put, args=("via a queue",))
    child.start()
    print("process:", q.get())
    child.join()
    print("exitcode", child.exitcode)


if __name__ == "__main__":
    main()
