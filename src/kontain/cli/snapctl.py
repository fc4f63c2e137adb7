"""``km snapshot``: snapshots from outside the program.

    km snapshot --info FILE                       what a snapshot file holds
    km snapshot PID [-o FILE] [--leave-running]   snapshot the program km runs as PID
"""

from __future__ import annotations

import os

USAGE = "usage: km snapshot PID [-o FILE] [--leave-running] | km snapshot --info FILE"


def _say(text: str) -> None:
    os.write(2, f"km: {text}\n".encode("utf-8", "surrogateescape"))


def main(args: list[str]) -> int:
    if args[:1] == ["--info"]:
        if len(args) != 2:
            _say(USAGE)
            return 2
        return info(args[1])
    return take(args)


def info(path: str) -> int:
    """What a snapshot holds: the program, its threads, mappings and descriptors."""
    from kontain.errors import KmError
    from kontain.kernel import snapfile

    try:
        snap = snapfile.read(path)
    except KmError as e:
        _say(str(e))
        return e.status
    os.close(snap.fd)
    try:
        state, head = snap.state["process"], snap.state["head"]
        program = state["program"]
        lines = [f"snapshot of {os.fsdecode(program['path'])} (format {snapfile.VERSION}, taken under Linux "
                 f"{head['kernel']})",
                 "arguments: " + " ".join(os.fsdecode(a) for a in program["argv"]),
                 f"threads: {len(state['tasks'])} (ids {', '.join(str(t['tid']) for t in state['tasks'])})"]
        mem = sum(filesz for _s, _e, _o, filesz, _f in snap.loads)
        lines.append(f"memory: {len(snap.loads)} mappings, {mem >> 20} MiB in the file ({snap.size >> 20} MiB file)")
        for fd, f in sorted(state["fds"].items()):
            what = os.fsdecode(f["path"]) + f" at offset {f['offset']}" if f["kind"] == "file" else \
                f"a pipe ({'write' if f['write'] else 'read'} end)"
            lines.append(f"descriptor {fd}: {what}")
    except (KeyError, TypeError, ValueError) as e:
        _say(f"{path}: not a km snapshot, or a damaged one ({e})")
        return 126
    os.write(1, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return 0


def take(args: list[str]) -> int:
    _say("snapshot PID: not available yet")
    return 2
