"""Shells and process trees inside VMs: busybox sh and Debian's dash running scripts with
pipelines, redirections, subshells, command substitution, background jobs, traps,
here-documents, xargs and find -exec; every process a km of its own."""

import pytest

from kt import PROGRAMS, compare

SHELLS = ["/bin/busybox sh", "/bin/dash"]


@pytest.mark.parametrize("shell", SHELLS)
def test_script(shell):
    native, guest = compare([*shell.split(), PROGRAMS / "script.sh"])
    assert guest.returncode == 7


SNIPPETS = {
    "pipeline": "seq 1 200 | grep 7 | sort -r | head -3 | tr '\\n' ' '",
    "redirections": "echo out > $D/f; echo more >> $D/f; cat < $D/f; ls $D/nope 2>/dev/null || echo missing",
    "subshells": "(cd /; pwd); pwd | grep -q / && echo same-dir; (exit 4); echo $?",
    "substitution": "a=$(echo $(echo inner) outer); echo \"[$a]\"; echo `echo backticks`",
    "background": "sleep 0.2 & p=$!; echo started; wait $p; echo waited $?",
    "traps": "trap 'echo exiting' EXIT; trap 'echo got TERM' TERM; kill -TERM $$; echo after",
    "heredoc": "cat <<EOF\nline $((1+2))\n  indented\nEOF",
    "xargs": "printf 'a\\nb\\nc\\n' | xargs -n2 echo pair",
    "find-exec": "mkdir -p $D/t/u; touch $D/t/x.c $D/t/u/y.c; find $D/t -name '*.c' -exec basename {} \\; | sort",
    "exit-status": "false | true; echo $?; ! false; echo $?; sh -c 'kill -9 $$'; echo $?",
    "functions": "f() { echo \"f($1)\"; return 2; }; f x; echo $?; local_test() { local v=1; echo $v; }; local_test",
    "while-read": "printf '1 2\\n3 4\\n' | while read a b; do echo $((a+b)); done",
}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippet(shell, name, tmp):
    script = SNIPPETS[name].replace("$D", str(tmp))
    compare([*shell.split(), "-c", script], env={"PATH": "/usr/bin:/bin", "HOME": str(tmp)})


def test_busybox_applets_reexecute_themselves():
    """busybox runs its applets by re-executing /proc/self/exe: that must be busybox."""
    compare(["/bin/busybox", "sh", "-c", "busybox sh -c 'echo nested; exit 3'; echo $?; env A=1 sh -c 'echo A=$A'"])
