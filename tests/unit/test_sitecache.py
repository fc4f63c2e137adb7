"""kernel/sitecache.py: where proofs are kept, and what of a proofs file is believed."""

import os

from kontain.kernel import sitecache
from kontain.kernel.sitecache import SiteCache

KEY = (0xFE00, 0x1234, 39024, 1_700_000_000_000_000_000, 1_700_000_000_000_000_001)


def test_default_directory():
    """None for a direct start (nothing of km's in the program's $HOME); a server's own
    directory for its workers; KM_SITE_CACHE over both."""
    d = sitecache.default_directory
    assert d({b"HOME": b"/home/u", b"XDG_CACHE_HOME": b"/c"}) == ""
    assert d({b"HOME": b"/home/u"}, server="/run/user/1000/kontain") == "/run/user/1000/kontain"
    assert d({b"HOME": b"/home/u", b"KM_SITE_CACHE": b"/s"}, server="/r") == "/s"
    assert d({b"KM_SITE_CACHE": b"off"}, server="/r") == ""
    assert d({b"KM_SITE_CACHE": b""}) == ""


def test_kept_proofs_are_read_by_a_later_process(tmp_path):
    SiteCache(str(tmp_path)).keep(KEY, 0x4AA7, bytes.fromhex("4889ca"))
    SiteCache(str(tmp_path)).keep(KEY, 0x578E, bytes.fromhex("b827000000"))
    later = SiteCache(str(tmp_path))
    assert later.proof(KEY, 0x4AA7) == bytes.fromhex("4889ca")
    assert later.proof(KEY, 0x578E) == bytes.fromhex("b827000000")
    assert later.proof(KEY, 0x1000) is None
    assert later.proof(KEY[:-1] + (KEY[-1] + 1,), 0x4AA7) is None  # (the file changed: another name)
    d = tmp_path / f"sites-v{sitecache.VERSION}"
    assert d.stat().st_mode & 0o777 == 0o700
    (entries,) = d.iterdir()
    assert entries.stat().st_mode & 0o777 == 0o600
    assert entries.read_text() == "4aa7 4889ca\n578e b827000000\n"


def _entries(tmp_path, text: str, mode: int = 0o600):
    d = tmp_path / f"sites-v{sitecache.VERSION}"
    d.mkdir(mode=0o700, exist_ok=True)
    f = d / SiteCache._name(KEY)
    f.write_text(text)
    f.chmod(mode)
    return f


def test_what_is_not_an_entry_is_left_out(tmp_path):
    _entries(tmp_path, "10 90\nzz 90\n20 not-hex\n30\n40 " + "90" * 18 + "\n50 \n-60 90\n70 9090 extra\n80 b827000000")
    c = SiteCache(str(tmp_path))
    assert c.proof(KEY, 0x10) == b"\x90"
    assert c.proof(KEY, 0x80) == bytes.fromhex("b827000000")  # (the last line needs no newline)
    assert all(c.proof(KEY, o) is None for o in (0x20, 0x30, 0x40, 0x50, 0x70))


def test_only_the_users_own_unwritable_by_others(tmp_path):
    f = _entries(tmp_path, "10 90\n", 0o620)
    assert SiteCache(str(tmp_path)).proof(KEY, 0x10) is None
    f.chmod(0o600)
    f.parent.chmod(0o777)
    assert SiteCache(str(tmp_path)).proof(KEY, 0x10) is None
    c = SiteCache(str(tmp_path))
    c.keep(KEY, 0x20, b"\x90")  # (nothing written to such a directory)
    assert f.read_text() == "10 90\n"
    f.parent.chmod(0o700)
    assert SiteCache(str(tmp_path)).proof(KEY, 0x10) == b"\x90"
    if os.geteuid() == 0:  # (another user's file, as root can make one)
        os.chown(f, 65534, 65534)
        assert SiteCache(str(tmp_path)).proof(KEY, 0x10) is None


def test_a_symlink_is_not_followed(tmp_path):
    other = tmp_path / "elsewhere"
    other.write_text("10 90\n")
    d = tmp_path / f"sites-v{sitecache.VERSION}"
    d.mkdir(mode=0o700)
    (d / SiteCache._name(KEY)).symlink_to(other)
    c = SiteCache(str(tmp_path))
    assert c.proof(KEY, 0x10) is None
    c.keep(KEY, 0x20, b"\x90")
    assert other.read_text() == "10 90\n"


def test_an_unusable_directory_is_no_cache(tmp_path):
    (tmp_path / "file").write_text("")
    c = SiteCache(str(tmp_path / "file"))  # (its sites-v1 cannot be made)
    c.keep(KEY, 0x10, b"\x90")
    assert c.proof(KEY, 0x10) == b"\x90"  # (this process remembers what it proved)
    assert SiteCache(str(tmp_path / "file")).proof(KEY, 0x10) is None
