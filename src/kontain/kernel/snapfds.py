"""A snapshot's descriptors (kernel/snapshot.py, kernel/resume.py): each of the program's
descriptors described as a resume makes it again, and made again.

* regular files, directories and character devices: path, open flags, offset, and the
  identity a resume checks (device, inode; size and modification time of a file);
* pipes with both ends in the program: made again, with the bytes queued in them (taken
  out while the program is paused and put back at once);
* listening TCP sockets: bound again to their address with SO_REUSEPORT (several resumes
  listen at once);
* socketpairs with both ends in the program (kernel/snapsock.py): made again with the
  messages queued at each end and their shutdown state;
* signalfds (km's own, kernel/signalfd.py): their mask;
* epoll sets: each watched descriptor with its events and data, as /proc/self/fdinfo
  lists them (made last, over the others); eventfds: their count and mode; timerfds:
  their clock, the time left and the interval.

Anything else is refused at snapshot time (``Refused``: which descriptor, and why).
Descriptors 0-2 are the resuming km's own.
"""

from __future__ import annotations

import os
import stat
import struct

from kontain import native
from kontain.abi import flags as F
from kontain.kernel import snapsock
from kontain.kernel.fdtable import fs_type
from kontain.kernel.snapfile import Refused, SnapshotError

_FIONREAD = 0x541B


def describe(p) -> tuple[dict, list]:
    """Each of the program's descriptors as a resume reopens it; Refused for one that
    cannot come back.  0-2 are the resuming km's own (the terminal or pipes it is given),
    whatever they were."""
    import fcntl

    files: dict = {}
    pipes: dict[int, list] = {}  # inode -> [read fds, write fds]
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= p.fds.floor or fd <= 2:
            continue
        try:
            st = os.fstat(fd)
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            cloexec = bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # (the listing's own descriptor)
        mode = st.st_mode
        signalfd = p._signalfds.files.get(st.st_ino) if p._signalfds is not None else None
        if signalfd is not None:  # (km's: a listening Unix socket, kernel/signalfd.py)
            files[fd] = {"kind": "signalfd", "mask": signalfd.mask, "ino": st.st_ino, "flags": flags,
                         "cloexec": cloexec}
        elif stat.S_ISREG(mode) and fs_type(fd) == MQUEUE_MAGIC:
            raise Refused(f"snapshot: descriptor {fd} is a POSIX message queue ({target}), which a snapshot "
                          "cannot take along")
        elif stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISCHR(mode):
            if not target.startswith("/") or target.endswith(" (deleted)"):
                raise Refused(f"snapshot: descriptor {fd} is a file without a path ({target}), which a resume "
                              "cannot open again")
            offset = os.lseek(fd, 0, os.SEEK_CUR) if not stat.S_ISCHR(mode) else 0
            mtime = st.st_mtime_ns if stat.S_ISREG(mode) else 0
            size = st.st_size if stat.S_ISREG(mode) else 0
            files[fd] = {"kind": "file", "path": os.fsencode(target), "flags": flags, "cloexec": cloexec,
                         "offset": offset, "dev": st.st_dev, "ino": st.st_ino, "size": size, "mtime": mtime,
                         "mode": mode}
        elif stat.S_ISFIFO(mode):
            ends = pipes.setdefault(st.st_ino, [[], []])
            ends[flags & os.O_ACCMODE != os.O_RDONLY].append(fd)
            files[fd] = {"kind": "pipe", "ino": st.st_ino, "flags": flags, "cloexec": cloexec,
                         "write": flags & os.O_ACCMODE != os.O_RDONLY}
        elif target in ("anon_inode:[eventpoll]", "anon_inode:[eventfd]", "anon_inode:[timerfd]"):
            files[fd] = dict(_anon(fd, target), flags=flags, cloexec=cloexec, ino=st.st_ino)
        elif stat.S_ISSOCK(mode) and _listening(fd):
            files[fd] = dict(_listener(fd, target), flags=flags, cloexec=cloexec, ino=st.st_ino)
        elif stat.S_ISSOCK(mode) and _sockopt(fd, F.SO_DOMAIN) == F.AF_UNIX:
            files[fd] = {"kind": "unix", "type": _sockopt(fd, F.SO_TYPE), "ino": st.st_ino, "flags": flags,
                         "cloexec": cloexec}
        elif stat.S_ISSOCK(mode):
            raise Refused(f"snapshot: descriptor {fd} is a socket ({target}), which a snapshot cannot take along "
                          "yet (connections cannot be resumed)")
        else:
            raise Refused(f"snapshot: descriptor {fd} ({target}) is of a kind a snapshot cannot take along")
    for fd, f in files.items():  # an epoll set's descriptors must be the program's own, open
        for tfd, _events, _data, ino in f.get("watch", ()):
            if files.get(tfd, {}).get("ino") != ino and not (tfd <= 2 and _same_inode(tfd, ino)):
                raise Refused(f"snapshot: descriptor {fd} is an epoll set watching a file that is no longer open "
                              f"as descriptor {tfd}, which a resume cannot watch again")
    for readers, writers in pipes.values():
        if not readers or not writers:
            fd = (readers or writers)[0]
            raise Refused(f"snapshot: descriptor {fd} is a pipe whose other end is outside the program, which a "
                          "resume cannot connect again")
    snapsock.describe(files, p.fds.floor)
    saved = []
    for readers, writers in pipes.values():
        data = _drain(readers[0])
        saved.append((readers[0], writers[0], data))
        for fd in readers + writers:
            files[fd]["data"] = data if fd == readers[0] else b""
    return files, saved


def _fdinfo(fd: int) -> list[str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return f.read().splitlines()


def _anon(fd: int, target: str) -> dict:
    """An epoll set (each watched descriptor, its events and data: the kernel lists them
    in fdinfo) or an eventfd (its count and mode)."""
    lines = _fdinfo(fd)
    if target == "anon_inode:[timerfd]":
        info = dict(line.split(":", 1) for line in lines if ":" in line)
        clock = int(info["clockid"])
        if clock not in (0, 1, 7):  # CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME
            raise Refused(f"snapshot: descriptor {fd} is a timerfd of clock {clock}, which a snapshot cannot "
                          "take along")
        value = tuple(int(x) for x in info["it_value"].strip(" ()").split(","))
        interval = tuple(int(x) for x in info["it_interval"].strip(" ()").split(","))
        return {"kind": "timerfd", "clock": clock, "ticks": int(info["ticks"]), "value": value,
                "interval": interval}
    if target == "anon_inode:[eventfd]":
        info = dict(line.split(":", 1) for line in lines if ":" in line)
        return {"kind": "eventfd", "count": int(info["eventfd-count"].strip(), 16),
                "semaphore": info.get("eventfd-semaphore", "0").strip() == "1"}
    watch = []
    for line in lines:
        if line.startswith("tfd:"):
            words = line.split()
            tfd, events, data = int(words[1]), int(words[3], 16), int(words[5], 16)
            ino = int(words[7].split(":")[1], 16)
            watch.append((tfd, events, data, ino))
    return {"kind": "epoll", "watch": watch}


def _same_inode(fd: int, ino: int) -> bool:
    try:
        return os.fstat(fd).st_ino == ino
    except OSError:
        return False


MQUEUE_MAGIC = 0x19800202  # a POSIX message queue's file system: its "path" names no file to open again


def _listening(fd: int) -> bool:
    return bool(_sockopt(fd, 30))  # SO_ACCEPTCONN


def _sockopt(fd: int, opt: int) -> int:
    """A SOL_SOCKET option's int value (-1 when the kernel has none)."""
    buf = bytearray(4)
    size = bytearray(struct.pack("<I", 4))
    r = native.syscall(55, fd, 1, opt, native.address_of(buf), native.address_of(size))  # getsockopt
    return int.from_bytes(buf, "little", signed=True) if r == 0 else -1


def _listener(fd: int, target: str) -> dict:
    """A listening TCP socket, as a resume binds one again (its queue of connections
    not accepted yet is not taken along)."""
    import socket

    s = socket.socket(fileno=os.dup(fd))
    try:
        family, typ, proto = s.family, s.type, s.proto
        if family not in (socket.AF_INET, socket.AF_INET6) or typ != socket.SOCK_STREAM:
            raise Refused(f"snapshot: descriptor {fd} is a listening socket other than TCP ({target}), which a "
                          "snapshot cannot take along yet")
        addr = s.getsockname()
    finally:
        s.close()
    return {"kind": "listener", "family": int(family), "proto": proto, "addr": list(addr[:2])}


def _drain(fd: int) -> bytes:
    """Everything queued in a pipe, taken out without waiting (``take`` puts it back)."""
    import fcntl

    buf = bytearray(4)
    if native.syscall(16, fd, _FIONREAD, native.address_of(buf)) < 0:
        return b""
    n = int.from_bytes(buf, "little")
    out = b""
    if n:
        fl = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            while len(out) < n:
                try:
                    chunk = os.read(fd, n - len(out))
                except BlockingIOError:
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            fcntl.fcntl(fd, fcntl.F_SETFL, fl)
    return out


def put_back_all(pipes: list) -> None:
    """The bytes taken out of the program's pipes to be saved go back in (the program
    goes on, or is resumed from the file with them)."""
    for _r, w, data in pipes:
        if data:
            _put_back(w, data)


def _put_back(fd: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(fd, data):]
        except OSError:
            return


def restore(p, files: dict, path: str, image_files: bool = False, listening: dict | None = None) -> None:
    """The program's descriptors at their numbers, each checked; the resuming km's own
    0-2 stay; anything else it inherited below the floor is closed (not the program's).
    ``image_files``: files are a container image's copies (resume.restore).
    ``listening``: the listening sockets ``listen_first`` made already (number -> inode)."""
    import fcntl

    listening = listening or {}
    for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
        if 2 < fd < p.fds.floor and fd not in files:
            try:
                os.close(fd)
            except OSError:
                pass
    pipes: dict[int, tuple[int, int]] = {}
    epolls: list[tuple[int, dict]] = []  # (made last: they watch the others)
    unix = {fd: f for fd, f in files.items() if type(f) is dict and f.get("kind") == "unix"}
    socketpairs = snapsock.restore(unix, path, p.fds.floor) if unix else {}
    signalfds: dict[int, int] = {}  # saved inode -> the new signalfd's first descriptor
    for fd, f in sorted(files.items()):
        if type(fd) is not int or not 2 < fd < p.fds.floor or type(f) is not dict:
            raise SnapshotError(f"{path}: descriptor {fd} is beyond this km's limit (RLIMIT_NOFILE)")
        if f.get("kind") == "file":
            new = _reopen(f, fd, path, image_files)
        elif f.get("kind") == "pipe":
            ino = f["ino"]
            if ino not in pipes:  # (made above the program's range: its numbers are placed one by one)
                pipes[ino] = tuple(above(x, p.fds.floor) for x in os.pipe())
            r, w = pipes[ino]
            new = os.dup(w if f["write"] else r)
            fcntl.fcntl(new, fcntl.F_SETFL, f["flags"] & (os.O_NONBLOCK | os.O_APPEND | os.O_DIRECT))
            if f.get("data"):
                _put_back(w, f["data"])
        elif f.get("kind") == "listener" and listening.get(fd) is not None and _same_inode(fd, listening[fd]):
            new = fd  # (made first by listen_first, a connection waiting in it)
        elif f.get("kind") == "listener":
            new = _listen_again(f, fd, path)
        elif f.get("kind") == "unix":
            new = socketpairs.pop(fd)
            fcntl.fcntl(new, fcntl.F_SETFL, f["flags"] & os.O_NONBLOCK)
        elif f.get("kind") == "eventfd":
            count = f["count"]
            if type(count) is not int or not 0 <= count < 1 << 64 - 1:
                raise SnapshotError(f"{path}: descriptor {fd}: a bad eventfd")
            new = os.eventfd(count, (os.EFD_SEMAPHORE if f.get("semaphore") else 0) |
                             (f["flags"] & os.O_NONBLOCK and os.EFD_NONBLOCK))
        elif f.get("kind") == "timerfd":
            new = _timerfd_again(f, fd, path)
        elif f.get("kind") == "signalfd":
            new = _signalfd_again(p, f, fd, path, signalfds)
        elif f.get("kind") == "epoll":
            epolls.append((fd, f))
            continue
        else:
            raise SnapshotError(f"{path}: descriptor {fd} is of an unknown kind")
        _place(new, fd, f)
    for r, w in pipes.values():
        os.close(r)
        os.close(w)
    for fd, f in epolls:
        _place(_epoll_again(f, fd, path), fd, f)
    p.fds.seen(max(files, default=2))


def _timerfd_again(f: dict, fd: int, path: str) -> int:
    """A timerfd armed again with the time it had left (relative: the resume's clock
    goes on from now) and its interval.  Expirations not read yet come back as one, due
    at once (the count is the kernel's alone)."""
    clock, value, interval, ticks = f["clock"], f["value"], f["interval"], f["ticks"]
    if clock not in (0, 1, 7) or type(ticks) is not int or not all(
            type(t) is tuple and len(t) == 2 and all(type(x) is int and 0 <= x < 1 << 62 for x in t)
            for t in (value, interval)):
        raise SnapshotError(f"{path}: descriptor {fd}: a bad timerfd")
    new = native.syscall(283, clock, os.O_NONBLOCK & f["flags"])  # timerfd_create
    if new < 0:
        raise SnapshotError(f"{path}: descriptor {fd}: no timerfd ({os.strerror(-new)})")
    if ticks > 0:
        value = (0, 1)
    spec = bytearray(struct.pack("<qqqq", interval[0], interval[1], value[0], value[1]))
    if value != (0, 0) and native.syscall(286, new, 0, native.address_of(spec), 0) < 0:  # timerfd_settime
        os.close(new)
        raise SnapshotError(f"{path}: descriptor {fd}: cannot arm its timerfd again")
    return new


def _signalfd_again(p, f: dict, fd: int, path: str, made: dict[int, int]) -> int:
    """A signalfd made again with its mask (km's, kernel/signalfd.py: which signals are
    pending is the signal state's, restored after); another descriptor of the same one
    is a duplicate of the first."""
    mask, ino = f.get("mask"), f.get("ino")
    if type(mask) is not int or not 0 <= mask < 1 << 64:
        raise SnapshotError(f"{path}: descriptor {fd}: a bad signalfd")
    if ino in made:
        return os.dup(made[ino])
    new = p.signalfds.create(mask, bool(f.get("cloexec")), bool(f["flags"] & os.O_NONBLOCK))
    if new < 0:
        raise SnapshotError(f"{path}: descriptor {fd}: no signalfd ({os.strerror(-new)})")
    made[ino] = fd
    return new


def _place(new: int, fd: int, f: dict) -> None:
    """Descriptor ``new`` becomes the program's ``fd``, close-on-exec as it was."""
    import fcntl

    if new != fd:
        os.dup2(new, fd, inheritable=True)
        os.close(new)
    fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC if f.get("cloexec") else 0)


def _epoll_again(f: dict, fd: int, path: str) -> int:
    """An epoll set made again, watching the same descriptors (restored already) with the
    same events and data.  One of 0-2 (the resuming km's own now) that epoll cannot
    watch (a regular file) is left out."""
    ep = native.syscall(291, os.O_CLOEXEC)  # epoll_create1
    if ep < 0:
        raise SnapshotError(f"{path}: descriptor {fd}: no epoll ({os.strerror(-ep)})")
    for tfd, events, data, _ino in f["watch"]:
        if type(tfd) is not int or not 0 <= tfd < 1 << 31:
            raise SnapshotError(f"{path}: descriptor {fd}: a bad epoll set")
        ev = bytearray(struct.pack("<IQ", events & 0xFFFFFFFF, data & 0xFFFFFFFFFFFFFFFF))
        r = native.syscall(233, ep, 1, tfd, native.address_of(ev))  # epoll_ctl(EPOLL_CTL_ADD)
        if r < 0 and not (tfd <= 2 and r == -1):  # (EPERM: a file epoll does not watch)
            os.close(ep)
            raise SnapshotError(f"{path}: descriptor {fd}: cannot watch descriptor {tfd} again "
                                f"({os.strerror(-r)})")
    return ep


def above(fd: int, floor: int) -> int:
    new = native.dup_at_least(fd, floor)
    os.close(fd)
    if new < 0:
        raise SnapshotError(f"no descriptor left for the monitor ({os.strerror(-new)})")
    return new


def _listen_again(f: dict, fd: int, path: str) -> int:
    """A listening socket bound again to its address, with SO_REUSEPORT: several
    resumes of one snapshot listen at once, and the host shares the connections out."""
    import fcntl
    import socket

    family, addr = f["family"], f["addr"]
    if family not in (socket.AF_INET, socket.AF_INET6) or type(addr) is not list or len(addr) != 2:
        raise SnapshotError(f"{path}: descriptor {fd}: a bad listening socket")
    s = socket.socket(family, socket.SOCK_STREAM, f["proto"])
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(tuple(addr))
        s.listen(socket.SOMAXCONN)
    except (OSError, TypeError, OverflowError) as e:
        s.close()
        raise SnapshotError(f"{path}: descriptor {fd} listened on {addr[0]} port {addr[1]}, which cannot be "
                            f"listened on again ({getattr(e, 'strerror', None) or e})") from None
    new = s.detach()
    fcntl.fcntl(new, fcntl.F_SETFL, f["flags"] & os.O_NONBLOCK)
    return new


def listen_first(snap, path: str) -> None:
    """``km resume --scale-to-zero``: the program's listening sockets made again at their
    numbers, alone (no VM, no memory yet), and a wait until a connection comes to one of
    them; ``restore`` then keeps them (``snap.listening``: number -> inode), so the
    connection waiting in one is the program's.  With none, the resume goes on at once."""
    import select

    files = snap.state["process"]["fds"]
    listeners = {fd: f for fd, f in files.items() if type(f) is dict and f.get("kind") == "listener"}
    if not listeners:
        return
    snap.fd = above(snap.fd, max(listeners) + 1)  # (the file's own descriptor out of their way)
    made = {}
    for fd, f in sorted(listeners.items()):
        if native.syscall(72, fd, 1, 0) >= 0:  # fcntl(F_GETFD): the number is km's now; bound at the resume
            continue
        new = _listen_again(f, fd, path)
        _place(new, fd, f)
        made[fd] = os.fstat(fd).st_ino
    snap.listening = made
    if not made:
        return
    poll = select.poll()
    for fd in made:
        poll.register(fd, select.POLLIN)
    try:
        while not poll.poll():
            pass
    except KeyboardInterrupt:  # (^C while nothing ran yet: as the program would end by SIGINT)
        raise SystemExit(130) from None


def _reopen(f: dict, fd: int, path: str, image_files: bool = False) -> int:
    name = f["path"]
    flags = f["flags"] & ~(os.O_CREAT | os.O_TRUNC | os.O_EXCL)
    try:
        new = os.open(name, flags | os.O_CLOEXEC)
    except OSError as e:
        raise SnapshotError(f"{path}: descriptor {fd} was {os.fsdecode(name)}, which cannot be opened again "
                            f"({e.strerror})") from None
    st = os.fstat(new)
    if image_files:  # (a copy: another inode; a regular file keeps its size and time, a directory its kind)
        changed = stat.S_IFMT(st.st_mode) != stat.S_IFMT(f.get("mode", 0)) and not stat.S_ISCHR(st.st_mode)
    else:
        changed = (st.st_dev, st.st_ino) != (f["dev"], f["ino"])
    changed = changed or stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) != (f["size"], f["mtime"])
    if changed:
        os.close(new)
        raise SnapshotError(f"{path}: descriptor {fd} was {os.fsdecode(name)}, which has changed since the "
                            "snapshot (another file, size or modification time)")
    if f["offset"]:
        os.lseek(new, f["offset"], os.SEEK_SET)
    return new
