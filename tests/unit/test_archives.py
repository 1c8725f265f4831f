"""Safe extraction of untrusted archives (atlaskit.data.archives) and `atlaskit data unpack`.

Every malicious archive is built here with zipfile/tarfile; each must be refused with a DataError
naming the archive and the member, write nothing outside the destination, and leave no
destination (nor a temporary folder) behind.
"""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from atlaskit import cli
from atlaskit.data.archives import safe_extract
from atlaskit.errors import DataError

GOOD = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 10, "sub/deeper/c.csv": b"x,y\n1,2\n"}
TAR_MODES = {".tar": "w", ".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz"}


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def tar_file(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            tf.addfile(info, data)
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def assert_nothing_left(tmp_path: Path, dest: Path, before: set[Path]) -> None:
    """No destination, no temporary sibling, no file created anywhere else under tmp_path."""
    assert not dest.exists()
    after = set(tmp_path.rglob("*"))
    assert after == before, f"new paths: {sorted(after - before)}"


def refused(tmp_path: Path, archive: Path, match: str, **limits) -> DataError:
    dest = tmp_path / "out" / "dest"
    before = set(tmp_path.rglob("*"))
    with pytest.raises(DataError, match=match) as info:
        safe_extract(archive, dest, **limits)
    assert str(archive) in str(info.value)
    after = set(tmp_path.rglob("*")) - before
    # only the (empty) parent folder may have been created; no dest, no temporary folder
    assert all(p == tmp_path / "out" for p in after), sorted(after)
    assert not dest.exists()
    return info.value


# --------------------------------------------------------------------------------------------------
# good archives


@pytest.mark.parametrize("suffix", [".zip", *TAR_MODES])
def test_good_archive_round_trips(tmp_path, suffix):
    archive = tmp_path / f"good{suffix}"
    if suffix == ".zip":
        make_zip(archive, GOOD)
    else:
        make_tar(archive, [tar_file(n, d) for n, d in GOOD.items()], TAR_MODES[suffix])
    dest = tmp_path / "dest"
    files = safe_extract(archive, dest)
    assert [str(f) for f in files] == list(GOOD)
    for name, data in GOOD.items():
        assert (dest / name).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "dest"])  # no temp left


def test_format_is_recognised_by_content_and_empty_destination_is_accepted(tmp_path):
    archive = make_tar(tmp_path / "data.bin", [tar_file("a.txt", b"hi")], "w:gz")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert [str(f) for f in safe_extract(archive, dest)] == ["a.txt"]
    assert (dest / "a.txt").read_bytes() == b"hi"


def test_non_empty_destination_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", GOOD)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="not an empty folder"):
        safe_extract(archive, dest)
    assert [p.name for p in dest.iterdir()] == ["mine.txt"]


# --------------------------------------------------------------------------------------------------
# refused members


@pytest.mark.parametrize("name", ["../evil", "sub/../../evil", "..\\evil", "./../evil"])
def test_traversal_is_refused_zip_and_tar(tmp_path, name):
    z = make_zip(tmp_path / "t.zip", {"ok.txt": b"ok", name: b"pwned"})
    assert repr(name) in str(refused(tmp_path, z, "'..'"))
    t = make_tar(tmp_path / "t.tar", [tar_file("ok.txt", b"ok"), tar_file(name, b"pwned")])
    refused(tmp_path, t, "'..'")
    assert not (tmp_path / "evil").exists() and not (tmp_path / "out" / "evil").exists()


@pytest.mark.parametrize("name", ["/tmp/atlaskit-evil", "C:\\evil.txt", "C:/evil.txt"])
def test_absolute_path_is_refused(tmp_path, name):
    z = tmp_path / "a.zip"
    # ZipInfo("/x") would strip the leading '/': set the raw name afterwards, as a forger would
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("x")
        info.filename = name
        zf.writestr(info, b"pwned")
    refused(tmp_path, z, "absolute path")
    t = make_tar(tmp_path / "a.tar.gz", [tar_file(name, b"pwned")], "w:gz")
    refused(tmp_path, t, "absolute path")
    assert not Path("/tmp/atlaskit-evil").exists()


def test_symlink_members_are_refused(tmp_path):
    t = make_tar(tmp_path / "s.tar", [special("passwd", tarfile.SYMTYPE, "/etc/passwd")])
    message = str(refused(tmp_path, t, "symbolic link"))
    assert "passwd" in message and "/etc/passwd" in message
    inside = make_tar(tmp_path / "inside.tar", [tar_file("a.txt", b"a"), special("b", tarfile.SYMTYPE, "a.txt")])
    refused(tmp_path, inside, "symbolic link")  # even a harmless target: links are never extracted
    # a zip symlink: unix mode S_IFLNK in the external attributes, the target as content
    z = tmp_path / "s.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("passwd")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    refused(tmp_path, z, "symbolic link")


def test_hardlink_members_are_refused(tmp_path):
    t = make_tar(tmp_path / "h.tar", [tar_file("a.txt", b"a"), special("b.txt", tarfile.LNKTYPE, "/etc/passwd")])
    refused(tmp_path, t, "hard link")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_and_fifo_members_are_refused(tmp_path, kind):
    t = make_tar(tmp_path / "d.tar", [special("dev", kind)])
    refused(tmp_path, t, "special file")


def test_zip_fifo_member_is_refused(tmp_path):
    z = tmp_path / "f.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("fifo")
        info.external_attr = (0o010644 << 16)
        zf.writestr(info, b"")
    refused(tmp_path, z, "special file")


def test_duplicate_member_is_refused(tmp_path):
    t = make_tar(tmp_path / "dup.tar", [tar_file("a.txt", b"first"), tar_file("a.txt", b"second")])
    refused(tmp_path, t, "appears twice")


# --------------------------------------------------------------------------------------------------
# bombs, broken files


def test_zip_bomb_is_refused_by_declared_size(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(5_000_000)})
    assert z.stat().st_size < 50_000  # compresses ~1000:1
    refused(tmp_path, z, "declare 5000000 bytes", max_bytes=1_000_000)


def test_tar_member_declared_huge_is_refused_before_reading_it(tmp_path):
    info = tarfile.TarInfo("huge.bin")
    info.size = 10**12  # declared 1 TB; the data is not there (the archive is refused first)
    raw = tmp_path / "huge.tar"
    with open(raw, "wb") as f:
        f.write(info.tobuf())
    refused(tmp_path, raw, "possible archive bomb")


def test_too_many_members_is_refused(tmp_path):
    z = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(30)})
    refused(tmp_path, z, "more than 20 members", max_members=20)
    t = make_tar(tmp_path / "many.tgz", [tar_file(f"f{i}.txt", b"") for i in range(30)], "w:gz")
    refused(tmp_path, t, "more than 20 members", max_members=20)


def test_zip_member_lying_about_its_size_is_refused(tmp_path):
    z = make_zip(tmp_path / "liar.zip", {"data.bin": bytes(200_000)})
    raw = bytearray(z.read_bytes())
    # patch the uncompressed size (200000) in the local and central headers to 10 bytes
    old, new = (200_000).to_bytes(4, "little"), (10).to_bytes(4, "little")
    assert raw.count(old) == 2
    z.write_bytes(bytes(raw).replace(old, new))
    refused(tmp_path, z, "cannot extract")  # zipfile stops at the declared size; the CRC then fails


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz"])
def test_truncated_archive_is_refused(tmp_path, suffix):
    big = {f"f{i}.bin": bytes(range(256)) * 200 for i in range(5)}
    archive = tmp_path / f"cut{suffix}"
    if suffix == ".zip":
        make_zip(archive, big)
    else:
        make_tar(archive, [tar_file(n, d) for n, d in big.items()], TAR_MODES[suffix])
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(tmp_path, archive, "cannot extract|truncated|not an archive")


def test_not_an_archive_is_refused(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("just text, no archive here\n" * 100)
    refused(tmp_path, junk, "not an archive")
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    refused(tmp_path, fake, "cannot extract")
    with pytest.raises(DataError, match="no such archive"):
        safe_extract(tmp_path / "missing.zip", tmp_path / "d")


def test_interrupt_mid_extraction_leaves_no_destination(tmp_path, monkeypatch):
    from atlaskit.data import archives

    archive = make_zip(tmp_path / "a.zip", GOOD)
    calls = []
    real = archives._write

    def write_then_interrupt(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(archives, "_write", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        safe_extract(archive, tmp_path / "dest")
    assert calls and sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]


# --------------------------------------------------------------------------------------------------
# command line


def test_cli_unpack_prints_files_and_refuses_bad_archives(tmp_path, capsys):
    archive = make_zip(tmp_path / "a.zip", GOOD)
    assert cli.main(["data", "unpack", str(archive), str(tmp_path / "dest")]) == 0
    out = capsys.readouterr().out
    assert "sub/b.bin" in out and "3 file(s)" in out
    assert (tmp_path / "dest" / "sub" / "deeper" / "c.csv").is_file()

    evil = make_zip(tmp_path / "evil.zip", {"../evil": b"x"})
    assert cli.main(["data", "unpack", str(evil), str(tmp_path / "dest2")]) == 2
    err = capsys.readouterr().err
    assert "atlaskit: error:" in err and "'../evil'" in err and "Traceback" not in err
    assert not (tmp_path / "dest2").exists() and not (tmp_path / "evil").exists()
    assert cli.main(["data", "unpack", str(archive), str(tmp_path / "d3"), "--max-members", "2"]) == 2
    assert "more than 2 members" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# regression guard: loaders of files in the package never execute pickled code


def _calls(tree):
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            parts, func = [], node.func
            while isinstance(func, ast.Attribute):
                parts.append(func.attr)
                func = func.value
            if isinstance(func, ast.Name):
                parts.append(func.id)
            yield ".".join(reversed(parts)), node


def test_package_loaders_refuse_pickles():
    """Every torch.load passes weights_only=True, no call passes allow_pickle=True, and every plain
    pickle load is one of the justified ones (the package's own worker files, marked noqa: S301)."""
    import ast

    import atlaskit

    package = Path(atlaskit.__file__).parent
    problems, pickle_loads = [], []
    for source in sorted(package.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        lines = text.splitlines()
        where = lambda node: f"{source.relative_to(package.parent)}:{node.lineno}"  # noqa: E731
        for name, node in _calls(ast.parse(text)):
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            flag = lambda key: isinstance(keywords.get(key), ast.Constant) and keywords[key].value  # noqa: E731
            if "allow_pickle" in keywords and flag("allow_pickle") is not False:
                problems.append(f"{where(node)}: allow_pickle is not False")
            if name == "torch.load" and flag("weights_only") is not True:
                problems.append(f"{where(node)}: torch.load without weights_only=True")
            if name in ("pickle.load", "pickle.loads", "pd.read_pickle", "pandas.read_pickle", "joblib.load"):
                pickle_loads.append(where(node))
                if "noqa: S301" not in lines[node.lineno - 1]:
                    problems.append(f"{where(node)}: {name} without a justification comment (noqa: S301 ...)")
    assert problems == []
    # the justified ones: job and result files of atlaskit's own worker processes (never user input)
    assert [w.split(":")[0] for w in pickle_loads] == ["atlaskit/runs.py"] * 2
