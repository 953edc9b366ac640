"""Recognise secrets and mask them, for everything the pipeline writes or shows.

One rule set, used wherever a value leaves the pipeline: every file a job leaves under `artifacts/`
(the JSON writer masks what it writes, and the runner scrubs each job's log and folder when the
job ends, before anything reads or uploads them), the report, and the PR comment. Values under
secret-sounding keys are masked, and so is any text that looks like a credential wherever it
appears, whatever its name: URL userinfo, `--password X`, PEM bodies, and the token shapes of
GitHub, AWS, JWT and other common services. Over-masking a harmless value is acceptable; leaking a
secret is not. Mask before cutting: a tail or a prefix of a masked text is safe, a cut piece of a
secret may not be recognised any more.
Standard library only, so any layer can import it; `python -m pipeline.scrub PATH...` scrubs files
and folders in place (the workflow runs it before each upload), and `python -m pipeline.scrub -`
masks its standard input to its standard output as it arrives (the workflow's live job logs).
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

MASK = "***"

#: The words that make a name a credential's, in keys and in text (case-insensitive): `auth` but not
#: `author` or `authority`, `pass` alone but not `bypass`, `session` but not `sessions`.
_NAME_WORDS = (
    r"pass(word|wd|phrase)|(?<![a-z])pass(?![a-z])|secret|token|api[-_]?key|private[-_]?key|client[-_]key"
    r"|credential|access[-_]?key|auth(?!or(?!iz))|certificate-authority-data|client-certificate-data"
    r"|cookie|session(?![a-z])"
)
#: Names whose values are credentials.
SECRET_NAME = re.compile(f"({_NAME_WORDS})", re.IGNORECASE)
#: Keys that name or point at a secret rather than hold one (`secretName`, `tokenPath`, `authType`).
REFERENCE_KEY = re.compile(r"(name|ref|refs|path|file|mountpath|type|kind)$", re.IGNORECASE)

#: A quote as XML and HTML escape it (junit.xml's messages, report.html).
_ENTITY_QUOTE = r"&(?:quot|apos|#34|#39|#x22|#x27);"
#: A quoted value, also JSON-escaped inside another JSON string (`\"hunter2\"`) or entity-quoted.
_QUOTED = (
    r"""\\"(?:[^"\\]|\\[^"])*?\\"|"(?:[^"\\]|\\.)*"|'[^']*'"""
    rf"|(?P<entity>{_ENTITY_QUOTE}).*?(?P=entity)"
)
#: A quoted value, a flat JSON list, else a bare word: all of it but a closing quote or tag, as a
#: generated password holds commas, semicolons and brackets.
_VALUE = rf"""({_QUOTED}|\[[^\[\]\n]*\]|(?:(?!{_ENTITY_QUOTE})[^\s"'<>])+)"""
#: `NAME=value` / `"name": "value"` / `name: value` where the name says credential: the name stays.
#: A name starts where a run of name characters does, and once found is not given back (an atomic
#: group): tried from every word boundary, with backtracking, a long run took quadratic time.
_ASSIGNMENT = re.compile(
    rf"""(?P<name>(?<![\w.-])(?>[\w.-]*({_NAME_WORDS})[\w.-]*)"""
    rf"""(?<!name)(?<!ref)(?<!path)(?<!file)(?<!type)(?<!kind)(\\?["']|{_ENTITY_QUOTE})?)"""
    rf"""(?P<separator>[ \t]*[=:][ \t]*)(?P<value>{_VALUE})""",
    re.IGNORECASE,
)
#: A flag whose name says credential: `--password`, `--api-token` (`-p` is too vague to tell).
_FLAG_NAME = rf"--?[\w-]*({_NAME_WORDS})[\w-]*"
#: `--password X`, `--token=X`.
_FLAG = re.compile(
    rf"""(?P<name>(?<![\w-])(?>{_FLAG_NAME}))(?P<separator>[ \t]+|=)(?P<value>{_VALUE})""", re.IGNORECASE
)
_SECRET_FLAG = re.compile(_FLAG_NAME, re.IGNORECASE)
#: An HTTP Authorization or Cookie header or field: its whole value (`ApiKey 9f8e...`, every cookie).
_AUTHORIZATION = re.compile(
    r"""(?P<name>\b(set-)?(authorization|cookie)(\\?["'])?)(?P<separator>[ \t]*[=:][ \t]*)"""
    rf"""(?P<value>{_QUOTED}|[^\r\n]+)""",
    re.IGNORECASE,
)
#: A YAML key whose name says credential, quoted or not, holding a block scalar (`password: |`, then
#: the lines indented below it), with a comment or a CRLF ending or not.
_BLOCK_SCALAR = re.compile(
    rf"""^(?P<head>(?P<indent>[ \t]*)(- )?["']?(?>[\w.-]*({_NAME_WORDS})[\w.-]*)["']?[ \t]*:[ \t]*"""
    r"[|>][-+0-9]*[ \t]*(#.*)?)\r?$",
    re.IGNORECASE,
)
_PEM_END_LINE = r"-----END [A-Z ]*PRIVATE KEY-----"
#: A PEM private key, from its BEGIN line to its END line (or the end: a cut log).
_WHOLE_PEM = rf"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?({_PEM_END_LINE}|$)"
#: A PEM body whose BEGIN line is not there (a cut log): base64 lines up to its END line. Tried from
#: every line of a long run of base64-alphabet lines (digests, say) it takes quadratic time, so it is
#: only tried on a text with such an END line, without which it cannot match.
_CUT_PEM_BODY = rf"(?m:^[ \t]*[A-Za-z0-9+/=]{{16,}}[ \t]*\r?\n)+[ \t]*{_PEM_END_LINE}"
_PEM_END = re.compile(_PEM_END_LINE, re.IGNORECASE)
#: Text that is a credential whatever surrounds it, after the PEM keys.
_TOKENS = (
    # A body without either line: two or more full-width (64) base64 lines, not plain hex digests.
    r"(?m:(?:^[ \t]*(?=[^\n]*[g-zG-Z+/])[A-Za-z0-9+/]{64}[ \t]*\r?\n){2,}(?:[ \t]*[A-Za-z0-9+/=]{1,64}$)?)"
    # GitHub tokens: classic, fine-grained, app installation, OAuth, refresh.
    r"|\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"
    r"|\b(AKIA|ASIA)[0-9A-Z]{16}\b"
    # GitLab, Slack, Docker Hub, PyPI; OpenAI and Anthropic; Stripe, Google, Hugging Face, npm. Each in
    # its own alphabet and length, so that `sk-toggleable__label` or `hf_decoder_input` stay.
    r"|\b(glpat-|xox[abposr]-|dckr_pat_|pypi-AgE)[A-Za-z0-9_-]{20,}|\bsk-[A-Za-z0-9_-]{40,}"
    r"|\b[sr]k_(live|test)_[A-Za-z0-9]{16,}|\bAIza[A-Za-z0-9_-]{35}"
    r"|\b(hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36})\b"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWT
    r"|\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"""|(?<=://)[^/\s@"'<>]+(?=@)"""  # URL userinfo: scheme://user:password@host, scheme://token@host
)
_CREDENTIAL = re.compile(f"{_WHOLE_PEM}|{_CUT_PEM_BODY}|{_TOKENS}", re.IGNORECASE)
_CREDENTIAL_BUT_CUT_PEM = re.compile(f"{_WHOLE_PEM}|{_TOKENS}", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a variable named `name` would hold a credential (env vars: drop or mask them)."""
    return bool(SECRET_NAME.search(name))


def is_secret_key(key: object) -> bool:
    """Whether a mapping key says its value is a credential, and is not a reference to one."""
    return isinstance(key, str) and is_secret_name(key) and not REFERENCE_KEY.search(key)


def _masked_value(match: re.Match[str]) -> str:
    # A quoted value stays quoted, in its own quotes (JSON-escaped, an entity, plain): JSON stays JSON.
    quote = re.match(rf"""\\"|{_ENTITY_QUOTE}|["']""", match["value"])
    masked = f"{quote[0]}{MASK}{quote[0]}" if quote else MASK
    return f"{match['name']}{match['separator']}{masked}"


def _mask_block_scalars(text: str) -> str:
    """Drop the lines of YAML block scalars under secret names (`key: |` and the lines indented below)."""
    out: list[str] = []
    block_indent = None  # the secret key's indentation, inside its block
    masked = False
    for line in text.split("\n"):
        body = line.lstrip()
        depth = len(line) - len(body)
        if block_indent is not None and (not body or depth > block_indent):
            if not body:
                out.append(line)
            elif not masked:
                out.append(line[:depth] + MASK)
                masked = True
            continue
        out.append(line)
        head = _BLOCK_SCALAR.match(line)
        block_indent, masked = (len(head["indent"]), False) if head else (None, False)
    return "\n".join(out)


def mask_text(text: str) -> str:
    """`text` with anything that looks like a credential replaced by MASK."""
    credential = _CREDENTIAL if _PEM_END.search(text) else _CREDENTIAL_BUT_CUT_PEM
    text = credential.sub(MASK, text)  # first: a PEM body must go whole, before other rules split it
    text = _mask_block_scalars(text)
    text = _FLAG.sub(_masked_value, text)
    text = _AUTHORIZATION.sub(_masked_value, text)
    return _ASSIGNMENT.sub(_masked_value, text)


#: A line that may be one of a PEM body's or of full-width base64 (see _CUT_PEM_BODY and _TOKENS).
_BASE64_LINE = re.compile(r"[ \t]*[A-Za-z0-9+/=]{16,}[ \t]*\r?\n?")
#: How many lines a stream holds back at most, waiting to see whether a secret spans them.
STREAM_HOLD_LINES = 200


def _may_go_on(held: list[str]) -> bool:
    """Whether the line after `held` could still belong to a secret over several lines they begin."""
    text = "".join(held)
    begin = text.rfind("-----BEGIN ")
    if (begin != -1 and "-----END " not in text[begin:]) or _BASE64_LINE.fullmatch(held[-1]):
        return True
    for index in range(len(held) - 1, -1, -1):  # inside a block scalar under a secret key
        if head := _BLOCK_SCALAR.match(held[index].rstrip("\n")):
            deeper = len(head["indent"]) + 1
            return all(not line.strip() or line[:deeper].isspace() for line in held[index + 1 :])
    return False


def mask_stream(lines: Iterable[str]) -> Iterator[str]:
    """`lines` masked as they arrive: each passed on at once, unless it may begin a secret over several
    lines (a PEM key, full-width base64, a YAML block scalar); those wait for the lines that settle it."""
    held: list[str] = []
    for line in lines:
        held.append(line)
        if len(held) < STREAM_HOLD_LINES and _may_go_on(held):
            continue
        yield mask_text("".join(held))
        held = []
    if held:
        yield mask_text("".join(held))


def mask(value: Any, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Any:
    """A copy of JSON-like `value` with values under secret keys and credential-looking text masked.

    `rewrite` sees each mapping first and returns what to mask instead: the hook for rules a caller
    knows and this module does not (a Kubernetes Secret's data, an env var entry). In a list (a
    command line), the item after a bare `--password`-like flag is masked too.
    """
    if isinstance(value, (list, tuple)):
        return _mask_items(value, rewrite)
    if isinstance(value, str):
        return mask_text(value)
    if not isinstance(value, Mapping):
        return value
    mapping = rewrite(dict(value)) if rewrite else value
    return {key: _masked_under(key, item, rewrite) for key, item in mapping.items()}


def _masked_under(key: object, item: Any, rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None) -> Any:
    """`item`, the value of `key`: under a secret key a credential, or a list of them, is masked."""
    if not is_secret_key(key):
        return mask(item, rewrite)
    if isinstance(item, (list, tuple)):
        return [MASK if _is_credential(element) else mask(element, rewrite) for element in item]
    return MASK if _is_credential(item) else mask(item, rewrite)


def _mask_items(
    items: Iterable[Any], rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None
) -> list[Any]:
    masked: list[Any] = []
    after_flag = False
    for item in items:
        masked.append(MASK if after_flag and isinstance(item, str) else mask(item, rewrite))
        after_flag = isinstance(item, str) and _SECRET_FLAG.fullmatch(item) is not None
    return masked


def _is_credential(value: Any) -> bool:
    """A value that may be a credential: a non-empty scalar (a yes/no never is, whatever its key)."""
    is_scalar = isinstance(value, (str, bytes, int, float)) and not isinstance(value, bool)
    return is_scalar and value not in ("", b"")


# --- files --------------------------------------------------------------------------------------


def _scrubbed(path: Path, text: str) -> str:
    """`text` of the file at `path`, masked; JSON stays valid JSON (masked as data, not as text)."""
    if path.suffix == ".json":
        scrubbed = _scrubbed_json(text, indent=2)
        return text if scrubbed == text else scrubbed + "\n"
    if path.suffix == ".jsonl":
        return "\n".join(
            _scrubbed_json(line, indent=None) if line.strip() else line for line in text.split("\n")
        )
    return mask_text(text)


def _scrubbed_json(text: str, indent: int | None) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return mask_text(text)
    masked = mask(data)
    if masked == data:
        return text
    return json.dumps(masked, indent=indent, sort_keys=True, default=str)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` so that a reader never sees half a file, even if the writer is killed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # surrogateescape: bytes read that are not UTF-8 (scrub_file) go back out as they came.
    options: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape", "delete": False}
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", **options) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


#: Text whatever bytes it holds (a test that printed raw bytes puts a NUL in its log).
TEXT_SUFFIXES = frozenset(
    {".log", ".txt", ".xml", ".html", ".md", ".json", ".jsonl", ".csv", ".yaml", ".yml"}
)


def scrub_file(path: Path) -> bool:
    """Mask the secrets in the text file at `path` in place; True when it changed. Binary files are left."""
    try:
        raw = path.read_bytes()
    except OSError:
        return False
    if b"\0" in raw[:8192] and path.suffix not in TEXT_SUFFIXES:
        return False
    text = raw.decode("utf-8", errors="surrogateescape")
    scrubbed = _scrubbed(path, text)
    if scrubbed == text:
        return False
    write_text_atomic(path, scrubbed)
    return True


class UnmaskedFiles(Exception):
    """Files `scrub_tree` could not rewrite masked; each was removed if it could be. Raised at the end."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def scrub_tree(*paths: Path) -> list[Path]:
    """Scrub every text file at or under `paths` (missing ones are skipped); the files that changed.

    A file that cannot be rewritten (a read-only mount, a full disk) is removed, since a secret must
    not stay; the others are still scrubbed, then UnmaskedFiles names what went wrong.
    """
    changed, problems = [], []
    for root in paths:
        files = sorted(path for path in root.rglob("*") if not path.is_symlink()) if root.is_dir() else [root]
        for file in files:
            try:
                if file.is_file() and scrub_file(file):
                    changed.append(file)
            except OSError as error:
                problems.append(f"{file}: could not mask it ({error.strerror or error}), so {_removed(file)}")
    if problems:
        raise UnmaskedFiles(problems)
    return changed


def _removed(path: Path) -> str:
    try:
        path.unlink()
    except OSError as error:
        return f"could not remove it either ({error.strerror or error})"
    return "removed it"


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.scrub PATH...`: mask the secrets in these files and folders, in place."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(
            "usage: python -m pipeline.scrub PATH... | -\nMask credentials in these files and folders in"
            " place, or (-) in standard input, written to standard output as it arrives."
        )
        return 0 if args else 2
    if args == ["-"]:
        # Every byte kept (surrogateescape), and \r ends a line too: a progress bar streams as it moves.
        text: dict[str, Any] = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}
        source = io.TextIOWrapper(sys.stdin.buffer, **text)
        sink = io.TextIOWrapper(sys.stdout.buffer, **text)
        for chunk in mask_stream(source):
            sink.write(chunk)
            sink.flush()
        return 0
    try:
        changed = scrub_tree(*map(Path, args))
    except UnmaskedFiles as failure:
        print("\n".join(failure.problems), file=sys.stderr)
        return 1
    print(f"scrubbed {len(changed)} file(s)" + "".join(f"\n  {path}" for path in changed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
