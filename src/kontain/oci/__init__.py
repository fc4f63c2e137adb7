"""krun, the OCI runtime: containers whose every process runs under km in a VM of its own.

krun is a thin layer over crun (docs/containers.md says why): it rewrites the
container's configuration so that each process is km running the original program,
with /dev/kvm and a read-only km runtime added, and lets crun do the rest.

    cli.py       krun's command line: the verbs and flags runc, crun and runsc share
    crun.py      finding crun and handing it a verb
    config.py    config.json and exec's process.json made to run under km
    runtime.py   the km runtime mounted into containers (an interpreter and km, whole)
    prune.py     ``krun prune-runtimes``: removing the runtimes no container uses
    entry.py     km's launcher inside a container
    programs.py  finding a container's program as the runtime would (for its errors)
    features.py  ``krun features``
    ready.py     ``krun start`` waits until km is about to run the program
    launcher.py  ``krun launcher``: builds krun-native (launcher.c), crun's verbs without Python
    stdio.py     the standard descriptors on private device nodes (crun 1.8 chowns them)
    log.py       error lines in the log format the engine asked for
    elfdeps.py   a dynamic program's loader and libraries (the runtime, ``km image``)
    image.py     ``km image``: a minimal OCI image made from a program
"""


class KrunError(Exception):
    """A failure the engine's user must see: one line that says what and what to do."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status
