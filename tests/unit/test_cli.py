"""km's command line."""

import pytest

from kontain.cli.options import Options, UsageError, _size, parse


def test_program_and_args():
    o = parse(["--strace", "-e", "A=1", "prog", "-x", "--strace"])
    assert isinstance(o, Options)
    assert o.strace and o.env == ["A=1"] and o.program == "prog" and o.args == ["prog", "-x", "--strace"]


def test_double_dash():
    o = parse(["--", "-weird-name"])
    assert o.program == "-weird-name"


def test_sizes():
    assert _size("512M") == 512 << 20 and _size("2g") == 2 << 30 and _size("1GiB") == 1 << 30
    with pytest.raises(UsageError):
        _size("lots")


@pytest.mark.parametrize("argv", [[], ["--bogus", "x"], ["-e"], ["-e", "NOEQUALS", "x"], ["--memory", "x", "p"]])
def test_usage_errors(argv):
    with pytest.raises(UsageError):
        parse(argv)


def test_help_and_version(capsys):
    assert parse(["--help"]) == 0
    assert "usage: km" in capsys.readouterr().out
    assert parse(["-V"]) == 0
    assert "kontain" in capsys.readouterr().out


def test_env_file(tmp_path):
    f = tmp_path / "env"
    f.write_text("# comment\nA=1\n\nB=two words\n")
    o = parse(["--env-file", str(f), "prog"])
    assert o.env == ["A=1", "B=two words"]
