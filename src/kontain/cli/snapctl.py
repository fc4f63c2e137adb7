"""``km snapshot`` and ``km dump``: snapshots and core files from outside the program.

    km snapshot --info FILE                       what a snapshot file holds
    km snapshot PID [-o FILE] [--leave-running]   snapshot the program km runs as PID
    km dump PID [-o FILE]                         its core file (every thread), while it runs on
"""

from __future__ import annotations

import os

USAGE = "usage: km snapshot PID [-o FILE] [--leave-running] | km snapshot --info FILE"
DUMP_USAGE = "usage: km dump PID [-o FILE]"


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
        timers = snap.state["extra"].get("timers")
        if timers:
            armed = [name for name, (_i, value) in zip(("ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"),
                                                      timers["itimers"]) if value]
            lines.append(f"timers: {len(timers['posix'])} POSIX timers; armed: {', '.join(armed) or 'no interval timer'}")
        contexts = snap.state["extra"].get("aio")
        if contexts:
            lines.append(f"AIO contexts: {len(contexts)} (rings at {', '.join(hex(c[0]) for c in contexts)})")
        for fd, f in sorted(state["fds"].items()):
            if f["kind"] == "file":
                what = f"{os.fsdecode(f['path'])} at offset {f['offset']}"
            elif f["kind"] == "listener":
                what = f"a socket listening on {f['addr'][0]} port {f['addr'][1]}"
            elif f["kind"] == "pipe":
                what = f"a pipe ({'write' if f['write'] else 'read'} end)"
            elif f["kind"] == "unix":
                kind = {1: "stream", 2: "datagram", 5: "seqpacket"}.get(f["type"], "?")
                what = (f"a {kind} socketpair's end {f['end']} ({sum(map(len, f['data']))} bytes queued"
                        f"{', its peer closed' if f['lone'] else ''})")
            else:
                what = {"epoll": "an epoll set", "eventfd": "an eventfd", "timerfd": "a timerfd",
                        "signalfd": "a signalfd"}.get(f["kind"], "?")
            lines.append(f"descriptor {fd}: {what}")
    except (KeyError, TypeError, ValueError) as e:
        _say(f"{path}: not a km snapshot, or a damaged one ({e})")
        return 126
    os.write(1, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
    return 0


def take(args: list[str], *, dump: bool = False) -> int:
    """km snapshot PID [-o FILE] [--leave-running]: ask the km running as PID (the
    channel: kernel/snapshot.py) to snapshot its program to FILE (./kmsnap.PID).  With
    ``dump`` (km dump PID [-o FILE]): its core file instead (./core.PID), which nothing in
    the program refuses, and the program runs on."""
    import socket
    import struct

    from kontain import native
    from kontain.errors import KmError
    from kontain.kernel import snapshot

    usage = DUMP_USAGE if dump else USAGE
    what = "dump" if dump else "snapshot"
    pid, path, leave = None, None, False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--output") and i + 1 < len(args):
            path = args[i + 1]
            i += 1
        elif a == "--leave-running" and not dump:
            leave = True
        elif a.isdigit() and len(a) < 10 and pid is None:
            pid = int(a)
        else:
            _say(usage)
            return 2
        i += 1
    if pid is None or pid <= 0:
        _say(usage)
        return 2
    path = os.path.abspath(path or (f"core.{pid}" if dump else snapshot.default_path(pid)))
    mode = snapshot.MODE_CORE if dump else snapshot.MODE_LEAVE if leave else snapshot.MODE_END
    try:
        where = snapshot.channel_path(pid)
    except KmError as e:
        _say(str(e))
        return 1
    try:
        os.unlink(where)
    except OSError:
        pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        listener.bind(where)
        os.chmod(where, 0o600)
        listener.listen(1)
        listener.settimeout(TIMEOUT)
        info = bytearray(128)  # siginfo: SI_QUEUE, this process, this user, the request's value
        struct.pack_into("<iiiiIIQ", info, 0, snapshot.REQUEST_SIGNAL, 0, -1, 0, os.getpid(), os.getuid(),
                         snapshot.REQUEST_VALUE)
        r = native.syscall(129, pid, snapshot.REQUEST_SIGNAL, native.address_of(info))  # rt_sigqueueinfo
        if r < 0:
            _say(f"{what}: process {pid}: {os.strerror(-r)}")
            return 1
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            _say(f"{what}: process {pid} did not answer (is it a km? `km {what}` asks a km, which runs the "
                 "program)")
            return 1
        with conn:
            cred = struct.unpack("<iII", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if cred[0] != pid or cred[1] != os.getuid():
                _say(f"{what}: the answer came from another process ({cred[0]}), not {pid}")
                return 1
            conn.settimeout(None)  # (writing a big program takes what it takes)
            conn.sendall(os.fsencode(path) + b"\0" + mode + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                answer += chunk
    finally:
        listener.close()
        try:
            os.unlink(where)
        except OSError:
            pass
    text = answer.decode("utf-8", "surrogateescape").strip()
    if text.startswith("ok "):
        os.write(1, f"{path}: {int(text[3:]) >> 20} MiB\n".encode("utf-8", "surrogateescape"))
        return 0
    _say(text[3:] if text.startswith("no ") else f"{what}: process {pid} ended before answering")
    return 1


TIMEOUT = 5  # seconds a km has to answer
