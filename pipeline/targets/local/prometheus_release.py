"""The pinned official Prometheus release, fetched into a user cache when `prometheus` is not on PATH.

    find_prometheus(log)  # the program on PATH, else the cached release, else fetch it; None when it can't

The tarball for this platform is downloaded from `PIPELINE_PROMETHEUS_RELEASE_URL` (GitHub's release
downloads by default), checked against the sha256 kept below, and only then unpacked into
`~/.cache/ml-gitops-pipeline/prometheus-<version>/`. A mismatch refuses and leaves nothing behind.
Offline, or on a platform without a verified checksum, it says so in one line and returns None: the
local target then runs without Prometheus, as before.

The checksums are those of the release's sha256sums.txt, as pinned by several unrelated public
projects (found and compared by hand; the file itself is a release asset). Only platforms whose sum
two of them agree on are listed. Bumping the version means replacing every line of the table.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

PROMETHEUS_VERSION = "2.54.1"
RELEASE_URL_VARIABLE = "PIPELINE_PROMETHEUS_RELEASE_URL"
DEFAULT_RELEASE_URL = f"https://github.com/prometheus/prometheus/releases/download/v{PROMETHEUS_VERSION}"
#: sha256 of `prometheus-<version>.<platform>.tar.gz` per platform, from the release's sha256sums.txt.
CHECKSUMS = {
    "linux-amd64": "31715ef65e8a898d0f97c8c08c03b6b9afe485ac84e1698bcfec90fc6e62924f",
    "linux-arm64": "3d9946ca730f2679bbd63e9d40e559a0ba227a638d237e723af1a99bd7098263",
}
DOWNLOAD_TIMEOUT_SECONDS = 120
#: The release is about 100 MB; anything much larger is not it.
MAX_DOWNLOAD_BYTES = 200 * 1024 * 1024

#: The one line said when the local target goes on without Prometheus: why, and what it does instead.
WITHOUT = (
    "prometheus: not on PATH, and {reason}; running without it"
    " (metrics are scraped from the replicas directly; `apt-get install prometheus` adds it)"
)
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class ChecksumMismatch(Exception):
    """The download is not the release whose sha256 is pinned here."""


def this_platform() -> str:
    """`<os>-<arch>` as Prometheus names its release files (linux-amd64, darwin-arm64, ...)."""
    return f"{sys.platform.removesuffix('2')}-{_ARCHES.get(platform.machine().lower(), platform.machine())}"


def find_prometheus(say: Callable[[str], None] = print) -> str | None:
    """`prometheus` on PATH, else the pinned release from the cache, fetched first if need be."""
    program = shutil.which("prometheus")
    if program is not None:
        return program
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    install_dir = cache / "ml-gitops-pipeline" / f"prometheus-{PROMETHEUS_VERSION}"
    if (install_dir / "prometheus").is_file():
        return str(install_dir / "prometheus")
    name = this_platform()
    checksum = CHECKSUMS.get(name)
    if checksum is None:
        say(WITHOUT.format(reason=f"no verified checksum for {name} in {__name__}"))
        return None
    try:
        base_url = os.environ.get(RELEASE_URL_VARIABLE, DEFAULT_RELEASE_URL)
        return str(fetch(base_url, name, checksum, install_dir, say=say))
    except (OSError, http.client.HTTPException, KeyError, tarfile.TarError, ChecksumMismatch) as error:
        say(WITHOUT.format(reason=f"the pinned release could not be had ({error})"))
        return None


def fetch(
    base_url: str,
    platform_name: str,
    checksum: str,
    target: Path,
    *,
    version: str = PROMETHEUS_VERSION,
    say: Callable[[str], None] = print,
) -> Path:
    """Download, verify and unpack the release into `target`; return the `prometheus` program in it.

    Raises ChecksumMismatch (nothing is unpacked) when the download's sha256 is not `checksum`.
    """
    stem = f"prometheus-{version}.{platform_name}"
    url = f"{base_url.rstrip('/')}/{stem}.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as scratch:
        tarball = Path(scratch) / f"{stem}.tar.gz"
        sha256 = hashlib.sha256()
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
            tarball.open("wb") as out,
        ):
            # Said once the server answers: offline, the one line that says why is enough.
            say(f"prometheus: not on PATH; fetching the pinned release {version} from {url}")
            while chunk := response.read(1 << 20):
                sha256.update(chunk)
                out.write(chunk)
                if out.tell() > MAX_DOWNLOAD_BYTES:
                    raise OSError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes; not the release")
        if (digest := sha256.hexdigest()) != checksum:
            raise ChecksumMismatch(f"{url} has sha256 {digest}, the pinned one is {checksum}; refusing it")
        unpacked = Path(scratch) / "unpacked"
        with tarfile.open(tarball) as archive:
            member = archive.getmember(f"{stem}/prometheus")
            if not member.isfile():
                raise tarfile.TarError(f"{stem}/prometheus in {url} is not a regular file")
            archive.extractall(unpacked, members=[member], filter="data")
        (unpacked / stem / "prometheus").chmod(0o755)
        # Renamed into place whole (it holds the program alone), so a cache directory is complete or absent.
        (unpacked / stem).rename(target)
    say(f"prometheus: {version} verified (sha256 {checksum[:12]}...) and cached in {target}")
    return target / "prometheus"
