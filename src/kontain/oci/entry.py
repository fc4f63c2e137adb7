"""km inside a container: what the km runtime's launcher (``DEST/km``) runs.

The container's process is ``LOADER --library-path DEST/lib DEST/bin/python3 -I -S
DEST/km [km options] -- PROGRAM ARGS...`` (oci/config.py): km with the container's
namespaces, cgroup, credentials, capabilities, limits and seccomp profile, whose every
process (what it forks and execs) is a km and a VM of its own.  This is km's ordinary
command line, with two differences that come from living in someone else's root:

* km's host cache is the runtime's (``hostcache.use``): the image's home directory must
  not change, and krun has written this boot's CPUID table there already;
* the start-up bundle is the runtime's own, written when krun assembled it.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from kontain import bundle, hostcache

    bundle.install()
    hostcache.use(os.path.join(sys.prefix, "cache"))
    from kontain.cli.main import main as km

    sys.exit(km(sys.argv[1:]))
