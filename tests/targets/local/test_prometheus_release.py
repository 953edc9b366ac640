"""Fetching the pinned Prometheus release when `prometheus` is not on PATH: fetch, verify, unpack, refuse.

The release is served by a local HTTP server from a tarball made here, holding a fake `prometheus`
(a shell script that prints a line): what is tested is the fetch-verify-unpack path, not Prometheus.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.targets.local import prometheus_release
from pipeline.targets.local.prometheus_release import ChecksumMismatch, fetch, find_prometheus

VERSION = "9.9.9"
PLATFORM = "linux-amd64"
FAKE_PROMETHEUS = b"#!/bin/sh\necho fake prometheus for the fetch test\n"


def release_tarball(directory: Path, version: str = VERSION, platform: str = PLATFORM) -> str:
    """Write `prometheus-<version>.<platform>.tar.gz` shaped like the official one; return its sha256."""
    stem = f"prometheus-{version}.{platform}"
    path = directory / f"{stem}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data, mode in (
            (f"{stem}/prometheus", FAKE_PROMETHEUS, 0o755),
            (f"{stem}/LICENSE", b"x", 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def release_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a directory of release files; yields its base URL and the directory."""
    served = tmp_path / "served"
    served.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/releases", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def releases(release_server: tuple[str, Path]) -> tuple[str, Path]:
    base_url, served = release_server
    (served / "releases").mkdir()
    return base_url, served / "releases"


def test_a_release_with_the_pinned_checksum_is_unpacked_and_runs(
    releases: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, served = releases
    checksum = release_tarball(served)
    lines: list[str] = []
    program = fetch(
        base_url, PLATFORM, checksum, tmp_path / "cache" / "prometheus-x", version=VERSION, say=lines.append
    )
    assert program == tmp_path / "cache" / "prometheus-x" / "prometheus"
    done = subprocess.run([str(program)], capture_output=True, text=True, timeout=10)
    assert done.stdout == "fake prometheus for the fetch test\n"
    assert "verified" in lines[-1]


def test_a_checksum_mismatch_refuses_and_leaves_nothing_in_the_cache(
    releases: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, served = releases
    checksum = release_tarball(served)
    wrong = hashlib.sha256(b"another file").hexdigest()
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch, match="refusing"):
        fetch(base_url, PLATFORM, wrong, cache / "prometheus-x", version=VERSION, say=lambda line: None)
    assert checksum != wrong
    assert list(cache.iterdir()) == []


@pytest.fixture
def no_prometheus_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH without `prometheus` and a user cache of the test's own; returns the cache's root."""
    monkeypatch.setattr(prometheus_release.shutil, "which", lambda name: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(prometheus_release, "this_platform", lambda: PLATFORM)
    return tmp_path / "xdg" / "ml-gitops-pipeline"


def test_without_prometheus_on_path_the_pinned_release_is_fetched_once_into_the_user_cache(
    releases: tuple[str, Path], no_prometheus_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = releases
    checksum = release_tarball(served, version=prometheus_release.PROMETHEUS_VERSION)
    monkeypatch.setitem(prometheus_release.CHECKSUMS, PLATFORM, checksum)
    monkeypatch.setenv(prometheus_release.RELEASE_URL_VARIABLE, base_url)
    expected = no_prometheus_on_path / f"prometheus-{prometheus_release.PROMETHEUS_VERSION}" / "prometheus"
    assert find_prometheus(say=lambda line: None) == str(expected)
    (served / f"prometheus-{prometheus_release.PROMETHEUS_VERSION}.{PLATFORM}.tar.gz").unlink()
    said: list[str] = []
    assert find_prometheus(say=said.append) == str(expected), "the second call uses the cache"
    assert said == []


def test_a_tampered_release_is_refused_in_one_line_and_the_target_goes_on_without(
    releases: tuple[str, Path], no_prometheus_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served = releases
    release_tarball(served, version=prometheus_release.PROMETHEUS_VERSION)
    monkeypatch.setitem(prometheus_release.CHECKSUMS, PLATFORM, hashlib.sha256(b"the real one").hexdigest())
    monkeypatch.setenv(prometheus_release.RELEASE_URL_VARIABLE, base_url)
    said: list[str] = []
    assert find_prometheus(say=said.append) is None
    assert "refusing it" in said[-1] and "running without it" in said[-1]
    assert not (no_prometheus_on_path / f"prometheus-{prometheus_release.PROMETHEUS_VERSION}").exists()


def test_offline_it_says_why_in_one_line_and_goes_on_without(
    releases: tuple[str, Path], no_prometheus_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, _ = releases  # nothing served: every download is a 404, like a missing network
    monkeypatch.setenv(prometheus_release.RELEASE_URL_VARIABLE, base_url)
    said: list[str] = []
    assert find_prometheus(say=said.append) is None
    assert len(said) == 1 and "could not be had" in said[0] and "running without it" in said[0]


def test_on_a_platform_without_a_verified_checksum_nothing_is_downloaded(
    no_prometheus_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus_release, "this_platform", lambda: "plan9-mips")
    monkeypatch.setenv(prometheus_release.RELEASE_URL_VARIABLE, "http://127.0.0.1:1/never-asked")
    said: list[str] = []
    assert find_prometheus(say=said.append) is None
    assert said == [said[0]] and "no verified checksum for plan9-mips" in said[0]


def test_the_pinned_table_holds_only_full_sha256_sums_for_named_platforms() -> None:
    assert prometheus_release.CHECKSUMS
    for name, checksum in prometheus_release.CHECKSUMS.items():
        assert re.fullmatch(r"(linux|darwin)-(amd64|arm64)", name) and re.fullmatch(
            r"[0-9a-f]{64}", checksum
        ), name


class _CutShort(SimpleHTTPRequestHandler):
    """Sends the release in chunks and stops inside one, as a dropped connection through a proxy does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.write(b"%x\r\n" % (1 << 16) + b"\x1f\x8b" + b"\0" * 4096)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_a_download_cut_short_says_why_in_one_line_and_goes_on_without(
    no_prometheus_on_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutShort)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(prometheus_release.RELEASE_URL_VARIABLE, f"http://127.0.0.1:{server.server_port}")
        said: list[str] = []
        assert find_prometheus(say=said.append) is None
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert "could not be had" in said[-1] and "running without it" in said[-1]
    assert not (no_prometheus_on_path / f"prometheus-{prometheus_release.PROMETHEUS_VERSION}").exists()
