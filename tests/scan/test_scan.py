"""The scan job: each policy, violated on purpose, fails the job with the finding in scan.json.

The job runs in-process on a planted build folder (record, SBOM, outputs) and a planted service
folder (its Dockerfile). Image policies use tiny images built from the local base image (BASE_IMAGE,
made by scripts/make-base-image.sh in .ci/run); nothing is pulled. The vulnerability parts are
exercised offline: pip-audit through a dead proxy, and Grype through reports planted where the
workflow's pinned scanner writes its own.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from pipeline.jobs import scan as scan_job
from pipeline.ports import free_port
from pipeline.scan import ScanError, load_policy
from pipeline.scan.licenses import disallowed
from tests.helpers import require_env, require_program

REPO = Path(__file__).resolve().parents[2]
SERVICE = REPO / "services" / "ml-inference"
ALLOWED_SBOM = {
    "components": [
        {"name": "click", "version": "8.5.1", "licenses": [{"license": {"id": "BSD-3-Clause"}}]},
        {"name": "packaging", "version": "26.4", "licenses": [{"expression": "Apache-2.0 OR BSD-2-Clause"}]},
        {
            "name": "flatbuffers",
            "version": "25.12.19",
            "licenses": [{"license": {"name": "License :: OSI Approved :: Apache Software License"}}],
        },
        {"name": "protobuf", "version": "7.36.2"},  # reviewed by hand in the policy
    ]
}


class Scan:
    """A planted build folder and service folder, and the scan job run on them."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.artifacts = tmp_path / "artifacts"
        self.build = self.artifacts / "build-output"
        self.service = tmp_path / "service"
        self.build.mkdir(parents=True)
        self.service.mkdir()
        shutil.copy(SERVICE / "Dockerfile", self.service / "Dockerfile")
        shutil.copy(SERVICE / "requirements.lock", self.service / "requirements.lock")
        self.sbom(ALLOWED_SBOM)
        self.image(None, None)
        monkeypatch.setenv("PIPELINE_ARTIFACTS_DIR", str(self.artifacts))
        # Offline on purpose, whatever this machine can reach: PyPI's vulnerability service is unreachable.
        dead_proxy = f"http://127.0.0.1:{free_port()}"
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.setenv(name, dead_proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setattr(scan_job, "SERVICE_DIR", self.service)

    def sbom(self, sbom: dict) -> None:
        (self.build / "sbom.cdx.json").write_text(json.dumps(sbom))
        (self.build / "build-record.json").write_text(json.dumps({"sbom": "sbom.cdx.json"}))

    def image(self, tag: str | None, image_id: str | None) -> None:
        outputs = {"image_tag": tag or "", "image_id": image_id or ""}
        (self.build / "outputs.json").write_text(json.dumps(outputs))

    def run(self) -> tuple[int, dict]:
        code = scan_job.main([])
        return code, json.loads((self.artifacts / "security-scan" / "scan.json").read_text())


@pytest.fixture
def scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scan:
    require_program("hadolint")
    require_program("pip-audit")
    return Scan(tmp_path, monkeypatch)


def part(result: dict, name: str) -> dict:
    return next(p for p in result["parts"] if p["name"] == name)


def rules(result: dict, name: str) -> set[str]:
    return {finding["rule"] for finding in part(result, name)["findings"]}


# --- without an image: Dockerfile, licenses, and the parts that skip ------------------------------


def test_the_services_dockerfile_and_an_allowed_sbom_pass_and_the_offline_parts_say_why_they_skipped(
    scan: Scan,
) -> None:
    code, result = scan.run()
    assert code == 0 and result["status"] == "passed", result
    assert part(result, "dockerfile")["status"] == "passed"
    assert part(result, "licenses")["status"] == "passed"
    assert (scan.artifacts / "security-scan" / "raw" / "hadolint.json").is_file()
    for name in ("image", "python_vulnerabilities", "os_vulnerabilities"):
        assert part(result, name)["status"] == "skipped" and part(result, name)["reason"], name
    assert "pip-audit could not audit" in part(result, "python_vulnerabilities")["reason"]
    assert "the build made no image" in part(result, "image")["reason"]


def test_a_dockerfile_lint_error_fails_the_job(scan: Scan) -> None:
    (scan.service / "Dockerfile").write_text(
        "FROM debian:bookworm\nMAINTAINER someone\nRUN apt-get install curl\nUSER 10001\n"
    )
    code, result = scan.run()
    assert code == 1 and part(result, "dockerfile")["status"] == "failed"
    assert {"DL4000", "DL3014"} <= rules(result, "dockerfile")  # MAINTAINER; apt-get without -y


def test_a_disallowed_license_in_the_sbom_fails_the_job(scan: Scan) -> None:
    gpl = {"name": "copyleft-lib", "version": "1.0", "licenses": [{"license": {"id": "GPL-3.0-only"}}]}
    scan.sbom({"components": [*ALLOWED_SBOM["components"], gpl]})
    code, result = scan.run()
    assert code == 1 and part(result, "licenses")["status"] == "failed"
    [finding] = part(result, "licenses")["findings"]
    assert (finding["rule"], finding["where"]) == ("license-disallowed", "copyleft-lib==1.0")
    assert "GPL-3.0-only" in finding["message"]


def test_a_package_without_a_license_fails_the_job(scan: Scan) -> None:
    scan.sbom({"components": [{"name": "mystery", "version": "0.1"}]})
    code, result = scan.run()
    assert code == 1 and rules(result, "licenses") == {"license-unknown"}


def test_license_expressions_need_one_side_of_or_and_both_sides_of_and() -> None:
    allowed = {"MIT", "Apache-2.0"}
    assert disallowed("MIT OR GPL-3.0-only", allowed) == set()
    assert disallowed("MIT AND GPL-3.0-only", allowed) == {"GPL-3.0-only"}
    assert disallowed("(MIT OR GPL-2.0-only) AND Apache-2.0", allowed) == set()
    assert disallowed("Apache-2.0 WITH LLVM-exception", allowed) == set()


def test_a_pass_with_parts_that_could_not_run_says_which_in_its_verdict(
    scan: Scan, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bare "passed" would claim the image and its vulnerabilities were checked."""
    code, result = scan.run()
    skipped = [p["title"] for p in result["parts"] if p["status"] == "skipped"]
    assert code == 0 and len(skipped) == 3
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"scan: passed, 3 of 5 parts skipped ({', '.join(skipped)}); details in ")


@pytest.mark.parametrize(
    ("text", "replacement", "refusal"),
    [
        ('"critical"', '"severe"', r"policy\.image\.secret_severity = 'severe'"),  # no severity
        ('fail_at = "medium"\n', "", r"policy\.dockerfile has no fail_at"),  # a part without its threshold
    ],
    ids=["threshold-that-is-no-severity", "part-without-fail-at"],
)
def test_a_policy_that_cannot_be_applied_is_refused_naming_the_key(
    tmp_path: Path, text: str, replacement: str, refusal: str
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text((REPO / "pipeline" / "scan" / "policy.toml").read_text().replace(text, replacement, 1))
    with pytest.raises(ScanError, match=refusal):
        load_policy(policy)


# --- vulnerability reports (planted) --------------------------------------------------------------


def grype_report(image_id: str, fix_state: str) -> dict:
    return {
        "source": {"target": {"imageID": image_id}},
        "matches": [
            {
                "vulnerability": {
                    "id": "CVE-2099-0001",
                    "severity": "Critical",
                    "fix": {"state": fix_state, "versions": ["1.2.4"] if fix_state == "fixed" else []},
                },
                "artifact": {"name": "libexample", "version": "1.2.3"},
            }
        ],
    }


@pytest.mark.parametrize(("fix_state", "status"), [("fixed", "failed"), ("not-fixed", "passed")])
def test_a_critical_os_vulnerability_fails_the_job_only_when_a_fix_exists(
    scan: Scan, fix_state: str, status: str
) -> None:
    image_id = "sha256:" + "a" * 64
    scan.image("ml-inference:planted", image_id)
    raw = scan.artifacts / "security-scan" / "raw"
    raw.mkdir(parents=True)
    (raw / "grype.json").write_text(json.dumps(grype_report(image_id, fix_state)))
    _, result = scan.run()
    assert part(result, "os_vulnerabilities")["status"] == status
    [finding] = part(result, "os_vulnerabilities")["findings"]
    assert finding["severity"] == "critical" and finding["where"] == "libexample==1.2.3"


def test_a_grype_report_about_another_image_is_not_used(scan: Scan) -> None:
    scan.image("ml-inference:planted", "sha256:" + "b" * 64)
    raw = scan.artifacts / "security-scan" / "raw"
    raw.mkdir(parents=True)
    (raw / "grype.json").write_text(json.dumps(grype_report("sha256:" + "c" * 64, "fixed")))
    _, result = scan.run()
    assert part(result, "os_vulnerabilities")["status"] == "skipped"
    assert "not the build's" in part(result, "os_vulnerabilities")["reason"]


# --- the image policy, on tiny images built from the local base -----------------------------------

GOOD = 'USER 10001:10001\nHEALTHCHECK CMD ["true"]\nCMD ["true"]\n'
IMAGES = {
    "good": GOOD,
    "root": 'HEALTHCHECK CMD ["true"]\nCMD ["true"]\n',
    "secret-env": "ENV DB_PASSWORD=planted-not-real\n" + GOOD,
    "no-healthcheck": 'USER 10001:10001\nCMD ["true"]\n',
    "pip-cache": "RUN mkdir -p /root/.cache/pip/http && echo cached > /root/.cache/pip/http/blob\n" + GOOD,
}


@pytest.fixture(scope="module")
def policy_images():
    require_program("docker", probe=["docker", "info"])
    base = require_env("BASE_IMAGE", "run: export BASE_IMAGE=$(sudo scripts/make-base-image.sh)")
    import docker

    client = docker.from_env()
    built = {}
    try:
        for name, body in IMAGES.items():
            dockerfile = io.BytesIO(f"FROM {base}\n{body}".encode())
            image, _ = client.images.build(
                fileobj=dockerfile, tag=f"scan-policy-test:{name}", rm=True, pull=False
            )
            built[name] = (f"scan-policy-test:{name}", image.id)
        yield built
    finally:
        for tag, _ in built.values():
            client.images.remove(tag, force=True)
        client.close()


def test_a_non_root_image_with_a_healthcheck_and_no_cache_or_secret_passes(scan: Scan, policy_images) -> None:
    scan.image(*policy_images["good"])
    code, result = scan.run()
    assert part(result, "image")["findings"] == []
    assert code == 0 and part(result, "image")["status"] == "passed"


def test_the_image_policy_judges_the_builds_image_even_when_its_tag_has_moved(
    scan: Scan, policy_images
) -> None:
    """A later build (a --no-cache rebuild, say) can move the tag; the build's outputs name its image id."""
    good_tag, _ = policy_images["good"]
    _, root_id = policy_images["root"]
    scan.image(good_tag, root_id)
    code, result = scan.run()
    assert code == 1 and rules(result, "image") == {"root-user"}


@pytest.mark.parametrize(
    ("image", "found"),
    [
        ("root", {"root-user"}),
        ("secret-env", {"secret-env", "secret-history"}),  # the ENV step is in the history too
        ("no-healthcheck", {"no-healthcheck"}),
        ("pip-cache", {"package-cache"}),
    ],
)
def test_each_image_policy_violation_fails_the_job(scan: Scan, policy_images, image: str, found: set) -> None:
    scan.image(*policy_images[image])
    code, result = scan.run()
    assert code == 1 and part(result, "image")["status"] == "failed"
    assert rules(result, "image") == found
    assert "planted-not-real" not in json.dumps(result)  # a secret is named, never copied
