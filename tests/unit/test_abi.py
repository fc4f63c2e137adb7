"""The ABI tables agree with the host's C headers."""

import re
from pathlib import Path

from kontain.abi import signals, syscalls

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


def test_syscall_numbers_match_headers():
    assert UNISTD.exists(), "linux-libc-dev is needed for this test"
    for m in re.finditer(r"#define __NR_(\w+) (\d+)", UNISTD.read_text()):
        name, nr = m.group(1), int(m.group(2))
        assert syscalls.NAMES[nr] == name, (nr, name)
        assert syscalls.NR[name] == nr


def test_well_known_numbers():
    assert syscalls.NR["read"] == 0 and syscalls.NR["exit_group"] == 231 and syscalls.NR["clone3"] == 435


def test_signal_names_and_defaults():
    assert signals.name(11) == "SIGSEGV" and signals.name(34) == "SIGRT2"
    assert signals.default_action(signals.SIGCHLD) == signals.IGNORE
    assert signals.default_action(signals.SIGSEGV) == signals.CORE
    assert signals.default_action(signals.SIGTERM) == signals.TERM


def test_sysv_ipc_values_match_headers(tmp_path):
    """The System V IPC flags and commands in abi/flags.py are the C library's (and MSG_NOSIGNAL, a
    socket flag of the same prefix)."""
    import subprocess

    from kontain.abi import flags

    names = [n for n in vars(flags) if n.startswith(("IPC_", "SHM", "SEM_", "MSG_"))]
    names += ["GETPID", "GETVAL", "GETALL", "GETNCNT", "GETZCNT", "SETVAL", "SETALL"]
    src = tmp_path / "ipc.c"
    src.write_text("#define _GNU_SOURCE\n#include <stdio.h>\n#include <sys/ipc.h>\n#include <sys/shm.h>\n"
                   "#include <sys/sem.h>\n#include <sys/msg.h>\n#include <sys/socket.h>\nint main(void) {\n"
                   + "".join(f'    printf("{n} %ld\\n", (long)({n}));\n' for n in names) + "    return 0;\n}\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "ipc"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "ipc")], check=True, capture_output=True, text=True).stdout
    said = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}
    assert len(names) > 30
    for n in names:
        assert said[n] == getattr(flags, n), n
