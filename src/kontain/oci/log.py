"""krun's own messages, in the log the engine reads.

An engine gives the runtime ``--log FILE`` (containerd's shim, with ``--log-format
json``) and reads the last error from it when a command fails, or reads the runtime's
stderr (conmon, for Podman).  crun's and runc's lines look like
``{"level":"error","msg":"...","time":"2024-01-01T00:00:00Z"}`` in JSON, and a plain
line otherwise; krun writes its own errors the same way, one line each, to the log
when there is one and to stderr always (as runc does), so either kind of engine shows
the user what went wrong.  Everything crun says, crun writes itself.
"""

from __future__ import annotations

import os
import time


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False):
        self.path = path
        self.format = fmt
        self.debug_on = debug

    def error(self, message: str) -> None:
        self._write("error", message, stderr=True)

    def debug(self, message: str) -> None:
        if self.debug_on:
            self._write("debug", message, stderr=False)

    def _write(self, level: str, message: str, stderr: bool) -> None:
        line = f"krun: {message}"
        if stderr:
            _append_fd(2, line + "\n")
        if not self.path:
            return
        if self.format == "json":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
            import json  # (only here: krun hands most verbs to crun at once, and json costs milliseconds)

            text = json.dumps({"level": level, "msg": line, "time": stamp}) + "\n"
        else:
            text = f"{level}: {line}\n" if level != "error" else line + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            _append_fd(fd, text)
        finally:
            os.close(fd)


def _append_fd(fd: int, text: str) -> None:
    data = text.encode("utf-8", "surrogateescape")
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass  # (a message about a failure must not become another)
