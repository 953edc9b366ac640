"""Benchmark (not a test): the build job's cold build, warm rebuild, no-change skip and image size.

Usage:  python scripts/bench_build.py [--base-image REF] [--json FILE]     (or: nox -s bench -- build)
Needs:  a running Docker engine, BASE_IMAGE or --base-image (BASE_IMAGE=$(sudo scripts/make-base-image.sh)),
        and the build job's requirements (requirements/build.txt, the service with [train]).
Takes:  about two minutes on 2 cores, most of it the cold build.

All three runs happen in one invocation, on a temporary copy of the repository (the checkout is never
touched), one after the other, so they compare like with like:
- cold build: `--no-cache` with an empty wheel and pip cache: downloads the wheelhouse, builds every
  layer, verifies, writes the SBOM;
- warm rebuild after a source change: one line added to the service's source; the dependency layer
  comes from the cache;
- no-change rebuild: the same inputs again, so the content tag exists and the build is skipped.
"Image step" is the job's own timing of its image part (base image to tagged, verified image);
"job" is the whole `python -m pipeline.jobs.build` process, training included. Its targets
apply to the image step: source-only change < 15 s, no change < 3 s; image <= 250 MB.
The bench's images are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import docker

REPO = Path(__file__).resolve().parents[1]
SOURCE_FILE = Path("services/ml-inference/src/ml_inference/__init__.py")
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "artifacts", ".pipeline", "__pycache__", "node_modules"
)
TARGETS = {"cold": None, "warm": 15.0, "unchanged": 3.0}
SIZE_LIMIT_MB = 250


def run_job(repo: Path, artifacts: Path, cache: Path, base_image: str, *extra: str) -> dict:
    """One build job run; its wall time and what its record says."""
    env = {**os.environ, "PIPELINE_ARTIFACTS_DIR": str(artifacts), "XDG_CACHE_HOME": str(cache)}
    command = [
        sys.executable,
        "-m",
        "pipeline.jobs.build",
        "--require-image",
        "--base-image",
        base_image,
        *extra,
    ]
    started = time.monotonic()
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"build job failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    image = json.loads((artifacts / "build-output" / "build-record.json").read_text())["image"]
    return {"job_seconds": round(wall, 2), "image_step_seconds": image["build_seconds"], **image}


def add_source_line(repo: Path) -> None:
    path = repo / SOURCE_FILE
    path.write_text(path.read_text() + f"# bench {uuid.uuid4().hex}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-image", default=os.environ.get("BASE_IMAGE"), help="default: $BASE_IMAGE")
    parser.add_argument("--json", type=Path, default=REPO / "artifacts" / "bench" / "build.json")
    args = parser.parse_args()
    if not args.base_image:
        parser.error("set BASE_IMAGE (BASE_IMAGE=$(sudo scripts/make-base-image.sh)) or pass --base-image")
    client = docker.from_env()

    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch:
        scratch_dir = Path(scratch)
        repo = shutil.copytree(REPO, scratch_dir / "repo", ignore=NOT_COPIED)
        cache = scratch_dir / "cache"  # empty: the cold run downloads its wheels
        try:
            add_source_line(repo)  # a tag no earlier build has
            print("cold build (no layer cache, empty wheel cache) ...", file=sys.stderr)
            runs["cold"] = run_job(repo, scratch_dir / "a1", cache, args.base_image, "--no-cache")
            add_source_line(repo)
            print("warm rebuild after a source change ...", file=sys.stderr)
            runs["warm"] = run_job(repo, scratch_dir / "a2", cache, args.base_image)
            print("no-change rebuild ...", file=sys.stderr)
            runs["unchanged"] = run_job(repo, scratch_dir / "a3", cache, args.base_image)
        finally:
            for tag in {run["tag"] for run in runs.values()}:
                client.images.remove(tag, force=True)

    base_mb = client.images.get(args.base_image).attrs["Size"] / 1e6
    image_mb = runs["warm"]["size_bytes"] / 1e6
    result = {
        "base_image": args.base_image,
        "base_image_mb": round(base_mb, 1),
        "image_mb": round(image_mb, 1),
        "added_to_base_mb": round(image_mb - base_mb, 1),
        "size_limit_mb": SIZE_LIMIT_MB,
        "runs": {
            name: {key: run[key] for key in ("status", "job_seconds", "image_step_seconds", "cache_hit")}
            for name, run in runs.items()
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")

    labels = {
        "cold": "cold build (no layer or wheel cache)",
        "warm": "warm rebuild after a source change",
        "unchanged": "no-change rebuild (skipped)",
    }
    print("| measure | image step | whole job | image status | target (image step) |")
    print("| --- | --- | --- | --- | --- |")
    for name, run in runs.items():
        target = f"< {TARGETS[name]:.0f} s" if TARGETS[name] else "-"
        print(
            f"| {labels[name]} | {run['image_step_seconds']:.2f} s | {run['job_seconds']:.1f} s "
            f"| {run['status']} | {target} |"
        )
    print(
        f"| image size | {image_mb:.0f} MB | base {base_mb:.0f} MB + {image_mb - base_mb:.0f} MB "
        f"| {args.base_image} | <= {SIZE_LIMIT_MB} MB |"
    )
    print(f"\nJSON: {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
