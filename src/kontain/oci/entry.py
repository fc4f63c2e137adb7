"""km inside a container: what the km runtime's launcher (``DEST/km``) runs.

The container's process is ``LOADER --library-path DEST/lib DEST/bin/python3 -I -S
DEST/km [km options] -- PROGRAM ARGS...`` (oci/config.py): km with the container's
namespaces, cgroup, credentials, capabilities, limits and seccomp profile, whose every
process (what it forks and execs) is a km and a VM of its own.  This is km's ordinary
command line; the start-up bundle is the runtime's own, written when krun assembled it.
km writes nothing in the container's file system (it keeps no host cache: it asks KVM
for the CPUID table at each start).
"""

from __future__ import annotations

import sys


def main() -> None:
    import gc

    gc.disable()  # until the program runs (kontain/lazy.py, started: a faster start)
    from kontain import bundle

    bundle.install()
    from kontain.cli.main import main as km

    sys.exit(km(sys.argv[1:]))
