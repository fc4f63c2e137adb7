"""How many descriptors km keeps above the guest's: the rule fdtable.py applies and
krun (oci/config.py) inverts to give a container's program the limit it was given.
A module of its own, importing nothing, because krun needs it at every container start
and fdtable.py's imports cost it milliseconds."""

RESERVE = 1056  # descriptors kept for the monitor: one per vCPU (layout.MAX_VCPUS) and a few


def guest_limit(top: int) -> int:
    """The guest's RLIMIT_NOFILE hard limit when km's is ``top`` (at most 2^16): what is
    left below the monitor's reserve.  (krun raises a container's limit by the reserve,
    kontain/oci/config.py, so that its program sees the limit it was given.)"""
    return top - min(RESERVE, max(top // 8, 16))  # (a small RLIMIT_NOFILE: fewer threads, EAGAIN past them)
