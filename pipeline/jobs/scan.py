"""Scan job: lint the Dockerfile, check the SBOM's licenses and the image's policy, audit vulnerabilities.

    python -m pipeline.jobs.scan [--policy FILE]
    nox -s scan -- [same options]

Reads the build's folder (its outputs for the image, its record for the SBOM) and writes
security-scan/: scan.json (every part's status, reason and findings) and raw/ (each tool's output).
The parts and their states are described in pipeline/scan/; the thresholds are in
pipeline/scan/policy.toml (docs/gates.md). Exits 1 when a part failed: a finding reached its
threshold, or an offline part could not run. A part that needs what this machine lacks (the
network, a scanner, an image) is skipped with its reason and does not fail the job.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.artifacts import BUILD_RECORD_FILE, job_dir, read_json, read_outputs, write_json_atomic
from pipeline.context import RunContext
from pipeline.contracts import SecurityScan, encode
from pipeline.graph import JOBS_BY_NAME
from pipeline.jobs._main import exit_with
from pipeline.scan import POLICY_FILE, RAW_DIR, SCAN_FILE, ScanError, counts, load_policy, summary
from pipeline.scan.dockerfile import lint
from pipeline.scan.image import check_image
from pipeline.scan.licenses import check_sbom
from pipeline.scan.vulnerabilities import audit_os, audit_python

JOB = "scan"
SERVICE_DIR = Path(__file__).resolve().parents[2] / "services" / "ml-inference"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nox -s scan --", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policy", type=Path, default=POLICY_FILE, help=f"the scan policy (default: {POLICY_FILE})"
    )
    args = parser.parse_args(argv)
    context = RunContext.from_env()
    out = job_dir(JOB, context)
    if context.dry_run:
        print(f"scan (dry run): hadolint, license policy, image policy and vulnerability audits into {out}")
        return 0
    try:
        policy = load_policy(args.policy)
    except ScanError as error:
        print(f"scan: error: {error}", file=sys.stderr)
        return 1

    build_outputs = read_outputs("build", context)
    build_dir = context.artifacts_dir / str(JOBS_BY_NAME["build"].artifact)
    # The build's record names its SBOM file (none when it made no image).
    sbom_name = (read_json(build_dir / BUILD_RECORD_FILE) or {}).get("sbom")
    image_ref, image_id = build_outputs.get("image_tag") or None, build_outputs.get("image_id") or None
    raw = out / RAW_DIR
    parts = [
        lint(SERVICE_DIR / "Dockerfile", policy["dockerfile"], raw),
        check_sbom(build_dir / sbom_name if sbom_name else None, policy["licenses"]),
        check_image(image_ref, policy["image"], image_id),
        audit_python(SERVICE_DIR / "requirements.lock", policy["python_vulnerabilities"], raw),
        audit_os(image_ref, image_id, policy["os_vulnerabilities"], raw),
    ]
    result = summary(parts, image=image_ref, policy=args.policy)
    write_json_atomic(out / SCAN_FILE, encode(SecurityScan, result))
    for part in parts:
        print(f"scan: {part.title}: {part.status}{f' ({part.reason})' if part.reason else ''}")
        for finding in part.findings:
            mark = "FAIL" if counts(finding, part.fail_at) else "    "
            waived = f" [{finding.waived}]" if finding.waived else ""
            print(f"  {mark} {finding.severity:8} {finding.where}: {finding.rule}: {finding.message}{waived}")
    print(f"scan: {result.verdict}; details in {out / SCAN_FILE}")
    return 0 if result.status == "passed" else 1


if __name__ == "__main__":
    exit_with(JOB, main)
