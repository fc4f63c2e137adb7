"""krun's command line: the OCI runtime commands runc, crun and runsc share.

    krun [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS...

Global options (the ones container engines pass): --root DIR (the state directory,
default /run/krun), --log FILE, --log-format text|json, --systemd-cgroup,
--cgroup-manager, --debug, --rootless.  Commands: create, start, state, kill, delete,
run, exec, ps, list, spec, features, pause, resume, update.

``create``, ``run`` and ``exec`` make the container's process km running the program
(oci/config.py) and hand over to crun with the same options; ``features`` is krun's
own; every other command is crun's as it is.  Options are parsed by hand, like km's:
argparse would cost milliseconds on every container start, and krun must pass on every
option it does not know exactly as it came.
"""

from __future__ import annotations

import os
import sys

from kontain import __version__
from kontain.oci import KrunError
from kontain.oci.log import Log

if False:  # (typing costs krun milliseconds at every start: for type checkers only)
    from typing import NoReturn

USAGE = """\
usage: krun [GLOBAL OPTIONS] COMMAND [OPTIONS] ARGS...

An OCI runtime whose containers run every process in a KVM virtual machine of its own
(under km), with crun's namespaces, cgroups, mounts and security settings.

commands:
  create ID    create a container from a bundle (--bundle DIR, --pid-file FILE,
               --console-socket SOCK, --preserve-fds N)
  start ID     start the program of a created container
  run ID       create and start, in the foreground unless --detach
  exec ID CMD  run a process in a running container (or --process FILE)
  state ID     the container's state, as JSON
  kill ID [SIGNAL]  signal the container's first process (--all: every process)
  delete ID    delete a stopped container (--force: a running one too)
  ps ID        the container's processes (--format json)
  list         the containers (--format json, -q)
  pause ID, resume ID, update ID, spec, features
  launcher [-o PATH]  build krun-native beside krun: the same runtime, without a
               Python start for the verbs crun answers (register it instead of krun)
  prune-runtimes [--dry-run]  remove the km runtimes of earlier versions that no
               container uses (in /var/cache/kontain, or $KONTAIN_CACHE)

global options:
  --root DIR            where container state is kept (default: /run/krun)
  --log FILE            where errors go (also stderr); --log-format text|json
  --systemd-cgroup, --cgroup-manager MANAGER, --rootless VALUE, --debug
  -h, --help, -v, --version
"""

GLOBAL_VALUE = ("--root", "--log", "--log-format", "--criu", "--cgroup-manager", "--rootless")
GLOBAL_FLAG = ("--debug", "--systemd-cgroup")
# per-command options that take a value (the others are flags): what it takes to find
# the positional arguments and the options krun reads
VALUE_OPTIONS = {
    "create": ("--bundle", "-b", "--config", "-f", "--console-socket", "--pid-file", "--preserve-fds"),
    "exec": ("--process", "-p", "--console-socket", "--cwd", "--env", "-e", "--user", "-u", "--additional-gids", "-g",
             "--process-label", "--apparmor", "--cap", "-c", "--preserve-fds", "--pid-file", "--cgroup"),
}
VALUE_OPTIONS["run"] = VALUE_OPTIONS["create"]


class Options:
    """A command's options as given, in order, and its positional arguments."""

    def __init__(self, command: str, args: list[str]):
        values = VALUE_OPTIONS.get(command, ())
        self.items: list[tuple[str, str | None]] = []  # (option, value or None), as given
        self.positional: list[str] = []
        self.rest: list[str] = []  # exec: the command, after the container's id
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--":
                self.positional += args[i + 1:]
                break
            if a.startswith("-") and a != "-":
                name, eq, value = a.partition("=")
                if name in values and not eq:
                    if i + 1 >= len(args):
                        raise KrunError(f"{command}: option {a} needs a value", 1)
                    i += 1
                    value = args[i]
                self.items.append((name, value if (eq or name in values) else None))
            else:
                self.positional.append(a)
                if command == "exec":
                    self.rest = args[i + 1:]
                    break
            i += 1

    def get(self, *names: str) -> str | None:
        found = None
        for name, value in self.items:
            if name in names:
                found = value
        return found

    def argv(self, without: tuple[str, ...] = ()) -> list[str]:
        """The options again (without ``without``), each as one ``--name=value``."""
        out = []
        for name, value in self.items:
            if name in without:
                continue
            out.append(name if value is None else (f"{name}={value}" if name.startswith("--") else name))
            if value is not None and not name.startswith("--"):
                out.append(value)
        return out


class Krun:
    """One invocation: the global options and the command."""

    def __init__(self, argv: list[str]):
        self.crun_global: list[str] = []
        self.root = ""
        log_path, log_format, debug = None, "text", False
        i = 0
        while i < len(argv) and argv[i].startswith("-"):
            name, eq, value = argv[i].partition("=")
            if name in GLOBAL_VALUE:
                if not eq:
                    if i + 1 >= len(argv):
                        raise KrunError(f"option {name} needs a value", 1)
                    i += 1
                    value = argv[i]
                if name == "--root":
                    self.root = value
                elif name == "--log":
                    log_path = value
                elif name == "--log-format":
                    log_format = value
                if name not in ("--root", "--criu"):  # (--root: below; --criu is runc's)
                    self.crun_global.append(f"{name}={value}")
            elif name in GLOBAL_FLAG:
                debug = debug or name == "--debug"
                self.crun_global.append(name)
            elif name in ("-h", "--help", "-v", "-V", "--version"):
                break
            else:
                raise KrunError(f"unknown global option {argv[i]} (see krun --help)", 1)
            i += 1
        self.log = Log(log_path, log_format, debug)
        self.root = self.root or default_root()
        self.crun_global.insert(0, f"--root={self.root}")
        self.command = argv[i] if i < len(argv) else ""
        self.args = argv[i + 1:]

    def run(self) -> int:
        c = self.command
        if c in ("-h", "--help"):
            sys.stdout.write(USAGE)
            return 0
        if c in ("-v", "-V", "--version"):
            return version()
        if not c:
            raise KrunError("no command (see krun --help)", 1)
        if c in ("create", "run"):
            return self.create()
        if c == "exec":
            return self.exec()
        if c == "launcher":  # (krun's own: builds krun-native, oci/launcher.py)
            from kontain.oci import launcher

            return launcher.main(self.args)
        if c == "prune-runtimes":  # (krun's own: oci/prune.py)
            from kontain.oci import prune

            return prune.main(self.args)
        if c == "features":
            from kontain.oci import features

            sys.stdout.write(features.text())
            return 0
        if c == "start":
            return self.start()
        if c == "delete":
            from kontain.oci import ready

            o = Options("delete", self.args)
            if o.positional:
                ready.remove(self.root, o.positional[-1])
        if c in ("start", "state", "kill", "delete", "ps", "list", "spec", "pause", "resume", "update", "checkpoint",
                 "restore"):
            self.handover(self.args)
        raise KrunError(f"unknown command {c} (see krun --help)", 1)

    def handover(self, args: list[str]):
        from kontain.oci import crun

        self.log.debug(f"crun {' '.join([*self.crun_global, self.command, *args])}")
        crun.execute([*self.crun_global, self.command, *args])

    def protect_stdio(self, owner: tuple[int, int] | None) -> None:
        """Descriptors 0-2 on private device nodes where crun would give the host's away
        (oci/stdio.py)."""
        from kontain.oci import stdio

        stdio.protect(self.root, owner, self.log.debug)

    def create(self) -> int:
        """create and run: the bundle's configuration under km, through crun."""
        from kontain.oci import config, crun, programs, runtime
        from kontain.oci import fastjson as json

        o = Options(self.command, self.args)
        if not o.positional:  # (crun's own answer: without an id there is nothing it could create)
            self.handover(self.args)
        if len(o.positional) > 1:
            # crun's words, but krun's own check: crun is never handed the bundle's configuration to run
            raise KrunError(f"`{self.command}` requires a maximum of 1 arguments", 1)
        bundle = os.path.abspath(o.get("--bundle", "-b") or ".")
        path = o.get("--config", "-f") or "config.json"
        path = os.path.join(bundle, path)
        try:
            with open(path) as f:
                cfg = json.load(f)
        except OSError as e:
            raise KrunError(f"{path}: {e.strerror} (is {bundle} an OCI bundle?)") from None
        except ValueError as e:
            raise KrunError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(cfg, dict):
            raise KrunError(f"{path}: not an OCI configuration")
        if _a_version(cfg.get("ociVersion")):  # (crun refuses one that is none before it looks for the program)
            programs.check(programs.View.of_config(cfg, bundle), cfg.get("process") or {})
        rt = runtime.ensure()
        dest = config.mount_point(cfg)
        # (--image-files: a snapshot the container resumes, from km image SNAPSHOT, finds the
        # files it re-opens as the image's copies, other inodes: oci/snapimage.py)
        command = [*rt.command(dest), "--image-files", "--no-site-cache"]
        lowest = _first_free(o)
        without = ("--config", "-f")
        extra = []
        if self.command == "create":  # (krun start waits until km closes it: oci/ready.py)
            from kontain.oci import ready

            if ready.make(self.root, o.positional[0], lowest) is not None:
                command += ["--ready-fd", str(lowest)]
                without += ("--preserve-fds",)
                extra = [f"--preserve-fds={lowest - 3 - _listen_fds() + 1}"]
                lowest += 1
        config.container(cfg, command, rt.root, dest)
        memfile = crun.memory_file(cfg, lowest)
        self.protect_stdio(stdio_owner(cfg.get("process"), cfg))
        self.handover([*o.argv(without=without), *extra, f"--config={memfile}", *o.positional])
        return 1

    def start(self) -> int:
        """crun's start, and then the wait until the program runs (oci/ready.py)."""
        from kontain.oci import ready

        o = Options("start", self.args)
        fd = ready.open_reader(self.root, o.positional[-1]) if o.positional else None
        if fd is None:
            self.handover(self.args)
        from kontain.oci import crun

        argv = [*self.crun_global, "start", *self.args]
        self.log.debug(f"crun {' '.join(argv)}")
        pid = os.fork()
        if pid == 0:
            try:
                os.close(fd)
                crun.execute(argv)
            except BaseException as e:  # (the child must never return into krun)
                self.log.error(str(e))
            os._exit(1)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if status == 0:
            ready.wait(fd)
        else:
            os.close(fd)
        if status < 0:
            die_like(-status)
        return status

    def exec(self) -> int:
        """A process added to a running krun container: under km too."""
        from kontain.oci import config, crun, programs
        from kontain.oci import fastjson as json

        o = Options("exec", self.args)
        if not o.positional:  # (crun's own answer)
            self.handover(self.args)
        cid = o.positional[0]
        stored = crun.stored_config(self.root, cid)
        command = config.km_command(stored)
        process_file = o.get("--process", "-p")
        if command is None:  # not a krun container (or none): crun says what it is
            if stored is not None:  # (a crun container in krun's state: the owner is the process file's, unread)
                self.protect_stdio(None if process_file else stdio_owner(None, stored, o.get("--user", "-u")))
            self.handover(self.args)
        pid = crun.init_pid(self.root, cid)  # (0 when it is not running: crun says so)
        view = programs.View(f"/proc/{pid}/root") if pid else None
        if process_file:
            try:
                with open(process_file) as f:
                    proc = json.load(f)
            except (OSError, ValueError) as e:
                raise KrunError(f"{process_file}: {e}") from None
            if view:
                programs.check(view, proc, 255)
            config.process(proc, command)
            memfile = crun.memory_file(proc, _first_free(o))
            self.protect_stdio(stdio_owner(proc, stored))
            self.handover([*o.argv(without=("--process", "-p")), f"--process={memfile}", cid])
        base = dict((stored or {}).get("process") or {})
        env = [v for n, v in o.items if n in ("--env", "-e") and v is not None]
        # (crun's environment for COMMAND: the container's, or only the --env ones)
        proc = {"args": o.rest, "env": env or base.get("env") or [], "cwd": o.get("--cwd") or base.get("cwd")}
        if view:
            programs.check(view, proc, 255)
        moved = config.km_env_options({"env": env})
        keep = [(n, v) for n, v in o.items if not (n in ("--env", "-e") and v is not None and
                                                 config.loader_variable(v.split("=", 1)[0]))]
        o.items = keep
        self.protect_stdio(stdio_owner(None, stored, o.get("--user", "-u")))
        self.handover([*o.argv(), cid, *command, *moved, "--", *o.rest] if o.rest else [*o.argv(), cid])
        return 1


def die_like(sig: int) -> NoReturn:
    """End by signal ``sig``, as the crun whose parent krun was did: an engine waiting for
    ``start`` must see crun's own end ("signal: broken pipe" when crun 1.8 dies of SIGPIPE
    writing the state to a poststart hook that is gone: runtime-tools' poststart), not an
    exit status 128+n.  No core file of krun's own; exit status 128+n only for a signal
    whose default action is not to end the process."""
    import resource
    import signal

    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
    except (OSError, ValueError):
        pass
    os.kill(os.getpid(), sig)
    sys.exit(128 + sig)


def stdio_owner(process: object, container: object, user: str | None = None) -> tuple[int, int] | None:
    """Who crun gives the standard descriptors to: ``process``'s user (an OCI process
    object), or exec's ``--user`` value; None when that is unknown or mapped by the
    container's user namespace."""
    from kontain.oci import stdio

    if stdio.has_user_namespace(container):
        return None
    if isinstance(process, dict):
        return stdio.owner_of(process.get("user", {}))
    return stdio.owner_of_option(user)


def _a_version(value: object) -> bool:
    """Does ``value`` (config.json's ociVersion) look like a version, digits.digits...?
    crun refuses a configuration without one ("unknown version specified", "error loading
    config.json") before it looks for the program, so krun leaves its own look-up (and its
    "not found") to km: crun then answers first, as for itself (runtime-tools' misc_props).
    Only what no crun accepts is skipped: a crun that took the value would run km, which
    says the program is missing after start."""
    if not isinstance(value, str):
        return False
    major, dot, rest = value.partition(".")
    return major.isdigit() and dot == "." and rest[:1].isdigit()


def _listen_fds() -> int:
    try:
        return max(int(os.environ.get("LISTEN_FDS", "0")), 0)
    except ValueError:
        raise KrunError("LISTEN_FDS: expected a number", 1) from None


def _first_free(o: Options) -> int:
    """The lowest descriptor crun does not pass on to the container: past the ones
    --preserve-fds and LISTEN_FDS (socket activation) name."""
    try:
        preserve = int(o.get("--preserve-fds") or 0)
        listen = int(os.environ.get("LISTEN_FDS", "0"))
    except ValueError:
        raise KrunError("--preserve-fds: expected a number", 1) from None
    return 3 + max(preserve, 0) + max(listen, 0)


def default_root() -> str:
    """/run/krun for root; $XDG_RUNTIME_DIR/krun for others (as crun's /run/crun)."""
    if os.geteuid() == 0:
        return "/run/krun"
    base = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return os.path.join(base, "krun")


def version() -> int:
    sys.stdout.write(f"krun (kontain) {__version__}\n")
    sys.stdout.flush()
    import subprocess

    from kontain.oci import crun

    try:
        out = subprocess.run([crun.path(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, KrunError, subprocess.TimeoutExpired):
        out = "crun: not found\n"
    sys.stdout.write("".join(f"  {line}\n" for line in out.splitlines()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    log = Log()
    try:
        k = Krun(args)
        log = k.log
        return k.run()
    except KrunError as e:
        log.error(str(e))
        return e.status
