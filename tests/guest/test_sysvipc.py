"""System V IPC (syscalls/ipc.py, AddressSpace.shmat/shmdt): shared memory, semaphores
and message queues, each run natively and under km with the same output.  The program
(tests/programs/sysvipc.c) makes its objects IPC_PRIVATE or keyed on a file of its own
and removes them, so reruns and other test runs on the machine do not meet them."""

import select
import subprocess

import pytest

from kt import KM, STATIC, build, compare, km


@pytest.mark.parametrize("variant", STATIC)
def test_sysv_ipc(variant):
    """Shared memory across fork, exec and exit (shm_nattch as Linux counts it), pieces
    left by mprotect, munmap and mremap, SHM_RDONLY, SHM_REMAP, SHM_RND, IPC_RMID while
    attached, /proc/self/maps; semaphores (SEM_UNDO, timeouts, EINTR); message queues;
    hostile pointers."""
    native, guest = compare([build("sysvipc", variant)])
    assert "FAILED" not in guest.text and "hostile: removed" in guest.text


def _owner_and_visitor(owner: list, visitor: list) -> tuple[bytes, bytes]:
    """The owner makes a keyed segment and semaphore and waits; the visitor, an unrelated
    process started once the owner is ready, finds them by key, writes, wakes the owner."""
    # (unbuffered: select() must not wait for lines a buffered reader has read already)
    p = subprocess.Popen(owner, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        head = b""
        while not head.endswith(b"ready\n"):
            assert select.select([p.stdout], [], [], 60)[0], "the owner did not get ready"
            line = p.stdout.readline()
            assert line, f"the owner ended: {head!r} {p.stderr.read()!r}"
            head += line
        v = subprocess.run(visitor, capture_output=True, timeout=60)
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0 and v.returncode == 0, (head + out, err, v.stdout, v.stderr)
    finally:
        p.kill()
        p.wait()
    return head + out, v.stdout


@pytest.mark.parametrize("owner_km, visitor_km", [(True, True), (True, False), (False, True)],
                         ids=["km-km", "km-native", "native-km"])
def test_shared_memory_between_unrelated_processes(owner_km, visitor_km, tmp):
    """Two separate starts (two km processes, or km and a native program) share a segment
    and a semaphore by key: the host's IPC namespace is the store."""
    keyfile = tmp / "key"
    keyfile.write_text("")
    owner, visitor = [build("sysvipc", "musl"), "owner", keyfile], [build("sysvipc", "glibc"), "visitor", keyfile]
    native = _owner_and_visitor([str(a) for a in owner], [str(a) for a in visitor])
    guest = _owner_and_visitor(KM * owner_km + [str(a) for a in owner], KM * visitor_km + [str(a) for a in visitor])
    assert guest == native
    assert b"the segment says                              the visitor was here" in guest[0]


def test_shared_memory_counts_against_the_memory_limit():
    """--memory counts attached segments as it counts mappings."""
    prog = build("sysvipc", "musl")
    r = km("--memory", "64M", prog, "big", "128")
    assert r.returncode == 0 and r.text == "shmat of 128 MiB: ENOMEM\nnattch 0\nremoved 0\n", r.err
    compare([prog, "big", "16"], km_options=("--memory", "64M"))


def test_sysv_ipc_strace():
    r = km("--strace", build("sysvipc", "musl"), "big", "1")
    assert r.returncode == 0, r.err
    assert "shmget(0x0, 1048576, 0x380) = " in r.err and "shmat(" in r.err and "shmdt(" in r.err
    assert "internal error" not in r.err


@pytest.mark.parametrize("variant", STATIC)
def test_posix_message_queues(variant):
    """POSIX message queues (the host's, by name): attributes, priorities, timeouts,
    O_NONBLOCK, a forked child's message, read and poll of a queue, SIGEV_SIGNAL and
    SIGEV_THREAD notifications (the cookie's nested pointer, the netlink socket's
    descriptor), EINTR, hostile pointers.  LTP's mq_open01, mq_notify01-03,
    mq_timedsend01, mq_timedreceive01 and mq_unlink01 found every call ENOSYS."""
    native, guest = compare([build("mqueue", variant)])
    assert "its si_value                                         42" in guest.text
    assert "the thread's value                                   7" in guest.text
