"""Linux errno values (asm-generic/errno.h), plus the kernel-internal restart codes.

The host is Linux x86-64, whose errno values are the guest's, so the standard ``errno``
module is the source; this module adds the restart codes that only a kernel sees.
"""

from __future__ import annotations

import errno as _errno
from errno import (  # noqa: F401  (re-exported)
    E2BIG,
    EACCES,
    EADDRINUSE,
    EAFNOSUPPORT,
    EAGAIN,
    EBADF,
    EBUSY,
    ECHILD,
    ECHRNG,
    ECONNREFUSED,
    EEXIST,
    EFAULT,
    EFBIG,
    EINPROGRESS,
    EINTR,
    EINVAL,
    EIO,
    EISDIR,
    ELOOP,
    EMFILE,
    EMSGSIZE,
    ENAMETOOLONG,
    ENOBUFS,
    ENODEV,
    ENOENT,
    ENOEXEC,
    ENOMEM,
    ENOMSG,
    ENOSPC,
    ENOSYS,
    ENOTCONN,
    ENOTDIR,
    ENOTEMPTY,
    ENOTSOCK,
    ENOTSUP,
    ENOTTY,
    ENXIO,
    EOPNOTSUPP,
    EOVERFLOW,
    EPERM,
    EPIPE,
    ERANGE,
    ESPIPE,
    ESRCH,
    ETIMEDOUT,
    ETXTBSY,
    EXDEV,
)

# Kernel-internal: a blocked call interrupted by a signal; becomes EINTR or a restart.
ERESTARTSYS = 512
ERESTARTNOINTR = 513
ERESTARTNOHAND = 514
ERESTART_RESTARTBLOCK = 516


def name(err: int) -> str:
    """'ENOENT' for 2; a number for an unknown value."""
    return _errno.errorcode.get(err, str(err))
