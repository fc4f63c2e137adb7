"""The bundle of km's start-up modules (kontain/bundle.py): served when current, ignored
when a source changed since it was written; km runs from it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kontain

SRC = Path(kontain.__file__).resolve().parent.parent

CHECK = """
import sys
from kontain import bundle
print(bundle.install())
import kontain.kernel.process, kontain.syscalls.net
print(type(sys.modules["kontain.kernel.process"].__loader__).__name__)
print(type(sys.modules["kontain.syscalls.net"].__loader__).__name__)
print(sys.modules["kontain.kernel.process"].__file__)
"""


def _python(src: Path, code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return r.stdout.split()


def test_served_when_current_ignored_when_stale(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SRC / "kontain", src / "kontain", copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("km-bundle.*"))
    assert _python(src, CHECK)[0] == "False"  # none yet
    subprocess.run([sys.executable, "-m", "kontain.bundle"], env={**os.environ, "PYTHONPATH": str(src)}, check=True,
                   capture_output=True)
    ok, process_loader, net_loader, process_file = _python(src, CHECK)
    assert (ok, process_loader) == ("True", "_Loader")
    assert net_loader == "SourceFileLoader"  # imported at first use: not in the bundle
    assert process_file == str(src / "kontain" / "kernel" / "process.py")
    edited = src / "kontain" / "errors.py"
    edited.write_text(edited.read_text() + "\n")
    assert _python(src, CHECK)[:2] == ["False", "SourceFileLoader"]
