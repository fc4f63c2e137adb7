"""What a container engine's shim does with the pid file (containerd's runc shim, conmon):
become a child subreaper, have the runtime create and start the container, and reap the
pid it wrote as its own descendant, taking the container's exit status from it.

    python reaper.py BUNDLE ID RUNTIME [RUNTIME ARGS...]

prints "created PID", starts the container when a line comes on stdin (a line "start
SIGNAL": and sends it SIGNAL with the runtime's kill as soon as start returned), prints
"started", then, when it ends,
"exited N" or "killed N" (the signal).  gVisor's runsc breaks exactly here.
"""

import ctypes
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    bundle, cid, runtime = sys.argv[1], sys.argv[2], sys.argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("error prctl", flush=True)
        return 1
    pid_file = os.path.join(bundle, f"{cid}.pid")
    # (the container's standard descriptors are the runtime's: not pipes this waits on)
    with open(os.path.join(bundle, f"{cid}.out"), "w") as out:
        r = subprocess.run(runtime + ["create", "--bundle", bundle, "--pid-file", pid_file, cid], stdin=subprocess.DEVNULL,
                           stdout=out, stderr=out)
    if r.returncode != 0:
        print(f"error create {r.returncode}", flush=True)
        return 1
    with open(pid_file) as f:
        pid = int(f.read().strip())
    print(f"created {pid}", flush=True)
    line = sys.stdin.readline().split()  # the test looks at the created container first
    r = subprocess.run(runtime + ["start", cid], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"error start {r.returncode} {r.stderr.strip()}", flush=True)
        return 1
    if line[1:]:
        r = subprocess.run(runtime + ["kill", cid, line[1]], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"error kill {r.returncode} {r.stderr.strip()}", flush=True)
            return 1
    print("started", flush=True)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        print(f"killed {os.WTERMSIG(status)}", flush=True)
    else:
        print(f"exited {os.WEXITSTATUS(status)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
