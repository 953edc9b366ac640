"""The shared secret rules: credential-looking text and values under secret keys are masked, the rest kept.

Kubernetes-specific rules are tested in test_kube_redact.py, the report's use in test_report.py.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import scrub
from pipeline.artifacts import write_json_atomic
from pipeline.scrub import MASK, is_secret_key, is_secret_name, mask, mask_stream, mask_text, scrub_tree
from tests.helpers import read_only_under

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


@pytest.mark.parametrize(
    "token",
    [
        "glpat-" + "Ab3_" * 5,  # GitLab personal access token
        "xoxb-" + "1234567890-" + "AbCd" * 6,  # Slack bot token
        "sk-proj-" + "Ab3d" * 12,  # OpenAI project key
        "sk-ant-api03-" + "Ab3d" * 20,  # Anthropic key
        "sk_live_" + "Ab3d" * 6,  # Stripe secret key
        "AIza" + "Sy" + "Ab3d_" * 6 + "Ab3",  # Google API key
        "hf_" + "Ab3d" * 9,  # Hugging Face token
        "npm_" + "Ab3d" * 9,  # npm access token
        "pypi-AgEIcHlwaS5vcmc" + "Ab3d" * 14,  # PyPI API token
        "dckr_pat_" + "Ab3d-" * 5,  # Docker Hub access token
    ],
)
def test_common_token_shapes_are_masked_whatever_their_name(token: str) -> None:
    assert mask_text(f"pushed with {token} ok") == f"pushed with {MASK} ok"


def _masked_within_a_minute(text: str) -> str:
    """mask_text(text) in a process of its own, killed after a minute: a regex that backtracks takes hours."""
    code = "import sys; from pipeline.scrub import mask_text; sys.stdout.write(mask_text(sys.stdin.read()))"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], input=text, capture_output=True, text=True, timeout=60, cwd=root
    )
    return done.stdout


@pytest.mark.parametrize("unit", ["a-", "a.", "token-", "--token", "x.password."])
def test_a_long_line_without_spaces_is_masked_not_hung_on(unit: str) -> None:
    """A generated line of 100 KB without a space (dotted or hyphenated names, repeated) must not make
    the scrubber backtrack for hours: the runner scrubs every job's log before the next job starts."""
    line = unit * (100_000 // len(unit)) + ", password=hunter2"
    assert _masked_within_a_minute(line) == line.replace("hunter2", MASK)


def test_thousands_of_digest_lines_are_masked_not_hung_on() -> None:
    """Each line of a long run of digests (`git rev-list`, a checksum list) could start a PEM body cut
    from its BEGIN line: trying every one up to the run's end took quadratic time."""
    digests = "".join(f"{index:040x}\n" for index in range(20_000))
    assert _masked_within_a_minute(digests + "password=hunter2\n") == digests + f"password={MASK}\n"


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


# --- values that look like credentials, whatever their name (issue 10) ----------------------------

PEM_BODY = "\n".join(["MIIEowIBAAKCAQEA" + "q7Zx" * 12] * 3)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("HTTPS_PROXY=http://proxyuser:pr0xy-pass@proxy.example:3128", "pr0xy-pass"),
        ("PIP_INDEX_URL=https://__token__:pypi-AgEIcHlwaS5vcmc@pypi.example/simple", "pypi-AgEIcHlwaS5vcmc"),
        ("clone https://x0tokenonly0x@git.example/repo.git", "x0tokenonly0x"),
        ("serve --password hunter2 --port 8080", "hunter2"),
        ("login --token=tok-123456 --verbose", "tok-123456"),
        ("psql --db-password 'two words'", "two words"),
        ('{"msg": "{\\"password\\": \\"esc4ped\\"}"}', "esc4ped"),
        ('{"auths": {"registry.example": {"auth": "dXNlcjpwYXNzd29yZA=="}}}', "dXNlcjpwYXNzd29yZA=="),
        ("config:\n  password: |\n    line-one-secret\n    line-two-secret\nreplicas: 3", "line-two-secret"),
        (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----", "q7Zx"),
        (f"{PEM_BODY}\nAbCd==\n-----END RSA PRIVATE KEY-----", "q7Zx"),  # the BEGIN line was cut
        (f"log line\n{PEM_BODY}\nnext line", "q7Zx"),  # a body with neither line
        ("key ghs_" + "A1b2" * 9 + " and gho_" + "Z9y8" * 9, "Z9y8Z9y8"),
        ("aws ASIAIOSFODNN7EXAMPL1 temporary", "ASIAIOSFODNN7EXAMPL1"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ],
)
def test_credential_values_are_masked_whatever_their_name(text: str, secret: str) -> None:
    assert secret not in mask_text(text)


def test_masked_json_stays_json_and_references_stay() -> None:
    text = '{"auth": "dXNlcjpw", "token": "abc", "secretName": "git-credentials", "tokenPath": "/var/run"}'
    assert json.loads(mask_text(text)) == {
        "auth": MASK,
        "token": MASK,
        "secretName": "git-credentials",
        "tokenPath": "/var/run",
    }
    assert mask_text("authors: Ada, Grace") == "authors: Ada, Grace"


def test_a_hex_digest_is_not_a_pem_body() -> None:
    digests = "\n".join(["ab" * 32] * 3) + "\n"
    assert mask_text(digests) == digests


def test_a_command_line_list_loses_the_value_after_a_secret_flag() -> None:
    command = ["serve", "--password", "hunter2", "--port", "8080", {"env": ["--token", "t0k"]}]
    assert mask(command) == ["serve", "--password", MASK, "--port", "8080", {"env": ["--token", MASK]}]


def test_scrub_tree_masks_text_files_in_place_and_keeps_json_valid(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "deploy.log").write_text("pushing to https://u:CANARY1@git.example/x.git\n")
    (tmp_path / "processes.json").write_text(json.dumps([{"cmdline": ["app", "--password", "CANARY2"]}]))
    (tmp_path / "events.jsonl").write_text('{"proxy": "http://u:CANARY3@p:1"}\n{"ok": 1}\n')
    (tmp_path / "model.onnx").write_bytes(b"\0binary CANARY4")
    changed = scrub_tree(tmp_path)
    assert sorted(path.name for path in changed) == ["deploy.log", "events.jsonl", "processes.json"]
    for name, canary in [
        ("logs/deploy.log", "CANARY1"),
        ("processes.json", "CANARY2"),
        ("events.jsonl", "CANARY3"),
    ]:
        assert canary not in (tmp_path / name).read_text()
    assert json.loads((tmp_path / "processes.json").read_text()) == [{"cmdline": ["app", "--password", MASK]}]
    assert [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()][1] == {"ok": 1}
    assert (tmp_path / "model.onnx").read_bytes() == b"\0binary CANARY4"  # binary files are not text


def test_a_file_that_cannot_be_masked_is_removed_named_and_the_rest_still_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stuck").mkdir()
    stuck = tmp_path / "stuck" / "a.log"
    stuck.write_text("PASSWORD=CANARY6\n")
    later = tmp_path / "zz.log"
    later.write_text("PASSWORD=CANARY7\n")
    read_only_under(monkeypatch, tmp_path / "stuck")
    with pytest.raises(scrub.UnmaskedFiles) as raised:
        scrub_tree(tmp_path)
    assert raised.value.problems == [f"{stuck}: could not mask it (Read-only file system), so removed it"]
    assert not stuck.exists(), "a secret that cannot be masked must not stay"
    assert "CANARY7" not in later.read_text()


def test_the_json_writer_masks_what_it_writes(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "state.json", {"env": {"HTTPS_PROXY": "http://u:CANARY5@proxy:1"}})
    assert "CANARY5" not in (tmp_path / "state.json").read_text()


def test_verdicts_and_counts_under_ordinary_keys_are_kept() -> None:
    verdicts = {"passed": True, "bypassed": False, "sessions": 3, "compass": "north", "retries": 0}
    assert mask(verdicts) == verdicts
    assert mask({"password": 1234, "session": "s3cr3t-value"}) == {"password": MASK, "session": MASK}


def test_a_log_that_is_not_utf8_is_masked_and_keeps_its_other_bytes(tmp_path: Path) -> None:
    log = tmp_path / "unit.log"
    log.write_bytes(b"caf\xe9 PASSWORD=hunter2\n")
    later = tmp_path / "zz-later.log"
    later.write_text("DB_PASSWORD=hunter3\n")
    assert scrub_tree(tmp_path) == [log, later]
    assert log.read_bytes() == b"caf\xe9 PASSWORD=" + MASK.encode() + b"\n"
    assert "hunter3" not in later.read_text()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["unit.log", "zz-later.log"]


@pytest.mark.parametrize(
    "text",
    [
        "stringData:\r\n  password: |\r\n    hunter2xyz\r\n",
        'stringData:\n  "db_password": |\n    hunter2xyz\n',
        "stringData:\n  password: | # the database's\n    hunter2xyz\n",
    ],
)
def test_a_block_scalar_under_a_secret_key_is_masked_in_every_yaml_spelling(text: str) -> None:
    assert "hunter2xyz" not in mask_text(text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: ApiKey 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("authorization=9f8e7d6c5b4a3210", "9f8e7d6c5b4a3210"),
        ("DB_PASS=hunter2", "hunter2"),
        ("Cookie: session=0a1b2c3d4e5f", "0a1b2c3d4e5f"),
        ('{"password": ["hunter2", "hunter3"]}', "hunter"),
    ],
)
def test_text_under_every_secret_name_is_masked(text: str, secret: str) -> None:
    assert secret not in mask_text(text)
    assert mask_text("author=Jane Doe") == "author=Jane Doe"


def test_list_values_under_secret_keys_are_masked() -> None:
    masked = mask({"password": ["hunter2"], "api_keys": ["k-123", {"name": "deploy"}]})
    assert masked == {"password": [MASK], "api_keys": [MASK, {"name": "deploy"}]}
    assert mask({"Authorization": "ApiKey 9f8e7d6c5b4a"}) == {"Authorization": MASK}


def test_a_stream_is_masked_line_by_line_as_it_arrives() -> None:
    read: list[str] = []

    def lines() -> Iterator[str]:
        for line in ["step 1\n", "DB_PASSWORD=hunter2\n", "step 3\n"]:
            read.append(line)
            yield line

    masked = mask_stream(lines())
    assert next(masked) == "step 1\n" and len(read) == 1, "a plain line is passed on before the next is read"
    assert next(masked) == f"DB_PASSWORD={MASK}\n" and len(read) == 2
    assert list(masked) == ["step 3\n"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}\n-----END PRIVATE KEY-----\ndone\n", "q7Zx"),
        (f"log line\n{PEM_BODY}\nnext line\n", "q7Zx"),
        ("stringData:\n  password: |\n    hunter2xyz\n    more\nkind: Secret\n", "hunter2xyz"),
    ],
)
def test_a_secret_over_several_lines_of_a_stream_is_masked_whole(text: str, secret: str) -> None:
    streamed = "".join(mask_stream(text.splitlines(keepends=True)))
    assert secret not in streamed
    assert streamed == mask_text(text), "line by line, the stream masks what the whole text would"


def test_the_cli_masks_standard_input_to_standard_output_and_keeps_other_bytes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.scrub", "-"],
        input=b"caf\xe9 token=0a1b2c3d\r\nprogress 10%\rprogress 20%\n",
        capture_output=True,
        check=True,
    )
    assert done.stdout == b"caf\xe9 token=" + MASK.encode() + b"\r\nprogress 10%\rprogress 20%\n"


def test_the_cli_passes_each_line_on_before_its_input_ends() -> None:
    """What the live job log relies on: a line shows while the job still runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.scrub", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(b"DB_PASSWORD=hunter2\n")
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "nothing came out while the input stayed open"
        assert process.stdout.readline() == f"DB_PASSWORD={MASK}\n".encode()
    finally:
        process.stdin.close()
        process.wait(timeout=30)


def test_a_binary_file_is_left_byte_for_byte_even_with_secret_looking_bytes(tmp_path: Path) -> None:
    """Masking would corrupt a model or an image layer; a binary artifact is not a log."""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0\x08onnx --password hunter2 https://u:p4ss@host/ \xff\xfe")
    assert scrub_tree(tmp_path) == []
    assert model.read_bytes() == b"\0\x08onnx --password hunter2 https://u:p4ss@host/ \xff\xfe"


def test_a_symlink_in_a_scrubbed_folder_is_not_followed(tmp_path: Path) -> None:
    """A link out of the artifacts (to a kept environment, say) must not let the scrub rewrite its target."""
    outside = tmp_path / "outside.log"
    outside.write_text("PASSWORD=hunter2\n")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "link.log").symlink_to(outside)
    assert scrub_tree(tmp_path / "artifacts") == []
    assert outside.read_text() == "PASSWORD=hunter2\n"


def test_a_yes_or_no_and_a_reference_to_a_secret_are_kept_under_secret_keys() -> None:
    kept = {
        "password": False,
        "tls_auth": True,
        "secretName": "db",
        "tokenPath": "/var/run/token",
        "passwordFile": "/etc/pass",
        "secretKind": "Opaque",
        "credentialsMountPath": "/mnt/credentials",
        "authType": "oidc",
        "secretRef": "db",
    }
    assert mask(kept) == kept


@pytest.mark.parametrize(("argv", "code"), [([], 2), (["--help"], 0), (["-h"], 0)])
def test_the_cli_without_a_path_prints_its_usage(
    argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.scrub import main

    assert main(argv) == code
    assert capsys.readouterr().out.startswith("usage: python -m pipeline.scrub PATH... | -")


def test_a_log_with_a_nul_byte_is_still_scrubbed(tmp_path: Path) -> None:
    """A test printing raw bytes puts a NUL in the log: a log is text, whatever it holds."""
    log = tmp_path / "unit.log"
    log.write_bytes(b"reply: \0\x01OK\nGITHUB_TOKEN=" + GITHUB_TOKEN.encode() + b"\n")
    assert scrub_tree(tmp_path) == [log]
    assert GITHUB_TOKEN.encode() not in log.read_bytes() and b"\0\x01OK" in log.read_bytes()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("<failure message=\"connect('password=&quot;hunter2hunter&quot;')\">", "hunter2hunter"),
        ('<failure message="{&quot;password&quot;: &quot;CnryHtml2&quot;}">', "CnryHtml2"),
        ("<td>token=&#39;CnryApos3&#39;</td>", "CnryApos3"),
    ],
    ids=["entity-quoted value", "entity-quoted JSON", "numeric entity quotes"],
)
def test_a_value_quoted_with_xml_or_html_entities_is_masked(text: str, secret: str) -> None:
    """junit.xml and report.html escape the quotes of the messages they quote."""
    assert secret not in mask_text(text)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("DB_PASSWORD=Xk9,vT2;pq7", "vT2"),
        ("API_TOKEN=abc}def]ghi", "def"),
        ("Cookie: session=s1; other=X9secret", "X9secret"),
    ],
)
def test_a_bare_secret_value_is_masked_whole_whatever_punctuation_it_holds(text: str, secret: str) -> None:
    """Generated passwords hold commas, semicolons and brackets; a Cookie header is all its value."""
    assert secret not in mask_text(text)
