"""Tests of the data registry: lookup order, verification, resumable downloads, transforms, and the
real manifest against the read-only mirror.

Downloads are served by a small HTTP server on 127.0.0.1 started here; it honours Range requests
and can be told to cut a response short, to ignore Range, or to serve wrong bytes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import lzma
import os
import re
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from atlaskit.data import registry as reg
from atlaskit.data.registry import Entry, FetchError, Registry, RegistryWarning
from atlaskit.errors import DataError

# --------------------------------------------------------------------------------------------------
# A local HTTP server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        server: _Server = self.server
        server.requests.append((self.path, dict(self.headers)))
        body = server.files.get(self.path)
        if body is None:
            self._reply(404, b"not found")
            return
        start, status, extra = 0, 200, {}
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and self.path not in server.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            status, extra = 206, {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
        cut = server.drop_after.pop(self.path, None)
        self._reply(status, body[start:], extra, cut=cut)

    def _reply(self, status, payload, headers=None, cut=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut is None:
            self.wfile.write(payload)
            return
        # Simulate a dropped connection: announce the full length, send `cut` bytes, hang up.
        self.wfile.write(payload[:cut])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def reset(self):
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before the next response is cut
        self.ignore_range: set[str] = set()  # paths answered 200 with the whole body despite Range
        self.requests: list[tuple[str, dict]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def requests_for(self, path: str) -> list[dict]:
        return [headers for p, headers in self.requests if p == path]


@pytest.fixture(scope="module")
def _server():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.reset()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def http(_server, monkeypatch):
    """The local server, emptied; proxies are bypassed so that requests go straight to it."""
    _server.reset()
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    monkeypatch.setenv(reg.ENV_NO_PROGRESS, "1")
    return _server


def make_entry(name: str, data: bytes, url: str, transform: str | None = None) -> Entry:
    return Entry(name=name, url=url, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                 licence="CC0", description="test file", group=name.rsplit("/", 1)[0],
                 transform=transform)


def make_registry(tmp_path: Path, entries, mirrors=(), **kwargs) -> Registry:
    kwargs.setdefault("allow_http_hosts", {"127.0.0.1"})
    return Registry(entries, cache=tmp_path / "cache", mirrors=list(mirrors), **kwargs)


def served(http, name: str, data: bytes, *, body: bytes | None = None,
           transform: str | None = None) -> Entry:
    """Serve ``body`` (default: ``data``) and return an entry registering ``data``."""
    path = f"/files/{name}"
    http.files[path] = data if body is None else body
    return make_entry(name, data, http.url(path), transform)


def closed_port_url(path: str) -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting fails at once, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


DATA = os.urandom(300_000)  # several network chunks, so that a cut-off transfer keeps some bytes


# --------------------------------------------------------------------------------------------------
# Downloads and the cache


def test_download_verifies_caches_and_is_not_repeated(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    registry = make_registry(tmp_path, [entry])
    path = registry.fetch("g/a.bin", progress=False)
    assert path == tmp_path / "cache" / "g" / "a.bin"
    assert path.read_bytes() == DATA
    assert not path.with_name("a.bin.part").exists()
    assert registry.fetch("g/a.bin") == path
    assert len(http.requests) == 1


def test_checksum_mismatch_raises_and_leaves_no_file(http, tmp_path):
    entry = served(http, "g/a.bin", DATA, body=b"not the registered bytes")
    registry = make_registry(tmp_path, [entry])
    with pytest.raises(FetchError) as info:
        registry.fetch("g/a.bin", progress=False)
    message = str(info.value)
    assert "g/a.bin" in message and entry.url in message and entry.sha256 in message
    assert hashlib.sha256(b"not the registered bytes").hexdigest() in message
    assert data_files(tmp_path / "cache") == []  # (the entry's empty lock file stays: harmless)


def test_corrupt_cache_entry_is_detected_and_fetched_again(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    registry = make_registry(tmp_path, [entry])
    path = registry.fetch("g/a.bin", progress=False)
    path.write_bytes(b"x" * len(DATA))  # same size, other bytes: only the checksum can tell
    with pytest.warns(RegistryWarning, match="corrupt"):
        assert registry.fetch("g/a.bin", progress=False) == path
    assert path.read_bytes() == DATA
    assert len(http.requests) == 2


def test_verified_cache_file_is_not_hashed_again(http, tmp_path, monkeypatch):
    entry = served(http, "g/a.bin", DATA)
    registry = make_registry(tmp_path, [entry])
    registry.fetch("g/a.bin", progress=False)
    Registry([entry], cache=tmp_path / "cache", mirrors=[]).fetch("g/a.bin")  # stamps survive

    def fail(path):
        raise AssertionError(f"{path} hashed again")

    monkeypatch.setattr(reg, "sha256sum", fail)
    assert make_registry(tmp_path, [entry]).fetch("g/a.bin").read_bytes() == DATA


def test_interrupted_download_is_resumed_with_range(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    http.drop_after["/files/g/a.bin"] = 150_000
    path = make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    assert path.read_bytes() == DATA
    first, second = http.requests_for("/files/g/a.bin")
    assert "Range" not in first
    offset = int(re.fullmatch(r"bytes=(\d+)-", second["Range"]).group(1))
    assert 0 < offset <= 150_000


def test_interrupted_download_resumes_on_the_next_call(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    http.drop_after["/files/g/a.bin"] = 150_000
    registry = make_registry(tmp_path, [entry], retries=0)
    with pytest.raises(FetchError, match="resumes"):
        registry.fetch("g/a.bin", progress=False)
    part = tmp_path / "cache" / "g" / "a.bin.part"
    kept = part.stat().st_size
    assert 0 < kept <= 150_000 and part.read_bytes() == DATA[:kept]
    assert registry.fetch("g/a.bin", progress=False).read_bytes() == DATA
    assert http.requests_for("/files/g/a.bin")[-1]["Range"] == f"bytes={kept}-"
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    http.ignore_range.add("/files/g/a.bin")
    part = tmp_path / "cache" / "g" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:1000])
    path = make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    assert path.read_bytes() == DATA  # not DATA[:1000] + DATA
    assert http.requests[0][1]["Range"] == "bytes=1000-"


def test_stale_part_file_is_discarded_after_a_mismatch(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    part = tmp_path / "cache" / "g" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"left over from an older version of the file")
    path = make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    assert path.read_bytes() == DATA
    assert "Range" not in http.requests[-1][1]


def interrupt_after(chunks: int):
    """A Response.iter_content that raises KeyboardInterrupt (Ctrl-C) after ``chunks`` chunks, once."""
    real, fired = requests.models.Response.iter_content, []

    def iter_content(response, *args, **kwargs):
        for i, chunk in enumerate(real(response, *args, **kwargs)):
            if i == chunks and not fired:
                fired.append(True)
                raise KeyboardInterrupt
            yield chunk

    return iter_content


def test_ctrl_c_mid_download_leaves_no_cache_file_and_the_next_fetch_resumes(http, tmp_path, monkeypatch):
    entry = served(http, "g/a.bin", DATA)
    monkeypatch.setattr(requests.models.Response, "iter_content", interrupt_after(2))
    registry = make_registry(tmp_path, [entry])
    with pytest.raises(KeyboardInterrupt):
        registry.fetch("g/a.bin", progress=False)
    target = tmp_path / "cache" / "g" / "a.bin"
    part = target.with_name("a.bin.part")
    kept = part.stat().st_size
    assert not target.exists() and 0 < kept < len(DATA) and part.read_bytes() == DATA[:kept]
    assert registry.fetch("g/a.bin", progress=False).read_bytes() == DATA  # the lock was released
    assert http.requests_for("/files/g/a.bin")[-1]["Range"] == f"bytes={kept}-"
    assert data_files(tmp_path / "cache") == [target]


def test_ctrl_c_mid_transform_leaves_no_cache_file(http, tmp_path, monkeypatch):
    entry = served(http, "y/table.csv", DATA, body=lzma.compress(DATA), transform="xz")

    def interrupted(src, dst, arg, registry):
        dst.write_bytes(DATA[:10])
        raise KeyboardInterrupt

    monkeypatch.setitem(reg._TRANSFORMS, "xz", interrupted)
    registry = make_registry(tmp_path, [entry])
    with pytest.raises(KeyboardInterrupt):
        registry.fetch("y/table.csv", progress=False)
    target = tmp_path / "cache" / "y" / "table.csv"
    assert not target.exists()
    monkeypatch.setitem(reg._TRANSFORMS, "xz", reg._unxz)
    assert registry.fetch("y/table.csv", progress=False).read_bytes() == DATA
    assert data_files(tmp_path / "cache") == [target]


def test_ctrl_c_while_copying_from_a_mirror_leaves_nothing(http, tmp_path, monkeypatch):
    entry = served(http, "g/a.bin", DATA)
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "a.bin").write_bytes(DATA)

    def interrupted(src, dst):
        Path(dst).write_bytes(DATA[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(reg.shutil, "copyfile", interrupted)
    registry = make_registry(tmp_path, [entry], mirrors=[mirror])
    with pytest.raises(KeyboardInterrupt):
        registry.fetch("g/a.bin", fill_cache=True)
    assert data_files(tmp_path / "cache") == []


def test_http_error_names_status_and_url(http, tmp_path):
    entry = make_entry("g/a.bin", DATA, http.url("/nowhere"))
    with pytest.raises(FetchError, match=r"HTTP 404.*/nowhere"):
        make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)


def test_plain_http_is_refused_unless_the_host_is_allowed(http, tmp_path, monkeypatch):
    entry = served(http, "g/a.bin", DATA)
    monkeypatch.delenv(reg.ENV_ALLOW_HTTP_HOSTS, raising=False)
    with pytest.raises(FetchError, match="https"):
        Registry([entry], cache=tmp_path / "cache", mirrors=[]).fetch("g/a.bin")
    assert http.requests == []
    monkeypatch.setenv(reg.ENV_ALLOW_HTTP_HOSTS, "example.org, 127.0.0.1")
    assert Registry([entry], cache=tmp_path / "cache", mirrors=[]).fetch("g/a.bin").read_bytes() == DATA


def test_offline_without_mirror_gives_one_clear_error(tmp_path):
    entry = make_entry("g/a.bin", DATA, closed_port_url("/files/g/a.bin"))
    with pytest.raises(FetchError) as info:
        make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    message = str(info.value)
    assert "g/a.bin" in message and entry.url in message
    assert "ATLASKIT_MIRROR" in message and "atlaskit data fetch" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_unknown_name_suggests_close_matches(tmp_path):
    entries = [make_entry(n, b"x", "https://example.org/x")
               for n in ("opencell/annotations-flat.csv", "opencell/annotations-wide.csv", "hpa/x.tsv")]
    registry = make_registry(tmp_path, entries)
    with pytest.raises(FetchError, match="annotations-flat.csv") as info:
        registry.fetch("opencell/annotations.csv")
    assert "hpa/x.tsv" not in str(info.value)
    with pytest.raises(FetchError, match="Did you mean: opencell"):
        registry.fetch_group("opencel")


# --------------------------------------------------------------------------------------------------
# Mirrors and groups


def test_mirror_file_is_returned_in_place_and_not_copied(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "a.bin").write_bytes(DATA)
    registry = make_registry(tmp_path, [entry], mirrors=[mirror])
    assert registry.fetch("g/a.bin") == mirror / "g" / "a.bin"
    assert not (tmp_path / "cache").exists()
    assert http.requests == []


def test_fill_cache_copies_a_mirror_file_into_the_cache(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "a.bin").write_bytes(DATA)
    registry = make_registry(tmp_path, [entry], mirrors=[mirror])
    path = registry.fetch("g/a.bin", fill_cache=True)
    assert path == tmp_path / "cache" / "g" / "a.bin" and path.read_bytes() == DATA
    assert [p.name for p in path.parent.iterdir()] == ["a.bin"]  # no temporary file left behind
    # the cache alone now serves it: no mirror, and a server that is gone
    (mirror / "g" / "a.bin").unlink()
    http.files.clear()
    assert make_registry(tmp_path, [entry]).fetch("g/a.bin") == path
    assert http.requests == []


def test_mismatching_mirror_file_is_skipped_with_a_warning(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    bad, good = tmp_path / "bad", tmp_path / "good"
    for folder, data in ((bad, DATA[::-1]), (good, DATA)):
        (folder / "g").mkdir(parents=True)
        (folder / "g" / "a.bin").write_bytes(data)
    with pytest.warns(RegistryWarning, match=re.escape(str(bad / "g" / "a.bin"))):
        assert make_registry(tmp_path, [entry], mirrors=[bad, good]).fetch("g/a.bin") == good / "g" / "a.bin"
    with pytest.warns(RegistryWarning, match="does not match"):
        path = make_registry(tmp_path, [entry], mirrors=[bad]).fetch("g/a.bin", progress=False)
    assert path == tmp_path / "cache" / "g" / "a.bin" and path.read_bytes() == DATA


def test_fetch_group_uses_a_complete_mirror_else_fills_the_cache(http, tmp_path):
    data = {f"grp/f{i}.bin": os.urandom(100 + i) for i in range(3)}
    entries = [served(http, name, blob) for name, blob in data.items()]
    mirror = tmp_path / "mirror"
    (mirror / "grp").mkdir(parents=True)
    for name, blob in data.items():
        (mirror / name).write_bytes(blob)
    assert make_registry(tmp_path, entries, mirrors=[mirror]).fetch_group("grp") == mirror / "grp"

    (mirror / "grp" / "f0.bin").unlink()  # incomplete mirror: the group is assembled in the cache
    folder = make_registry(tmp_path, entries, mirrors=[mirror]).fetch_group("grp/", progress=False)
    assert folder == tmp_path / "cache" / "grp"
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == {n.split("/")[1]: b for n, b in data.items()}
    assert [p for p, _ in http.requests] == ["/files/grp/f0.bin"]


def test_status_reports_where_files_are(http, tmp_path):
    cached, mirrored, missing = (served(http, f"g/{n}", n.encode()) for n in ("c", "m", "x"))
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "m").write_bytes(b"m")
    registry = make_registry(tmp_path, [cached, mirrored, missing], mirrors=[mirror])
    registry.fetch("g/c", progress=False)
    table = registry.status()
    assert list(table.columns) == ["name", "group", "size", "where", "path"]
    assert dict(zip(table["name"], table["where"])) == {"g/c": "cache", "g/m": "mirror", "g/x": "missing"}


# --------------------------------------------------------------------------------------------------
# Transforms


def test_xz_transform(http, tmp_path):
    entry = served(http, "y/table.csv", DATA, body=lzma.compress(DATA), transform="xz")
    path = make_registry(tmp_path, [entry]).fetch("y/table.csv", progress=False)
    assert path.read_bytes() == DATA
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.csv"]


def test_zip_member_transform(http, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("pkg/data/images/other.tif", b"other")
        archive.writestr("pkg/data/images/img2d.tif", DATA)
    entry = served(http, "n/img.tif", DATA, body=buffer.getvalue(),
                   transform="zip-member:pkg/data/images/img2d.tif")
    assert make_registry(tmp_path, [entry]).fetch("n/img.tif", progress=False).read_bytes() == DATA


def test_zip_member_transform_reads_only_the_named_member(http, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.txt", b"must never be written")  # a hostile neighbour member
        archive.writestr("pkg/data.bin", DATA)
    entry = served(http, "n/data.bin", DATA, body=buffer.getvalue(), transform="zip-member:pkg/data.bin")
    path = make_registry(tmp_path, [entry]).fetch("n/data.bin", progress=False)
    assert path.read_bytes() == DATA
    assert data_files(tmp_path) == [path]  # nothing else extracted, anywhere


def data_files(root: Path) -> list[Path]:
    """Files under ``root``, without the cache's (empty) lock files and verification stamps."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not {reg._LOCKS, reg._STAMPS} & set(p.parts))


def test_transform_of_a_broken_download_is_a_fetch_error(http, tmp_path):
    entry = served(http, "y/table.csv", DATA, body=b"not xz at all", transform="xz")
    with pytest.raises(FetchError, match=r"transform 'xz'.*y/table.csv"):
        make_registry(tmp_path, [entry]).fetch("y/table.csv", progress=False)
    assert data_files(tmp_path / "cache") == []


def test_torch_dict_to_fasta_transform(http, tmp_path):
    torch = pytest.importorskip("torch")
    sequences = {"ABC1": "M" + "A" * 120, "XYZ": "MKV"}
    table = b"gene_name,uniprot_id,protein_name\nABC1,P12345,a\nXYZ,Q99999,b\nUNUSED,O00000,c\n"
    fasta = (b">ABC1 uniprot=P12345\n" + b"M" + b"A" * 59 + b"\n" + b"A" * 60 + b"\n" + b"A\n"
             b">XYZ uniprot=Q99999\nMKV\n")
    buffer = io.BytesIO()
    torch.save(sequences, buffer)
    entries = [served(http, "oc/meta.csv", table),
               served(http, "oc/seq.fasta", fasta, body=buffer.getvalue(),
                      transform="torch-dict-to-fasta:oc/meta.csv")]
    assert make_registry(tmp_path, entries).fetch("oc/seq.fasta", progress=False).read_bytes() == fasta


def test_torch_dict_to_fasta_reproduces_the_mirror_file(http, tmp_path, mirror):
    """The conversion rebuilds the mirror's FASTA byte for byte from a gene -> sequence dict."""
    torch = pytest.importorskip("torch")
    real = reg.entries()
    fasta_entry = real["opencell/protein-sequences.fasta"]
    sequences, gene = {}, None
    for line in (mirror / fasta_entry.name).read_text().splitlines():
        if line.startswith(">"):
            gene = line[1:].split()[0]
            sequences[gene] = ""
        else:
            sequences[gene] += line
    buffer = io.BytesIO()
    torch.save(sequences, buffer)
    http.files["/protein_sequences.pt"] = buffer.getvalue()
    local = dataclasses.replace(fasta_entry, url=http.url("/protein_sequences.pt"))
    meta = real["opencell/library-metadata.csv"]
    only_meta = tmp_path / "only-meta"
    (only_meta / "opencell").mkdir(parents=True)
    (only_meta / meta.name).symlink_to(mirror / meta.name)
    path = make_registry(tmp_path, [local, meta], mirrors=[only_meta]).fetch(local.name, progress=False)
    assert reg.sha256sum(path) == fasta_entry.sha256


# --------------------------------------------------------------------------------------------------
# Entries and the real manifest


def test_entry_validation():
    good = make_entry("g/a.bin", b"x", "https://example.org/a")
    for change in ({"name": "../a.bin", "group": ".."}, {"sha256": "abc"}, {"url": "ftp://x/a"},
                   {"group": "other"}, {"transform": "gunzip"}, {"transform": "zip-member"},
                   {"transform": "zip-member:../etc/passwd"}, {"transform": "zip-member:/etc/passwd"},
                   {"transform": "zip-member:pkg/../../x"}, {"transform": "zip-member:C:\\x"}):
        with pytest.raises(DataError):
            dataclasses.replace(good, **change)


def test_manifest_matches_the_mirror(mirror):
    manifest = reg.entries()
    on_disk = {p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file()} - {"README.md"}
    assert set(manifest) == on_disk
    for name, entry in manifest.items():
        path = mirror / name
        assert path.stat().st_size == entry.size, name
        assert reg.sha256sum(path) == entry.sha256, name


def test_manifest_sources_and_groups():
    manifest = reg.entries()
    assert all(e.url.startswith("https://") and e.licence and e.description for e in manifest.values())
    assert {"hpa/kaggle2018-sample", "hpa/proticelli-cells", "yeast/deepyeast-splits"} <= set(reg.groups())
    assert len([e for e in manifest.values() if e.group == "hpa/kaggle2018-sample"]) == 200
    # The image sets are one group each, sub-folders included (a licence file + images).
    counts = {"yeast/chong-wt2-toy": 3285,  # 1642 cells x (gfp, rfp) + licence
              "hpa/inpainting-cells": 187,  # 62 cells x (blue, green, red) + licence
              "opencell/fov-hoechst": 8,  # 7 fields of view + licence
              "structures/alphafold-human-samples": 6}
    assert set(counts) <= set(reg.groups())
    for group, count in counts.items():
        members = [e for e in manifest.values() if e.group == group]
        assert len(members) == count, group
        assert all(e.name.startswith(group + "/") for e in members)
    assert not any(g.startswith(tuple(f"{g0}/" for g0 in counts)) for g in reg.groups())  # no sub-groups
    assert manifest["yeast/chong-wt2-toy/images/AAC1/AAC1_1_rfp_10_gfp.tif"].url == (
        "https://raw.githubusercontent.com/alexxijielu/paired_cell_inpainting/f9d75831/"
        "yeast_model/toy_dataset/images/AAC1/AAC1_1_rfp_10_gfp.tif")
    assert manifest["structures/alphafold-human-samples/O15552.cif"].licence.startswith("CC-BY-4.0")
    assert manifest["yeast/yeastgfp-huh2003.csv"].transform == "xz"
    assert manifest["nuclei/dsb2018-nuclei.tif"].transform == "zip-member:stardist/data/images/img2d.tif"


def test_module_functions_follow_the_environment(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(reg.ENV_CACHE, str(tmp_path / "c"))
    monkeypatch.setenv(reg.ENV_MIRROR, os.pathsep.join([str(tmp_path / "none"), str(mirror)]))
    assert reg.cache_dir() == tmp_path / "c"
    assert reg.mirror_dirs() == [tmp_path / "none", mirror]
    assert reg.fetch("opencell/annotations-flat.csv") == mirror / "opencell" / "annotations-flat.csv"
    assert reg.fetch_group("hpa/proticelli-cells") == mirror / "hpa" / "proticelli-cells"
    table = reg.status()
    assert len(table) == len(reg.entries()) and set(table["where"]) == {"mirror"}
    assert not (tmp_path / "c").exists()


def test_sha256sum(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert reg.sha256sum(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_prefetch_command_fills_a_cache_that_serves_every_file_offline(mirror, tmp_path, monkeypatch, capsys):
    """`atlaskit data fetch --all --fill-cache` (the workshop prefetch): afterwards every registered
    file resolves from the cache alone, with no mirror and no network (downloads would fail)."""
    from atlaskit.cli import main as cli_main

    cache = tmp_path / "cache"
    monkeypatch.setenv(reg.ENV_CACHE, str(cache))
    monkeypatch.setenv(reg.ENV_MIRROR, str(mirror))
    assert cli_main(["data", "fetch", "--all", "--fill-cache"]) == 0
    assert str(cache) in capsys.readouterr().out
    monkeypatch.delenv(reg.ENV_MIRROR)
    monkeypatch.setattr(reg.Registry, "_download", lambda self, entry, progress: pytest.fail(f"download of {entry.name}"))
    for name in reg.entries():
        assert reg.fetch(name).is_relative_to(cache), name
    assert set(reg.status()["where"]) == {"cache"}



# --------------------------------------------------------------------------------------------------
# Integrity (issue 23): cache hits re-verified by content, corrupt cache entries removed whichever
# source serves the file, downloads bounded by the registered size


def test_cache_hit_is_rehashed_once_per_process_and_catches_an_edit_with_restored_mtime(http, tmp_path):
    from atlaskit.data import verify

    entry = served(http, "g/a.bin", DATA)
    path = make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    st = path.stat()
    with open(path, "r+b") as fh:  # in place: same inode, same size
        fh.seek(1000)
        fh.write(bytes([DATA[1000] ^ 1]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # the stamp's size, mtime and inode match
    assert reg.Registry([entry], cache=tmp_path / "cache", mirrors=[])._stamp_matches(path, entry)
    verify.forget()  # a new process: nothing verified yet
    with pytest.warns(RegistryWarning, match="removing corrupt cached file"):
        assert make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False).read_bytes() == DATA
    assert len(http.requests) == 2


def test_corrupt_cache_file_is_removed_when_a_mirror_serves_the_file(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "a.bin").write_bytes(DATA)
    cached = tmp_path / "cache" / "g" / "a.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"y" * len(DATA))
    with pytest.warns(RegistryWarning, match=rf"removing corrupt cached file {re.escape(str(cached))}"):
        assert make_registry(tmp_path, [entry], mirrors=[mirror]).fetch("g/a.bin") == mirror / "g" / "a.bin"
    assert not cached.exists() and http.requests == []


def test_download_stops_at_the_registered_size(http, tmp_path):
    entry = served(http, "g/a.bin", DATA, body=DATA + b"z" * 5_000_000)  # a server that sends too much
    with pytest.raises(FetchError, match=rf"g/a\.bin from .*: the server announced 5300000 bytes, more than "
                                         rf"the 300000 bytes registered"):
        make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    assert data_files(tmp_path / "cache") == []  # no .part left


def test_resumed_download_is_bounded_too(http, tmp_path):
    entry = served(http, "g/a.bin", DATA)
    http.drop_after["/files/g/a.bin"] = 150_000
    with pytest.raises(FetchError, match="cut off"):
        make_registry(tmp_path, [entry], retries=0).fetch("g/a.bin", progress=False)
    http.files["/files/g/a.bin"] = DATA + b"z" * 1000  # the source grew before the resume
    with pytest.raises(FetchError, match=r"announced 301000 bytes, more than the 300000"):
        make_registry(tmp_path, [entry]).fetch("g/a.bin", progress=False)
    assert "Range" in http.requests[-1][1] and data_files(tmp_path / "cache") == []
