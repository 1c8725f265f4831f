"""Several *processes* filling the same cache entry, store or embedding at once.

Workshop laptops sharing a cache folder and DataLoader workers do exactly this. Each test starts
its children with ``subprocess`` (fresh interpreters, as ``spawn`` would), lets them finish their
imports, then releases them together through a "go" file so that their work overlaps.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from atlaskit.data.registry import Entry, Registry
from atlaskit.data.store import ArrayStore, content_key
from atlaskit.data.embeddings import EmbeddingCache

ROOT = Path(__file__).resolve().parents[2]
DATA = os.urandom(400_000)
N_PROCESSES = 3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and paths")


# --------------------------------------------------------------------------------------------------
# helpers


class _SlowHandler(BaseHTTPRequestHandler):
    """Serves DATA at /data.bin in small pieces with pauses: a download lasts ~0.4 s."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(dict(self.headers))
        start = 0
        if self.headers.get("Range", "").startswith("bytes="):
            start = int(self.headers["Range"][6:].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(DATA) - 1}/{len(DATA)}")
        else:
            self.send_response(200)
        body = DATA[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(0, len(body), 20_000):
                self.wfile.write(body[i:i + 20_000])
                self.wfile.flush()
                time.sleep(self.server.pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client killed mid-transfer


@pytest.fixture
def slow_server(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    server.daemon_threads = True
    server.requests = []
    server.pause = 0.02
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    monkeypatch.setenv("ATLASKIT_NO_PROGRESS", "1")
    yield server
    server.shutdown()
    server.server_close()


def entry_for(url: str) -> Entry:
    return Entry(name="g/data.bin", url=url, sha256=hashlib.sha256(DATA).hexdigest(), size=len(DATA),
                 licence="CC0", description="test", group="g")


def run_together(code: str, args: list[str], tmp_path: Path, n: int = N_PROCESSES, timeout: float = 60):
    """Start ``n`` interpreters running ``code`` (argv: index, go-file, *args) and release them at once.

    Returns the parsed JSON each printed on its last line.
    """
    go = tmp_path / "go"
    prelude = (
        "index, go = int(sys.argv[1]), sys.argv[2]\n"
        "open(go + f'.ready{index}', 'w').close()\n"
        "while not os.path.exists(go):\n"
        "    time.sleep(0.005)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code.replace("#GO#", prelude), str(i), str(go), *args],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    try:
        deadline = time.monotonic() + timeout
        while not all(Path(f"{go}.ready{i}").exists() for i in range(n)):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a child did not start"
            time.sleep(0.01)
        go.touch()
        results = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def leftovers(folder: Path) -> list[Path]:
    """Temporary or partial files (lock files are expected and empty)."""
    return [p for p in folder.rglob("*") if p.is_file() and (p.suffix in (".part", ".tmp") or ".tmp-" in p.name)]


# --------------------------------------------------------------------------------------------------
# registry

FETCH = """
import os, sys, time
import json
from atlaskit.data.registry import Entry, Registry, sha256sum
entry = Entry(**json.loads(sys.argv[3]))
registry = Registry([entry], cache=sys.argv[4], mirrors=json.loads(sys.argv[5]), allow_http_hosts={"127.0.0.1"})
#GO#
path = registry.fetch(entry.name, progress=False, fill_cache=True)
print(json.dumps({"path": str(path), "sha256": sha256sum(path), "inode": path.stat().st_ino}))
"""


def test_processes_downloading_one_entry_share_a_single_download(slow_server, tmp_path):
    entry = entry_for(f"http://127.0.0.1:{slow_server.server_address[1]}/data.bin")
    cache = tmp_path / "cache"
    results = run_together(FETCH, [json.dumps(entry.to_dict()), str(cache), "[]"], tmp_path)
    assert {r["path"] for r in results} == {str(cache / "g" / "data.bin")}
    assert {r["sha256"] for r in results} == {entry.sha256}
    # the lock holder downloaded; the others waited and found the verified file
    assert len(slow_server.requests) == 1 and "Range" not in slow_server.requests[0]
    assert len({r["inode"] for r in results}) == 1
    assert leftovers(cache) == []


def test_processes_filling_the_cache_from_a_mirror_copy_once(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "g").mkdir(parents=True)
    (mirror / "g" / "data.bin").write_bytes(DATA)
    entry = entry_for("https://example.invalid/data.bin")  # never contacted: the mirror has it
    cache = tmp_path / "cache"
    results = run_together(FETCH, [json.dumps(entry.to_dict()), str(cache), json.dumps([str(mirror)])], tmp_path)
    final = cache / "g" / "data.bin"
    assert {r["path"] for r in results} == {str(final)} and {r["sha256"] for r in results} == {entry.sha256}
    # one copy: every process returned the same file, not one replaced later by another's copy
    assert {r["inode"] for r in results} == {final.stat().st_ino}
    assert leftovers(cache) == []
    assert (mirror / "g" / "data.bin").read_bytes() == DATA  # the mirror is only read


def test_a_killed_download_does_not_block_the_next_one(slow_server, tmp_path):
    slow_server.pause = 0.2  # slow enough to be killed mid-transfer
    entry = entry_for(f"http://127.0.0.1:{slow_server.server_address[1]}/data.bin")
    cache = tmp_path / "cache"
    code = FETCH.replace("#GO#", "")
    child = subprocess.Popen([sys.executable, "-c", code, "0", "-", json.dumps(entry.to_dict()), str(cache), "[]"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    part = cache / "g" / "data.bin.part"
    deadline = time.monotonic() + 20
    while not (part.exists() and part.stat().st_size > 0):
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)  # dies holding the lock, leaving a .part
    child.wait()
    slow_server.pause = 0.0
    registry = Registry([entry], cache=cache, mirrors=[], allow_http_hosts={"127.0.0.1"})
    lock = registry._lock(entry)
    lock.acquire(timeout=5)  # the kernel released the dead holder's lock: no wait, no Timeout
    lock.release()
    path = registry.fetch(entry.name, progress=False)
    assert path.read_bytes() == DATA and not part.exists()
    assert slow_server.requests[-1].get("Range", "").startswith("bytes=")  # resumed the dead one's bytes


# --------------------------------------------------------------------------------------------------
# array stores

BUILD = """
import os, sys, time
import json
import numpy as np
from atlaskit.data.store import ArrayStore
built = []
def batches():
    built.append(1)
    for i in range(4):
        time.sleep(0.05)
        yield np.full((5, 2, 4, 4), i, np.float32)
#GO#
store = ArrayStore.build(sys.argv[3], batches, shape_per_item=(2, 4, 4), dtype="float32", params={"seed": 7})
print(json.dumps({"built": len(built), "n": len(store), "sum": float(store.images.sum()), "key": store.key}))
"""


def test_processes_building_one_store_build_it_once(tmp_path):
    path = tmp_path / "stores" / "crops"
    results = run_together(BUILD, [str(path)], tmp_path)
    assert sum(r["built"] for r in results) == 1
    expected = 5 * 32 * (0 + 1 + 2 + 3)
    assert all(r["n"] == 20 and r["sum"] == expected for r in results)
    assert ArrayStore.is_complete(path, content_key({"seed": 7}))
    assert float(ArrayStore.open(path).images.sum()) == expected
    assert [p.name for p in path.parent.iterdir() if p.name != ".locks"] == ["crops"]  # no temp left


# --------------------------------------------------------------------------------------------------
# embedding cache

PUT = """
import os, sys, time
import json
import numpy as np
from atlaskit.data.embeddings import EmbeddingCache
cache = EmbeddingCache(sys.argv[3])
vector = np.arange(64, dtype=np.float32)
torn = seen = 0
#GO#
for _ in range(150):
    if index == 0:  # one reader: once the file exists, every read must be the whole vector
        got = cache.get("k", "MKV", 64)
        if got is None:
            torn += seen > 0
        else:
            seen += 1
            torn += not np.array_equal(got, vector)
    else:
        cache.put("k", "MKV", vector)
print(json.dumps({"torn": int(torn), "seen": int(seen)}))
"""


def test_processes_writing_one_embedding_never_expose_a_partial_file(tmp_path):
    root = tmp_path / "emb"
    results = run_together(PUT, [str(root)], tmp_path, n=N_PROCESSES + 1)
    assert results[0]["torn"] == 0
    np.testing.assert_array_equal(EmbeddingCache(root).get("k", "MKV", 64), np.arange(64, dtype=np.float32))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files == [EmbeddingCache(root).path("k", "MKV")]  # no temporary files left
