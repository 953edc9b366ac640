"""The image's content address: one hash of everything that goes into the image.

Two builds with the same inputs give the same tag, so a tag that already exists means the image
is already built (and verified: the tag is applied only after verification). Labels such as the
build time are deliberately left out: they describe a build, not the image's content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

#: The build helpers that decide what the build context holds: changing them changes the image.
RECIPE_INPUTS = ("wheelhouse.py", "image.py")
TAG_LENGTH = 16


def _files(root: Path, names: Iterable[str]) -> list[Path]:
    found: list[Path] = []
    for name in names:
        path = root / name
        if path.is_dir():
            found.extend(
                p
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
        elif path.is_file():
            found.append(path)
    return sorted(found)


def files_digest(root: Path, names: Iterable[str]) -> str:
    """SHA-256 over the relative paths, executable bits and contents of `names` under `root`
    (folders recursively): a wheel keeps a file's mode, so a chmod +x changes the image."""
    digest = hashlib.sha256()
    for path in _files(root, names):
        file_hash = hashlib.sha256(path.read_bytes()).hexdigest()
        mode = "x" if path.stat().st_mode & 0o111 else "-"
        digest.update(f"{path.relative_to(root).as_posix()}\0{mode}\0{file_hash}\n".encode())
    return digest.hexdigest()


def service_inputs(service_dir: Path) -> list[str]:
    """What of the service directory goes into the image: src/ and the directory's own files (the
    Dockerfile, .dockerignore, the lock, pyproject.toml, the README, and any license file, which
    hatchling puts in the wheel); not tests/, nor other hidden files."""
    own = [path.name for path in service_dir.iterdir() if path.is_file()]
    return ["src", *(name for name in own if not name.startswith(".") or name == ".dockerignore")]


def content_digest(service_dir: Path, model_dir: Path, base_image_id: str) -> str:
    """SHA-256 over the service's inputs, the model files, the build recipe and the base image id."""
    parts = (
        files_digest(service_dir, service_inputs(service_dir)),
        files_digest(model_dir, ["."]),
        files_digest(Path(__file__).parent, RECIPE_INPUTS),
        base_image_id,
    )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def content_tag(repository: str, digest: str) -> str:
    """`repository:<first 16 hex digits>`: short enough to read, long enough never to collide here."""
    return f"{repository}:{digest[:TAG_LENGTH]}"
