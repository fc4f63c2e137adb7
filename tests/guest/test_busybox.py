"""Debian's static busybox: every applet that does not fork, same output and status as
natively."""

import pytest

from kt import compare, km, run

BB = "/bin/busybox"

TEXT = "banana\napple\ncherry\napple\nbanana\ndate\n" * 3 + "zeta 1\nalpha 22\nmid 333\n"


@pytest.fixture
def data(tmp_path):
    (tmp_path / "fruit.txt").write_text(TEXT)
    (tmp_path / "nums.txt").write_text("".join(f"{i * 7 % 13} {i}\n" for i in range(200)))
    (tmp_path / "csv.txt").write_text("a,b,c\n1,2,3\n4,5,6\n")
    sub = tmp_path / "tree" / "sub"
    sub.mkdir(parents=True)
    (sub / "deep.txt").write_text("deep\n")
    (tmp_path / "tree" / "top.c").write_text("int main;\n")
    (tmp_path / "bin.dat").write_bytes(bytes(range(256)) * 4)
    return tmp_path


APPLETS = [
    ["cat", "fruit.txt", "csv.txt"],
    ["cat", "-n", "fruit.txt"],
    ["ls", "-1", "tree"],
    ["ls", "-la", "--color=never", "tree/sub"],
    ["ls", "-R", "tree"],
    ["sort", "fruit.txt"],
    ["sort", "-n", "-k1,1", "-k2,2r", "nums.txt"],
    ["sort", "-u", "-r", "fruit.txt"],
    ["uniq", "-c", "fruit.txt"],
    ["wc", "fruit.txt", "nums.txt"],
    ["wc", "-l", "-w", "-c", "fruit.txt"],
    ["sed", "-e", "s/an/AN/g", "-e", "/cherry/d", "fruit.txt"],
    ["sed", "-n", "2,5p", "nums.txt"],
    ["awk", "-F,", "{ s += $2 } END { print s, NR }", "csv.txt"],
    ["awk", "{ n[$1]++ } END { for (k in n) c++; print c }", "fruit.txt"],
    ["grep", "-n", "an", "fruit.txt"],
    ["grep", "-c", "-v", "apple", "fruit.txt"],
    ["grep", "-r", "deep", "tree"],
    ["grep", "nomatch", "fruit.txt"],
    ["find", "tree", "-name", "*.txt"],
    ["find", "tree", "-type", "d"],
    ["md5sum", "fruit.txt", "bin.dat"],
    ["sha1sum", "bin.dat"],
    ["sha256sum", "fruit.txt", "bin.dat"],
    ["sha512sum", "bin.dat"],
    ["od", "-A", "x", "-t", "x1z", "-N", "64", "bin.dat"],
    ["seq", "1", "3", "20"],
    ["seq", "-s", ",", "10"],
    ["expr", "3", "*", "7", "+", "1"],
    ["expr", "length", "kontain"],
    ["expr", "1", "=", "2"],
    ["printf", "%s=%d %x %5.2f\\n", "a", "42", "255", "3.14159"],
    ["tr", "a-z", "A-Z"],
    ["cut", "-d,", "-f2,3", "csv.txt"],
    ["head", "-n", "3", "fruit.txt"],
    ["tail", "-n", "2", "nums.txt"],
    ["tail", "-c", "20", "fruit.txt"],
    ["date", "-u", "-d", "@1700000000", "+%Y-%m-%d %H:%M:%S"],
    ["stat", "-c", "%s %F %a", "fruit.txt", "tree"],
    ["dd", "if=bin.dat", "of=/dev/stdout", "bs=100", "count=3", "status=none"],
    ["basename", "/a/b/c.txt", ".txt"],
    ["dirname", "/a/b/c.txt"],
    ["echo", "-e", "tab\\tnewline\\n"],
    ["true"],
    ["false"],
    ["test", "-d", "tree"],
    ["test", "-f", "nope"],
    ["yes", "--help"],
    ["rev", "fruit.txt"],
    ["nl", "csv.txt"],
    ["fold", "-w", "5", "fruit.txt"],
    ["comm", "fruit.txt", "fruit.txt"],
    ["cmp", "fruit.txt", "csv.txt"],
    ["diff", "fruit.txt", "csv.txt"],
    ["xxd", "-l", "48", "bin.dat"],
    ["hexdump", "-C", "-n", "48", "bin.dat"],
    ["base64", "csv.txt"],
    ["factor", "600851475143"],
    ["sum", "bin.dat"],
    ["cksum", "bin.dat"],
    ["realpath", "tree/sub/../top.c"],
    ["readlink", "-f", "tree/sub"],
    ["uname", "-s", "-m"],
    ["id", "-u"],
    ["env"],
    ["pwd"],
    ["du", "-s", "-k", "tree"],
    ["tac", "csv.txt"],
    ["shuf", "-i", "1-1", "-n", "1"],
    ["strings", "-n", "3", "fruit.txt"],
    ["bc"],
    ["dc", "-e", "2 64 ^ p"],
    ["sleep", "0.05"],
    ["nonexistent-applet"],
]


@pytest.mark.parametrize("args", APPLETS, ids=lambda a: " ".join(a)[:40])
def test_applet(args, data):
    stdin = b"hello busybox\nsecond line\n" if args[0] == "tr" else b"2^20+3\n" if args[0] == "bc" else None
    compare([BB, *args], cwd=data, stdin=stdin)


def test_gzip_round_trip(data):
    orig = (data / "nums.txt").read_bytes()
    gz = km(BB, "gzip", "-c", "nums.txt", cwd=data)
    assert gz.returncode == 0, gz.err
    (data / "n.gz").write_bytes(gz.stdout)
    back = km(BB, "gunzip", "-c", "n.gz", cwd=data)
    assert back.returncode == 0 and back.stdout == orig
    native = run([BB, "gunzip", "-c", "n.gz"], cwd=data)
    assert native.stdout == orig


def test_tar_round_trip(data):
    r = km(BB, "tar", "cf", "t.tar", "tree", cwd=data)
    assert r.returncode == 0, r.err
    compare([BB, "tar", "tf", "t.tar"], cwd=data)
    out = data / "out"
    out.mkdir()
    r = km(BB, "tar", "xf", "../t.tar", cwd=out)
    assert r.returncode == 0, r.err
    assert (out / "tree" / "sub" / "deep.txt").read_text() == "deep\n"


def test_sort_large_input(data):
    big = "".join(f"{(i * 7919) % 100003}\n" for i in range(100000))
    (data / "big.txt").write_text(big)
    compare([BB, "sort", "-n", "big.txt"], cwd=data)
    compare([BB, "md5sum", "big.txt"], cwd=data)


def test_copy_and_move(data):
    r1 = km(BB, "cp", "-r", "tree", "copy", cwd=data)
    r2 = km(BB, "mv", "copy", "moved", cwd=data)
    r3 = km(BB, "rm", "-r", "moved/sub", cwd=data)
    assert (r1.returncode, r2.returncode, r3.returncode) == (0, 0, 0)
    assert (data / "moved" / "top.c").exists() and not (data / "moved" / "sub").exists()
    r = km(BB, "mkdir", "-p", "a/b/c", cwd=data)
    assert r.returncode == 0 and (data / "a" / "b" / "c").is_dir()
    r = km(BB, "ln", "-s", "fruit.txt", "link", cwd=data)
    assert r.returncode == 0 and (data / "link").is_symlink()
    r = km(BB, "touch", "-d", "2001-02-03 04:05:06", "fruit.txt", cwd=data)
    assert r.returncode == 0
    compare([BB, "stat", "-c", "%y", "fruit.txt"], cwd=data)
    r = km(BB, "chmod", "600", "fruit.txt", cwd=data)
    assert r.returncode == 0 and (data / "fruit.txt").stat().st_mode & 0o777 == 0o600
