"""Bad input gets one clear line and the shell's exit status (127 not found, 126 cannot
execute), never a Python traceback; a hostile ELF file is refused before it is mapped."""

import os

import pytest

from elfgen import BASE, elf
from kt import km

SEG = dict(type=1, flags=5, offset=0, vaddr=BASE, filesz=0x200, memsz=0x200, align=0x1000)


def write_exe(path, data, mode=0o755):
    path.write_bytes(data)
    path.chmod(mode)
    return path


def assert_one_line(r, status, words):
    assert r.returncode == status, (r.returncode, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("km: "), r.err
    assert "Traceback" not in r.err
    for w in words:
        assert w in lines[0], r.err


def test_minimal_valid_elf_runs(tmp):
    r = km(write_exe(tmp / "ok", elf()))
    assert r.returncode == 42, r.err


HOSTILE = {
    "empty": (b"", ["not an ELF"]),
    "text": (b"hello world\n", ["not an ELF"]),
    "magic only": (b"\x7fELF", ["truncated"]),
    "32-bit": (elf(cls=1), ["32-bit"]),
    "big-endian": (elf(data=2), ["big-endian"]),
    "aarch64": (elf(machine=183), ["AArch64"]),
    "relocatable": (elf(etype=1), ["relocatable"]),
    "core dump": (elf(etype=4), ["core dump"]),
    "bad phentsize": (elf(phentsize=32), ["program header size"]),
    "no program headers": (elf(phnum=0), ["number of program headers"]),
    "huge phnum": (elf(phnum=60000), ["number of program headers"]),
    "headers past end": (elf(phoff=1 << 20), ["past the end"]),
    "truncated header": (elf()[:40], ["truncated"]),
    "segment past end of file": (elf(segments=[dict(SEG, filesz=1 << 20, memsz=1 << 20)]), ["past the end"]),
    "filesz > memsz": (elf(segments=[dict(SEG, filesz=0x200, memsz=0x100)]), ["larger than memory"]),
    "misaligned segment": (elf(segments=[dict(SEG, vaddr=BASE + 3)]), ["congruent"]),
    "segment outside window": (elf(segments=[dict(SEG, vaddr=0x7F0000000000)], entry=0x7F0000000080),
                               ["outside the guest"]),
    "segment at zero": (elf(segments=[dict(SEG, vaddr=0)], entry=0x80), ["outside the guest"]),
    "absurd memsz": (elf(segments=[dict(SEG, memsz=1 << 62)]), ["absurd"]),
    "wrapping segment": (elf(segments=[dict(SEG, vaddr=(1 << 64) - 0x1000)]), ["absurd"]),
    "overlapping segments": (elf(segments=[SEG, dict(SEG, vaddr=BASE + 0x100, offset=0x100, filesz=0x100)]), ["overlaps"]),
    "unsorted segments": (elf(segments=[dict(SEG, vaddr=BASE + 0x10000), SEG]), ["overlaps or precedes"]),
    "entry outside segments": (elf(entry=0x12345678), ["entry point"]),
    "entry in data segment": (elf(segments=[dict(SEG, flags=6)]), ["entry point"]),
    "no loadable segments": (elf(segments=[dict(SEG, type=4)]), ["no loadable"]),
    "bad interpreter string": (elf(extra_phdrs=[(3, 4, 0, 0, 0, 0, 0, 1)]), ["PT_INTERP"]),
    "missing interpreter": (None, ["no such file"]),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_elf(name, tmp):
    data, words = HOSTILE[name]
    if data is None:  # a PT_INTERP naming a file that does not exist
        base = elf(extra_phdrs=[(3, 4, 0x200, 0, 0, 16, 16, 1)])
        data = base.ljust(0x200, b"\0") + b"/nonexistent/ld\0"
        status = 127
    else:
        status = 126
    r = km(write_exe(tmp / "bad", data))
    assert_one_line(r, status, words)


def test_missing_program():
    assert_one_line(km("/nonexistent/program"), 127, ["/nonexistent/program", "no such file"])


def test_command_not_found_in_path():
    assert_one_line(km("no-such-command-anywhere"), 127, ["command not found"])


def test_directory(tmp):
    assert_one_line(km(tmp), 126, ["is a directory"])


def test_not_executable(tmp):
    p = write_exe(tmp / "noexec", elf(), mode=0o644)
    assert_one_line(km(p), 126, ["permission denied"])


def test_not_a_regular_file():
    assert_one_line(km("/dev/null"), 126, ["not a regular file"])


def test_script_with_missing_interpreter(tmp):
    p = write_exe(tmp / "s.sh", b"#!/nonexistent/sh\necho hi\n")
    assert_one_line(km(p), 127, ["no such file"])


def test_no_kvm_device(monkeypatch):
    r = km("/bin/true", env={**os.environ, "KM_KVM_DEVICE": "/nonexistent/kvm"})
    assert_one_line(r, 1, ["/nonexistent/kvm", "KVM is not available"])


def test_kvm_permission_denied():
    # a read-only sysfs file refuses O_RDWR even to root: the same EACCES a user gets
    # from /dev/kvm without being in group kvm
    ro = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"
    assert os.path.exists(ro), "this test needs sysfs"
    r = km("/bin/true", env={**os.environ, "KM_KVM_DEVICE": ro})
    assert_one_line(r, 1, ["permission denied", "group kvm"])


def test_not_kvm_at_all(tmp):
    r = km("/bin/true", env={**os.environ, "KM_KVM_DEVICE": "/dev/null"})
    assert r.returncode == 1 and "Traceback" not in r.err and r.err.startswith("km: /dev/null"), r.err
