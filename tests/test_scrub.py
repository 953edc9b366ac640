"""The shared secret rules: credential-looking text and values under secret keys are masked, the rest kept.

Kubernetes-specific rules are tested in test_kube_redact.py, the report's use in test_report.py.
"""

from __future__ import annotations

import pytest

from pipeline.scrub import MASK, is_secret_key, is_secret_name, mask, mask_text

GITHUB_TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("token ghp_" + "x1Y2" * 9, "x1Y2x1Y2"),
        ("fine-grained github_pat_" + "A1b2_" * 12, "A1b2_A1b2_"),
        ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature", "eyJhbGciOiJIUzI1NiJ9"),
        ("pulled from https://robot:s3cr3t-pass@registry.example/v2/", "s3cr3t-pass"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
        ('ARGOCD_ADMIN_PASSWORD="hunter2 hunter3"', "hunter2"),
        ('{"client-key-data": "LS0tLS1CRUdJTi"}', "LS0tLS1CRUdJTi"),
        ("id eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2ln", "eyJzdWIiOiJzeXN0ZW0ifQ"),
    ],
)
def test_secret_looking_text_is_masked(text: str, secret: str) -> None:
    assert secret not in mask_text(text)
    assert mask_text("sha256:" + "ab" * 32 + " took 3.2 s") == "sha256:" + "ab" * 32 + " took 3.2 s"


def test_an_assignment_keeps_its_name_and_loses_its_value() -> None:
    assert mask_text(f"login ok token: {GITHUB_TOKEN} done") == f"login ok token: {MASK} done"
    assert mask_text("GITHUB_TOKEN=abc123") == f"GITHUB_TOKEN={MASK}"
    assert mask_text("replicas=3 ready") == "replicas=3 ready"


def test_names_and_keys() -> None:
    assert is_secret_name("GITHUB_TOKEN") and is_secret_name("DB_PASSWORD") and is_secret_name("cookie")
    assert not is_secret_name("ML_INFERENCE_PORT")
    assert is_secret_key("registry_password")
    assert not is_secret_key("secretName") and not is_secret_key("tokenPath")  # references, not secrets
    assert not is_secret_key(3)


def test_mask_masks_values_under_secret_keys_and_text_everywhere() -> None:
    value = {
        "image_tag": "ml:1",
        "registry_password": "hunter2-secret",
        "empty_token": "",
        "nested": [{"api_key": 12345, "note": f"Bearer {GITHUB_TOKEN}"}],
        "secretName": "git-credentials",
    }
    assert mask(value) == {
        "image_tag": "ml:1",
        "registry_password": MASK,
        "empty_token": "",
        "nested": [{"api_key": MASK, "note": MASK}],
        "secretName": "git-credentials",
    }
    assert value["registry_password"] == "hunter2-secret"  # a copy: the input is unchanged


def test_rewrite_sees_every_mapping_before_it_is_masked() -> None:
    def drop_notes(mapping: dict) -> dict:
        mapping.pop("note", None)
        return mapping

    value = {"note": "x", "items": [{"note": "y", "token": "z"}]}
    assert mask(value, drop_notes) == {"items": [{"token": MASK}]}
    assert value == {"note": "x", "items": [{"note": "y", "token": "z"}]}
