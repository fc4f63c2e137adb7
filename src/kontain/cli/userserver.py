"""``km --server status|on|off|stop``: the user's own km server, as the native km uses it.

The native km front end (cli/kmc.c, built by ``km --native``) sends a program to the
user's server when one listens on the user's socket, and starts that server first when
the user opted in once.  Where those live must be where kmc.c looks:

- the socket, its lock and the server's log: ``runtime_dir()``, in ``$XDG_RUNTIME_DIR``
  when that is the user's, else ``/run/user/UID``, else ``/tmp/kontain-UID`` (0700, the
  user's; the server refuses any other, and the front end talks only to a server of its
  own uid);
- the opt-in: the file ``opt_in_file()`` in the user's configuration directory, written
  only by ``km --server on``: km never writes there while a program runs.

A user who never opted in, and started no server, gets a direct km: the front end execs
the Python km at once.
"""

from __future__ import annotations

import os
import sys

USAGE = "km --server status|on|off|stop"


def runtime_dir() -> str:
    """The user's server directory (kmc.c runtime_dir())."""
    uid = os.getuid()
    for base in (os.environ.get("XDG_RUNTIME_DIR", ""), f"/run/user/{uid}"):
        if base.startswith("/") and _owned_dir(base):
            return os.path.join(base, "kontain")
    return f"/tmp/kontain-{uid}"


def socket_path() -> str:
    return os.path.join(runtime_dir(), "km.sock")


def opt_in_file() -> str | None:
    """The file whose presence says the user opted in (kmc.c opted_in()); None without a
    configuration directory (no $XDG_CONFIG_HOME, no $HOME)."""
    config = os.environ.get("XDG_CONFIG_HOME", "")
    if not config.startswith("/"):
        home = os.environ.get("HOME", "")
        if not home.startswith("/"):
            return None
        config = os.path.join(home, ".config")
    return os.path.join(config, "kontain", "server")


def _owned_dir(path: str) -> bool:
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()


def running() -> int | None:
    """The pid of the user's server, None when none listens on the user's socket."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(socket_path())
        cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    except OSError:
        return None
    finally:
        sock.close()  # (the worker that took the connection sees no request, and ends)
    pid, uid = int.from_bytes(cred[0:4], "little"), int.from_bytes(cred[4:8], "little")
    return pid if uid == os.getuid() else None


def native_front() -> bool:
    """Is the km beside this one the native front end (the only km that uses the server)?"""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    try:
        with open(os.path.join(os.path.dirname(script), "km"), "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def stop() -> int | None:
    """Stop the user's server (its programs run on); its pid, None when none ran."""
    import select
    import signal

    pid = running()
    if pid is None:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return pid  # (gone already)
    try:
        if running() == pid:  # (the pidfd is that server's, not a pid used again)
            os.kill(pid, signal.SIGTERM)
            select.select([fd], [], [])  # readable when it has ended
    finally:
        os.close(fd)
    try:
        os.unlink(socket_path())
    except OSError:
        pass
    return pid


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def main(args: list[str]) -> int:
    if len(args) != 1 or args[0] not in ("status", "on", "off", "stop"):
        os.write(2, f"km: --server needs one of status, on, off, stop ({USAGE})\n".encode())
        return 2
    what = args[0]
    opt_in = opt_in_file()
    if what == "status":
        on = opt_in is not None and os.path.exists(opt_in)
        pid = running()
        _say(f"km server: {'on (km starts it at first use)' if on else 'off (km --server on: km starts it at first use)'}")
        _say(f"km server: {f'running, pid {pid}' if pid else 'not running'}, socket {socket_path()}")
        if on and not native_front():
            _say("km server: km here is the Python one, which does not use the server (build the native km: km --native)")
        return 0 if pid else 3
    if what == "on":
        if opt_in is None:
            os.write(2, b"km: --server on: no configuration directory (set HOME or XDG_CONFIG_HOME)\n")
            return 1
        if not native_front():
            os.write(2, b"km: --server on: km here is the Python one, which does not use a server "
                        b"(build the native km with a C compiler: km --native)\n")
            return 1
        try:
            os.makedirs(os.path.dirname(opt_in), mode=0o700, exist_ok=True)
            with open(opt_in, "w") as f:
                f.write("# km --server on: km starts the user's km server at first use (km --server off)\n")
        except OSError as e:
            os.write(2, f"km: --server on: {opt_in}: {e.strerror} (make it writable)\n".encode())
            return 1
        _say("km server: on (the next km starts it; km --server off to undo)")
        return 0
    if what == "off" and opt_in is not None:
        try:
            os.unlink(opt_in)
        except FileNotFoundError:
            pass
        except OSError as e:
            os.write(2, f"km: --server off: {opt_in}: {e.strerror} (remove it by hand)\n".encode())
            return 1
    pid = stop()
    _say(f"km server: {'off, ' if what == 'off' else ''}{f'stopped (pid {pid})' if pid else 'not running'}")
    return 0
