"""Corpus downloads against a file server on 127.0.0.1: checksum, resume, unpack (no internet)."""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import threading
import zipfile

import pytest

from sekd.bin import download as download_cli
from sekd.data.download import DownloadError, download, unpack_zip


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` with Range support; ``cut`` (bytes) ends the first full response early."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    ranges: list[str | None] = []
    honour_range = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        name = self.path.lstrip("/")
        data = self.files.get(name)
        if data is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        m = re.fullmatch(r"bytes=(\d+)-", header or "")
        if m and self.honour_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.cut.pop(name, None)
        self.wfile.write(body[:cut] if cut is not None else body)
        if cut is not None:
            self.wfile.flush()
            self.close_connection = True


@pytest.fixture()
def server():
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as zf:
        for i in range(3):
            zf.writestr(f"clean_testset_wav/p232_{i + 1:03d}.wav", bytes(range(256)) * (40 + i))
    _Handler.files = {"clean_testset_wav.zip": payload.getvalue(), "big.bin": bytes(range(251)) * 4000}
    _Handler.cut, _Handler.ranges, _Handler.honour_range = {}, [], True
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verifies_checksum(server, tmp_path):
    data = _Handler.files["clean_testset_wav.zip"]
    dest = download(f"{server}/clean_testset_wav.zip", tmp_path / "clean_testset_wav.zip", md5(data))
    assert dest.read_bytes() == data
    # present: verified again, no request made
    before = len(_Handler.ranges)
    download(f"{server}/clean_testset_wav.zip", dest, f"md5:{md5(data)}")
    assert len(_Handler.ranges) == before


def test_checksum_mismatch_is_a_clear_error_and_nothing_looks_done(server, tmp_path):
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match=r"big\.bin: md5 checksum mismatch: expected 0{32}, got [0-9a-f]{32}"):
        download(f"{server}/big.bin", dest, "0" * 32)
    assert not dest.exists() and not (tmp_path / "big.bin.part").exists()
    assert (tmp_path / "big.bin.corrupt").read_bytes() == _Handler.files["big.bin"]
    # the CLI says the same and exits 1
    assert download_cli.main([f"{server}/big.bin#{'0' * 32}", "--out_dir", str(tmp_path)]) == 1


def test_partial_download_is_resumed(server, tmp_path):
    data = _Handler.files["big.bin"]
    _Handler.cut["big.bin"] = 300_000  # the connection drops after 300 kB
    dest = tmp_path / "big.bin"
    with pytest.raises(DownloadError, match="rerun to resume"):
        download(f"{server}/big.bin", dest, md5(data))
    part = tmp_path / "big.bin.part"
    assert part.stat().st_size == 300_000 and not dest.exists()
    download(f"{server}/big.bin", dest, md5(data))
    assert _Handler.ranges[-1] == "bytes=300000-"  # asked only for the rest
    assert dest.read_bytes() == data and not part.exists()


def test_server_without_range_support_restarts(server, tmp_path):
    data = _Handler.files["big.bin"]
    (tmp_path / "big.bin.part").write_bytes(b"garbage" * 10)
    _Handler.honour_range = False
    download(f"{server}/big.bin", tmp_path / "big.bin", md5(data))
    assert (tmp_path / "big.bin").read_bytes() == data


def test_complete_part_file_is_finished_by_a_416(server, tmp_path):
    data = _Handler.files["big.bin"]
    (tmp_path / "big.bin.part").write_bytes(data)
    download(f"{server}/big.bin", tmp_path / "big.bin", md5(data))
    assert _Handler.ranges[-1] == f"bytes={len(data)}-"
    assert (tmp_path / "big.bin").read_bytes() == data


def test_http_error_names_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"/missing\.zip: HTTP 404"):
        download(f"{server}/missing.zip", tmp_path / "missing.zip")


def test_cli_downloads_and_unpacks_once(server, tmp_path):
    data = _Handler.files["clean_testset_wav.zip"]
    argv = [
        f"{server}/clean_testset_wav.zip#{md5(data)}",
        "--out_dir",
        str(tmp_path / "dl"),
        "--unpack_dir",
        str(tmp_path / "db"),
    ]
    assert download_cli.main(argv) == 0
    wavs = sorted(p.name for p in (tmp_path / "db" / "clean_testset_wav").iterdir())
    assert wavs == ["p232_001.wav", "p232_002.wav", "p232_003.wav"]
    assert (tmp_path / "db" / ".clean_testset_wav.zip.unpacked").is_file()
    requests = len(_Handler.ranges)
    assert download_cli.main(argv) == 0  # everything there: no request, no second unpack
    assert len(_Handler.ranges) == requests


def test_unpack_refuses_paths_outside_and_bad_zips(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(DownloadError, match="outside"):
        unpack_zip(evil, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "out" / ".evil.zip.unpacked").exists()
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK not really")
    with pytest.raises(DownloadError, match="broken.zip: not a valid zip"):
        unpack_zip(broken, tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no temp dir left behind
