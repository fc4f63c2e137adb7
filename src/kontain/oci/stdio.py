"""The container's standard descriptors, kept from changing the host's device nodes.

crun 1.8 (Debian 12's) gives descriptors 0-2 of every process it starts in a container to
that process's user (``fchown``, in crun's ``maybe_chown_std_streams``) unless they are
terminals; newer crun leaves device files alone.  When a descriptor is one of the host's
device nodes, the host changes: conmon hands ``exec`` the host's /dev/null as its
standard input, so after ``podman exec -u 1000 ...`` /dev/null belongs to uid 1000 (who
may then chmod it) until someone gives it back.

krun therefore never hands crun a host device node on 0-2 that crun would give away:
each such descriptor is replaced by an open file of a device node krun made itself (the
same major:minor, type, mode and owner), opened with the same access mode and status
flags, and unlinked at once, so what crun changes is an inode nothing else can reach.
The node is made in krun's state directory, or in /dev when the state directory's file
system does not allow devices (``nodev``: a tmpfs /run usually is).  A descriptor is left
as it is when crun would not change it (already the process user's, with no user
namespace), when it is a terminal, and when krun cannot make or open the node (without
CAP_MKNOD crun cannot give the host's node away either).  What the program reads and
writes is unchanged: the same driver answers through either node.  A device whose open
file carries state of its own (a tun queue, /dev/kvm) would be a fresh open; such a
device as a container's standard descriptor is for the program to open itself.
"""

from __future__ import annotations

import os
import stat

# the status flags a reopen keeps (F_GETFL also reports O_LARGEFILE and the like)
_KEPT = os.O_ACCMODE | os.O_APPEND | os.O_NONBLOCK | os.O_SYNC | os.O_DSYNC | getattr(os, "O_DIRECT", 0)


def protect(state_dir: str, owner: tuple[int, int] | None, debug=None) -> list[int]:
    """Replace each of descriptors 0-2 that is a host device node crun would chown to
    ``owner`` (uid, gid; None: unknown, or mapped by a user namespace) by an open file of
    a private node; the descriptors replaced.  ``debug``: a callable for what was left and
    why."""
    replaced: list[int] = []
    made: dict[tuple[int, int, int], int] = {}  # (dev, ino, flags) -> the private open file, shared as dups are
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            continue
        if owner is not None and (st.st_uid, st.st_gid) == owner:
            continue
        if os.isatty(fd):
            continue
        import fcntl

        flags = fcntl.fcntl(fd, fcntl.F_GETFL) & _KEPT
        key = (st.st_dev, st.st_ino, flags)
        new = made.get(key)
        if new is None:
            try:
                new = _reopen(st, flags, fd, state_dir)
            except OSError as e:
                if debug:
                    debug(f"descriptor {fd} stays the host's device node: {e}")
                continue
            made[key] = new
        os.dup2(new, fd)  # (inheritable)
        replaced.append(fd)
    for new in made.values():
        os.close(new)
    return replaced


def _reopen(st: os.stat_result, flags: int, fd: int, state_dir: str) -> int:
    """An open file (close-on-exec) of a new node for ``st``'s device, already unlinked."""
    where = _node_directory(state_dir)
    path = os.path.join(where, f".krun-stdio-{os.getpid()}-{fd}")
    kind = stat.S_IFMT(st.st_mode)
    os.mknod(path, kind | 0o600, st.st_rdev)
    try:
        os.chown(path, st.st_uid, st.st_gid)
        os.chmod(path, stat.S_IMODE(st.st_mode))
        new = os.open(path, flags | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.unlink(path)
    if stat.S_ISBLK(st.st_mode):  # (a block device has a position; a character device's is the driver's)
        try:
            os.lseek(new, os.lseek(fd, 0, os.SEEK_CUR), os.SEEK_SET)
        except OSError:
            pass
    return new


def _node_directory(state_dir: str) -> str:
    """krun's state directory (made as crun makes it) when its file system allows device
    nodes; /dev otherwise."""
    try:
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        if not os.statvfs(state_dir).f_flag & os.ST_NODEV:
            return state_dir
    except OSError:
        pass
    return "/dev"


def owner_of(user: object) -> tuple[int, int] | None:
    """(uid, gid) of an OCI ``process.user`` object, None when it does not say."""
    if not isinstance(user, dict):
        return None
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    if type(uid) is not int or type(gid) is not int:
        return None
    return uid, gid


def owner_of_option(value: str | None) -> tuple[int, int] | None:
    """(uid, gid) of exec's ``--user UID[:GID]``, None when it does not say."""
    if not value:
        return None
    uid, _, gid = value.partition(":")
    try:
        return int(uid), int(gid or 0)
    except ValueError:
        return None


def has_user_namespace(config: object) -> bool:
    """Does the container (its config.json) have a user namespace (so crun's owner is a
    mapped one)?"""
    linux = config.get("linux") if isinstance(config, dict) else None
    spaces = linux.get("namespaces") if isinstance(linux, dict) else None
    return isinstance(spaces, list) and any(isinstance(n, dict) and n.get("type") == "user" for n in spaces)
