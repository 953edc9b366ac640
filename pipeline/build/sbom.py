"""A CycloneDX SBOM of the Python packages inside the image, made by cyclonedx-bom.

cyclonedx-py reads installed distributions' metadata from a Python environment. The image's
packages are not installed on the host, so their `*.dist-info` folders are copied out of the image
(from a container that is created, never started) and cyclonedx-py reads them through an
interpreter run with `-S` and PYTHONPATH pointing at them only: the SBOM lists what the image holds,
not what the host has.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import docker

from pipeline.build import BuildError
from pipeline.scrub import write_text_atomic

log = logging.getLogger(__name__)

#: Where the Dockerfile installs Python packages: the dependencies' venv and the service's code.
PACKAGE_ROOTS = ("/opt/venv/lib", "/opt/app")


def _copy_dist_infos(client: docker.DockerClient, image_id: str, destination: Path) -> list[Path]:
    """Copy every *.dist-info folder under PACKAGE_ROOTS out of the image; return their parents."""
    container = client.containers.create(image_id)
    try:
        for root in PACKAGE_ROOTS:
            chunks, _ = container.get_archive(root)
            with tempfile.TemporaryFile() as archive:
                for chunk in chunks:
                    archive.write(chunk)
                archive.seek(0)
                with tarfile.open(fileobj=archive) as tar:
                    members = [m for m in tar if ".dist-info/" in m.name and m.isfile()]
                    tar.extractall(destination / root.strip("/"), members=members, filter="data")
    finally:
        container.remove(force=True)
    return sorted({info.parent for info in destination.rglob("*.dist-info")})


def write_sbom(
    client: docker.DockerClient, image_id: str, pyproject: Path, out_file: Path, cache_dir: Path
) -> None:
    """Write the image's SBOM to `out_file`.

    The SBOM is reproducible, so one made earlier for the same image id is reused from `cache_dir`.
    """
    cached = cache_dir / "sbom" / f"{image_id.removeprefix('sha256:')}.cdx.json"
    with contextlib.suppress(OSError, ValueError):  # none yet, or cut short by an older build: made again
        json.loads(cached.read_text())
        shutil.copyfile(cached, out_file)
        log.info("sbom: reusing the SBOM made when %s was built", image_id[:19])
        return
    with tempfile.TemporaryDirectory(prefix="sbom-") as scratch:
        site_dirs = _copy_dist_infos(client, image_id, Path(scratch))
        if not site_dirs:
            raise BuildError(f"no Python packages found in the image under {', '.join(PACKAGE_ROOTS)}")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, site_dirs))}
        command = [sys.executable, "-m", "cyclonedx_py", "environment", "-S", "--pyproject", str(pyproject)]
        command += ["--mc-type", "application", "--output-reproducible", "--output-file", str(out_file)]
        result = subprocess.run([*command, sys.executable], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"cyclonedx-py could not write the SBOM: {result.stderr.strip()[-500:]}")
    sbom = out_file.read_text()
    components = json.loads(sbom).get("components", [])
    write_text_atomic(cached, sbom)  # a build stopped meanwhile leaves no half SBOM to reuse
    log.info("sbom: %d packages -> %s", len(components), out_file)
