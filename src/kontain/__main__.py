"""python -m kontain: the same as km."""

from kontain.cli.main import entry

entry()
