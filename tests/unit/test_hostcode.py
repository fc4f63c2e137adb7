"""The committed host machine code (kontain/arch/x86_64/hostcode.py) is exactly what its
source assembles to."""

import subprocess

import pytest

from kontain.arch.x86_64 import hostcode


@pytest.mark.parametrize("name", sorted(hostcode.SOURCES))
def test_bytes_match_source(name, tmp_path):
    source, code = hostcode.SOURCES[name]
    src = tmp_path / "code.S"
    src.write_text(".text\n" + source)
    subprocess.run(["as", "--64", "-o", str(tmp_path / "o"), str(src)], check=True)
    subprocess.run(["objcopy", "-O", "binary", "--only-section", ".text", str(tmp_path / "o"), str(tmp_path / "bin")],
                   check=True)
    assert (tmp_path / "bin").read_bytes() == code


def test_run_notsc_is_called_with_the_gil_released():
    # (a plain CFuncPtr: ctypes releases the GIL around it, so that other threads run
    # while this one is in KVM_RUN; FUNCFLAG_PYTHONAPI would keep it)
    import _ctypes

    from kontain import native

    f = native.machine_code(hostcode.RUN_NOTSC, native.c_long, native.c_long, native.c_ulong)
    assert not f._flags_ & _ctypes.FUNCFLAG_PYTHONAPI
