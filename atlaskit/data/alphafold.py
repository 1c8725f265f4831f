"""AlphaFold DB models by UniProt accession, kept in the data registry's cache.

The AlphaFold DB serves one predicted structure per UniProt accession at a fixed address
(:data:`ALPHAFOLD_URL`, e.g. ``https://alphafold.ebi.ac.uk/files/AF-Q96HM7-F1-model_v4.pdb``).
These files are *on request*, like the ESM2 weights of :mod:`atlaskit.data.model_weights`: no
default run downloads them. Unlike a registry entry, an accession's file has no sha256 known in
advance, so the first download records it: the file goes into the registry's cache at
``structures/alphafold/AF-<id>-F1-model_v4.pdb`` and its sha256, size and source URL into the
cache stamp ``.stamps/structures/alphafold/AF-<id>-F1-model_v4.pdb.json``
(where the registry keeps its stamps); every later lookup verifies the file against that sha256
(a changed file is reported, never silently used). A file is kept only when it parses as a
structure (:func:`atlaskit.data.structures.read_structure`).

Lookup order of :meth:`AlphaFoldDB.locate`: the registry's registered structure files (e.g. the
mirror's ``structures/alphafold-human-samples/``), the cache, each mirror folder's
``structures/alphafold/``, and (only with ``download=True``) the AlphaFold DB.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from atlaskit._atomic import atomic_write, file_lock
from atlaskit.data.registry import _STAMPS, ENV_ALLOW_HTTP_HOSTS, Registry, default_registry
from atlaskit.data.structures import _UNIPROT, read_structure, uniprot_of
from atlaskit.data.verify import bounded_download, file_sha256, verified_in_process
from atlaskit.errors import DataError, FetchError, ParameterError

__all__ = ["ALPHAFOLD_URL", "ALPHAFOLD_GROUP", "MAX_BYTES", "alphafold_url", "alphafold_name", "AlphaFoldDB"]

#: The AlphaFold DB's address of a model, by UniProt accession.
ALPHAFOLD_URL = "https://alphafold.ebi.ac.uk/files/AF-{uniprot}-F1-model_v4.pdb"
#: Cache folder of the downloaded models (relative to the registry's cache or a mirror root).
ALPHAFOLD_GROUP = "structures/alphafold"
#: A downloaded model larger than this is refused (the largest single-fragment models are ~10 MB).
MAX_BYTES = 64 << 20
_ACCESSION = re.compile(rf"^{_UNIPROT}$")


def _check_accession(uniprot: str) -> str:
    if not isinstance(uniprot, str) or not _ACCESSION.match(uniprot):
        raise ParameterError(f"{uniprot!r} is not a UniProt accession (e.g. 'Q96HM7')")
    return uniprot


def alphafold_url(uniprot: str, *, pattern: str = ALPHAFOLD_URL) -> str:
    """The AlphaFold DB address of ``uniprot``'s model (``pattern`` with ``{uniprot}`` filled in)."""
    return pattern.format(uniprot=_check_accession(uniprot))


def alphafold_name(uniprot: str) -> str:
    """Where the model of ``uniprot`` is kept, relative to the cache: ``structures/alphafold/AF-<id>-F1-model_v4.pdb``."""
    return f"{ALPHAFOLD_GROUP}/AF-{_check_accession(uniprot)}-F1-model_v4.pdb"


class AlphaFoldDB:
    """AlphaFold DB models in the registry's cache and mirrors; downloads on request.

    Parameters
    ----------
    registry : Registry, optional
        Whose cache, mirrors and registered files are used (by default the package's).
    url_pattern : str
        The source address with ``{uniprot}`` (:data:`ALPHAFOLD_URL`; a test or a local copy of
        the AlphaFold DB may give another).
    allow_http_hosts : iterable of str, optional
        Hosts that may be reached by plain http (default ``$ATLASKIT_ALLOW_HTTP_HOSTS``); all
        others need https.
    timeout : float or (float, float)
        ``requests`` timeout in seconds.
    """

    def __init__(self, registry: Registry | None = None, *, url_pattern: str = ALPHAFOLD_URL,
                 allow_http_hosts=None, timeout=(15, 60)):
        if "{uniprot}" not in url_pattern:
            raise ParameterError(f"url_pattern needs a '{{uniprot}}' field, got {url_pattern!r}")
        self._registry = registry
        self.url_pattern = url_pattern
        self._allow_http = None if allow_http_hosts is None else set(allow_http_hosts)
        self.timeout = timeout
        self._registered: dict[str, str] | None = None

    @property
    def registry(self) -> Registry:
        return self._registry if self._registry is not None else default_registry()

    def url(self, uniprot: str) -> str:
        """The source address of ``uniprot``'s model."""
        return alphafold_url(uniprot, pattern=self.url_pattern)

    def stamp_path(self, uniprot: str) -> Path:
        """The cache stamp recording the sha256 of ``uniprot``'s downloaded model."""
        return self.registry.cache_dir() / _STAMPS / f"{alphafold_name(uniprot)}.json"

    def registered(self) -> dict[str, str]:
        """Registered structure files by UniProt accession (registry name; e.g. the mirror's samples)."""
        if self._registered is not None:
            return dict(self._registered)
        found: dict[str, str] = {}
        for name in sorted(self.registry.entries(on_request=True)):
            if name.startswith("structures/"):
                uniprot = uniprot_of(name)
                if uniprot and uniprot not in found:
                    found[uniprot] = name
        self._registered = found
        return dict(found)

    def locate(self, uniprot: str, *, download: bool = False) -> Path | None:
        """A verified local copy of ``uniprot``'s model, or None (without ``download``).

        Raises
        ------
        FetchError
            The download fails, or a cached model no longer matches the sha256 of its stamp.
        DataError
            The downloaded file is not a readable structure (it is not kept).
        """
        _check_accession(uniprot)
        registered = self.registered().get(uniprot)
        if registered is not None:
            return self.registry.fetch(registered, progress=False)
        cached = self._from_cache(uniprot)
        if cached is not None:
            return cached
        for mirror in self.registry.mirror_dirs():
            path = mirror / alphafold_name(uniprot)
            if path.is_file():
                return path
        return self._download(uniprot) if download else None

    def _from_cache(self, uniprot: str) -> Path | None:
        path = self.registry.cache_dir() / alphafold_name(uniprot)
        if not path.is_file():
            return None
        try:
            stamp = json.loads(self.stamp_path(uniprot).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise FetchError(f"{path}: no readable stamp {self.stamp_path(uniprot)} records its sha256; delete "
                             "the file to download it again") from None
        if not verified_in_process(path, int(stamp.get("size", -1)), stamp.get("sha256")):  # hashed once per process
            raise FetchError(f"{path}: its sha256 no longer matches the one recorded when it was downloaded "
                             f"({stamp.get('sha256')}); delete it to download it again")
        return path

    def _download(self, uniprot: str) -> Path:
        import requests

        url = self.url(uniprot)
        self._check_url(url, uniprot)
        target = self.registry.cache_dir() / alphafold_name(uniprot)
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.registry.cache_dir(), alphafold_name(uniprot)):
            if target.is_file():  # another process finished it while we waited
                return self._from_cache(uniprot)
            part = target.with_name(target.name + ".part")
            try:
                with requests.get(url, timeout=self.timeout, stream=True,
                                  headers={"Accept-Encoding": "identity", "User-Agent": "atlaskit-data-registry"}) as response:
                    self._check_url(response.url, uniprot)
                    if response.status_code >= 400:
                        raise FetchError(f"cannot download the AlphaFold model of {uniprot}: HTTP "
                                         f"{response.status_code} {response.reason} from {url}")
                    length = response.headers.get("Content-Length")
                    with open(part, "wb") as out:
                        for chunk in bounded_download(response.iter_content(1 << 16), limit=MAX_BYTES, offset=0,
                                                      announced=int(length) if length and length.isdigit() else None,
                                                      out=out, part=part, name=alphafold_name(uniprot), url=url):
                            out.write(chunk)
            except requests.RequestException as exc:
                part.unlink(missing_ok=True)
                raise FetchError(f"cannot download the AlphaFold model of {uniprot} from {url} "
                                 f"({type(exc).__name__}); put the file into structures_dir or a mirror's "
                                 f"{ALPHAFOLD_GROUP}/ instead") from None
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            checked = part.with_name(f"AF-{uniprot}-F1-model_v4.check.pdb")
            os.replace(part, checked)
            try:
                read_structure(checked)  # a structure, or DataError naming the file
            except DataError as exc:
                checked.unlink(missing_ok=True)
                raise DataError(f"the AlphaFold DB's answer for {uniprot} ({url}) is not a structure: {exc}") from None
            sha256, size = file_sha256(checked), checked.stat().st_size
            os.replace(checked, target)
            stamp = self.stamp_path(uniprot)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(stamp, "w", encoding="utf-8") as out:
                json.dump({"sha256": sha256, "size": size, "url": url}, out)
            return target

    def _check_url(self, url: str, uniprot: str) -> None:
        parts = urlsplit(url)
        hosts = self._allow_http
        if hosts is None:
            hosts = {h.strip() for h in os.environ.get(ENV_ALLOW_HTTP_HOSTS, "").split(",") if h.strip()}
        if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in hosts):
            return
        raise FetchError(f"refusing to download the AlphaFold model of {uniprot} from {url}: only https URLs "
                         f"are used (plain http only for hosts listed in ${ENV_ALLOW_HTTP_HOSTS})")
