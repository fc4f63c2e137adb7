"""Every struct layout the monitor uses, checked against the C compiler: size and the
offset of each named field."""

import subprocess

import pytest

from kontain.abi import structs
from kontain.kvm import abi as kvm

# C spellings that differ from the kernel's names the layouts use
C_NAMES = {
    "struct kernel_sigaction": None,  # no libc header declares the kernel's sigaction
    "struct stat": {"__pad0": None, "__unused": None, "st_atime_nsec": "st_atim.tv_nsec",
                    "st_mtime_nsec": "st_mtim.tv_nsec", "st_ctime_nsec": "st_ctim.tv_nsec"},
    "struct sysinfo": {"pad": None, "_f": None},
    "struct utsname": {"domainname": "__domainname"},
    "struct signalfd_siginfo": {"__pad2": None, "__pad": None},
    "struct sigevent": {"sigev_notify_thread_id": "_sigev_un._tid", "_pad": None},
    "struct ipc_perm": {"key": "__key", "seq": "__seq", "__pad2": None, "__unused1": None, "__unused2": None},
    "struct shmid_ds": {"__unused4": None, "__unused5": None},
    "struct semid_ds": {"__unused1": None, "__unused2": None, "__unused3": None, "__unused4": None},
    "struct msqid_ds": {"msg_cbytes": "__msg_cbytes", "__unused4": None, "__unused5": None},
    "struct shminfo": {"__unused": None},
    "struct mq_attr": {"__pad": None},
    "struct kvm_dtable": {"padding": None},
    "struct kvm_fpu": {"pad1": None, "pad2": None},
    "struct kvm_msrs": {"pad": None},
    "struct kvm_enable_cap": {"pad": None},
}


def _layouts():
    return [s for s in structs.ALL + kvm.LAYOUTS if C_NAMES.get(s.cname, {}) is not None]


def _c_program(layouts) -> str:
    headers = sorted({s.header for s in layouts if s.header} | {"stdio.h", "stddef.h"})
    if any(h.startswith("asm/") for h in headers):
        headers.insert(0, "asm/signal.h")  # stack_t and sigset_t for asm/ucontext.h
    lines = [f"#include <{h}>" for h in headers] + ["int main(void) {"]
    for s in layouts:
        lines.append(f'    printf("{s.cname}|sizeof|%zu\\n", sizeof({s.cname}));')
        rename = C_NAMES.get(s.cname) or {}
        for f in s.names:
            c = rename.get(f, f)
            if c is None:
                continue
            lines.append(f'    printf("{s.cname}|{f}|%zu\\n", offsetof({s.cname}, {c}));')
    lines.append("    return 0;\n}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def compiler_says(tmp_path_factory):
    """Kernel <asm/...> headers clash with libc's (struct sigcontext, stack_t): they get
    a program of their own."""
    d = tmp_path_factory.mktemp("layouts")
    found = {}
    groups = {"libc": [s for s in _layouts() if not s.header.startswith("asm/")],
              "asm": [s for s in _layouts() if s.header.startswith("asm/")]}
    for name, layouts in groups.items():
        src = d / f"{name}.c"
        src.write_text(_c_program(layouts))
        exe = d / name
        subprocess.run(["gcc", "-o", str(exe), str(src)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
        found.update({tuple(line.split("|")[:2]): int(line.split("|")[2]) for line in out.splitlines()})
    return found


@pytest.mark.parametrize("layout", _layouts(), ids=lambda s: s.cname)
def test_layout_matches_c(layout, compiler_says):
    assert compiler_says[(layout.cname, "sizeof")] == layout.size  # (not "size": a field may be named so)
    rename = C_NAMES.get(layout.cname) or {}
    for f in layout.names:
        if rename.get(f, f) is not None:
            assert compiler_says[(layout.cname, f)] == layout.offsets[f], f


def test_kvm_run_offsets():
    src = """
#include <linux/kvm.h>
#include <stddef.h>
#include <stdio.h>
int main(void) {
    printf("%zu %zu %zu %zu %zu %zu\\n", offsetof(struct kvm_run, immediate_exit), offsetof(struct kvm_run, exit_reason),
           offsetof(struct kvm_run, io), offsetof(struct kvm_run, kvm_valid_regs),
           offsetof(struct kvm_run, kvm_dirty_regs), offsetof(struct kvm_run, s.regs.regs));
    return 0;
}"""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "r.c").write_text(src)
        subprocess.run(["gcc", "-o", f"{d}/r", f"{d}/r.c"], check=True)
        got = subprocess.run([f"{d}/r"], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in got] == [kvm.RUN_IMMEDIATE_EXIT, kvm.RUN_EXIT_REASON, kvm.RUN_EXIT_UNION,
                                      kvm.RUN_VALID_REGS, kvm.RUN_DIRTY_REGS, kvm.RUN_SYNC_REGS]


def test_ioctl_numbers():
    src = "#include <linux/kvm.h>\n#include <stdio.h>\nint main(void){printf(\"%lu %lu %lu %lu %lu %lu\\n\", " \
          "(unsigned long)KVM_SET_USER_MEMORY_REGION, (unsigned long)KVM_GET_SREGS, (unsigned long)KVM_SET_MSRS, " \
          "(unsigned long)KVM_ENABLE_CAP, (unsigned long)KVM_SET_CPUID2, (unsigned long)KVM_SET_XCRS);return 0;}"
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "i.c").write_text(src)
        subprocess.run(["gcc", "-o", f"{d}/i", f"{d}/i.c"], check=True)
        got = [int(x) for x in subprocess.run([f"{d}/i"], capture_output=True, text=True, check=True).stdout.split()]
    assert got == [kvm.KVM_SET_USER_MEMORY_REGION, kvm.KVM_GET_SREGS, kvm.KVM_SET_MSRS, kvm.KVM_ENABLE_CAP,
                   kvm.KVM_SET_CPUID2, kvm.KVM_SET_XCRS]
