"""Corpus downloads: resumable HTTP(S) fetches with checksum verification, and zip unpacking.

:func:`download` writes ``<dest>.part`` and renames it to ``dest`` only once the whole file
is there and its checksum matches, so an interrupted download never looks finished. A
rerun finds the ``.part`` file and asks the server for the rest (``Range: bytes=N-``); a
server that ignores the range (HTTP 200) is answered by starting over, one that says the
range is past the end (416) by checking what is there. A checksum mismatch moves the file
aside to ``<dest>.corrupt`` (kept for inspection; a rerun downloads afresh) and raises
:class:`DownloadError` naming the file, the expected and the actual digest.

:func:`unpack_zip` extracts into a hidden temporary directory next to the destination and
moves the archive's top-level entries into place only when every member is out, then
leaves a marker ``.<archive name>.unpacked``: a killed unpack leaves nothing a rerun would
take as done.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed or whose checksum does not match; the message names the file."""


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _algorithm(checksum: str) -> tuple[str, str]:
    """``"md5:<hex>"``, ``"sha256:<hex>"`` or a bare hex digest (md5 by length 32, sha256 by 64)."""
    if ":" in checksum:
        algo, digest = checksum.split(":", 1)
        return algo.lower(), digest.lower()
    by_length = {32: "md5", 40: "sha1", 64: "sha256"}
    if len(checksum) not in by_length:
        raise ValueError(f"checksum {checksum!r}: give <algorithm>:<hex> or an md5/sha1/sha256 hex digest")
    return by_length[len(checksum)], checksum.lower()


def download(
    url: str,
    dest: str | os.PathLike,
    checksum: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Fetch ``url`` into ``dest`` (resuming ``<dest>.part``), verify ``checksum``, return ``dest``.

    ``dest`` already present: only its checksum is verified (no network). ``progress(done,
    total)`` is called after each chunk (``total`` None when the server does not say).
    """
    dest = Path(dest)
    want = _algorithm(checksum) if checksum else None
    if dest.exists():
        _verify(dest, want, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to send: the part file is complete (or wrong)
            os.replace(part, dest)
            _verify(dest, want, url)
            return dest
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason} (writing {dest})") from e
    except (urllib.error.URLError, OSError) as e:
        raise DownloadError(f"{url}: {getattr(e, 'reason', e)} (writing {dest})") from e
    with response:
        status = getattr(response, "status", 200)
        resumed = have > 0 and status == 206
        if have and not resumed:
            have = 0  # the server sent the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        try:
            with open(part, "ab" if resumed else "wb") as f:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(f"{url}: connection lost after {done} bytes ({e}); rerun to resume from {part}") from e
    if total is not None and done < total:
        raise DownloadError(f"{url}: connection closed after {done} of {total} bytes; rerun to resume from {part}")
    os.replace(part, dest)
    _verify(dest, want, url)
    return dest


def _verify(path: Path, want: tuple[str, str] | None, url: str) -> None:
    if want is None:
        return
    algo, expected = want
    actual = file_digest(path, algo)
    if actual != expected:
        bad = path.with_name(path.name + ".corrupt")
        os.replace(path, bad)
        raise DownloadError(
            f"{path}: {algo} checksum mismatch: expected {expected}, got {actual} "
            f"(downloaded from {url}; moved to {bad}; rerun to download it again)"
        )


def unpack_zip(archive: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Extract ``archive`` into ``out_dir`` atomically per top-level entry; return the marker path.

    A second call finds the marker and does nothing. Members whose path would leave
    ``out_dir`` (absolute, ``..``) are refused.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    marker = out_dir / f".{archive.name}.unpacked"
    if marker.exists():
        return marker
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{archive.name}.tmp-", dir=out_dir))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for name in zf.namelist():
                    parts = Path(name).parts
                    if name.startswith("/") or ".." in parts:
                        raise DownloadError(f"{archive}: member {name!r} would be written outside {out_dir}")
                zf.extractall(tmp)
        except zipfile.BadZipFile as e:
            raise DownloadError(f"{archive}: not a valid zip file ({e})") from e
        for entry in sorted(tmp.iterdir()):
            if entry.name == "__MACOSX":
                continue
            target = out_dir / entry.name
            if target.exists():
                if target.is_dir() and entry.is_dir():  # e.g. two archives sharing a folder: merge
                    for sub in entry.iterdir():
                        os.replace(sub, target / sub.name)
                    continue
                raise DownloadError(f"{archive}: {target} exists already; remove it to unpack again")
            os.replace(entry, target)
        marker.write_text(f"{archive}\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return marker
