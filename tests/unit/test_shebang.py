"""`#!` lines (loader/exec.py) as Linux 6.x's binfmt_script reads them: from the first
BINPRM_BUF_SIZE (256) bytes, the interpreter is the first word after any spaces and
tabs, and the rest of the line, trimmed of spaces and tabs, is ONE argument; only space
and tab separate (a CR stays in), a NUL ends the line, a line not ended within the
buffer is cut before its 256th byte, and a line with no interpreter, or one whose name
the buffer cuts, is ENOEXEC.  Every expectation here was checked with execve on a 6.18
kernel."""

import os
import sys

import pytest

from kontain.loader.exec import _parse_shebang, resolve
from kontain.loader.load import ExecError

ENOEXEC = 8
SH = b"/bin/sh"


@pytest.mark.parametrize("line, interp, arg", [
    (b"#!/bin/sh\n", SH, None),
    (b"#!/bin/sh -e\n", SH, b"-e"),
    (b"#!/bin/sh  -a  b\t c \t\necho\n", SH, b"-a  b\t c"),  # one argument, inner whitespace kept
    (b"#! \t/bin/sh\t-a\n", SH, b"-a"),
    (b"#!/bin/sh -e\r\n", SH, b"-e\r"),  # the CR is part of the argument
    (b"#!/bin/sh", SH, None),  # no newline at the end of the file
    (b"#!/bin/sh -x", SH, b"-x"),
    (b"#!/bin/sh\n" + b"x" * 1000, SH, None),
])
def test_interpreter_and_argument(line, interp, arg):
    assert _parse_shebang(line) == (os.fsdecode(interp), arg)


def test_an_empty_name_is_eacces():
    """(The file holds "#!" and nothing else, or a NUL right after: the name is empty.)"""
    for line in (b"#!", b"#!\0\n", b"#! \0"):
        with pytest.raises(ExecError) as e:
            _parse_shebang(line)
        assert e.value.errno == 13, line


@pytest.mark.parametrize("line", [b"#!\n", b"#!   \t \n", b"#!" + b" " * 300 + b"\n/bin/sh\n"])
def test_no_interpreter_is_enoexec(line):
    with pytest.raises(ExecError) as e:
        _parse_shebang(line)
    assert e.value.errno == ENOEXEC


def test_a_long_line_truncates_the_argument():
    head = b"#!/bin/sh " + b"A" * 300 + b"\n"
    interp, arg = _parse_shebang(head)
    assert interp == "/bin/sh" and 240 <= len(arg) < 256 and set(arg) == {ord("A")}


def test_a_long_line_ends_before_the_last_byte_of_the_buffer():
    head = b"#!/bin/sh " + b"A" * 300 + b"\n"
    assert _parse_shebang(head)[1] == b"A" * (255 - len(b"#!/bin/sh "))


def test_an_interpreter_name_the_buffer_cuts_is_enoexec():
    try:
        _parse_shebang(b"#!/" + b"a" * 300 + b"\n")
    except ExecError as e:
        assert e.errno == ENOEXEC
    else:
        raise AssertionError("accepted")


def test_a_cr_after_the_interpreter_is_part_of_its_name():
    assert _parse_shebang(b"#!/bin/sh\r\n") == ("/bin/sh\r", None)


@pytest.mark.parametrize("line, want", [(b"#!/bin/sh\0junk\n", ("/bin/sh", None)),
                                        (b"#!/bin/sh -e\0x\n", ("/bin/sh", b"-e"))])
def test_a_nul_ends_the_line(line, want):
    assert _parse_shebang(line) == want


@pytest.fixture
def script(tmp_path):
    def make(text: bytes):
        p = tmp_path / "s"
        p.write_bytes(text)
        p.chmod(0o755)
        return str(p)
    return make


INTERP = os.path.realpath(sys.executable)


def run(path):
    prog = resolve(path, [b"argv0", b"x"])
    os.close(prog.fd)
    return prog.path, prog.argv


def test_resolve_builds_argv_as_binfmt_script(script):
    s = script(b"#!" + INTERP.encode() + b" -u  -B\n")
    assert run(s) == (INTERP, [INTERP.encode(), b"-u  -B", s.encode(), b"x"])
    s = script(b"#!" + INTERP.encode())
    assert run(s) == (INTERP, [INTERP.encode(), s.encode(), b"x"])


def test_a_trailing_blank_without_newline_gives_an_empty_argument(script):
    s = script(b"#!" + INTERP.encode() + b" ")
    assert run(s) == (INTERP, [INTERP.encode(), b"", s.encode(), b"x"])


def test_a_nul_after_the_interpreter_does_not_crash(script):
    s = script(b"#!" + INTERP.encode() + b"\0junk\n")
    assert run(s) == (INTERP, [INTERP.encode(), s.encode(), b"x"])
