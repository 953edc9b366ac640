"""Wheels for the image, made on the host so that the image build needs no package index.

The wheelhouse holds binary wheels of the pinned runtime closure (the service's requirements.lock,
hash-checked) for the image's Python, whatever Python or OS the host runs: pip downloads for the
target interpreter's version and glibc, never for the host. The image has no compiler, so a pin with
no wheel for that target cannot be installed; that is an error naming the pin. A finished wheelhouse
is kept in the cache by (lock, target) and reused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline.build import BuildError

log = logging.getLogger(__name__)

#: Run inside the base image to learn what wheels it can install.
PROBE_SCRIPT = (
    "import json, platform, sys; print(json.dumps({'version': '%d.%d' % sys.version_info[:2],"
    " 'machine': platform.machine(), 'libc': platform.libc_ver()}))"
)
#: The oldest manylinux glibc (manylinux1 = 2.5).
OLDEST_GLIBC_MINOR = 5
LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class TargetPython:
    """The interpreter inside the image: what its wheels must be built for."""

    version: str  # "3.11"
    machine: str  # "x86_64"
    glibc_minor: int  # 36 for glibc 2.36

    @classmethod
    def from_probe(cls, probe: dict) -> TargetPython:
        libc, libc_version = probe["libc"]
        if libc != "glibc" or not libc_version.startswith("2."):
            raise BuildError(
                f"the base image's Python runs on {libc or 'an unknown libc'}; only glibc is supported"
            )
        return cls(probe["version"], probe["machine"], int(libc_version.split(".")[1]))

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")

    @property
    def platforms(self) -> list[str]:
        """Every manylinux tag this glibc accepts, newest first (pip does not expand them itself)."""
        tags = []
        for minor in range(self.glibc_minor, OLDEST_GLIBC_MINOR - 1, -1):
            tags.append(f"manylinux_2_{minor}_{self.machine}")
            if minor in LEGACY_MANYLINUX:
                tags.append(f"{LEGACY_MANYLINUX[minor]}_{self.machine}")
        return tags

    def __str__(self) -> str:
        return f"CPython {self.version} on {self.machine} with glibc 2.{self.glibc_minor}"


def _run_pip(args: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run pip, echoing its progress lines to the job log and keeping stderr for the error message."""
    command = [sys.executable, "-m", "pip", *args, "--progress-bar", "off", "--disable-pip-version-check"]
    # stderr goes to a file: a pipe that nobody reads while stdout streams could fill up and block pip.
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                if line.startswith(("Collecting", "Successfully", "Building")):
                    log.info("  %s: %s", what, line.rstrip())
            process.wait()
        except BaseException:  # a stopped build (SIGTERM, Ctrl-C): pip must not outlive it
            process.kill()
            process.wait()
            raise
        stderr.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, "", stderr.read())


def _pip_failure(stderr: str, what: str, target: TargetPython) -> BuildError:
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        return BuildError(
            f"no wheel of {missing.group(1)} for {target} (the image has no compiler, so every pin in "
            "requirements.lock needs a binary wheel for it); pin a version that ships one"
        )
    errors = [
        line for line in stderr.splitlines() if line.startswith("ERROR")
    ] or stderr.strip().splitlines()[-3:]
    return BuildError(f"{what} failed: {' '.join(errors) or 'pip exited with an error'}")


def wheelhouse(lock_file: Path, target: TargetPython, cache_dir: Path) -> Path:
    """A directory with a wheel for every pin of `lock_file`, for `target` (cached)."""
    key = hashlib.sha256(lock_file.read_bytes() + str(target).encode()).hexdigest()[:16]
    final = cache_dir / "wheelhouse" / key
    if (final / COMPLETE_MARKER).exists():
        log.info("wheelhouse: reusing %s (%d wheels)", final, len(list(final.glob("*.whl"))))
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=final.parent, prefix=".partial-"))
    log.info("wheelhouse: downloading the pinned runtime closure for %s", target)
    try:
        platform_args = [arg for tag in target.platforms for arg in ("--platform", tag)]
        result = _run_pip(
            ["download", "--dest", str(partial), "--only-binary=:all:", "--no-deps",
             "--implementation", "cp", "--python-version", target.version, "--abi", target.abi,
             *platform_args, "--requirement", str(lock_file)],
            "wheelhouse",
        )  # fmt: skip
        if result.returncode != 0:
            raise _pip_failure(result.stderr, "downloading the wheelhouse", target)
        (partial / COMPLETE_MARKER).touch()
        shutil.rmtree(final, ignore_errors=True)  # an unfinished one from an interrupted run
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("wheelhouse: %d wheels in %s", len(list(final.glob("*.whl"))), final)
    return final


def service_wheel(service_dir: Path, out_dir: Path) -> Path:
    """Build the service's own (pure Python) wheel into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = _run_pip(["wheel", "--no-deps", "--wheel-dir", str(out_dir), str(service_dir)], "service wheel")
    wheels = sorted(out_dir.glob("*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        errors = " ".join(result.stderr.strip().splitlines()[-3:])
        raise BuildError(f"building the service's wheel from {service_dir} failed: {errors}")
    return wheels[0]
