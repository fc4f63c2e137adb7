"""krun's pieces that need no container: its command line, the configuration it hands
crun, finding a program in a container's view, its log lines, ``features``."""

import json
import os
import resource

import pytest

from kontain.kernel.fdreserve import guest_limit
from kontain.oci import KrunError, cli, config, features, programs
from kontain.oci.log import Log

COMMAND = ["/dev/.kontain/lib/ld.so", "--library-path", "/dev/.kontain/lib", "/dev/.kontain/bin/python3", "-I", "-S",
           "/dev/.kontain/km"]


def test_options_keep_what_crun_gets():
    o = cli.Options("create", ["--bundle", "/b", "--pid-file=/p", "-f", "c.json", "--no-pivot", "id"])
    assert o.positional == ["id"]
    assert o.get("--bundle", "-b") == "/b" and o.get("--config", "-f") == "c.json"
    assert o.argv(without=("--config", "-f")) == ["--bundle=/b", "--pid-file=/p", "--no-pivot"]


def test_exec_options_stop_at_the_container():
    o = cli.Options("exec", ["-e", "A=1", "--tty", "--detach", "id", "sh", "-c", "--root x"])
    assert o.positional == ["id"] and o.rest == ["sh", "-c", "--root x"]
    assert o.argv() == ["-e", "A=1", "--tty", "--detach"]
    with pytest.raises(KrunError):
        cli.Options("exec", ["--process"])


def test_global_options():
    k = cli.Krun(["--root", "/r", "--log=/l", "--log-format", "json", "--systemd-cgroup", "--debug", "state", "x"])
    assert k.crun_global == ["--root=/r", "--log=/l", "--log-format=json", "--systemd-cgroup", "--debug"]
    assert (k.command, k.args, k.log.path, k.log.format) == ("state", ["x"], "/l", "json")
    assert cli.Krun(["list"]).root == cli.default_root()
    with pytest.raises(KrunError):
        cli.Krun(["--bogus", "list"])


def test_the_container_gets_kvm_the_runtime_and_km():
    cfg = {"process": {"args": ["sh", "-c", "x"], "env": ["PATH=/bin", "LD_PRELOAD=/x.so", "GLIBC_TUNABLES=a"]},
           "mounts": [{"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}], "linux": {}}
    dest = config.mount_point(cfg)
    assert dest == "/dev/.kontain"
    config.container(cfg, COMMAND, "/var/cache/kontain/runtime-x", dest)
    assert cfg["process"]["args"] == [*COMMAND, "-e", "LD_PRELOAD=/x.so", "-e", "GLIBC_TUNABLES=a", "--", "sh", "-c",
                                      "x"]
    assert cfg["process"]["env"] == ["PATH=/bin"]
    st = os.stat("/dev/kvm") if os.path.exists("/dev/kvm") else None
    kvm = [d for d in cfg["linux"]["devices"] if d["path"] == "/dev/kvm"]
    assert len(kvm) == 1 and kvm[0]["fileMode"] == 0o666
    if st:
        assert (kvm[0]["major"], kvm[0]["minor"]) == (os.major(st.st_rdev), os.minor(st.st_rdev))
    assert cfg["linux"]["resources"]["devices"][-1]["allow"] is True
    assert cfg["mounts"][-1] == {"destination": "/dev/.kontain", "type": "bind", "source": "/var/cache/kontain/runtime-x",
                                 "options": ["rbind", "ro", "nosuid", "nodev"]}
    assert "annotations" not in cfg  # (the container's state and its hooks show the configuration's own)
    assert config.km_command(cfg) == COMMAND  # (krun exec's)
    cfg["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
                                                                                "action": "SCMP_ACT_ALLOW"}]}
    cfg["process"]["args"] = ["true"]
    config.container(cfg, COMMAND, "/var/cache/kontain/runtime-x", dest)
    assert config.km_command(cfg) == [*COMMAND, "--deny", "openat2=1", "--deny", "clone3=1", "--deny", "faccessat2=1"]
    assert config.km_command({"process": {"args": ["sh", "--", "x"]}}) is None
    assert config.km_command(None) is None  # (no such container)


def test_the_seccomp_profile_allows_what_km_needs_for_itself():
    """containerd's default profile allows process_vm_readv/writev only with
    CAP_SYS_PTRACE, older ones deny openat2, clone3 and faccessat2: km gets them (the
    last two as ENOSYS, for the C library's fallbacks), the program gets the profile's
    verdict through km --deny; every other rule stays as it was."""
    deny = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "process_vm_readv"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["process_vm_writev", "faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    assert config.seccomp(deny) == ["--deny", "openat2=1", "--deny", "clone3=1", "--deny", "faccessat2=13"]
    assert deny["syscalls"] == [
        {"names": ["read", "process_vm_readv"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["process_vm_writev", "openat2"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone3", "faccessat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    allow = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "process_vm_readv"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["clone3"], "action": "SCMP_ACT_KILL_PROCESS"}]}
    assert config.seccomp(allow) == ["--deny", "clone3=kill"]
    assert allow["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                                 {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    by_args = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["clone3", "openat2", "faccessat2", "process_vm_readv", "process_vm_writev"],
         "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_GE"}]}]}
    unchanged = json.loads(json.dumps(by_args))
    assert config.seccomp(by_args) == [] and by_args == unchanged


def test_km_deny_gives_the_program_the_profiles_verdict():
    from kontain.cli import options

    o = options.parse(["--deny", "clone3=1", "--deny=openat2=kill", "prog"])
    assert o.deny == [(435, 1), (437, 0)]
    for bad in ("clone3", "clone3=", "nosuchcall=1", "clone3=x", "clone3=0", "clone3=99999"):
        with pytest.raises(options.UsageError):
            options.parse(["--deny", bad, "prog"])


def test_without_a_dev_of_its_own_the_runtime_goes_to_the_root():
    assert config.mount_point({"mounts": []}) == "/.kontain"


def test_the_program_sees_the_descriptor_limit_it_was_given():
    own = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for hard in (64, 1024, 4096, 20000, own):
        top = config.nofile_hard(hard)
        assert guest_limit(top) == hard or top == hard  # (raised only as far as crun may)
        assert top <= max(own, hard) or os.geteuid() == 0
    proc = config.process({"args": ["x"], "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 64, "soft": 64}]}, COMMAND)
    assert proc["rlimits"][0]["soft"] == 64 and guest_limit(proc["rlimits"][0]["hard"]) == 64


def test_the_address_space_limit_goes_to_km():
    """RLIMIT_AS bounds the program (km --rlimit), not km's process, which needs room for
    the guest window: crun sets krun's own limit."""
    proc = config.process({"args": ["x"], "rlimits": [{"type": "RLIMIT_AS", "hard": 2 << 30, "soft": 1 << 30}]},
                          COMMAND)
    assert proc["args"] == [*COMMAND, "--rlimit", f"AS={1 << 30}:{2 << 30}", "--", "x"]
    own = resource.getrlimit(resource.RLIMIT_AS)[1]
    own = (1 << 64) - 1 if own == resource.RLIM_INFINITY else own
    assert proc["rlimits"] == [{"type": "RLIMIT_AS", "hard": own, "soft": own}]
    assert config.km_command({"process": proc, "mounts": []}) is None  # (COMMAND's km is under /dev/.kontain)
    proc["args"][len(COMMAND) - 1] = "/.kontain/km"
    assert config.km_command({"process": proc, "mounts": []}) == [*COMMAND[:-1], "/.kontain/km"]


def test_a_process_without_arguments_is_left_to_crun():
    assert config.process({"args": []}, COMMAND) == {"args": []}


def _tree(tmp_path):
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "busybox").write_text("")
    os.chmod(root / "bin" / "busybox", 0o755)
    (root / "bin" / "sh").symlink_to("busybox")
    (root / "usr").mkdir()
    (root / "usr" / "bin").symlink_to("/bin")  # absolute: the container's /bin
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("")
    (root / "loop").symlink_to("loop")
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "tool").write_text("")
    os.chmod(vol / "tool", 0o755)
    return root, vol


def test_programs_are_found_in_the_containers_view(tmp_path):
    root, vol = _tree(tmp_path)
    cfg = {"root": {"path": str(root)}, "mounts": [
        {"destination": "/opt", "type": "bind", "source": str(vol)},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]}
    view = programs.View.of_config(cfg, str(tmp_path))
    assert view.resolve("/usr/bin/sh") == str(root / "bin" / "busybox")
    assert view.resolve("/opt/tool") == str(vol / "tool")
    env = ["PATH=/usr/bin:/opt"]
    for args in (["sh"], ["/usr/bin/sh"], ["tool"], ["bin/sh"], ["/tmp/made-later"]):
        programs.check(view, {"args": args, "env": env, "cwd": "/"})
    cases = {"/nonexist": "executable file `/nonexist` not found", "nonexist": "executable file `nonexist` not found",
             "/etc/passwd": "Permission denied", "/etc": "Operation not permitted", "/loop": "not found"}
    for program, message in cases.items():
        with pytest.raises(KrunError, match=message) as e:
            programs.check(view, {"args": [program], "env": env}, 255)
        assert e.value.status == 255
    with pytest.raises(KrunError, match="not found"):  # crun has no default PATH
        programs.check(view, {"args": ["sh"], "env": []})


def test_log_lines(tmp_path, capfd):
    path = tmp_path / "log.json"
    Log(str(path), "json").error("what: why (what to do)")
    entry = json.loads(path.read_text())
    assert entry["level"] == "error" and entry["msg"] == "krun: what: why (what to do)" and entry["time"].endswith("Z")
    assert capfd.readouterr().err == "krun: what: why (what to do)\n"
    Log(str(tmp_path / "log.txt")).error("plain")
    assert (tmp_path / "log.txt").read_text() == "krun: plain\n"


def test_features():
    f = json.loads(features.text())
    assert f["ociVersionMin"] == "1.0.0" and set(features.HOOKS) <= set(f["hooks"])
    assert f["linux"]["seccomp"]["enabled"] and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]


def test_usage_errors_are_one_line(capfd):
    assert cli.main(["frobnicate"]) == 1
    assert capfd.readouterr().err == "krun: unknown command frobnicate (see krun --help)\n"
    assert cli.main(["create", "a", "b"]) == 1  # (without an id, krun hands create to crun: test_krun.py)
    assert capfd.readouterr().err == "krun: `create` requires a maximum of 1 arguments\n"


def test_the_documented_configuration_is_the_tested_one():
    """docs/containers.md's containerd section is deploy/kubernetes/containerd.toml's, which
    the containerd and CRI tests load as it is (tests/oci/kit.py); its Podman drop-in is the
    one tests/oci/test_podman.py writes."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "containers.md").read_text()
    blocks = [b.split("```", 1)[0] for b in doc.split("```toml\n")[1:]]
    snippet = [line for line in (root / "deploy" / "kubernetes" / "containerd.toml").read_text().splitlines()
               if line and not line.startswith("#")]
    assert "\n".join(snippet) + "\n" in blocks
    podman = (root / "tests" / "oci" / "test_podman.py").read_text()
    assert any(b.startswith("[engine.runtimes]\nkontain = [") for b in blocks)
    assert "[engine.runtimes]\\nkontain = [" in podman


def test_who_crun_gives_the_standard_descriptors_to():
    """oci/stdio.py leaves a device node alone only when crun would not change its owner:
    that takes knowing the owner, unmapped."""
    plain = {"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}
    assert cli.stdio_owner({"user": {"uid": 1000, "gid": 5}}, plain) == (1000, 5)
    assert cli.stdio_owner({"user": {}}, plain) == (0, 0)
    assert cli.stdio_owner({"user": {"uid": "x"}}, plain) is None
    assert cli.stdio_owner({"user": {"uid": 1000}}, {"linux": {"namespaces": [{"type": "user"}]}}) is None
    assert cli.stdio_owner(None, plain, "1000:7") == (1000, 7)
    assert cli.stdio_owner(None, plain, "1000") == (1000, 0)
    assert cli.stdio_owner(None, plain, "name") is None
    assert cli.stdio_owner(None, plain, None) is None  # (exec without --user: not guessed)
    assert cli.stdio_owner(None, None, "0:0") == (0, 0)


def test_standard_descriptors_on_private_device_nodes(tmp_path):
    """A device node on a standard descriptor is replaced by a private node of the same
    device (dups stay one open file); pipes, and nodes already the owner's, stay."""
    import stat
    import subprocess
    import sys

    if os.geteuid() != 0:
        pytest.fail("needs root (mknod)", pytrace=False)
    node = tmp_path / "null"
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(node, 0o666)
    probe = (f"import os, sys; from kontain.oci import stdio; owner = eval(sys.argv[1]); "
             f"r = stdio.protect({str(tmp_path / 'state')!r}, owner); "
             f"s = [os.fstat(i) for i in (0, 1, 2)]; os.fchown(1, 1000, 1000); "
             f"print((r, [(x.st_ino, x.st_rdev, oct(x.st_mode)) for x in s], os.listdir({str(tmp_path / 'state')!r}), "
             f"os.read(0, 10)), file=sys.stderr)")

    def run(owner):
        with open(node, "r+b") as f:
            r = subprocess.run([sys.executable, "-c", probe, owner], stdin=f, stdout=f, stderr=subprocess.PIPE,
                               text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stderr
    seen = run("(1000, 1000)")
    ino = os.stat(node).st_ino
    replaced, fds, listed, data = eval(seen)
    assert replaced == [0, 1] and fds[0] == fds[1] and fds[0][0] != ino and listed == [] and data == b""
    assert fds[0][1:] == (os.makedev(1, 3), oct(stat.S_IFCHR | 0o666)) and fds[2][1] == 0  # (stderr: a pipe)
    assert (os.stat(node).st_uid, os.stat(node).st_gid) == (0, 0)
    assert eval(run("(0, 0)"))[0] == []
    assert (os.stat(node).st_uid, os.stat(node).st_gid) == (1000, 1000)  # (left as it was: the probe chowned it)


def test_what_counts_as_a_version():
    """krun looks for the program only in a configuration with a version (cli._a_version):
    crun refuses the others first, with its own message."""
    assert all(cli._a_version(v) for v in ("1.0.0", "1.2.0", "1.0.2-dev", "0.1.0", "10.0"))
    assert not any(cli._a_version(v) for v in ("invalid", "", None, 1, "1", "1.", "v1.0.0", ".1"))
